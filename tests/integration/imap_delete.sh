#!/usr/bin/env bash
# IMAP delete policies against a real Dovecot: only durably stored
# messages are deleted, by UID EXPUNGE of exactly those UIDs; messages the
# policy refuses and other clients' \Deleted mail survive; delete-after N
# uses INTERNALDATE.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/start.sh"
U=$DV_USER2

for i in 1 2 3 4 5; do
	crlf_msg "$T/s$i" "Subject: small $i" "Message-ID: <s$i@x>" "" "body $i"
done
for i in 1 2; do
	{ crlf_msg "$T/b$i" "Subject: big $i" "Message-ID: <b$i@x>" ""
	  head -c 1500000 /dev/zero | tr '\0' 'x' | fold -w 70 | sed 's/$/\r/'; } >"$T/b$i.tmp"
	cat "$T/b$i.tmp" >>"$T/b$i"
done
dv_seed $U INBOX "$T/s1" "$T/b1" "$T/s2" "$T/s3" "$T/b2" "$T/s4" "$T/s5"
# another client marked the two big ones \Deleted without expunging
dv_set_flags $U INBOX 2 '\Deleted'
dv_set_flags $U INBOX 5 '\Deleted'
expected=$(for i in 1 3 4 6 7; do dv_body $U INBOX $i | crlf_to_lf | sha256sum; done)

M=$T/Mail
CFG=$T/del.ini
ms_write_config "$CFG" del imaps "maildir:$M" user=$U policy=delete max_message_size=1M
dv_rawlog_clear $U
run_ms -c "$CFG"
assert_eq "$RC" 0 "delete run exits 0 (size skips are policy)"
assert_match "$ERR" '^mailsync: del/INBOX: UID 2: skipped: [0-9]+ bytes exceed max_message_size' "size skip is reported with the UID"
assert_eq "$(md_count "$M/INBOX")" 5 "five small messages stored"
got=$(for f in "$M"/INBOX/new/* "$M"/INBOX/cur/*; do [ -f "$f" ] && sha256sum <"$f"; done | sort)
assert_same_set "$got" "$(sort <<<"$expected")" "stored bytes equal the server's"
assert_eq "$(dv_uids $U INBOX)" "2 5" "server keeps exactly the refused, foreign-\\Deleted messages"
cmds=$(dv_commands $U)
assert_match "$cmds" 'UID STORE 1,3:4,6:7 \+FLAGS\.SILENT \(\\Deleted\)' "UID STORE names exactly the stored UIDs"
assert_match "$cmds" 'UID EXPUNGE 1,3:4,6:7' "UID EXPUNGE names exactly the stored UIDs"
assert_eq "$(grep -Ec '^[^ ]+ (EXPUNGE|CLOSE)$' <<<"$cmds")" 0 "never a plain EXPUNGE or CLOSE"
# order: the STORE comes after the last body fetch
last_fetch=$(grep -n 'BODY.PEEK' <<<"$cmds" | tail -1 | cut -d: -f1)
first_store=$(grep -n 'UID STORE' <<<"$cmds" | head -1 | cut -d: -f1)
assert_eq "$([ "$first_store" -gt "$last_fetch" ] && echo after)" after "deletion only after the fetch"

dv_rawlog_clear $U
run_ms -c "$CFG"
assert_eq "$RC" 0 "second run exits 0"
assert_eq "$(grep -c 'skipped' <<<"$ERR") $(wc -l <<<"$ERR")" "2 2" "second run: only the two size warnings again"
dv_commands $U >"$T/cmds2"; assert_eq "$(grep -Ec "BODY.PEEK|UID STORE|EXPUNGE" "$T/cmds2")" 0 "second run: no fetch, no delete"
assert_eq "$(md_count "$M/INBOX")" 5 "second run: no duplicate"

# --- delete-after 30: INTERNALDATE decides ---
python3 "$here/../lib/imap_append.py" $DV_IMAPS_PORT "$DV_CA" $U "$DV_PASS2" Old 400 "$T/s1" "$T/s2"
python3 "$here/../lib/imap_append.py" $DV_IMAPS_PORT "$DV_CA" $U "$DV_PASS2" Old 2 "$T/s3"
CFG2=$T/age.ini
ms_write_config "$CFG2" age imaps "maildir:$T/Age" user=$U 'policy=delete-after 30' folders=Old
run_ms -c "$CFG2"
assert_eq "$RC$ERR" 0 "delete-after run exits 0 silently"
assert_eq "$(md_count "$T/Age/Old")" 3 "delete-after: all three stored"
assert_eq "$(dv_uids $U Old)" 3 "delete-after 30: the two 400-day-old messages deleted, the new one kept"

# --- keep -> delete switch: messages stored earlier are deleted now ---
dv_seed $U Later "$T/s4" "$T/s5"
ms_write_config "$T/k.ini" k imaps "maildir:$T/K" user=$U folders=Later
run_ms -c "$T/k.ini"
assert_eq "$(dv_count $U Later)" 2 "keep: nothing deleted"
ms_write_config "$T/k.ini" k imaps "maildir:$T/K" user=$U folders=Later policy=delete
dv_rawlog_clear $U
run_ms -c "$T/k.ini"
assert_eq "$RC" 0 "switch to delete exits 0"
assert_eq "$(dv_count $U Later)" 0 "stored-earlier messages deleted after the switch"
assert_eq "$(dv_commands $U | grep -c BODY.PEEK)" 0 "and not downloaded again"
assert_eq "$(md_count "$T/K/Later")" 2 "local copies intact"
t_done
