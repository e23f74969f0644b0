#!/usr/bin/env bash
# mirror = flags | full against a real Dovecot: local Maildir flags follow
# the server's (CONDSTORE: nothing re-read when nothing changed); expunges
# are mirrored into the quarantine, and a mass vanishing is refused.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/start.sh"
U=$DV_USER
for i in $(seq 1 10); do
	crlf_msg "$T/m$i" "Subject: m$i" "Message-ID: <m$i@x>" "" "body $i"
	dv_seed $U INBOX "$T/m$i"
done
dv_set_flags $U INBOX 3 '\Seen'
M=$T/Mail
ms_write_config "$T/ms.ini" mir imaps "maildir:$M" mirror=flags
run_ms -c "$T/ms.ini"
assert_eq "$RC$ERR" 0 "first run exits 0 silently"
assert_eq "$(md_count "$M/INBOX")" 10 "ten stored"

dv_set_flags $U INBOX 1 '\Seen'
dv_set_flags $U INBOX 2 '\Seen' '\Flagged'
dv_set_flags $U INBOX 3 '\Answered'
flags_before=$(dv_flags $U INBOX)
dv_rawlog_clear $U
run_ms -c "$T/ms.ini"
assert_eq "$RC$ERR" 0 "flag mirror run exits 0 silently"
assert_match "$(md_file "$M/INBOX" 1)" '/cur/[^/]*:2,S$' "UID 1 now seen locally"
assert_match "$(md_file "$M/INBOX" 2)" '/cur/[^/]*:2,FS$' "UID 2 now flagged and seen"
assert_match "$(md_file "$M/INBOX" 3)" ':2,R$' "UID 3: seen removed, answered added"
assert_match "$(md_file "$M/INBOX" 4)" '/new/[^/:]*$' "UID 4 untouched in new/"
assert_eq "$(dv_flags $U INBOX)" "$flags_before" "mirroring flags changes nothing on the server"
assert_eq "$(dv_commands $U | grep -c BODY.PEEK)" 0 "no body fetched for a flag change"
dv_rawlog_clear $U
run_ms -c "$T/ms.ini"
cmds=$(dv_commands $U)
assert_eq "$(grep -c 'UID FLAGS' <<<"$cmds")" 0 "CONDSTORE: unchanged folder, no flag listing"

# --- mirror = full: one expunge is mirrored into the quarantine ---
ms_write_config "$T/ms.ini" mir imaps "maildir:$M" mirror=full
dv_doveadm expunge -u $U mailbox INBOX uid 5
run_ms -c "$T/ms.ini"
assert_eq "$RC$ERR" 0 "full mirror run exits 0 silently"
assert_eq "$(md_count "$M/INBOX")" 9 "expunged message gone from the folder"
assert_eq "$(md_file "$M/INBOX" 5 || echo none)" none "UID 5 no longer in INBOX"
assert_eq "$(find "$M/.mailsync-removed" -type f -name '*,U=5,*' | wc -l)" 1 "UID 5 kept in the quarantine"

# --- the quarantine is emptied after removed_keep_days ---
run_ms -c "$T/ms.ini"
assert_eq "$(find "$M/.mailsync-removed" -type f | wc -l)" 1 "quarantine kept within removed_keep_days"
ms_write_config "$T/ms.ini" mir imaps "maildir:$M" mirror=full removed_keep_days=0
sleep 1.1
run_ms -c "$T/ms.ini"
assert_eq "$RC$ERR" 0 "purging run exits 0 silently"
assert_eq "$(find "$M/.mailsync-removed" -type f | wc -l)" 0 "removed_keep_days = 0: quarantine purged"

# --- a mass vanishing (5 of 9 > 20 %) is refused ---
for u in 6 7 8 9 10; do dv_doveadm expunge -u $U mailbox INBOX uid $u; done
run_ms -c "$T/ms.ini"
assert_eq "$RC" 76 "mass vanishing exits 76"
assert_match "$ERR" '^mailsync: mir/INBOX: 5 of 9 known messages vanished from the server at once \(more than 20%\); not mirroring deletions' "and says why"
assert_eq "$(md_count "$M/INBOX")" 9 "nothing removed locally"
t_done
