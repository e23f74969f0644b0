#!/usr/bin/env bash
# F09b: a self-expunging server (Gmail autoExpunge: UID STORE \Deleted
# removes the messages at once, with untagged EXPUNGE responses before the
# tagged OK), delete policy, with 2 foreign \Deleted messages out of scope
# (over max_message_size).  Proves: exit 0, all in-scope messages stored
# byte-identically before any STORE, only its own UIDs ever flagged, the
# foreign ones survive, the run-2 is a no-op (O6).
# F09c: a server that ignores UID EXPUNGE and expunges \Deleted messages
# only when the connection ends; mailsync is killed right after UID STORE.
# Proves: the messages that vanish at the drop were all durable locally
# (O1), the next run downloads nothing, deletes nothing, exits 0, and
# stores no duplicate.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/assert.sh"
. "$here/../lib/dovecot.sh"
. "$here/fake.sh"
t_setup
fake_cert
foreign() {
	python3 -c '
import json, sys
m = json.loads(sys.argv[1])
for i, x in enumerate(m, 1):
    if i in (2, 5):
        x["flags"] = ["\\Deleted"]
        x["size_delta"] = 100000
print(json.dumps(m))' "$1"
}

# --- F09b ---
msgs=$(foreign "$(fk_gen 6 20000 b)")
fk_scenario "$T/b.json" "$msgs" '{"self_expunge": true}'
fake_start imap "$T/b.json" 2 60
fake_config "$T/b.ini" f09b imaps "maildir:$T/B" policy=delete max_message_size=50K
run_ms -c "$T/b.ini"
assert_eq "$RC" 0 "F09b self-expunging server: exit 0"
assert_eq "$(grep -vc 'UID [25]: skipped' <<<"$ERR")" 0 "F09b: only the 2 size warnings on stderr"
assert_eq "$(fk_stored_hashes "$T/B/INBOX")" "$(fk_want_hashes "$T"/b1 "$T"/b3 "$T"/b4 "$T"/b6)" "F09b: the 4 in-scope messages stored byte-identically"
assert_eq "$(fake_cmds | grep '^UID STORE' | sed 's/ +FLAGS.*//')" "UID STORE 1,3:4,6" "F09b: STORE names its own 4 UIDs only"
assert_eq "$(fake_count '^EXPUNGE')" 0 "F09b: no plain EXPUNGE"
fake_wait_close 1
assert_eq "$(fake_state 's["folders"]["INBOX"]["present"]')" "2 5" "F09b: the 2 foreign \\Deleted messages survive"
: >"$FK_DIR/log"
run_ms -c "$T/b.ini"
assert_eq "$RC" 0 "F09b run 2: exit 0"
assert_eq "$(fake_count '^(UID FETCH.*BODY|UID STORE|UID EXPUNGE)')" 0 "F09b run 2: transfers and deletes nothing"
assert_eq "$(fk_stored_hashes "$T/B/INBOX" | wc -l)" 4 "F09b run 2: no duplicate"
fake_stop

# --- F09c ---
msgs=$(fk_gen 5 20000 c)
fk_scenario "$T/c.json" "$msgs" "{\"ignore_expunge\": true, \"expunge_on_close\": true, \"marker\": {\"cmd\": \"UID STORE\", \"file\": \"$T/c.marker\", \"delay\": 1, \"conn\": 1, \"stop\": true}}"
fake_start imap "$T/c.json" 2 60
fake_config "$T/c.ini" f09c imaps "maildir:$T/C" policy=delete
"$MAILSYNC" -c "$T/c.ini" >"$T/out" 2>"$T/err" &
pid=$!
for ((i = 0; i < 200; i++)); do
	[ -e "$T/c.marker" ] && break
	sleep 0.05
done
{ kill -9 "$pid" && wait "$pid"; } 2>/dev/null
assert_eq "$?" 137 "F09c: mailsync killed after UID STORE"
fake_wait_close 1
assert_eq "$(fake_state 's["folders"]["INBOX"]["expunged"]')" "1 2 3 4 5" "F09c: the server expunged the flagged messages at the drop"
assert_eq "$(fk_stored_hashes "$T/C/INBOX")" "$(fk_want_hashes "$T"/c1 "$T"/c2 "$T"/c3 "$T"/c4 "$T"/c5)" "F09c: every expunged message is stored byte-identically (no loss)"
: >"$FK_DIR/log"
run_ms -c "$T/c.ini"
assert_eq "$RC$ERR" 0 "F09c run 2: exit 0, silent"
assert_eq "$(fake_count '^(UID FETCH.*BODY|UID STORE|UID EXPUNGE|EXPUNGE)')" 0 "F09c run 2: downloads and deletes nothing"
assert_eq "$(fk_stored_hashes "$T/C/INBOX" | wc -l)" 5 "F09c run 2: no duplicate"
t_done
