#!/usr/bin/env bash
# F24/F27: IMAP identity and FETCH anomalies (fake server).
# - UIDVALIDITY missing / 0, delete policy: all messages downloaded
#   byte-identically, NO UID STORE / UID EXPUNGE / EXPUNGE sent (also on a
#   first run, when the state is new), exit 76 with "no UIDVALIDITY";
#   a second run downloads nothing again.
# - FETCH items in an odd order (BODY[] first, UID last) and RFC822.SIZE
#   not equal to the literal (+500 / -300): stored using the literal
#   length, byte-identical, exit 0, deleted normally.
# - a FETCH response for a UID that was not requested (99): exit 76 with a
#   UID mismatch message, nothing stored for it, nothing deleted.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/assert.sh"
. "$here/../lib/dovecot.sh"
. "$here/fake.sh"
t_setup
fake_cert
msgs=$(fk_gen 4 5000 v)
want=$(fk_want_hashes "$T"/v1 "$T"/v2 "$T"/v3 "$T"/v4)

for uv in null 0; do
	M=$T/M-uv$uv
	fk_scenario "$T/uv$uv.json" "$msgs" '' "{\"folder\": {\"uidvalidity\": $uv}}"
	fake_start imap "$T/uv$uv.json" 2 60
	fake_config "$T/uv$uv.ini" uv$uv imaps "maildir:$M" policy=delete
	run_ms -c "$T/uv$uv.ini"
	assert_eq "$RC" 76 "UIDVALIDITY $uv, delete: exit 76"
	assert_match "$ERR" "^mailsync: uv$uv/INBOX: .*no UIDVALIDITY.*refusing to delete" "UIDVALIDITY $uv: message names account, folder, cause"
	assert_eq "$(fk_stored_hashes "$M/INBOX")" "$want" "UIDVALIDITY $uv: all 4 downloaded byte-identically"
	assert_eq "$(fake_count '^(UID STORE|UID EXPUNGE|EXPUNGE|STORE)')" 0 "UIDVALIDITY $uv: no STORE/EXPUNGE sent (first run)"
	: >"$FK_DIR/log"
	run_ms -c "$T/uv$uv.ini"
	assert_eq "$RC" 76 "UIDVALIDITY $uv run 2: exit 76 again"
	assert_eq "$(fake_count '^(UID FETCH.*BODY|UID STORE|UID EXPUNGE|EXPUNGE)')" 0 "UIDVALIDITY $uv run 2: nothing downloaded again, nothing deleted"
	assert_eq "$(fk_stored_hashes "$M/INBOX")" "$want" "UIDVALIDITY $uv run 2: no duplicate"
	fake_stop
done

# odd FETCH item order, RFC822.SIZE != literal length
odd=$(python3 -c 'import json,sys; m=json.loads(sys.argv[1]); m[0]["size_delta"]=500; m[1]["size_delta"]=-300; print(json.dumps(m))' "$msgs")
fk_scenario "$T/odd.json" "$odd" '{"fetch_order": "odd"}'
fake_start imap "$T/odd.json" 2 60
fake_config "$T/odd.ini" odd imaps "maildir:$T/M-odd" policy=delete
run_ms -c "$T/odd.ini"
assert_eq "$RC$ERR" 0 "odd item order + RFC822.SIZE mismatch: exit 0, silent"
assert_eq "$(fk_stored_hashes "$T/M-odd/INBOX")" "$want" "odd order: stored by the literal length, byte-identical"
fake_wait_close 1
assert_eq "$(fake_state 's["folders"]["INBOX"]["expunged"]')" "1 2 3 4" "odd order: all 4 deleted after storing"
fake_stop

# a FETCH response for a UID that was not requested
fk_scenario "$T/extra.json" "$msgs" '{"extra_fetch": {"uid": 99}}'
fake_start imap "$T/extra.json" 2 60
fake_config "$T/extra.ini" extra imaps "maildir:$T/M-extra" policy=delete
run_ms -c "$T/extra.ini"
assert_eq "$RC" 76 "unrequested UID 99 in FETCH: exit 76"
assert_match "$ERR" '^mailsync: extra/INBOX: .*UID mismatch.*UID 99' "unrequested UID: message names account, folder, UID 99"
assert_eq "$(grep -rl 'not requested' "$T/M-extra" 2>/dev/null | wc -l)" 0 "unrequested UID: its body stored nowhere"
assert_eq "$(find "$T/M-extra" -name '*U=99,*' | wc -l)" 0 "unrequested UID: no file for UID 99"
assert_eq "$(fake_count '^(UID STORE|UID EXPUNGE|EXPUNGE)')" 0 "unrequested UID: nothing deleted"
t_done
