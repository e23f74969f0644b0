#!/usr/bin/env bash
# IMAP backup to Maildir against a real Dovecot: exact bytes, read-only keep
# mode, idempotence, incremental runs, lost state, locking, dry run.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/start.sh"
U=$DV_USER

# --- the corpus: every message is a trap for some parser ---
crlf_msg "$T/m1" "From: a@example.org" "Subject: tags" "Message-ID: <m1@x>" "" \
	"A001 OK done" "* 1 FETCH (BODY[] {5}" "." ".." "From me" ">From you" "m1 OK x"
printf 'Subject: bare LF\r\nMessage-ID: <m2@x>\r\n\r\nline1\nline2\r\nline3\r\n' >"$T/m2"
printf 'Subject: Gr\303\274\303\237e 8-bit\r\nMessage-ID: <m3@x>\r\n\r\nK\303\244se\r\n' >"$T/m3"
printf 'Subject: no final newline\r\nMessage-ID: <m4@x>\r\n\r\nlast line' >"$T/m4"
{ printf 'Subject: big\r\nMessage-ID: <m5@x>\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n'
  head -c 15000000 /dev/urandom | base64 -w 76 | sed 's/$/\r/'; } >"$T/m5"
crlf_msg "$T/d1" "Subject: dev 1" "Message-ID: <d1@x>" "" "body"
crlf_msg "$T/d2" "Subject: dev 2" "Message-ID: <d2@x>" "" "body 2"
crlf_msg "$T/e1" "Subject: draft" "Message-ID: <e1@x>" "" "Entwurf"
crlf_msg "$T/j1" "Subject: spam" "Message-ID: <j1@x>" "" "junk"
: >"$T/m0" # an empty message
dv_seed $U INBOX "$T/m1" "$T/m2" "$T/m3" "$T/m4" "$T/m5" "$T/m0"
dv_seed $U "Lists/dev" "$T/d1" "$T/d2"
dv_seed $U "Entwürfe" "$T/e1"
dv_seed $U Junk "$T/j1"
dv_set_flags $U INBOX 1 '\Seen'
dv_set_flags $U INBOX 2 '\Seen' '\Flagged'
dv_set_flags $U INBOX 4 '\Answered' '$custom'
flags_before=$( for f in INBOX Lists/dev Entwürfe Junk; do dv_flags $U "$f"; done )

M=$T/Mail
CFG=$T/ms.ini
ms_write_config "$CFG" work imaps "maildir:$M" 'folders=* !Junk'

# --- run 1: full backup, silent ---
dv_rawlog_clear $U
run_ms -c "$CFG"
assert_eq "$RC" 0 "first run exits 0"
assert_eq "$ERR$OUT" "" "first run prints nothing"
assert_eq "$(verify_maildir $U INBOX "$M/INBOX")" "6 0" "INBOX: 6 messages byte-identical (incl. empty, 20 MB)"
assert_eq "$(verify_maildir $U Lists/dev "$M/Lists/dev")" "2 0" "Lists/dev nested: 2 byte-identical"
assert_eq "$(verify_maildir $U Entwürfe "$M/Entwürfe")" "1 0" "non-ASCII folder as UTF-8 directory"
assert_eq "$(md_count "$M/INBOX")" 6 "INBOX: exactly 6 local files"
assert_eq "$([ -e "$M/Junk" ] && echo yes || echo no)" no "excluded folder Junk not created"
assert_match "$(md_file "$M/INBOX" 1)" '/cur/[^/]*,U=1,V=[0-9]+:2,S$' "seen message in cur/ with :2,S"
assert_match "$(md_file "$M/INBOX" 2)" '/cur/[^/]*:2,FS$' "seen+flagged: :2,FS"
assert_match "$(md_file "$M/INBOX" 3)" '/new/[^/:]*,U=3,V=[0-9]+$' "unseen message in new/ without info"
flags_after=$( for f in INBOX Lists/dev Entwürfe Junk; do dv_flags $U "$f"; done )
assert_eq "$flags_after" "$flags_before" "keep mode: server flags unchanged"
cmds=$(dv_commands $U)
assert_eq "$(grep -Eic ' (UID )?(STORE|EXPUNGE|COPY|MOVE|APPEND)' <<<"$cmds")" 0 "keep mode: no STORE/EXPUNGE sent"
assert_eq "$(grep -Eic ' SELECT ' <<<"$cmds")" 0 "keep mode: EXAMINE, never SELECT"
assert_match "$cmds" 'BODY\.PEEK\[\]' "bodies fetched with BODY.PEEK[]"

# --- run 2: nothing new: no body transfer, no change ---
dv_rawlog_clear $U
run_ms -c "$CFG"
assert_eq "$RC" 0 "second run exits 0"
assert_eq "$ERR$OUT" "" "second run prints nothing"
cmds=$(dv_commands $U)
assert_eq "$(grep -c 'BODY.PEEK' <<<"$cmds")" 0 "second run transfers no message"
assert_eq "$(grep -Eic ' (UID )?(STORE|EXPUNGE)' <<<"$cmds")" 0 "second run sends no STORE/EXPUNGE"
assert_eq "$(grep -Eic ' (EXAMINE|SELECT) ' <<<"$cmds")" 0 "nothing new: no folder is even opened"
assert_eq "$(grep -Ec '^m[0-9]+ STATUS ' <<<"$cmds")" 0 "nothing new: no STATUS command (Dovecot has LIST-STATUS)"
assert_eq "$(grep -Ec '^m[0-9]+ LIST "" "\*" RETURN \(STATUS \(' <<<"$cmds")" 1 "nothing new: the folders' STATUS come with the LIST"
assert_eq "$(md_count "$M/INBOX")" 6 "second run adds no file"

# --- run 3: one new message ---
crlf_msg "$T/m6" "Subject: new" "Message-ID: <m6@x>" "" "fresh"
dv_seed $U INBOX "$T/m6"
dv_rawlog_clear $U
run_ms -c "$CFG"
assert_eq "$RC" 0 "incremental run exits 0"
assert_eq "$(md_count "$M/INBOX")" 7 "incremental run adds exactly one file"
assert_eq "$(verify_maildir $U INBOX "$M/INBOX")" "7 0" "INBOX: 7 byte-identical after increment"
assert_eq "$(dv_commands $U | grep -c 'BODY.PEEK')" 1 "incremental run: one FETCH command with bodies"

# --- lost state: rebuilt from the Maildir names, nothing downloaded ---
rm -rf "$T/state"
dv_rawlog_clear $U
run_ms -c "$CFG"
assert_eq "$RC" 0 "run without state exits 0"
assert_eq "$(dv_commands $U | grep -c 'BODY.PEEK')" 0 "lost state: nothing downloaded again"
assert_eq "$(md_count "$M/INBOX")" 7 "lost state: no duplicate"
assert_match "$ERR" '^mailsync: work/INBOX: state was missing; rebuilt from the store: 7 messages' "lost state: one line per folder says so"

# --- lock held by another process: exit 75 naming the pid, nothing touched ---
flock "$T/state/work/lock" sleep 20 &
holder=$!
sleep 0.5
dv_rawlog_clear $U
run_ms -c "$CFG"
assert_eq "$RC" 75 "held lock exits 75"
assert_match "$ERR" 'work.*locked by pid [0-9]+' "held lock names the holder's pid"
assert_eq "$(dv_commands $U | wc -l)" 0 "held lock: no connection made"
pkill -P $holder 2>/dev/null; kill $holder 2>/dev/null; wait $holder 2>/dev/null

# --- dry run: lists, creates nothing ---
mkdir -p "$T/dry"; ms_write_config "$T/dry/dry.ini" work imaps "maildir:$T/Dry" 'folders=* !Junk'
run_ms -c "$T/dry/dry.ini" -n
assert_eq "$RC" 0 "dry run exits 0"
assert_eq "$([ -e "$T/Dry" ] && echo yes || echo no)" no "dry run creates no store"
assert_match "$ERR" '^mailsync: work/INBOX:     would fetch 7 ' "dry run reports what it would fetch"

# --- UIDVALIDITY change: no duplicate, no deletion ---
dv_doveadm mailbox update -u $U --uid-validity 424242 INBOX
run_ms -c "$CFG"
assert_eq "$RC" 0 "UIDVALIDITY change: exits 0"
assert_eq "$(md_count "$M/INBOX")" 7 "UIDVALIDITY change: no duplicate"
assert_match "$ERR" 'INBOX: UIDVALIDITY changed .* 7 re-matched, 0 new' "UIDVALIDITY change reported"
run_ms -c "$CFG"
assert_eq "$RC$ERR" 0 "after the change the next run is clean"
assert_eq "$(md_count "$M/INBOX")" 7 "still no duplicate"
assert_eq "$(verify_maildir $U INBOX "$M/INBOX")" "7 0" "re-matched files byte-identical"
assert_eq "$(ls "$M"/INBOX/new "$M"/INBOX/cur | grep -c ",V=424242")" 7 "re-matched files carry the new UIDVALIDITY"

# --- layout = maildir++: INBOX at the root, .Lists.dev ---
mkdir -p "$T/pp"; ms_write_config "$T/pp/pp.ini" pp imaps "maildir:$T/PP" layout=maildir++ 'folders=* !Junk'
run_ms -c "$T/pp/pp.ini"
assert_eq "$RC$ERR" 0 "maildir++ run exits 0 silently"
assert_eq "$(md_count "$T/PP")" 7 "maildir++: INBOX is the root"
assert_eq "$(verify_maildir $U Lists/dev "$T/PP/.Lists.dev")" "2 0" "maildir++: Lists/dev in .Lists.dev"
assert_eq "$(md_count "$T/PP/.Entwürfe")" 1 "maildir++: non-ASCII folder"

t_done
