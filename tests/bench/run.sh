#!/bin/sh
# tests/bench/run.sh: `make bench`.  mailsync against mbsync (isync),
# offlineimap3, getmail6, fetchmail (+procmail) and mpop on one private
# Dovecot; results in tests/bench/RESULTS.md (see tests/bench/bench.py).
#
#   BENCH_PRESET=1000|10000|50000 (messages; any number works)
#   BENCH_REPS=3   BENCH_RTTS="0 20"   BENCH_MEMTEST=1
#   BENCH_TOOLS="mailsync mbsync ..."  (name prefixes; default all)
#   BENCH_WORK=DIR (tools' stores; default a new dir under /var/tmp)
#   BENCH_OUT=FILE (default tests/bench/RESULTS.md)
#   BENCH_SCENARIOS="imap-full imap-none" (default all five)
#   BENCH_MAILSYNC_BASE=BINARY (also time this build as "mailsync-base")
# Needs root (the private Dovecot does).  Installs the peer tools with
# apt-get when they are missing.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${MAILSYNC:=$here/../../build/mailsync}"
export MAILSYNC
[ -x "$MAILSYNC" ] || { echo "bench: no $MAILSYNC (make all)" >&2; exit 1; }
MAILSYNC=$(cd "$(dirname "$MAILSYNC")" && pwd)/$(basename "$MAILSYNC")

# --- the peers, installed once (quiet, idempotent) ---
need=
for p in isync:mbsync offlineimap3:offlineimap getmail6:getmail \
	fetchmail:fetchmail procmail:procmail mpop:mpop time:/usr/bin/time; do
	command -v "${p#*:}" >/dev/null 2>&1 || need="$need ${p%%:*}"
done
if [ -n "$need" ]; then
	echo "bench: installing$need" >&2
	export DEBIAN_FRONTEND=noninteractive
	{ apt-get -o DPkg::Lock::Timeout=300 install -y -q $need || { apt-get -o DPkg::Lock::Timeout=300 update -q &&
		apt-get -o DPkg::Lock::Timeout=300 install -y -q $need; }; } >/tmp/mailsync-bench-apt.log 2>&1 ||
		echo "bench: apt-get failed (see /tmp/mailsync-bench-apt.log);" \
			"missing tools will be reported as failed" >&2
fi

. "$here/../lib/dovecot.sh"
t_setup
# rawlog roughly halves Dovecot's throughput: the bench runs without it
# (Dovecot writes no rawlog when the directory does not exist)
dovecot_start || exit 1
rm -rf "$DV_RAWLOG"

if [ -z "${BENCH_WORK:-}" ]; then
	BENCH_WORK=$(mktemp -d /var/tmp/mailsync-bench.XXXXXX) || exit 1
	ms_cleanup_add 'rm -rf "$BENCH_WORK"'
fi
export BENCH_WORK
python3 "$here/bench.py"
