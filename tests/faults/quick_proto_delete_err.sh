#!/usr/bin/env bash
# F13: tagged NO/BAD (IMAP) or -ERR (POP3) on the delete path, delete policy.
# Proves for each of UID STORE -> NO, UID EXPUNGE -> BAD, DELE 2 -> -ERR,
# QUIT -> -ERR: exit 76 (75 for NO [SERVERBUG], a temporary code), stderr quotes the server's text and names the
# account, the messages stay stored locally (byte-identical), nothing is
# claimed deleted (DELE 2 -> -ERR: the other DELEs are committed by QUIT,
# message 2 stays on the server and in the state); the next run (server fixed) downloads nothing again,
# retries the delete and exits 0 with the server emptied.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/assert.sh"
. "$here/../lib/dovecot.sh"
. "$here/fake.sh"
t_setup
fake_cert
msgs=$(fk_gen 4 10000 d)
files=("$T"/d1 "$T"/d2 "$T"/d3 "$T"/d4)
want=$(fk_want_hashes "${files[@]}")

case_() { # name proto command reply text-regex [left-on-server]
	local name=$1 proto=$2 cmd=$3 reply=$4 re=$5 left=${6:-uidl-1 uidl-2 uidl-3 uidl-4} M=$T/Mail-$1
	fk_scenario "$T/$name.json" "$msgs" "{\"reply\": {\"conn\": 1, \"$cmd\": \"$reply\"}}"
	fake_start "$proto" "$T/$name.json" 2 60
	fake_config "$T/$name.ini" "e-$name" "${proto}s" "maildir:$M" policy=delete
	run_ms -c "$T/$name.ini"
	assert_eq "$RC" "${EXP:-76}" "$name: exit ${EXP:-76}"
	assert_match "$ERR" "e-$name.*$re" "$name: stderr names the account and quotes the server text"
	assert_eq "$(fk_stored_hashes "$M/INBOX")" "$want" "$name: all 4 stored byte-identically"
	assert_no_match "$OUT$ERR" '[1-9][0-9]* deleted' "$name: no claim of deletion"
	fake_wait_close 1
	assert_eq "$(fake_state 's["folders"]["INBOX"]["present_uidl"]')" "$left" "$name: left on the server: $left"
	: >"$FK_DIR/log"
	run_ms -c "$T/$name.ini"
	assert_eq "$RC$ERR" 0 "$name run 2: exit 0, silent"
	assert_eq "$(fake_count '^(RETR|UID FETCH.*BODY)')" 0 "$name run 2: nothing downloaded again"
	fake_wait_close 2
	assert_eq "$(fake_state 'len(s["folders"]["INBOX"]["present"])')" 0 "$name run 2: delete retried, server emptied"
	assert_eq "$(fk_stored_hashes "$M/INBOX")" "$want" "$name run 2: still exactly the 4 messages"
	fake_stop
}

case_ imap-store imap "UID STORE" "NO store refused by policy X17" "store refused by policy X17"
EXP=75 case_ imap-store-temp imap "UID STORE" "NO [SERVERBUG] try again later X21" "SERVERBUG. try again later X21"
case_ imap-expunge imap "UID EXPUNGE" "BAD expunge not allowed X18" "expunge not allowed X18"
case_ pop3-dele2 pop3 "DELE 2" "-ERR message 2 is locked X19" "message 2 is locked X19" uidl-2
case_ pop3-quit pop3 "QUIT" "-ERR unable to commit deletions X20" "unable to commit deletions X20"
t_done
