#!/usr/bin/env bash
# tests/demo.sh (make demo): mailsync against a private Dovecot, end to end.
#
# Seeds a few dozen generated messages into several folders (nested
# "Lists/dev", non-ASCII "Entwürfe") for alice and into bob's INBOX, writes
# a config with an IMAPS account to Maildir and a POP3S account to mbox,
# runs `mailsync check`, `mailsync folders`, then the sync itself with -v,
# and reports what landed where.  The output directory is kept and its
# path printed; the server is stopped.  Exit 0 only if every mailsync run
# succeeded.
# `make demo` runs us with sh: switch to bash before any bash syntax
[ -z "${BASH_VERSION:-}" ] && exec bash "$0" "$@"
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/tests/lib/dovecot.sh"
: "${MAILSYNC:=$top/build/mailsync}"

OUT=$(mktemp -d /tmp/mailsync-demo.XXXXXX)
T=$OUT/tmp
mkdir -p "$T"
say() { printf '\n== %s\n' "$*"; }
# padl WIDTH TEXT: TEXT and spaces up to WIDTH characters (printf's %-Ns
# counts bytes, which misaligns UTF-8 names such as Entwürfe)
padl() {
	local LC_ALL=C.UTF-8 n
	n=$(($1 - ${#2}))
	printf '%s%*s' "$2" $((n > 0 ? n : 0)) ''
}

say "starting a private Dovecot on 127.0.0.1"
dovecot_start || exit 1
echo "IMAPS port $DV_IMAPS_PORT, POP3S port $DV_POP3S_PORT (CA $DV_CA)"

say "seeding generated messages"
python3 "$top/tests/lib/gen_corpus.py" "$T/corpus" --count 40 --seed 2024
set -- "$T"/corpus/*.eml
dv_seed "$DV_USER" INBOX "${@:1:14}"
dv_seed "$DV_USER" Lists/dev "${@:15:8}"
dv_seed "$DV_USER" Archive/2023 "${@:23:6}"
dv_seed "$DV_USER" "Entwürfe" "${@:29:4}"
dv_seed "$DV_USER2" INBOX "${@:33:8}"
dv_set_flags "$DV_USER" INBOX 1 '\Seen'
dv_set_flags "$DV_USER" INBOX 2 '\Seen' '\Flagged'
for f in INBOX Lists/dev Archive/2023 "Entwürfe"; do
	printf '  %-14s %s %3s messages\n' "$DV_USER" "$(padl 13 "$f:")" \
		"$(dv_count "$DV_USER" "$f")"
done
printf '  %-14s %s %3s messages\n' "$DV_USER2" "$(padl 13 INBOX:)" \
	"$(dv_count "$DV_USER2" INBOX)"

CFG=$OUT/mailsync.ini
(
	umask 077
	cat >"$CFG" <<EOF
[general]
state_dir = $OUT/state

[work]
source = imaps://127.0.0.1:$DV_IMAPS_PORT
user = $DV_USER
password = $DV_PASS
tls_ca_file = $DV_CA
store = maildir:$OUT/Mail
policy = keep

[pop]
source = pop3s://127.0.0.1:$DV_POP3S_PORT
user = $DV_USER2
password = $DV_PASS2
tls_ca_file = $DV_CA
store = mbox:$OUT/pop.mbox
policy = keep
EOF
)

worst=0
run() {
	echo "\$ mailsync $*"
	"$MAILSYNC" "$@"
	local rc=$?
	echo "(exit $rc)"
	[ "$rc" -ne 0 ] && [ "$worst" -eq 0 ] && worst=$rc
	return 0
}

say "mailsync check: log in to both accounts"
run -c "$CFG" check
say "mailsync folders work"
run -c "$CFG" folders work
say "mailsync -v: sync both accounts"
run -v -c "$CFG"
say "mailsync -v again: nothing new"
run -v -c "$CFG"

say "what landed where"
nmaildir=0 nmbox=0
if [ -d "$OUT/Mail" ]; then
	while read -r cur; do
		d=${cur%/cur}
		n=$(find "$d/cur" "$d/new" -maxdepth 1 -type f | wc -l)
		nmaildir=$((nmaildir + n))
		printf '  maildir %s %3d messages\n' "$(padl 40 "${d#"$OUT"/}")" "$n"
	done < <(find "$OUT/Mail" -type d -name cur | sort)
else
	echo "  (no Maildir at $OUT/Mail)"
fi
if [ -f "$OUT/pop.mbox" ]; then
	nmbox=$(grep -c '^From ' "$OUT/pop.mbox")
	printf '  mbox    %-40s %3d messages\n' pop.mbox "$nmbox"
else
	echo "  (no mbox at $OUT/pop.mbox)"
fi
# the demo checks itself: every seeded message must have landed once
if [ "$nmaildir" -ne 32 ] || [ "$nmbox" -ne 8 ]; then
	echo "  MISMATCH: want 32 messages in the Maildir and 8 in the mbox"
	[ "$worst" -eq 0 ] && worst=1
fi

dovecot_stop
rm -rf "$T"
echo
echo "output kept in $OUT (config: $CFG)"
exit "$worst"
