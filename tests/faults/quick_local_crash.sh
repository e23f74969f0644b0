#!/usr/bin/env bash
# Crash consistency, short variant (the full matrix is slow_local_crash.sh):
# IMAP -> Maildir, policy delete, mailsync killed by SIGKILL at each
# renameat2 / renameat in turn (strace inject; the call is not executed);
# after each kill every message gone from the server is stored locally
# (O3), no duplicate (O2); a clean run then gives the fault-free result.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/assert.sh"
. "$here/../lib/dovecot.sh"
. "$here/../lib/verify.sh"
. "$here/lib_oracle.sh"
t_setup
# a private copy: a rebuild of the tree's binary during a long run must not
# make an exec fail half way through the matrix
cp "$MAILSYNC" "$T/mailsync" && MAILSYNC=$T/mailsync
dovecot_start
U=$DV_USER
crash_matrix imaps maildir renameat2,renameat 3 "imap->maildir"
t_done
