#!/usr/bin/env bash
# tests/integration/dovecot_harness.sh: the test harness itself
# (tests/lib/dovecot.sh, gen_corpus.py) does what the other tests rely on.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/assert.sh"
. "$top/tests/lib/dovecot.sh"

t_setup
dovecot_start || { not_ok "dovecot starts"; t_done; exit 1; }
ok "dovecot starts"

python3 "$top/tests/lib/gen_corpus.py" "$T/c" --count 5 --seed 3 --tricky
python3 "$top/tests/lib/gen_corpus.py" "$T/c2" --count 5 --seed 3 --tricky
assert_eq "$(cd "$T/c" && cat -- * | sha256sum)" \
	"$(cd "$T/c2" && cat -- * | sha256sum)" "gen_corpus is deterministic"
assert_eq "$(ls "$T/c" | wc -l)" 13 "gen_corpus: 5 + 8 tricky files"
assert_eq "$(grep -h '^Message-ID:' "$T"/c/*.eml | sort -u | wc -l)" 12 \
	"gen_corpus: unique Message-IDs (the empty one has none)"

dv_seed "$DV_USER" INBOX "$T"/c/*.eml
assert_eq "$(dv_count "$DV_USER" INBOX)" 13 "dv_seed + dv_count"
assert_eq "$(dv_uids "$DV_USER" INBOX)" "1 2 3 4 5 6 7 8 9 10 11 12 13" \
	"dv_uids"
assert_match "$(dv_uidvalidity "$DV_USER" INBOX)" '^[0-9]+$' "dv_uidvalidity"
dv_seed "$DV_USER" "Lists/dev" "$T/c/00001.eml"
dv_seed "$DV_USER" "Entwürfe" "$T/c/00002.eml"
assert_eq "$(dv_count "$DV_USER" Lists/dev)" 1 "nested folder"
assert_eq "$(dv_count "$DV_USER" Entwürfe)" 1 "UTF-8 folder name"
assert_eq "$(dv_count "$DV_USER2" INBOX)" 0 "second user is separate"

dv_set_flags "$DV_USER" INBOX 2 '\Seen' '\Flagged'
assert_eq "$(dv_flags "$DV_USER" INBOX | sed -n 1,2p | tr '\n' '|')" \
	'1|2 \Flagged \Seen|' "dv_set_flags + dv_flags"

# dv_body gives exactly what an IMAP client gets for BODY.PEEK[]
python3 - "$T" <<'PY' >"$T/imap.out"
import imaplib, os, ssl, sys
T = sys.argv[1]
ctx = ssl.create_default_context(cafile=os.environ["DV_CA"])
m = imaplib.IMAP4_SSL("127.0.0.1", int(os.environ["DV_IMAPS_PORT"]),
                      ssl_context=ctx)
m.login(os.environ["DV_USER"], os.environ["DV_PASS"])
m.select("INBOX", readonly=True)
for uid in range(1, 14):
    typ, d = m.uid("FETCH", str(uid), "BODY.PEEK[]")
    body = d[0][1] if isinstance(d[0], tuple) else b""
    open("%s/imap-%d" % (T, uid), "wb").write(body)
m.logout()
PY
same=0
for uid in $(seq 1 13); do
	dv_body "$DV_USER" INBOX "$uid" >"$T/dv-$uid"
	cmp -s "$T/dv-$uid" "$T/imap-$uid" && same=$((same + 1))
done
assert_eq "$same" 13 "dv_body == IMAP BODY.PEEK[] for all 13"
i=0
for f in "$T"/c/*.eml; do
	i=$((i + 1))
	case $f in *bare-lf*) continue ;; esac
	cmp -s "$f" "$T/dv-$i" || not_ok "dv_body $i == seeded file $f"
done
ok "dv_body == seeded bytes (all but the bare-LF message)"
assert_eq "$(wc -c <"$T/dv-11")" 0 "empty message is stored empty"

cmds=$(dv_commands "$DV_USER")
assert_match "$cmds" '^[A-Z0-9]+ UID FETCH 13 BODY.PEEK\[\]$' "rawlog records commands"
assert_no_match "$cmds" 'STORE|EXPUNGE' "rawlog: no STORE"
dv_rawlog_clear "$DV_USER"
assert_eq "$(dv_commands "$DV_USER")" "" "dv_rawlog_clear"

ms_write_config "$T/cfg.ini" work imaps "maildir:$T/Mail" folders='* !Junk'
assert_eq "$(stat -c %a "$T/cfg.ini")" 600 "config is 0600"
assert_match "$(cat "$T/cfg.ini")" "^source = imaps://127.0.0.1:$DV_IMAPS_PORT\$" \
	"config source"

pid=$(cat "$DV_DIR/run/master.pid")
dovecot_stop
if kill -0 "$pid" 2>/dev/null; then not_ok "dovecot_stop"; else ok "dovecot_stop"; fi
t_done
