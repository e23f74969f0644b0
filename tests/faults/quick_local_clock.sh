#!/usr/bin/env bash
# F39 b, quick (fake POP3 server, libfaketime): a clock behind the last run
# makes no time-based deletion, even of messages whose recorded age is
# well past delete-after; policy delete is not held back; the warning is
# one exact line; the run exits 0.
#   run 1 at now-100d, delete-after 30: stores 4 (first seen now-100d)
#   run 2 at now+10d, keep: the last run is now+10d
#   run 3 at now, delete-after 30: 100 days old by the clock, but the
#         clock is 10 days behind the last run: warning, no DELE, exit 0
#   run 4 at now, delete: warning again (last run not moved back), 4 DELE
#   run 5 at now after removing STATE/ACCOUNT/last-run: silent
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/assert.sh"
. "$here/../lib/dovecot.sh"
. "$here/../lib/verify.sh"
. "$here/fake.sh"
t_setup
ms_use_faketime
# a certificate valid from 200 days ago, so that every skewed run verifies it
faketime -f -200d openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
	-nodes -days 3650 -subj /CN=localhost \
	-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
	-keyout "$T/cert.key" -out "$T/cert.pem" >/dev/null 2>&1
FK_CA=$T/cert.pem FK_KEY=$T/cert.key
msgs=$(fk_gen 4 2000 c)
fk_scenario "$T/c.json" "$msgs"
fake_start pop3 "$T/c.json" 5 60
fake_config "$T/after.ini" clk pop3s "maildir:$T/M" "policy=delete-after 30"
fake_config "$T/keep.ini" clk pop3s "maildir:$T/M"
fake_config "$T/del.ini" clk pop3s "maildir:$T/M" policy=delete
lf=$T/state/clk/last-run
iso='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z'

faketime -f -100d "$MAILSYNC" -c "$T/after.ini" >"$T/out" 2>"$T/err"
assert_eq "$? $(cat "$T/err")" "0 " "run 1 (now-100d): exit 0, silent"
assert_eq "$(fk_stored_hashes "$T/M/INBOX" | wc -l)" 4 "run 1: 4 stored"
faketime -f +10d "$MAILSYNC" -c "$T/keep.ini" >"$T/out" 2>"$T/err"
assert_eq "$? $(cat "$T/err")" "0 " "run 2 (now+10d, keep): exit 0, silent"
last=$(sed -n 2p "$lf")
lastiso=$(date -u -d "@$last" +%Y-%m-%dT%H:%M:%SZ)
ahead=$(( (last - $(date +%s) + 3600) / 86400 ))
assert_eq "$ahead" 10 "run 2: the last run recorded is 10 days ahead"
want="^mailsync: clk: clock moved backwards since the last run \\(last run $lastiso, now $iso\\): no time-based deletions this run\$"

: >"$FK_DIR/log"
run_ms -c "$T/after.ini"
assert_eq "$RC" 0 "run 3 (clock 10 days behind, delete-after 30): exit 0"
assert_eq "$(wc -l <<<"$ERR")" 1 "run 3: one line on stderr"
assert_match "$ERR" "$want" "run 3: the exact warning"
assert_eq "$(fake_count '^DELE')" 0 "run 3: no DELE although the messages are 100 days old by the clock"
assert_eq "$(sed -n 2p "$lf")" "$last" "run 3: the last run is not moved back"

: >"$FK_DIR/log"
run_ms -c "$T/del.ini"
assert_eq "$RC" 0 "run 4 (clock behind, policy delete): exit 0"
assert_match "$ERR" "$want" "run 4: warned again, against the same last run"
assert_eq "$(fake_cmds | grep -E '^DELE' | tr '\n' ' ')" "DELE 1 DELE 2 DELE 3 DELE 4 " "run 4: policy delete is not time-based: all 4 deleted"
# removing last-run accepts the current clock (the folders' snapshots,
# stamped with the later time, do not keep the warning alive)
rm "$lf"
run_ms -c "$T/after.ini"
assert_eq "$RC|$ERR" "0|" "run 5 after removing last-run: exit 0, silent"
assert_eq "$(( $(sed -n 2p "$lf") <= $(date +%s) ))" 1 "run 5: last-run is now the current time"
fake_stop
t_done
