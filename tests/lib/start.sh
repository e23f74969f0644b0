# tests/lib/start.sh: the common start of a test against the private
# Dovecot.  The test sets here (its own directory) and sources this:
#   here=$(cd "$(dirname "$0")" && pwd)
#   . "$here/../lib/start.sh"
# Loads the assertion, Dovecot and verification helpers, makes the
# scratch directory $T and starts the server.  Tests that need a step in
# between (a fake clock, say) source the three libraries themselves.
. "$here/../lib/assert.sh"
. "$here/../lib/dovecot.sh"
. "$here/../lib/verify.sh"
t_setup
dovecot_start
