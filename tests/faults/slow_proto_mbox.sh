#!/usr/bin/env bash
# F11a for the mbox store (fake server, delete policy, 5 messages of 1 MB,
# connection dropped 1000 bytes into the 3rd body), IMAP and POP3.
# Proves: exit 75; the mbox holds exactly messages 1-2, byte-identical
# after mboxrd un-quoting (the partial 3rd append was cut back), no stale
# lock file; nothing deleted; run 2 appends exactly 3-5 (no duplicate,
# FETCH/RETR counted), deletes all 5, exits 0.
# F16 (literal cap): a FETCH literal announced as {3221225472} while
# RFC822.SIZE said 1000, with max_message_size = 1M: refused from the
# announced size before download (warning names the UID), nothing stored
# for it, nothing deleted, memory stays small (max RSS < 64 MB).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/assert.sh"
. "$here/../lib/dovecot.sh"
. "$here/fake.sh"
t_setup
fake_cert
msgs=$(fk_gen 5 1000000 mb)
split() { rm -rf "$T/split"; mkdir -p "$T/split"; python3 "$here/../lib/mboxrd_split.py" "$1" "$T/split" >/dev/null; for f in "$T"/split/*; do [ -f "$f" ] && sha256sum <"$f" | cut -d' ' -f1; done | sort; }

for proto in imap pop3; do
	if [ $proto = imap ]; then store=$T/mbox-imap; mb=$store/INBOX; else store=$T/pop3.mbox; mb=$store; fi
	fk_scenario "$T/$proto.json" "$msgs" '{"drop_body": {"conn": 1, "nth": 3, "bytes": 1000}}'
	fake_start $proto "$T/$proto.json" 3 90
	fake_config "$T/$proto.ini" mb-$proto ${proto}s "mbox:$store" policy=delete
	run_ms -c "$T/$proto.ini"
	assert_eq "$RC" 75 "$proto mbox, drop mid-body: exit 75"
	assert_match "$ERR" "^mailsync: mb-$proto/INBOX: (message [0-9]+ \\(UIDL [^)]*\\) cut short: )?connection closed by server$" "$proto mbox: message names the account and the drop"
	[ -f "$mb" ] || mb=$(find "$store" -type f -name 'INBOX*' ! -name '*.idx' ! -name '*.index' | head -1)
	assert_eq "$(split "$mb" | tr '\n' ' ')" "$(fk_want_hashes "$T"/mb1 "$T"/mb2 | tr '\n' ' ')" "$proto mbox: exactly messages 1-2, byte-identical (partial append cut back)"
	assert_eq "$(find "$(dirname "$mb")" -name '*.lock' | wc -l)" 0 "$proto mbox: no stale lock file"
	assert_eq "$(fake_count '^(UID STORE|UID EXPUNGE|DELE|QUIT)')" 0 "$proto mbox: nothing deleted"
	: >"$FK_DIR/log"
	run_ms -c "$T/$proto.ini"
	assert_eq "$RC$ERR" 0 "$proto mbox run 2: exit 0, silent"
	assert_eq "$(split "$mb" | tr '\n' ' ')" "$(fk_want_hashes "$T"/mb1 "$T"/mb2 "$T"/mb3 "$T"/mb4 "$T"/mb5 | tr '\n' ' ')" "$proto mbox run 2: all 5, no duplicate"
	if [ $proto = imap ]; then
		assert_eq "$(fake_cmds | grep '^UID FETCH' | sed 's/ (.*//')" "UID FETCH 3:5" "imap mbox run 2: fetches only 3:5"
	else
		assert_eq "$(fake_cmds | grep '^RETR' | tr '\n' ' ')" "RETR 3 RETR 4 RETR 5 " "pop3 mbox run 2: RETR only 3-5"
	fi
	fake_wait_close 2
	assert_eq "$(fake_state 'len(s["folders"]["INBOX"]["present"])')" 0 "$proto mbox run 2: server emptied"
	fake_stop
done

# F16: literal announced far above max_message_size
small=$(fk_gen 2 2000 lc)
fk_scenario "$T/lit.json" "$small" '{"raw": {"UID FETCH": {"nth": 2, "segs": ["* 1 FETCH (UID 1 RFC822.SIZE 1000 BODY[] {3221225472}\r\n", {"repeat": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n", "times": 3000000}, {"close": true}]}}}'
fake_start imap "$T/lit.json" 1 60
fake_config "$T/lit.ini" lit imaps "maildir:$T/LIT" policy=delete max_message_size=1M timeout=10
/usr/bin/time -f '%M' -o "$T/rss" "$MAILSYNC" -c "$T/lit.ini" >"$T/out" 2>"$T/err"
RC=$? ERR=$(cat "$T/err")
assert_match "$RC" '^7[56]$' "huge literal: exit 75/76 (the server then closes)"
assert_match "$ERR" '^mailsync: lit/INBOX: UID 1: skipped: 3221225472 bytes exceed max_message_size' "huge literal: refused from the announced size, warning names the UID"
assert_eq "$(find "$T/LIT" -type f | wc -l)" 0 "huge literal: nothing stored"
assert_eq "$(fake_count '^(UID STORE|UID EXPUNGE)')" 0 "huge literal: nothing deleted"
rss=$(tail -1 "$T/rss")
echo "# huge literal: max RSS ${rss} KB"
if [ "$rss" -lt 65536 ]; then ok "huge literal: max RSS ${rss} KB < 64 MB"; else not_ok "huge literal: memory bound" "$rss KB"; fi
t_done
