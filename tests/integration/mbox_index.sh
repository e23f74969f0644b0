#!/usr/bin/env bash
# The mbox index (MBOX.msidx) must never be trusted over the mbox itself.
# IMAP -> mbox and POP3 -> mbox, 6 messages stored with policy keep, then
# the mbox is (a) removed, (b) truncated in the middle of its last message,
# (c) replaced by an older copy holding the first 4; the index stays.  The
# next run (policy keep, or policy delete for the same account) warns once
# "mbox PATH no longer matches its index: N message(s) will be fetched
# again", fetches exactly those N again, deletes nothing on the server in
# that run, exits 0; afterwards the mbox holds every server message
# byte-identical (mboxrd_split.py).  The run after that: keep fetches
# nothing, delete empties the server; both silent.  Also: state and mbox
# removed (rebuild ignores the stale records); the mbox held by another
# program while records must be dropped (exit 75, nothing fetched or
# deleted); the cost in reads of the mbox (strace).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/start.sh"
U=$DV_USER
for i in 1 2 3 4 5 6; do
	crlf_msg "$T/m$i" "Subject: index $i" "Message-ID: <ix$i@x>" "" \
		"body $i" "From the start of a line $i" ">From quoted $i" \
		"$(head -c $((i * 700)) /dev/zero | tr '\0' x)"
done
want=$(sha_lf "$T"/m{1..6} | cut -c1-64)
split_shas() { # MBOX DIR: sorted SHA-256 of every message in MBOX
	rm -rf "$2"
	python3 "$here/../lib/mboxrd_split.py" "$1" "$2" >/dev/null
	for f in "$2"/*; do [ -f "$f" ] && sha256sum <"$f" | cut -c1-64; done | sort
}
fetches() { # PROTO: messages downloaded in the sessions since the clear
	if [ "$1" = pop3s ]; then
		dv_commands $U | grep -Ec '^RETR '
	else
		dv_commands $U | grep -Ei 'UID FETCH [0-9:,]+ \(.*BODY\.PEEK\[\]' | awk '{
			n = split($4, r, ","); for (i = 1; i <= n; i++) {
				if (split(r[i], a, ":") == 2) c += a[2] - a[1] + 1; else c++ }
		} END { print c + 0 }'
	fi
}

n=0
for proto in imaps pop3s; do
	for damage in rm truncate older; do
		for policy in keep delete; do
			n=$((n + 1))
			D=$T/$proto-$damage-$policy
			mkdir -p "$D"
			if [ $proto = imaps ]; then
				store=mbox:$D/Mail mbox=$D/Mail/INBOX
			else
				store=mbox:$D/in.mbox mbox=$D/in.mbox
			fi
			lbl="$proto $damage, then $policy:"
			ms_write_config "$D/keep.ini" ix$n $proto "$store" policy=keep
			ms_write_config "$D/run.ini" ix$n $proto "$store" policy=$policy
			dv_doveadm expunge -u $U mailbox INBOX all 2>/dev/null
			if [ $damage = older ]; then
				dv_seed $U INBOX "$T"/m{1..4}
				run_ms -c "$D/keep.ini"
				cp -p "$mbox" "$D/old"
				dv_seed $U INBOX "$T"/m{5..6}
			else
				dv_seed $U INBOX "$T"/m{1..6}
			fi
			run_ms -c "$D/keep.ini"
			assert_eq "$RC $ERR $(split_shas "$mbox" "$D/s0" | sha256sum)" \
				"0  $(sha256sum <<<"$want")" "$lbl the keep run stores all 6"
			grep '^m ' "$mbox.msidx" >"$D/records0"
			case $damage in
			rm) rm "$mbox"; lost=6 ;;
			truncate)
				last=$(grep '^m ' "$mbox.msidx" | tail -1)
				off=$(cut -d' ' -f2 <<<"$last") len=$(cut -d' ' -f3 <<<"$last")
				truncate -s $((off + len / 2)) "$mbox"
				lost=1 ;;
			older) mv "$D/old" "$mbox"; lost=2 ;;
			esac
			[ $lost = 1 ] && word=message || word=messages
			dv_rawlog_clear $U
			run_ms -c "$D/run.ini"
			assert_eq "$RC|$ERR" "0|mailsync: ix$n/INBOX: mbox $mbox no longer matches its index: $lost $word will be fetched again" \
				"$lbl exit 0, one warning naming the mbox and $lost"
			assert_eq "$(fetches $proto)" $lost "$lbl exactly the $lost lost message(s) fetched again"
			assert_eq "$(dv_count $U INBOX)" 6 "$lbl nothing deleted on the server in that run"
			# the rewritten index keeps the other records byte for byte
			assert_eq "$(grep '^m ' "$mbox.msidx" | head -n $((6 - lost)))" \
				"$(head -n $((6 - lost)) "$D/records0")" "$lbl the kept records copied unchanged"
			assert_eq "$(grep -c '^m ' "$mbox.msidx")" 6 "$lbl the index lists 6 records"
			got=$(split_shas "$mbox" "$D/s1")
			if [ $damage = truncate ]; then
				# the cut message stays (it is the user's file), and
				# the copy fetched again starts on a line of its own
				assert_eq "$(wc -l <<<"$got")" 7 "$lbl 5 + the cut one + the one fetched again"
				got=$(grep -Fx -f <(echo "$want") <<<"$got")
			fi
			assert_eq "$got" "$want" "$lbl the mbox holds all 6, byte-identical"
			dv_rawlog_clear $U
			run_ms -c "$D/run.ini"
			assert_eq "$RC|$ERR|$(fetches $proto)" "0||0" "$lbl the next run: silent, nothing fetched"
			if [ $policy = delete ]; then
				assert_eq "$(dv_count $U INBOX)" 0 "$lbl the next run deletes them all"
			else
				assert_eq "$(dv_count $U INBOX)" 6 "$lbl keep: the server keeps all 6"
			fi
		done
	done
done

# the state rebuilt from an index that no longer matches: nothing invalid
# counts as stored (state and mbox removed, index kept)
D=$T/rebuild
mkdir -p "$D"
ms_write_config "$D/keep.ini" ixr imaps "mbox:$D/Mail" policy=keep
dv_doveadm expunge -u $U mailbox INBOX all 2>/dev/null
dv_seed $U INBOX "$T"/m{1..6}
run_ms -c "$D/keep.ini"
rm -rf "$D/state" "$D/Mail/INBOX"
dv_rawlog_clear $U
run_ms -c "$D/keep.ini"
assert_eq "$RC|$(fetches imaps)" "0|6" "state and mbox removed: all 6 fetched again"
assert_match "$ERR" "mbox $D/Mail/INBOX no longer matches its index: 6 messages will be fetched again" \
	"state and mbox removed: warned"
assert_eq "$(split_shas "$D/Mail/INBOX" "$D/s")" "$want" "state and mbox removed: all 6 stored again"

# the records cannot be dropped while another program holds the mbox: the
# folder fails (exit 75) before anything is fetched or deleted, and the
# next run does it all
D=$T/held
mkdir -p "$D"
ms_write_config "$D/keep.ini" ixh imaps "mbox:$D/Mail" policy=keep
ms_write_config "$D/del.ini" ixh imaps "mbox:$D/Mail" policy=delete
dv_doveadm expunge -u $U mailbox INBOX all 2>/dev/null
dv_seed $U INBOX "$T"/m{1..6}
run_ms -c "$D/keep.ini"
last=$(grep '^m ' "$D/Mail/INBOX.msidx" | tail -1)
truncate -s $(($(cut -d' ' -f2 <<<"$last") + 10)) "$D/Mail/INBOX"
ms_hold_fcntl "$D/Mail/INBOX" 5
hpid=$HOLD_PID
dv_rawlog_clear $U
MAILSYNC_MBOX_LOCK_TIMEOUT=1 run_ms -c "$D/del.ini"
kill "$hpid" 2>/dev/null
wait "$hpid" 2>/dev/null
assert_eq "$RC|$(fetches imaps)|$(dv_count $U INBOX)" "75|0|6" "mbox held: exit 75, nothing fetched, nothing deleted"
assert_match "$ERR" "no longer matches its index: 1 message will be fetched again" "mbox held: the loss is reported"
dv_rawlog_clear $U
run_ms -c "$D/del.ini"
assert_eq "$RC|$(fetches imaps)|$(dv_count $U INBOX)" "0|1|6" "lock free: the lost one fetched, still nothing deleted"
assert_eq "$(split_shas "$D/Mail/INBOX" "$D/s" | grep -Fx -f <(echo "$want"))" "$want" "lock free: all 6 stored"
run_ms -c "$D/del.ini"
assert_eq "$RC|$ERR|$(dv_count $U INBOX)" "0||0" "the run after deletes all 6, silently"

# the cost: an mbox unchanged since its stamp (size, mtime, ctime,
# inode) is not read at all; a changed one (another program appended)
# is checked with one small read per message (each covers one's end and
# the next one's From_ line) plus one, hashed once, and stamped again
D=$T/rebuild
mreads() { # small and large reads of the mbox itself (not the index)
	local s l
	s=$(grep -c "^[0-9]* *pread64([0-9]*<$D/Mail/INBOX>, .*, [1-9], [0-9]*) = [1-9]\$" "$D/strace")
	l=$(grep -c "^[0-9]* *pread64([0-9]*<$D/Mail/INBOX>, .*, [0-9]\{3,\}, [0-9]*) = " "$D/strace")
	echo "$s $l"
}
ms_strace -f -qq -y -e trace=pread64 -o "$D/strace" "$MAILSYNC" -c "$D/keep.ini" >/dev/null 2>&1
assert_eq "$(mreads)" "0 0" "unchanged mbox: not read at all"
printf 'From other@x Mon Jan  1 00:00:00 2024\nSubject: other\n\nother\n\n' >>"$D/Mail/INBOX"
ms_strace -f -qq -y -e trace=pread64 -o "$D/strace" "$MAILSYNC" -c "$D/keep.ini" >/dev/null 2>&1
assert_eq "$(mreads)" "7 6" "appended by another program: each message hashed once"
ms_strace -f -qq -y -e trace=pread64 -o "$D/strace" "$MAILSYNC" -c "$D/keep.ini" >/dev/null 2>&1
assert_eq "$(mreads)" "0 0" "and stamped again: the next run reads nothing"
assert_match "$(tail -1 "$D/Mail/INBOX.msidx")" '^s [0-9]+ [0-9]+ [0-9]+ [0-9]+ [0-9]+ [0-9]+$' \
	"the stamp holds size, mtime, ctime and inode"
# written with size and mtime kept (a From_ line broken, the mtime set
# back): ctime moved, so every record is read again and the broken one
# no longer counts as stored
mb=$D/Mail/INBOX
mt=$(stat -c %y "$mb")
off=$(grep '^m ' "$mb.msidx" | sed -n 3p | cut -d' ' -f2)
printf X | dd of="$mb" bs=1 seek="$off" conv=notrunc status=none
touch -d "$mt" "$mb"
assert_eq "$(stat -c %y "$mb")|$(dd if="$mb" bs=1 skip="$off" count=5 status=none)" "$mt|Xrom " \
	"From_ line of message 3 broken, size and mtime as before"
ms_strace -f -qq -y -e trace=pread64 -o "$D/strace" "$MAILSYNC" -c "$D/keep.ini" >/dev/null 2>"$D/err"
assert_match "$(cat "$D/err")" "mbox $mb no longer matches its index: 1 message will be fetched again" \
	"mtime kept, ctime moved: the broken record is found"
assert_eq "$(mreads)" "7 0" "every record read again (size and mtime match: none hashed)"
t_done
