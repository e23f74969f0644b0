#!/usr/bin/env bash
# Local storage faults against a real Dovecot, policy delete:
#  F04 read-only destination (tmpfs remounted ro inside unshare -m; root
#      ignores chmod): exit 73, the path named, server untouched;
#  F01 ENOSPC: a 2 MiB message into a Maildir on a 1 MiB tmpfs, and three
#      100 KiB messages into a 900 KiB mbox on a 1 MiB tmpfs: exit 74, "No
#      space left on device", nothing partial, nothing deleted that is not
#      stored; after the tmpfs is enlarged the next run stores exactly the
#      missing ones;
#  F03 EIO from the fsync of the third message's file (strace inject):
#      exit 74, the file and "Input/output error" named, the message neither
#      stored, recorded nor deleted; the next clean run completes (O1 O2 O6).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/assert.sh"
. "$here/../lib/dovecot.sh"
. "$here/../lib/verify.sh"
. "$here/lib_oracle.sh"
t_setup
dovecot_start
U=$DV_USER

# msg FILE N KB: a message with N in its headers and about KB KiB of text
msg() {
	crlf_msg "$1" "Subject: disk fault $2" "Message-ID: <df$2.$RANDOM@x>" ""
	{ head -c $(($3 * 1024)) /dev/zero | tr '\0' 'z' | fold -w 72; echo; } |
		sed 's/$/\r/' >>"$1"
}
server_cmds() { dv_commands $U | grep -Ei ' (UID STORE|UID EXPUNGE|EXPUNGE|STORE) |^DELE '; }

# ---- F04: read-only destination ----
for i in 1 2 3; do msg "$T/r$i" "r$i" 2; done
dv_seed $U INBOX "$T/r1" "$T/r2" "$T/r3"
flags0=$(dv_flags $U INBOX)
mkdir -p "$T/ro"
for kind in maildir mbox; do
	ms_write_config "$T/ro-$kind.ini" "ro-$kind" imaps "$kind:$T/ro/Mail" policy=delete
	dv_rawlog_clear $U
	unshare -m bash -c 'mount -t tmpfs -o size=1m tmpfs "$1" && mkdir "$1/Mail" &&
		mount -o remount,ro "$1" && exec "$2" -c "$3"' _ "$T/ro" "$MAILSYNC" \
		"$T/ro-$kind.ini" >"$T/out" 2>"$T/err"
	RC=$? ERR=$(cat "$T/err")
	assert_eq "$RC" 73 "F04 $kind: read-only destination exits 73"
	assert_match "$ERR" "^mailsync: ro-$kind/INBOX: cannot [a-z ]+ $T/ro/Mail/INBOX: Read-only file system$" \
		"F04 $kind: the message names the account, the path and the cause"
	assert_eq "$(wc -l <<<"$ERR")" 1 "F04 $kind: one line (no extra \"1 folder failed\")"
	assert_eq "$(server_cmds)" "" "F04 $kind: no STORE/EXPUNGE sent"
	assert_eq "$(dv_flags $U INBOX)" "$flags0" "F04 $kind: server messages and flags unchanged"
done
dv_doveadm expunge -u $U mailbox INBOX all

# ---- F01 (a): Maildir, 2 MiB message on a 1 MiB tmpfs ----
for i in $(seq 1 20); do msg "$T/e$i" "e$i" $((i % 4 + 1)); done
msg "$T/e8" e8-big 2048
dv_seed $U INBOX "$T"/e{1..20}
or_record $U INBOX
read -ra uids <<<"$(dv_uids $U INBOX)"
big=${uids[7]}
ms_write_config "$T/enospc.ini" enospc imaps "maildir:$T/sp/Mail" policy=delete
mkdir -p "$T/sp" "$T/sp-copy"
# in_tmpfs SIZE FROM TO CONFIG: run mailsync once with the store on a fresh
# tmpfs of SIZE holding a copy of FROM (if any); copy the result to TO;
# sets RC and ERR
in_tmpfs() {
	unshare -m bash -c '
		mount -t tmpfs -o "size=$1" tmpfs "$2" || exit 99
		if [ -d "$3" ]; then cp -a "$3" "$2/Mail" || exit 99; fi
		"$5" -c "$6" >"$7/out" 2>"$7/err"; rc=$?
		cp -a "$2/Mail" "$4" || exit 99
		exit $rc' _ "$1" "$T/sp" "$2" "$3" "$MAILSYNC" "$4" "$T"
	RC=$? ERR=$(cat "$T/err")
	cp "$T/err" "$3.err"
}
dv_rawlog_clear $U
in_tmpfs 1m "" "$T/sp-copy/1" "$T/enospc.ini"
assert_eq "$RC" 74 "F01 maildir: ENOSPC exits 74"
assert_match "$ERR" "^mailsync: enospc/INBOX: cannot write $T/sp/Mail/INBOX/tmp/[^ ]+: No space left on device$" \
	"F01 maildir: stderr names account, folder and 'No space left on device'"
assert_eq "$(ls "$T/sp-copy/1/INBOX/new" "$T/sp-copy/1/INBOX/cur" | grep -c ",U=$big,")" 0 \
	"F01 maildir: no new/ or cur/ entry for the big message"
assert_eq "$(ls -A "$T/sp-copy/1/INBOX/tmp" | wc -l)" 0 "F01 maildir: the partial tmp file removed"
left=$(dv_uids $U INBOX)
want_left=$(tr ' ' '\n' <<<"${uids[*]}" | tail -n +8 | tr '\n' ' ' | sed 's/ $//')
case " $left " in
*" $want_left ") ok "F01 maildir: the big message and every later one still on the server" ;;
*) not_ok "F01 maildir: the big message and every later one still on the server" "left: $left" ;;
esac
or_check $U INBOX maildir "$T/sp-copy/1/INBOX" "F01 maildir run 1"
n1=$(md_count "$T/sp-copy/1/INBOX")
in_tmpfs 16m "$T/sp-copy/1" "$T/sp-copy/2" "$T/enospc.ini"
assert_eq "$RC" 0 "F01 maildir: after enlarging, the next run exits 0"
assert_eq "$(($(md_count "$T/sp-copy/2/INBOX") - n1))" "$((20 - n1))" \
	"F01 maildir: the next run stores exactly the $((20 - n1)) messages not stored yet"
or_complete $U INBOX maildir "$T/sp-copy/2/INBOX" "F01 maildir run 2"

# ---- F01 (b): mbox, 900 KiB mbox on a 1 MiB tmpfs, three 100 KiB messages
# (the disk fills in the spool, before the append) and one 70 KiB message
# (the spool fits; the disk fills in the middle of the append itself)
for case in "3 100" "1 70"; do
set -- $case
rm -rf "$T/sp-copy" "$T/split1" "$T/split2"
mkdir -p "$T/sp-copy/0"
{
	printf 'From old@x Mon Jan  1 00:00:00 2024\nSubject: old\n\n'
	head -c $((900 * 1024 - 100)) /dev/zero | tr '\0' 'o' | fold -w 72
	printf '\n\n'
} >"$T/sp-copy/0/INBOX"
size0=$(stat -c %s "$T/sp-copy/0/INBOX")
for ((i = 1; i <= $1; i++)); do msg "$T/b$i" "b$i" "$2"; dv_seed $U INBOX "$T/b$i"; done
or_record $U INBOX
ms_write_config "$T/mb.ini" mb imaps "mbox:$T/sp/Mail" policy=delete
in_tmpfs 1m "$T/sp-copy/0" "$T/sp-copy/1" "$T/mb.ini"
assert_eq "$RC" 74 "F01 mbox $1x$2K: ENOSPC exits 74"
assert_match "$ERR" "^mailsync: mb/INBOX: .*No space left on device$" "F01 mbox $1x$2K: stderr names account, folder and the cause"
size1=$(stat -c %s "$T/sp-copy/1/INBOX")
head -c "$size0" "$T/sp-copy/1/INBOX" | cmp -s - "$T/sp-copy/0/INBOX"
assert_eq "$?" 0 "F01 mbox $1x$2K: the old contents intact"
nmsg=$(python3 "$here/../lib/mboxrd_split.py" "$T/sp-copy/1/INBOX" "$T/split1")
assert_eq "$(find "$T/sp-copy/1" -name '*.lock' | wc -l)" 0 "F01 mbox $1x$2K: no stale lock"
or_check $U INBOX mbox "$T/sp-copy/1/INBOX" "F01 mbox $1x$2K run 1"
# the file is the old mbox plus whole messages only: every message after
# the first is one of the server's, byte for byte
bad=0
for ((k = 2; k <= nmsg; k++)); do
	grep -qx "$(sha256sum <"$T/split1/$k" | cut -c1-64)" <(cut -d' ' -f2 "$T/oracle/INBOX.exp") || bad=$((bad + 1))
done
[ "$1" = 1 ] && assert_match "$ERR" "cannot write $T/sp/Mail/INBOX: No space left" \
	"F01 mbox $1x$2K: the disk filled during the append itself"
[ "$nmsg" = 1 ] && assert_eq "$size1" "$size0" "F01 mbox $1x$2K: nothing appended: size back to $size0"
assert_eq "$bad $([ "$size1" -lt $((1024 * 1024)) ] && echo fits)" "0 fits" \
	"F01 mbox $1x$2K: truncated back to whole messages ($((nmsg - 1)) appended)"
in_tmpfs 16m "$T/sp-copy/1" "$T/sp-copy/2" "$T/mb.ini"
assert_eq "$RC" 0 "F01 mbox $1x$2K: after enlarging, the next run exits 0"
python3 "$here/../lib/mboxrd_split.py" "$T/sp-copy/2/INBOX" "$T/split2" >/dev/null
rm -f "$T/split2/1"
assert_eq "$(find "$T/split2" -type f -print0 | xargs -0 sha256sum | cut -c1-64 | sort)" \
	"$(cut -d' ' -f2 "$T/oracle/INBOX.exp" | sort)" "F01 mbox $1x$2K: old message + the $1 new ones, each once"
assert_eq "$(dv_count $U INBOX)" 0 "F01 mbox $1x$2K: server empty after the second run"
done

# ---- F03: EIO from the fsync of the third message's file ----
for i in 1 2 3 4 5; do msg "$T/i$i" "i$i" 3; done
ms_write_config "$T/eio.ini" eio imaps "maildir:$T/Eio" policy=delete
ms_write_config "$T/ref.ini" ref imaps "maildir:$T/Ref" policy=delete user=$DV_USER2
run_ms -c "$T/eio.ini"
run_ms -c "$T/ref.ini" # both accounts: state and folders exist
dv_seed $U INBOX "$T"/i{1..5}
dv_seed $DV_USER2 INBOX "$T"/i{1..5}
or_record $U INBOX
read -ra uids <<<"$(dv_uids $U INBOX)"
# the reference run on bob's identical mailbox numbers the fsync calls
ms_strace -f -qq -y -o "$T/ref.trace" -e trace=fsync,fdatasync "$MAILSYNC" -c "$T/ref.ini" >/dev/null 2>&1
rfile=$(grep -oE 'Ref/INBOX/tmp/[^>]*' "$T/ref.trace" | sed -n 3p)
when=$(grep -nE 'fsync|fdatasync' "$T/ref.trace" | grep -F "$rfile" | cut -d: -f1)
assert_match "$when" '^[0-9]+$' "F03: the third message's fsync is call $when of the reference run"
dv_rawlog_clear $U
ms_strace -f -qq -o /dev/null -e trace=fsync,fdatasync \
	-e inject=fsync,fdatasync:error=EIO:when="$when" "$MAILSYNC" -c "$T/eio.ini" >"$T/out" 2>"$T/err"
RC=$? ERR=$(cat "$T/err")
assert_eq "$RC" 74 "F03: EIO from fsync exits 74"
assert_match "$ERR" "^mailsync: eio/INBOX: cannot fsync $T/Eio/INBOX/tmp/[^ ]+: Input/output error$" \
	"F03: the error names the file and 'Input/output error'"
assert_eq "$(md_file "$T/Eio/INBOX" "${uids[2]}")" "" "F03: the third message not stored"
assert_match " $(dv_uids $U INBOX) " " ${uids[2]} " "F03: the third message not deleted on the server"
assert_eq "$(cat "$T"/state/eio/INBOX.* 2>/dev/null | grep -c "^+u ${uids[2]}\$")" 0 \
	"F03: no state record for it"
or_check $U INBOX maildir "$T/Eio/INBOX" "F03 after the fault"
run_ms -c "$T/eio.ini"
assert_eq "$RC $ERR" "0 " "F03: the next clean run exits 0 silently"
or_complete $U INBOX maildir "$T/Eio/INBOX" "F03 after the clean run"
or_idempotent $U maildir "$T/Eio/INBOX" "F03" -c "$T/eio.ini"
t_done
