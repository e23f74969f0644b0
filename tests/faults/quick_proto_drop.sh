#!/usr/bin/env bash
# F11a: the server drops the connection 1000 bytes into the 3rd message
# body (IMAP literal, POP3 RETR), delete policy, 5 messages of 1 MB.
# Proves: messages 1-2 stored byte-identically, no partial file in new/ or
# cur/, nothing deleted on the server, exit 75 naming the account and the
# closed connection; the next run stores exactly the remainder (no
# duplicate, bodies counted in the server log), deletes all, exits 0; a
# third run is a no-op (O6).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/assert.sh"
. "$here/../lib/dovecot.sh"
. "$here/fake.sh"
t_setup
fake_cert
msgs=$(fk_gen 5 1000000 big)
files=("$T"/big1 "$T"/big2 "$T"/big3 "$T"/big4 "$T"/big5)

for proto in imap pop3; do
	M=$T/Mail-$proto
	fk_scenario "$T/$proto.json" "$msgs" '{"drop_body": {"conn": 1, "nth": 3, "bytes": 1000}}'
	fake_start $proto "$T/$proto.json" 3 60
	fake_config "$T/$proto.ini" acct-$proto ${proto}s "maildir:$M" policy=delete
	run_ms -c "$T/$proto.ini"
	assert_eq "$RC" 75 "$proto drop mid-body: exit 75"
	assert_match "$ERR" "acct-$proto.*(connection closed|closed the connection)" "$proto: stderr names the account and the closed connection"
	assert_eq "$(wc -l <<<"$ERR")" 1 "$proto: one stderr line"
	assert_eq "$(fk_stored_hashes "$M/INBOX" | tr '\n' ' ')" "$(fk_want_hashes "${files[0]}" "${files[1]}" | tr '\n' ' ')" "$proto: messages 1-2 stored byte-identically, nothing else in new/ or cur/"
	assert_eq "$(find "$M/INBOX/tmp" -type f | wc -l)" 0 "$proto: partial file removed from tmp/"
	if [ $proto = imap ]; then
		assert_eq "$(fake_count '^UID (STORE|EXPUNGE)')" 0 "imap: no STORE/EXPUNGE after the drop"
		assert_eq "$(fake_state 's["folders"]["INBOX"]["present"]')" "1 2 3 4 5" "imap: server still has all 5"
	else
		assert_eq "$(fake_count '^(DELE|QUIT)')" 0 "pop3: no DELE/QUIT after the drop"
		assert_eq "$(fake_state 'len(s["folders"]["INBOX"]["dele_committed"])')" 0 "pop3: nothing committed"
	fi
	: >"$FK_DIR/log"
	run_ms -c "$T/$proto.ini"
	assert_eq "$RC$ERR" 0 "$proto run 2 without fault: exit 0, silent"
	if [ $proto = imap ]; then
		body=$(fake_cmds | grep '^UID FETCH' | grep -c 'BODY.PEEK')
		assert_eq "$body" 1 "imap run 2: one body FETCH command"
		assert_match "$(fake_cmds | grep '^UID FETCH')" '^UID FETCH 3:5 ' "imap run 2: fetches exactly UIDs 3:5"
		assert_eq "$(fake_state 's["folders"]["INBOX"]["expunged"]')" "1 2 3 4 5" "imap run 2: all 5 expunged (by UID)"
	else
		assert_eq "$(fake_cmds | grep '^RETR' | tr '\n' ' ')" "RETR 3 RETR 4 RETR 5 " "pop3 run 2: RETR exactly 3, 4, 5"
		assert_eq "$(fake_state 'len(s["folders"]["INBOX"]["dele_committed"])')" 5 "pop3 run 2: 5 DELE committed at QUIT"
	fi
	assert_eq "$(fk_stored_hashes "$M/INBOX")" "$(fk_want_hashes "${files[@]}")" "$proto run 2: all 5 byte-identical, no duplicate"
	: >"$FK_DIR/log"
	run_ms -c "$T/$proto.ini"
	assert_eq "$RC$ERR" 0 "$proto run 3: exit 0"
	assert_eq "$(fake_count '^(UID FETCH|RETR|DELE|UID STORE)')" 0 "$proto run 3: transfers and deletes nothing"
	fake_stop
done
t_done
