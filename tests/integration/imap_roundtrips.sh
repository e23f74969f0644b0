#!/usr/bin/env bash
# IMAP round trips and writes against a real Dovecot: no CAPABILITY after
# the login (Dovecot sends [CAPABILITY] with the tagged OK), EXAMINE and
# UID SEARCH sent together, the next folder's EXAMINE sent before the
# current folder's last commit, commits every 200 messages while the
# FETCHes stream (and an fsync failure there), and a nothing-new run that
# sends LIST-STATUS and LOGOUT only and writes nothing (no fsync, rename,
# unlink or file creation).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/start.sh"
U=$DV_USER

# INBOX: 450 small messages (two commits inside the stream, one at the
# end); A: 3; B: 2
mkdir -p "$T/src"
files=()
for i in $(seq 1 450); do
	crlf_msg "$T/src/i$i" "From: a@example.org" "Subject: inbox $i" \
		"Message-ID: <i$i@rt>" "" "body $i" "$(head -c $((i * 7)) /dev/zero | tr '\0' x)"
	files+=("$T/src/i$i")
done
dv_import_inbox $U "${files[@]}" || not_ok "import INBOX"
for i in 1 2 3; do crlf_msg "$T/src/a$i" "Subject: a $i" "Message-ID: <a$i@rt>" "" "a $i"; done
for i in 1 2; do crlf_msg "$T/src/b$i" "Subject: b $i" "Message-ID: <b$i@rt>" "" "b $i"; done
dv_seed $U A "$T/src/a1" "$T/src/a2" "$T/src/a3"
dv_seed $U B "$T/src/b1" "$T/src/b2"
assert_eq "$(dv_count $U INBOX)" 450 "seeded 450 messages in INBOX"

M=$T/Mail
CFG=$T/ms.ini
ms_write_config "$CFG" rt imaps "maildir:$M" 'folders=INBOX A B'

# rawlog lines are "SECONDS.MICROS LINE": the raw input with times
rawlog_in() { cat "$DV_RAWLOG/$U"/*.in 2>/dev/null | tr -d '\r'; }

# --- run 1: full backup, with the protocol trace ---
dv_rawlog_clear $U
run_ms -vv -c "$CFG"
assert_eq "$RC" 0 "first run exits 0"
assert_eq "$(md_count "$M/INBOX") $(md_count "$M/A") $(md_count "$M/B")" \
	"450 3 2" "all messages stored (450, 3, 2)"
assert_eq "$(verify_maildir $U A "$M/A")" "3 0" "A byte-identical"
bad=0
for uid in 1 199 200 201 400 401 450; do
	f=$(md_file "$M/INBOX" $uid) || { bad=$((bad + 1)); continue; }
	dv_body $U INBOX $uid | crlf_to_lf | cmp -s - "$f" || bad=$((bad + 1))
done
assert_eq "$bad" 0 "INBOX: messages around the commit points byte-identical"
cmds=$(dv_commands $U)
assert_eq "$(grep -c ' CAPABILITY' <<<"$cmds")" 0 \
	"no CAPABILITY after the login (taken from the tagged OK)"
assert_match "$ERR" "capabilities from the login: .*IMAP4rev1" \
	"trace: capabilities taken from the login"
assert_eq "$(grep -c ' EXAMINE ' <<<"$cmds")" 3 "one EXAMINE per folder"
assert_eq "$(grep -c ' UID SEARCH ' <<<"$cmds")" 3 "one UID SEARCH per folder"
assert_eq "$(grep -c ' LOGOUT' <<<"$cmds")" 1 "LOGOUT sent"
# EXAMINE and its UID SEARCH arrive in the same read (same timestamp)
pairs=$(rawlog_in | awk '/ EXAMINE /{t=$1; next} / UID SEARCH /{print ($1 == t) ? "same" : "apart"}' | sort | uniq -c | tr -s ' ')
assert_eq "$pairs" " 3 same" "EXAMINE + UID SEARCH sent together for every folder"
# for each folder X followed by Y (server order): Y's EXAMINE + UID SEARCH
# go out when X's bodies are in, before X's last commit and finish
# (logged "mailsync: rt/X: n fetched")
chk=$(awk '
/C: m[0-9]+ EXAMINE "/ { match($0, /EXAMINE "[^"]*"/)
	n++; name[n] = substr($0, RSTART + 9, RLENGTH - 10); ex[n] = NR; next }
/rt\/.*: +[0-9]+ fetched/ { sub(/.*rt\//, ""); sub(/: +[0-9]+ fetched.*/, "")
	done[$0] = NR }
END { for (i = 1; i < n; i++) {
	r = "serial"
	if (ex[i + 1] < done[name[i]]) r = "ahead"
	print name[i] "->" name[i + 1] ": " r } }' <<<"$ERR")
assert_eq "$(grep -c ': ahead$' <<<"$chk") $(grep -c ': serial$' <<<"$chk")" "2 0" \
	"next folder's EXAMINE sent before the last commit ($(tr '\n' ' ' <<<"$chk"))"

# --- run 2: nothing new: no SELECT, no write at all ---
sleep 1.1 # directory mtimes in the past, as between real runs
dv_rawlog_clear $U
ms_strace -f -qq -o "$T/trace2" -e trace=fsync,fdatasync,rename,renameat,renameat2,unlink,unlinkat,openat,mkdir,mkdirat \
	"$MAILSYNC" -c "$CFG" >"$T/out" 2>"$T/err"
RC=$?
assert_eq "$RC" 0 "nothing new: exits 0"
assert_eq "$(grep -Ec 'fsync|fdatasync' "$T/trace2")" 0 "nothing new: no fsync"
assert_eq "$(grep -Ec 'rename|unlink|mkdir' "$T/trace2")" 0 \
	"nothing new: no rename, unlink or mkdir"
assert_eq "$(grep -E 'O_CREAT' "$T/trace2" | grep -v '"lock"')" "" \
	"nothing new: no file created (but the lock)"
cmds=$(dv_commands $U)
assert_eq "$(grep -Ec ' (EXAMINE|SELECT|UID) ' <<<"$cmds")" 0 \
	"nothing new: no EXAMINE, SELECT or UID command"
# two commands in all: LIST with the folders' STATUS (LIST-STATUS), LOGOUT
assert_eq "$(sed -E 's/^[^ ]+ //' <<<"$cmds")" \
	'LIST "" "*" RETURN (STATUS (UIDVALIDITY UIDNEXT MESSAGES HIGHESTMODSEQ))
LOGOUT' "nothing new: LIST-STATUS and LOGOUT only"

# --- run 3: one new message in A: only A is examined ---
crlf_msg "$T/src/a4" "Subject: a 4" "Message-ID: <a4@rt>" "" "a 4"
dv_seed $U A "$T/src/a4"
dv_rawlog_clear $U
run_ms -c "$CFG"
assert_eq "$RC" 0 "one new: exits 0"
assert_eq "$(verify_maildir $U A "$M/A")" "4 0" "one new: A byte-identical"
cmds=$(dv_commands $U)
assert_eq "$(grep -E ' (EXAMINE|SELECT) ' <<<"$cmds" | sed -E 's/^[^ ]+ //')" \
	'EXAMINE "A" (CONDSTORE)' "one new: only A examined (B not sent ahead)"
assert_eq "$(md_count "$M/INBOX") $(md_count "$M/B")" "450 2" \
	"one new: other folders untouched"

# --- run 4: state of B lost: rebuilt from the store, nothing fetched ---
rm -f "$T/state/rt/"*B*
run_ms -c "$CFG"
assert_eq "$RC" 0 "B's state lost: exits 0"
assert_eq "$(md_count "$M/B")" 2 "B's state lost: no duplicate"

# --- a commit inside the stream fails: EIO from the 100th fsync, within
# the first 200 files of the first big folder (INBOX or C, 450 each,
# whichever the server lists first) while later FETCHes are in flight.
# Only that folder fails: the bodies still coming are read and dropped,
# the connection stays in step, and every other folder, the other big
# one included, is backed up in the same run ---
dv_mkfolder $U C && dv_doveadm copy -u $U C mailbox INBOX all ||
	not_ok "copy INBOX to C"
assert_eq "$(dv_count $U C)" 450 "seeded 450 messages in C"
M2=$T/Mail2
CFG2=$T/ms2.ini
ms_write_config "$CFG2" rt2 imaps "maildir:$M2" 'folders=INBOX A B C'
dv_rawlog_clear $U
ms_strace -f -qq -o /dev/null -e trace=fsync \
	-e inject=fsync:error=EIO:when=100 \
	"$MAILSYNC" -c "$CFG2" >"$T/out" 2>"$T/err"
RC=$?
assert_eq "$RC" 74 "fsync EIO inside the stream: exit 74"
nI=$(md_count "$M2/INBOX") nC=$(md_count "$M2/C")
if [ "$nI" -lt "$nC" ]; then bad_f=INBOX nbad=$nI good=$nC; else bad_f=C nbad=$nC good=$nI; fi
assert_eq "$(sed -E 's/(mailsync: rt2\/[A-Z]+: ).*(: Input\/output error)$/\1...\2/' "$T/err")" \
	"mailsync: rt2/$bad_f: ...: Input/output error" \
	"fsync EIO: one line, naming the account and folder ($(head -c 300 "$T/err"))"
assert_eq "$([ "$nbad" -lt 200 ] && echo fewer)" fewer \
	"fsync EIO: the failed chunk in $bad_f is not kept ($nbad files)"
assert_eq "$good $(md_count "$M2/A") $(md_count "$M2/B")" "450 4 2" \
	"fsync EIO in $bad_f: the other big folder (450), A (4) and B (2) backed up in the same run"
cmds=$(dv_commands $U)
assert_eq "$(grep -c ' EXAMINE ' <<<"$cmds") $(grep -c ' LOGOUT' <<<"$cmds")" "4 1" \
	"fsync EIO in $bad_f: the connection stayed usable (4 EXAMINEs, LOGOUT)"
run_ms -c "$CFG2"
assert_eq "$RC" 0 "after EIO: the next run exits 0"
assert_eq "$(md_count "$M2/INBOX") $(md_count "$M2/C") $(md_count "$M2/A") $(md_count "$M2/B")" \
	"450 450 4 2" "after EIO: all stored (450, 450, 4, 2), no duplicate"
bad=0
for uid in 1 99 100 101 200 450; do
	f=$(md_file "$M2/$bad_f" $uid) || { bad=$((bad + 1)); continue; }
	dv_body $U "$bad_f" $uid | crlf_to_lf | cmp -s - "$f" || bad=$((bad + 1))
done
assert_eq "$bad" 0 "after EIO: messages of $bad_f around the failure byte-identical"

t_done
