#!/usr/bin/env bash
# What mailsync says, byte for byte (mailsync(1) DIAGNOSTICS): every line
# is "mailsync: ACCOUNT: ..." or "mailsync: ACCOUNT/FOLDER: ...", the
# account named once; a clean run says nothing; -v lines up the per-folder
# counts by characters, not bytes (UTF-8 folder names); a failing folder
# is one line, with no "N folders failed" on top; a size skip names the
# account, folder and UID.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/start.sh"
U=$DV_USER

for i in 1 2 3; do
	crlf_msg "$T/m$i" "Subject: msg $i" "Message-ID: <msg$i@x>" "" "body $i"
done
{ crlf_msg "$T/big" "Subject: big" "Message-ID: <big@x>" ""
  head -c 3000 /dev/zero | tr '\0' 'x' | fold -w 70 | sed 's/$/\r/'; } >"$T/big.tmp"
mv "$T/big.tmp" "$T/big"
dv_seed $U INBOX "$T/m1" "$T/big"
dv_seed $U "Entwürfe" "$T/m2"
dv_seed $U Lists/dev "$T/m3"
bigsize=$(dv_body $U INBOX 2 | wc -c)

CFG=$T/msg.ini
ms_write_config "$CFG" acct imaps "maildir:$T/M" max_message_size=2000

# --- -v: the account summary and the folder lines ---
run_ms -v -c "$CFG"
assert_eq "$RC" 0 "-v run exits 0"
fl="^mailsync: acct/[^:]*:  *[0-9]* fetched"
# the folder column: "Entwürfe" is 8 characters (9 bytes), Lists/dev 9
want="mailsync: acct/INBOX: UID 2: skipped: $bigsize bytes exceed max_message_size
mailsync: acct/Entwürfe:  1 fetched, 0 deleted
mailsync: acct/INBOX:     1 fetched, 0 deleted
mailsync: acct/Lists/dev: 1 fetched, 0 deleted"
assert_eq "$(grep -v "$fl" <<<"$ERR"; grep "$fl" <<<"$ERR" | LC_ALL=C sort)" \
	"$want" "-v: size skip names account, folder, UID; counts lined up by characters"
assert_match "$OUT" '^mailsync: acct: 3 fetched \([0-9.]+ [kM]?B\), 0 deleted, 3 folders, 1 skipped \(too large\)$' "-v: the account summary line has the mailsync: prefix"
assert_eq "$(wc -l <<<"$OUT")" 1 "-v: one summary line"

# --- a clean run without -v: nothing at all ---
crlf_msg "$T/m4" "Subject: msg 4" "Message-ID: <msg4@x>" "" "body 4"
dv_seed $U INBOX "$T/m4"
ms_write_config "$CFG" acct imaps "maildir:$T/M"
run_ms -c "$CFG"
assert_eq "$RC|$OUT|$ERR" "0||" "a clean run prints nothing"

# --- one folder fails: one line, and no "1 folder failed" on top ---
crlf_msg "$T/m5" "Subject: msg 5" "Message-ID: <msg5@x>" "" "body 5"
dv_seed $U Lists/dev "$T/m5"
# (tests run as root: a file where the Maildir's tmp/ should be, not a mode)
mv "$T/M/Lists/dev/tmp" "$T/tmp.save" && : >"$T/M/Lists/dev/tmp"
run_ms -c "$CFG"
rm -f "$T/M/Lists/dev/tmp" && mv "$T/tmp.save" "$T/M/Lists/dev/tmp"
assert_eq "$RC" 73 "a folder that cannot be written: exit 73"
assert_eq "$(wc -l <<<"$ERR")" 1 "one failing folder: exactly one line"
assert_match "$ERR" "^mailsync: acct/Lists/dev: [^:]*$T/M/Lists/dev[^:]*: Not a directory\$" "the line names account/folder and the path, once"
assert_no_match "$ERR" 'folders? failed' "no extra 'N folders failed' summary"

# --- account-level errors: the account named once ---
ms_write_config "$CFG" acct imaps "maildir:$T/M" password= "password_file=$T/nope"
run_ms -c "$CFG"
assert_eq "$RC $ERR" "78 mailsync: acct: password_file $T/nope: cannot open: No such file or directory" "a missing password_file: one line, the account once"
ms_write_config "$CFG" acct imaps "maildir:$T/M" password=wrong-pw
run_ms -c "$CFG"
assert_eq "$RC" 77 "a wrong password: exit 77"
assert_match "$ERR" "^mailsync: acct: authentication failed for $U at 127\\.0\\.0\\.1:$DV_IMAPS_PORT: [^:]*\$" "a wrong password: one line, the account once"
assert_eq "$(wc -l <<<"$ERR")" 1 "a wrong password: one line"
t_done
