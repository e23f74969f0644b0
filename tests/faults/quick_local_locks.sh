#!/usr/bin/env bash
# F37 overlapping runs and locks, against a real Dovecot:
#  (a) a second mailsync while the first runs: exit 75 "locked by pid N"
#      (N = the first one), no connection, no local change;
#  (b) after kill -9 of a run the account lock is free and a clean run
#      completes (O1 O2);
#  (c) an mbox held by another program longer than the lock timeout
#      (MAILSYNC_MBOX_LOCK_TIMEOUT): an fcntl lock (python fcntl.lockf) and
#      a fresh dotlock MBOX.lock: exit 75 after a bounded wait, nothing
#      appended, nothing deleted on the server, the other program's
#      dotlock left alone;
#  (d) two accounts writing the same Maildir and the same mbox at once: no
#      name collision, every message of both present once, the mbox parses;
#  (e) mailsync killed (SIGKILL) just before and just after the link() that
#      makes its mbox dotlock: the next run takes the lock at once, exit 0.
# The first run is kept inside its lock by strace delaying a syscall.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/assert.sh"
. "$here/../lib/dovecot.sh"
. "$here/../lib/verify.sh"
. "$here/lib_oracle.sh"
t_setup
dovecot_start
U=$DV_USER
for i in $(seq 1 12); do
	crlf_msg "$T/m$i" "Subject: lock $i" "Message-ID: <l$i@x>" "" "lock body $i"
done
dv_seed $U INBOX "$T"/m{1..12}
or_record $U INBOX
sessions() { ls "$DV_RAWLOG/$U"/*.in 2>/dev/null | wc -l; }
child_of() { # PID: the mailsync below PID (strace, maybe a subshell between)
	local i c g
	for ((i = 0; i < 50; i++)); do
		for c in $(pgrep -P "$1"); do
			for g in $c $(pgrep -P "$c"); do
				[ "$(cat /proc/$g/comm 2>/dev/null)" = mailsync ] &&
					{ echo "$g"; return 0; }
			done
		done
		sleep 0.1
	done
	return 1
}

# ---- (a) a second run while the first holds the lock ----
ms_write_config "$T/a.ini" lk imaps "maildir:$T/A" policy=keep
# the first run sleeps 3 s on its first rename into the Maildir
ms_strace -f -qq -o /dev/null -e trace=renameat2 \
	-e inject=renameat2:delay_enter=2000000:when=1 \
	"$MAILSYNC" -c "$T/a.ini" >"$T/out.a1" 2>"$T/err.a1" &
spid=$!
mpid=$(child_of $spid)
for ((i = 0; i < 50; i++)); do # until it has files in tmp/
	[ -n "$(ls "$T/A/INBOX/tmp" 2>/dev/null)" ] && break
	sleep 0.1
done
s0=$(sessions)
snap0=$(find "$T/A" "$T/state" -printf '%p %s %T@\n' | sort)
start=$(date +%s%N)
run_ms -c "$T/a.ini"
took=$((($(date +%s%N) - start) / 1000000))
assert_eq "$RC" 75 "F37a: second run exits 75"
assert_eq "$ERR" "mailsync: lk: locked by pid $mpid" "F37a: one line, the account once, the first run's pid ($mpid)"
assert_eq "$([ $took -lt 2000 ] && echo fast)" fast "F37a: at once (${took} ms)"
assert_eq "$(find "$T/A" "$T/state" -printf '%p %s %T@\n' | sort)" "$snap0" "F37a: nothing local touched"
wait $spid
assert_eq "$? $(cat "$T/err.a1")" "0 " "F37a: the first run completes"
assert_eq "$(sessions)" "$((s0))" "F37a: the second run opened no IMAP session"
assert_eq "$(verify_maildir $U INBOX "$T/A/INBOX")" "12 0" "F37a: the first run stored all 12"

# ---- (b) kill -9 in the middle, then a clean run ----
ms_write_config "$T/b.ini" kb imaps "maildir:$T/B" policy=delete
ms_strace -f -qq -o /dev/null -e trace=renameat2 \
	-e inject=renameat2:delay_enter=2000000:when=5 \
	"$MAILSYNC" -c "$T/b.ini" >/dev/null 2>&1 &
spid=$!
mpid=$(child_of $spid)
for ((i = 0; i < 50; i++)); do
	[ "$(ls "$T/B/INBOX/new" 2>/dev/null | wc -l)" -ge 4 ] && break
	sleep 0.1
done
kill -9 "$mpid"
wait $spid 2>/dev/null
or_check $U INBOX maildir "$T/B/INBOX" "F37b after kill -9"
run_ms -c "$T/b.ini"
# the one notice allowed: messages the killed run stored but did not record
ERR=$(grep -Ev '^mailsync: kb/INBOX: [0-9]+ messages were stored but not recorded \(an interrupted run\); recorded now, not fetched again$' <<<"$ERR")
assert_eq "$RC $ERR" "0 " "F37b: after kill -9 the lock is free and the next run exits 0"
or_complete $U INBOX maildir "$T/B/INBOX" "F37b"

# ---- (c) the mbox held by another program ----
dv_seed $U INBOX "$T"/m{1..3}
mkdir -p "$T/C"
printf 'From x@y Mon Jan  1 00:00:00 2024\nSubject: old\n\nold\n\n' >"$T/C/INBOX"
size0=$(stat -c %s "$T/C/INBOX")
ms_write_config "$T/c.ini" mc imaps "mbox:$T/C" policy=delete
export MAILSYNC_MBOX_LOCK_TIMEOUT=2
ms_hold_fcntl "$T/C/INBOX" 6
hpid=$HOLD_PID
dv_rawlog_clear $U
start=$(date +%s%N)
run_ms -c "$T/c.ini"
took=$((($(date +%s%N) - start) / 1000000))
kill "$hpid" 2>/dev/null
wait "$hpid" 2>/dev/null
assert_eq "$RC" 75 "F37c fcntl: held mbox exits 75"
assert_match "$ERR" "mbox $T/C/INBOX is locked by" "F37c fcntl: the message names the mbox"
assert_eq "$([ $took -ge 1900 ] && [ $took -lt 5000 ] && echo bounded)" bounded \
	"F37c fcntl: waited about the lock timeout (${took} ms)"
assert_eq "$(stat -c %s "$T/C/INBOX")" "$size0" "F37c fcntl: nothing appended"
assert_eq "$(dv_commands $U | grep -Eci ' (UID )?(STORE|EXPUNGE)')" 0 "F37c fcntl: nothing deleted on the server"
assert_eq "$(dv_count $U INBOX)" 3 "F37c fcntl: all 3 still on the server"
# a fresh dotlock of another program that is alive (this shell)
echo $$ >"$T/C/INBOX.lock"
dv_rawlog_clear $U
run_ms -c "$T/c.ini"
assert_eq "$RC" 75 "F37c dotlock: fresh INBOX.lock exits 75"
assert_match "$ERR" "mbox $T/C/INBOX is locked by another program \\(dotlock" "F37c dotlock: names the dotlock"
assert_eq "$(stat -c %s "$T/C/INBOX") $(cat "$T/C/INBOX.lock")" "$size0 $$" \
	"F37c dotlock: nothing appended, the other program's dotlock left alone"
assert_eq "$(dv_commands $U | grep -Eci ' (UID )?(STORE|EXPUNGE)')" 0 "F37c dotlock: nothing deleted on the server"
rm -f "$T/C/INBOX.lock"
run_ms -c "$T/c.ini"
assert_eq "$RC $(dv_count $U INBOX)" "0 0" "F37c: once free, the run stores and deletes"
assert_eq "$(python3 "$here/../lib/mboxrd_split.py" "$T/C/INBOX" "$T/c.split")" 4 "F37c: old message + 3"
unset MAILSYNC_MBOX_LOCK_TIMEOUT

# ---- (d) two accounts, one Maildir and one mbox, at the same time ----
for i in $(seq 1 16); do
	crlf_msg "$T/p$i" "Subject: parallel $i" "Message-ID: <p$i@x>" "" "parallel $i" \
		"$(head -c $((i * 500)) /dev/zero | tr '\0' p)"
done
for kind in maildir mbox; do
	dv_seed $U INBOX "$T"/p{1..8}
	dv_seed $DV_USER2 INBOX "$T"/p{9..16}
	want=$(for i in $(seq 1 16); do crlf_to_lf <"$T/p$i" | sha256sum | cut -c1-64; done | sort)
	ms_write_config "$T/d1.ini" d1 imaps "$kind:$T/D$kind" policy=delete
	ms_write_config "$T/d2.ini" d2 imaps "$kind:$T/D$kind" policy=delete user=$DV_USER2
	"$MAILSYNC" -c "$T/d1.ini" >/dev/null 2>"$T/err.d1" &
	p1=$!
	"$MAILSYNC" -c "$T/d2.ini" >/dev/null 2>"$T/err.d2" &
	p2=$!
	wait $p1; r1=$?
	wait $p2; r2=$?
	assert_eq "$r1 $r2" "0 0" "F37d $kind: both accounts exit 0"
	if [ $kind = maildir ]; then
		got=$(or_local maildir "$T/Dmaildir/INBOX")
	else
		got=$(or_local mbox "$T/Dmbox/INBOX")
	fi
	assert_eq "$got" "$want" "F37d $kind: all 16 messages of both accounts present once, byte-identical"
	assert_eq "$(dv_count $U INBOX) $(dv_count $DV_USER2 INBOX)" "0 0" "F37d $kind: both server folders empty"
done
# ---- (e) SIGKILL while taking / holding the mbox dotlock ----
# The dotlock is a link() to a temporary file that already holds the pid:
# a kill before the link leaves no dotlock (only the temporary file, which
# the next run removes because its pid is dead), a kill after it leaves a
# dotlock naming the dead pid, which the next run removes at once.  Either
# way the next run takes the lock at once (never the 5-minute staleness).
for when in enter exit; do
	dv_seed $U INBOX "$T"/m{1..4}
	E=$T/E$when
	ms_write_config "$T/e$when.ini" e$when imaps "mbox:$E" policy=delete
	ms_strace -f -qq -o /dev/null -e trace=linkat \
		-e inject=linkat:delay_$when=3000000:when=1 \
		"$MAILSYNC" -c "$T/e$when.ini" >/dev/null 2>"$T/err.e$when" &
	spid=$!
	mpid=$(child_of $spid)
	for ((i = 0; i < 50; i++)); do
		ls "$E"/INBOX.lock.mailsync.* >/dev/null 2>&1 && break
		sleep 0.1
	done
	[ $when = exit ] && sleep 0.5 # the link is made before the delay
	kill -9 "$mpid"
	wait $spid 2>/dev/null
	if [ $when = enter ]; then
		assert_eq "$([ -e "$E/INBOX.lock" ] && echo lock) $(cat "$E"/INBOX.lock.mailsync.$mpid.* 2>/dev/null)" \
			" $mpid" "F37e kill before link(): no dotlock, the temporary file holds the pid"
	else
		assert_eq "$(cat "$E/INBOX.lock" 2>/dev/null)" "$mpid" \
			"F37e kill after link(): the dotlock holds the killed run's pid (never empty)"
	fi
	assert_eq "$(dv_count $U INBOX)" 4 "F37e $when: nothing deleted by the killed run"
	start=$(date +%s%N)
	RC=0
	ERR=$(MAILSYNC_MBOX_LOCK_TIMEOUT=30 timeout 60 "$MAILSYNC" -c "$T/e$when.ini" 2>&1 >/dev/null) || RC=$?
	took=$((($(date +%s%N) - start) / 1000000))
	if [ $when = exit ]; then
		assert_eq "$RC $ERR" "0 mailsync: e$when/INBOX: $E/INBOX.lock: removed the dotlock of a process that no longer exists" \
			"F37e $when: the next run exits 0, saying it removed the dead run's dotlock"
	else
		assert_eq "$RC $ERR" "0 " "F37e $when: the next run exits 0, silent"
	fi
	assert_eq "$([ $took -lt 10000 ] && echo 'at once')" "at once" "F37e $when: the lock taken at once (${took} ms)"
	assert_eq "$(ls -a "$E" | grep -c 'INBOX\.lock')" 0 "F37e $when: no dotlock nor temporary file left"
	assert_eq "$(dv_count $U INBOX) $(python3 "$here/../lib/mboxrd_split.py" "$E/INBOX" "$T/e$when.split")" \
		"0 4" "F37e $when: all 4 stored, server empty"
done
t_done
