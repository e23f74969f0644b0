#!/usr/bin/env bash
# F26: throttling and connection limits.
# - IMAP "* BYE [UNAVAILABLE]" after ~1 MB of bodies, delete policy: exit 75
#   naming the BYE text, messages before it stored, nothing deleted; run 2
#   fetches only the remainder (UID set in the FETCH command), exit 0.
# - POP3 "-ERR [SYS/TEMP]" then a drop after ~1 MB: exit 75, no DELE, run 2
#   RETRs only the remainder.
# - login refused with IMAP "NO [LIMIT]" / POP3 "-ERR [IN-USE]": exit 75
#   (temporary, not an authentication failure), one connection and one
#   login attempt, nothing else sent.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/assert.sh"
. "$here/../lib/dovecot.sh"
. "$here/fake.sh"
t_setup
fake_cert
msgs=$(fk_gen 6 300000 w)
want=$(fk_want_hashes "$T"/w1 "$T"/w2 "$T"/w3 "$T"/w4 "$T"/w5 "$T"/w6)

for proto in imap pop3; do
	M=$T/M-$proto
	fk_scenario "$T/$proto.json" "$msgs" '{"bye_after_bytes": {"conn": 1, "bytes": 1000000}}'
	fake_start $proto "$T/$proto.json" 3 60
	fake_config "$T/$proto.ini" thr-$proto ${proto}s "maildir:$M" policy=delete
	run_ms -c "$T/$proto.ini"
	assert_eq "$RC" 75 "$proto throttled after 1 MB: exit 75"
	if [ $proto = imap ]; then
		assert_match "$ERR" '^mailsync: thr-imap/INBOX: .*BYE \[UNAVAILABLE\] bandwidth limit' "imap: message names the BYE [UNAVAILABLE] text"
		assert_eq "$(fake_count '^(UID STORE|UID EXPUNGE)')" 0 "imap: nothing deleted"
	else
		assert_match "$ERR" '^mailsync: thr-pop3/INBOX: message 4 \(UIDL uidl-4\): RETR refused, skipped: \[SYS/TEMP\] bandwidth limit$' "pop3: message quotes the [SYS/TEMP] text"
		assert_eq "$(fake_count '^(DELE|QUIT)')" 0 "pop3: no DELE, no QUIT"
	fi
	n1=$(find "$M/INBOX/new" "$M/INBOX/cur" -type f | wc -l)
	assert_eq "$n1" 3 "$proto: the 3 messages sent before the throttle are stored"
	assert_eq "$(find "$M/INBOX/tmp" -type f | wc -l)" 0 "$proto: no partial file"
	: >"$FK_DIR/log"
	run_ms -c "$T/$proto.ini"
	assert_eq "$RC$ERR" 0 "$proto run 2: exit 0, silent"
	if [ $proto = imap ]; then
		assert_eq "$(fake_cmds | grep '^UID FETCH' | sed 's/ (.*//')" "UID FETCH 4:6" "imap run 2: fetches only UIDs 4:6"
	else
		assert_eq "$(fake_cmds | grep '^RETR' | tr '\n' ' ')" "RETR 4 RETR 5 RETR 6 " "pop3 run 2: RETR only 4-6"
	fi
	assert_eq "$(fk_stored_hashes "$M/INBOX")" "$want" "$proto run 2: all 6 byte-identical, no duplicate"
	fake_wait_close 2
	assert_eq "$(fake_state 'len(s["folders"]["INBOX"]["present"])')" 0 "$proto run 2: server emptied"
	fake_stop
done

limit_case() { # proto reply regex
	local proto=$1
	fk_scenario "$T/l$proto.json" "$msgs" "{\"login_reply\": \"$2\"}"
	fake_start "$proto" "$T/l$proto.json" 3 30
	fake_config "$T/l$proto.ini" lim-$proto "${proto}s" "maildir:$T/L$proto" policy=delete
	run_ms -c "$T/l$proto.ini"
	assert_eq "$RC" 75 "$proto login refused ($2): exit 75"
	assert_match "$ERR" "lim-$proto: .*$3" "$proto: message quotes the server text"
	assert_eq "$(awk -F '\t' '$3 == "*" && $4 == "connect"' "$FK_DIR/log" | wc -l)" 1 "$proto: one connection"
	assert_eq "$(fake_count '^(AUTHENTICATE|LOGIN|AUTH|USER|PASS)')" 1 "$proto: one login attempt"
	assert_eq "$(fake_count '^(LIST|SELECT|EXAMINE|STAT|UIDL|RETR|UID)')" 0 "$proto: nothing after the refused login"
	fake_stop
}
limit_case imap "NO [LIMIT] too many connections" '\[LIMIT\] too many connections'
limit_case pop3 "-ERR [IN-USE] mailbox locked" '\[IN-USE\] mailbox locked'
t_done
