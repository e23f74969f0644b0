#!/usr/bin/env bash
# max_message_size decided at FETCH time (fake IMAP server): RFC822.SIZE
# says 5000 bytes, but the BODY[] literal is 20000, over the 10K limit.
# The message is skipped with ONE warning that names the account, the
# folder and the UID ("mailsync: ACCOUNT/FOLDER: UID N: skipped: ..."),
# the others are stored, the run exits 0, and -v counts it as skipped.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/assert.sh"
. "$here/../lib/dovecot.sh"
. "$here/fake.sh"
t_setup
fake_cert
small=$(fk_gen 2 3000 z)
big=$(fk_gen 1 20000 y)
# UID 2 is the big one; its RFC822.SIZE is made to say 5000
msgs=$(python3 -c '
import json, sys
s, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
b[0]["size_delta"] = -15000
print(json.dumps([s[0], b[0], s[1]]))' "$small" "$big")
fk_scenario "$T/s.json" "$msgs"
fake_start imap "$T/s.json" 2 60
fake_config "$T/s.ini" sz imaps "maildir:$T/S" max_message_size=10K
run_ms -v -c "$T/s.ini"
assert_eq "$RC" 0 "literal over max_message_size: exit 0"
big=$(wc -c <"$T/y1")
assert_eq "$(grep -v ' fetched, ' <<<"$ERR")" "mailsync: sz/INBOX: UID 2: skipped: $big bytes exceed max_message_size" "one warning naming account, folder, UID and size"
assert_match "$OUT" '^mailsync: sz: 2 fetched \(.*\), 0 deleted, 1 folder, 1 skipped \(too large\)$' "-v summary: 2 fetched, 1 skipped"
assert_eq "$(fk_stored_hashes "$T/S/INBOX")" "$(fk_want_hashes "$T"/z1 "$T"/z2)" "the other two stored byte-identically"
fake_stop
t_done
