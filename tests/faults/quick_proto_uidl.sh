#!/usr/bin/env bash
# F18: POP3 UIDL anomalies (fake server).
# (a) two identical messages share one UIDL: keep -> exit 76 naming the
#     UIDL, nothing fetched or deleted (no silent skip of one of them);
#     delete -> both fetched and deleted, exit 0.
# (b) no UIDL command: keep -> refused (exit 76, clear message, nothing
#     fetched); delete -> all fetched and deleted, exit 0, and a second run
#     fetches nothing.
# (c) every UIDL changed between two keep runs and one message added
#     (fake server, then Dovecot with doveadm mailbox update
#     --uid-validity and pop3_uidl_format %08Xu%08Xv): run 2 reports
#     "4 of 4 UIDLs changed since the last run; matched by content, 1 new"
#     once, stores only the new message (Maildir = the 4 originals + 1,
#     by hash), sends no DELE, the server keeps all 5; run 3 fetches
#     nothing.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/assert.sh"
. "$here/../lib/dovecot.sh"
. "$here/fake.sh"
t_setup
fake_cert
msgs=$(fk_gen 4 3000 u)
cp "$T/u2" "$T/u3"   # identical content
dup=$(python3 -c 'import json,sys; m=json.loads(sys.argv[1]); m[1]["uidl"]="dupX"; m[2]["uidl"]="dupX"; print(json.dumps(m))' "$msgs")
want=$(fk_want_hashes "$T"/u1 "$T"/u2 "$T"/u3 "$T"/u4)

# (a) keep
fk_scenario "$T/a.json" "$dup"
fake_start pop3 "$T/a.json" 2 60
fake_config "$T/a-keep.ini" dupkeep pop3s "maildir:$T/A1"
run_ms -c "$T/a-keep.ini"
assert_eq "$RC" 76 "(a) duplicate UIDL, keep: exit 76"
assert_eq "$ERR" 'mailsync: dupkeep/INBOX: messages 2 and 3 share UIDL dupX; they cannot be told apart (use policy = delete)' "(a) keep: one line naming both messages and the UIDL"
assert_eq "$(fake_count '^(RETR|DELE)')" 0 "(a) keep: nothing fetched or deleted (refused, not skipped)"
# (a) delete
: >"$FK_DIR/log"
fake_config "$T/a-del.ini" dupdel pop3s "maildir:$T/A2" policy=delete
run_ms -c "$T/a-del.ini"
assert_eq "$RC$ERR" 0 "(a) duplicate UIDL, delete: exit 0, silent"
assert_eq "$(fk_stored_hashes "$T/A2/INBOX")" "$want" "(a) delete: all 4 stored, both duplicates included"
assert_eq "$(fake_cmds | grep -E '^DELE' | tr '\n' ' ')" "DELE 1 DELE 2 DELE 3 DELE 4 " "(a) delete: both duplicates deleted"
fake_wait_close 2
assert_eq "$(fake_state 'len(s["folders"]["INBOX"]["present"])')" 0 "(a) delete: server emptied"
fake_stop

# (b) no UIDL
fk_scenario "$T/b.json" "$msgs" '{"no_uidl": true}'
fake_start pop3 "$T/b.json" 3 60
fake_config "$T/b-keep.ini" nouidlkeep pop3s "maildir:$T/B1"
run_ms -c "$T/b-keep.ini"
assert_eq "$RC" 76 "(b) no UIDL, keep: exit 76"
assert_eq "$ERR" 'mailsync: nouidlkeep/INBOX: server does not support UIDL; only policy = delete can be used' "(b) keep: one line (not a warning plus the error) saying only policy = delete works"
assert_eq "$(fake_count '^(RETR|DELE)')" 0 "(b) keep: nothing fetched or deleted"
fake_config "$T/b-del.ini" nouidldel pop3s "maildir:$T/B2" policy=delete
run_ms -c "$T/b-del.ini"
assert_eq "$RC$ERR" 0 "(b) no UIDL, delete: exit 0, silent"
assert_eq "$(fk_stored_hashes "$T/B2/INBOX")" "$(fk_want_hashes "$T"/u1 "$T"/u2 "$T"/u3 "$T"/u4)" "(b) delete: all 4 stored byte-identically"
fake_wait_close 2
assert_eq "$(fake_state 'len(s["folders"]["INBOX"]["dele_committed"])')" 4 "(b) delete: 4 deletions committed"
: >"$FK_DIR/log"
run_ms -c "$T/b-del.ini"
assert_eq "$RC" 0 "(b) delete, second run: exit 0"
assert_eq "$(fake_count '^RETR')" 0 "(b) delete, second run: nothing fetched"
fake_stop

# (c) all UIDLs change between runs (+1 new message), keep
w=$(fk_gen 5 3000 w)
w=$(python3 -c 'import json,sys; m=json.loads(sys.argv[1]); m[4]["from_conn"]=2; print(json.dumps(m))' "$w")
fk_scenario "$T/c.json" "$w" '{"uidl_change": {"from_conn": 2, "suffix": "-renumbered"}}'
fake_start pop3 "$T/c.json" 4 60
fake_config "$T/c.ini" masschange pop3s "maildir:$T/C"
run_ms -c "$T/c.ini"
assert_eq "$RC$ERR" 0 "(c) run 1: exit 0, silent"
assert_eq "$(fk_stored_hashes "$T/C/INBOX")" "$(fk_want_hashes "$T"/w[1-4])" "(c) run 1: the 4 messages stored"
: >"$FK_DIR/log"
run_ms -c "$T/c.ini"
assert_eq "$RC" 0 "(c) run 2 after all UIDLs changed: exit 0"
assert_eq "$ERR" "mailsync: masschange/INBOX: 4 of 4 UIDLs changed since the last run; matched by content, 1 new" "(c) run 2: the mass change reported once, with the counts"
assert_eq "$(fake_count '^DELE')" 0 "(c) run 2: nothing deleted"
assert_eq "$(fk_stored_hashes "$T/C/INBOX")" "$(fk_want_hashes "$T"/w[1-5])" "(c) run 2: exactly the 4 originals and the new one (no duplicate)"
assert_eq "$(find "$T/C/INBOX" -type f -path '*/[nc][eu][wr]/*' | wc -l)" 5 "(c) run 2: 5 files"
assert_eq "$(fake_count '^RETR')" 5 "(c) run 2: 5 RETR (the renumbered 4 are read to compare their content)"
fake_wait_close 2
assert_eq "$(fake_state 'len(s["folders"]["INBOX"]["present"])')" 5 "(c) run 2: all 5 still on the server"
: >"$FK_DIR/log"
run_ms -c "$T/c.ini"
assert_eq "$RC$ERR" 0 "(c) run 3: exit 0, silent"
assert_eq "$(fake_count '^(RETR|DELE)')" 0 "(c) run 3: nothing fetched or deleted (new UIDLs recorded)"
assert_eq "$(find "$T/C/INBOX" -type f -path '*/[nc][eu][wr]/*' | wc -l)" 5 "(c) run 3: still 5 files"
# lost state: rebuilt from the file names, which keep the old UIDLs
rm -rf "$T/state/masschange"
: >"$FK_DIR/log"
run_ms -c "$T/c.ini"
assert_eq "$RC" 0 "(c) run 4 with the state lost: exit 0"
assert_match "$ERR" 'masschange/INBOX: 4 of 5 UIDLs changed since the last run; matched by content, 0 new' "(c) run 4: the 4 renamed ones matched by content again"
assert_eq "$(find "$T/C/INBOX" -type f -path '*/[nc][eu][wr]/*' | wc -l)" 5 "(c) run 4: still 5 files (no duplicate)"
assert_eq "$(fake_count '^DELE')" 0 "(c) run 4: nothing deleted"
fake_stop

# (c) the same into mbox: the hashes come from the mbox index
fake_start pop3 "$T/c.json" 3 60
fake_config "$T/cm.ini" massmbox pop3s "mbox:$T/C.mbox"
run_ms -c "$T/cm.ini"
assert_eq "$RC$ERR" 0 "(c) mbox run 1: exit 0, silent"
run_ms -c "$T/cm.ini"
assert_eq "$RC" 0 "(c) mbox run 2: exit 0"
assert_eq "$ERR" "mailsync: massmbox/INBOX: 4 of 4 UIDLs changed since the last run; matched by content, 1 new" "(c) mbox run 2: reported once"
assert_eq "$(grep -c '^From ' "$T/C.mbox")" 5 "(c) mbox run 2: 5 messages in the mbox (4 + the new one)"
assert_eq "$(grep -c '^Subject: msg 5$' "$T/C.mbox")" 1 "(c) mbox run 2: the new one appended once"
assert_eq "$(fake_count '^DELE')" 0 "(c) mbox run 2: nothing deleted"
: >"$FK_DIR/log"
run_ms -c "$T/cm.ini"
assert_eq "$RC$ERR$(fake_count '^(RETR|DELE)')" 00 "(c) mbox run 3: silent, nothing fetched or deleted"
fake_stop

# (c) with Dovecot: doveadm mailbox update --uid-validity renumbers every
# UIDL (pop3_uidl_format = %08Xu%08Xv), then one message arrives
dovecot_start
U=$DV_USER
for i in 1 2 3 4 5; do
	printf 'From: a@example.org\r\nSubject: dv %d\r\nMessage-ID: <dv%d@x>\r\n\r\nbody %d\r\n' $i $i $i >"$T/dv$i"
done
dv_seed $U INBOX "$T"/dv[1-4]
ms_write_config "$T/dv.ini" dvmass pop3s "maildir:$T/D"
run_ms -c "$T/dv.ini"
assert_eq "$RC$ERR" 0 "(c) Dovecot run 1: exit 0, silent"
assert_eq "$(fk_stored_hashes "$T/D/INBOX")" "$(fk_want_hashes "$T"/dv[1-4])" "(c) Dovecot run 1: 4 stored"
uv=$(dv_uidvalidity $U INBOX)
dv_doveadm mailbox update -u $U --uid-validity $((uv + 1000)) INBOX
dv_seed $U INBOX "$T/dv5"
dv_rawlog_clear $U
run_ms -c "$T/dv.ini"
assert_eq "$RC" 0 "(c) Dovecot run 2 after the UIDVALIDITY change: exit 0"
assert_eq "$ERR" "mailsync: dvmass/INBOX: 4 of 4 UIDLs changed since the last run; matched by content, 1 new" "(c) Dovecot run 2: reported once"
assert_eq "$(fk_stored_hashes "$T/D/INBOX")" "$(fk_want_hashes "$T"/dv[1-5])" "(c) Dovecot run 2: the 4 originals and the new one, no duplicate"
assert_eq "$(dv_commands $U | grep -Ec '^DELE')" 0 "(c) Dovecot run 2: no DELE"
assert_eq "$(dv_count $U INBOX)" 5 "(c) Dovecot run 2: doveadm shows all 5 still on the server"
dv_rawlog_clear $U
run_ms -c "$T/dv.ini"
assert_eq "$RC$ERR" 0 "(c) Dovecot run 3: exit 0, silent"
assert_eq "$(dv_commands $U | grep -Ec '^(RETR|DELE)')" 0 "(c) Dovecot run 3: nothing fetched or deleted"
t_done
