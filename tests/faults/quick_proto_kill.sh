#!/usr/bin/env bash
# F08: POP3, kill -9 between DELE and QUIT (the fake server writes a marker
# on the first DELE and holds its answer; the harness kills mailsync).
# Proves: the server still has all 5 (no QUIT, no commit), the local copies
# are complete, the next run does not RETR them again, DELEs all 5, QUITs
# and exits 0.
# F09a (fake-server variant): IMAP, kill -9 after UID STORE \Deleted, with
# 2 foreign \Deleted messages out of scope (flagged by another client, and
# larger than max_message_size, so never fetched).
# Proves: the next run does not download the flagged ones again, expunges
# with UID EXPUNGE of its own UIDs only (the 2 foreign ones survive), no
# plain EXPUNGE, exit 0.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/assert.sh"
. "$here/../lib/dovecot.sh"
. "$here/fake.sh"
t_setup
fake_cert

# kill_at_marker CONFIG MARKER: run mailsync in the background, kill -9 it
# as soon as the marker file appears (at most 20 s), set RC
kill_at_marker() {
	local i pid
	"$MAILSYNC" -c "$1" >"$T/out" 2>"$T/err" &
	pid=$!
	for ((i = 0; i < 200; i++)); do
		[ -e "$2" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if [ -e "$2" ]; then
		kill -9 "$pid"
		ok "marker $(basename "$2") seen, mailsync killed"
	else
		not_ok "marker $(basename "$2") seen" "mailsync ended first"
	fi
	wait "$pid" 2>/dev/null
	RC=$?
}

# --- F08 POP3 ---
msgs=$(fk_gen 5 30000 p)
files=("$T"/p1 "$T"/p2 "$T"/p3 "$T"/p4 "$T"/p5)
M=$T/Mail-pop3
fk_scenario "$T/pop3.json" "$msgs" "{\"marker\": {\"cmd\": \"DELE\", \"file\": \"$T/dele.marker\", \"delay\": 2, \"conn\": 1}}"
fake_start pop3 "$T/pop3.json" 3 60
fake_config "$T/pop3.ini" f08 pop3s "maildir:$M" policy=delete
kill_at_marker "$T/pop3.ini" "$T/dele.marker" 2>/dev/null
assert_eq "$RC" 137 "F08: mailsync died of SIGKILL"
fake_wait_close 1
assert_eq "$(fake_state 'len(s["folders"]["INBOX"]["present"])')" 5 "F08: server still has all 5 (no QUIT)"
assert_eq "$(fake_count '^QUIT')" 0 "F08: no QUIT was sent"
assert_eq "$(fk_stored_hashes "$M/INBOX")" "$(fk_want_hashes "${files[@]}")" "F08: all 5 local copies complete and byte-identical"
: >"$FK_DIR/log"
run_ms -c "$T/pop3.ini"
assert_eq "$RC$ERR" 0 "F08 run 2: exit 0, silent"
assert_eq "$(fake_count '^RETR')" 0 "F08 run 2: nothing downloaded again"
assert_eq "$(fake_cmds | grep -E '^(DELE|QUIT)' | tr '\n' ' ')" "DELE 1 DELE 2 DELE 3 DELE 4 DELE 5 QUIT " "F08 run 2: DELE 1-5 then QUIT"
assert_eq "$(fake_state 'len(s["folders"]["INBOX"]["dele_committed"])')" 5 "F08 run 2: 5 deletions committed"
assert_eq "$(fk_stored_hashes "$M/INBOX")" "$(fk_want_hashes "${files[@]}")" "F08 run 2: still exactly the 5 messages (no duplicate)"
fake_stop

# --- F09a IMAP, foreign \Deleted messages ---
msgs=$(python3 -c '
import json, sys
m = json.loads(sys.argv[1])
for i, x in enumerate(m, 1):
    if i in (3, 7):
        x["flags"] = ["\\Deleted"]
        x["size_delta"] = 100000
print(json.dumps(m))' "$(fk_gen 10 20000 q)")
M=$T/Mail-imap
fk_scenario "$T/imap.json" "$msgs" "{\"marker\": {\"cmd\": \"UID STORE\", \"file\": \"$T/store.marker\", \"delay\": 2, \"conn\": 1, \"stop\": true}}"
# the marker is written before the STORE takes effect; apply it anyway by
# letting the server answer after the kill: the flags are set on receipt
fake_start imap "$T/imap.json" 3 60
fake_config "$T/imap.ini" f09 imaps "maildir:$M" policy=delete max_message_size=50K
kill_at_marker "$T/imap.ini" "$T/store.marker" 2>/dev/null
assert_eq "$RC" 137 "F09a: mailsync died of SIGKILL"
fake_wait_close 1
assert_eq "$(fake_count '^UID EXPUNGE|^EXPUNGE')" 0 "F09a: nothing expunged before the kill"
assert_eq "$(find "$M/INBOX/new" "$M/INBOX/cur" -type f | wc -l)" 8 "F09a: 8 stored before STORE (the 2 foreign ones skipped by size)"
assert_eq "$(fake_state 's["folders"]["INBOX"]["flagged_deleted"]')" "1 2 3 4 5 6 7 8 9 10" "F09a: own 8 flagged by the STORE, foreign 2 flagged before"
assert_no_match "$(fake_cmds | grep '^UID STORE')" '(^|[ ,:])(3|7)([ ,:]|$)' "F09a: STORE never names the foreign UIDs 3 and 7"
: >"$FK_DIR/log"
run_ms -c "$T/imap.ini"
assert_eq "$RC" 0 "F09a run 2: exit 0"
assert_eq "$(grep -vc 'UID [37]: skipped' <<<"$ERR")" 0 "F09a run 2: only the 2 size warnings on stderr"
assert_eq "$(fake_count '^UID FETCH.*BODY')" 0 "F09a run 2: nothing downloaded again"
assert_eq "$(fake_count '^EXPUNGE')" 0 "F09a run 2: no plain EXPUNGE"
assert_eq "$(fake_cmds | grep '^UID EXPUNGE')" 'UID EXPUNGE 1:2,4:6,8:10' "F09a run 2: UID EXPUNGE of its own 8 UIDs only"
assert_eq "$(fake_state 's["folders"]["INBOX"]["present"]')" "3 7" "F09a run 2: the 2 foreign \\Deleted messages survive"
assert_eq "$(find "$M/INBOX/new" "$M/INBOX/cur" -type f | wc -l)" 8 "F09a run 2: no duplicate"
t_done
