#!/usr/bin/env bash
# Crash consistency, full matrix (make faults): IMAP and POP3 into Maildir
# and mbox, policy delete, mailsync killed by SIGKILL at the N-th call of
# each rename-family syscall and of fsync/fdatasync in turn (strace inject;
# the call is not executed), for every N until a run completes.  After each
# kill: every message gone from the server is stored locally and
# byte-identical (O1/O3), no duplicate (O2); a clean run then gives the
# fault-free result: every message stored, byte-identical, server empty.
# (CRASH_LENIENT=1 tolerates the two bugs this found, see lib_oracle.sh.)
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
calls=rename,renameat,renameat2,link,linkat,fsync,fdatasync
for combo in "imaps maildir" "imaps mbox" "pop3s maildir" "pop3s mbox"; do
	set -- $combo
	crash_matrix "$1" "$2" "$calls" 4 "${1%s}->$2"
done
[ "${CRASH_LENIENT:-0}" = 1 ] && echo "# tolerated (CRASH_LENIENT): $ORACLE_DUPS duplicates, ${ORACLE_STALE:-0} stale dotlocks"
t_done
