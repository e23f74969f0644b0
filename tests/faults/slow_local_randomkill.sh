#!/usr/bin/env bash
# F06 kill -9 at random moments: 300 mixed-size messages (gen_corpus.py) in
# 3 folders, policies keep and delete, Maildir and mbox: 210 at the start,
# one more per folder before each of 30 runs cut by `timeout -s KILL R`
# with R random in 0.010..0.159 s or 0..2 s (so there is always work to cut),
# then a clean run.
# After every kill: every message gone from the server is stored locally,
# byte-identical (O1/O3), and no duplicate (O2); after the clean run: every
# message stored (and, for delete, the server empty), and the run after
# that fetches, deletes and stores nothing (O6).  CRASH_LENIENT=1 tolerates
# duplicates and stale dotlocks (bugs fixed in 6550ff7, d430a91).  A kill
# never leaves an empty dotlock (it is link()ed from a temporary file that
# already holds the pid): one found fails the test.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/assert.sh"
. "$here/../lib/dovecot.sh"
. "$here/../lib/verify.sh"
. "$here/lib_oracle.sh"
t_setup
cp "$MAILSYNC" "$T/mailsync" && MAILSYNC=$T/mailsync
dovecot_start
U=$DV_USER
FOLDERS="INBOX Work Archive"
ITER=${F06_ITER:-30}
[ "${CRASH_LENIENT:-0}" = 1 ] &&
	ORACLE_DUP_KNOWN="stored again after a kill between the store commit and the state record"
python3 "$here/../lib/gen_corpus.py" "$T/corpus" --count 300 --seed 6 >/dev/null
seed_all() { # empty the folders, append 70 corpus messages (1..210) to each
	local k=0 f i files
	for f in $FOLDERS; do
		dv_doveadm expunge -u $U mailbox "$f" all 2>/dev/null
		files=$(for ((i = k + 1; i <= k + 70; i++)); do printf '%s/%05d.eml ' "$T/corpus" $i; done)
		python3 "$here/../lib/imap_append.py" "$DV_IMAPS_PORT" "$DV_CA" $U "$DV_PASS" "$f" 0 $files
		or_record_files $U "$f" $files
		k=$((k + 70))
	done
}
RANDOM=6
stale=0
for variant in keep-maildir keep-mbox delete-maildir delete-mbox; do
	policy=${variant%-*} kind=${variant#*-}
	seed_all
	M=$T/$variant
	ms_write_config "$T/$variant.ini" "rk-$variant" imaps "$kind:$M" policy=$policy
	killed=0
	for ((it = 1; it <= ITER; it++)); do
		for ((j = 0; j < 3; j++)); do # message 211 + 3 (it - 1) + j
			f=$(echo $FOLDERS | cut -d' ' -f$((j + 1)))
			or_append_files $U "$f" "$(printf '%s/%05d.eml' "$T/corpus" $((211 + 3 * (it - 1) + j)))"
		done
		if ((RANDOM % 2)); then # in the connect/login phase or just after
			r=0.$(printf '%03d' $((RANDOM % 150 + 10)))
		else # anywhere in the first big run, or in a small one
			r=$(printf '%d.%03d' $((RANDOM % 2)) $((RANDOM % 1000)))
		fi
		{ timeout -s KILL "$r" "$MAILSYNC" -c "$T/$variant.ini" >/dev/null 2>"$T/err.$it"; } 2>/dev/null
		rc=$?
		[ $rc = 137 ] && killed=$((killed + 1))
		case $rc in 0 | 137) ;; *)
			not_ok "F06 $variant run $it: exit 0 or killed" "rc $rc: $(head -3 "$T/err.$it")" ;;
		esac
		for f in $FOLDERS; do
			p=$M/$f
			if [ $kind = mbox ] && [ -e "$p.lock" ] && [ "${CRASH_LENIENT:-0}" = 1 ]; then
				stale=$((stale + 1))
				touch -d '-6 minutes' "$p.lock"
			elif [ $kind = mbox ] && [ -f "$p.lock" ] && [ ! -s "$p.lock" ]; then
				# the dotlock is link()ed from a file that already
				# holds the pid: a kill never leaves it empty
				not_ok "F06 $variant run $it $f: no empty dotlock after SIGKILL"
			fi
			or_check $U "$f" "$kind" "$p" "F06 $variant run $it (rc $rc, ${r}s) $f" >"$T/tap"
			grep -v '^ok' "$T/tap"
			T_FAIL=$((T_FAIL + $(grep -c '^not ok' "$T/tap")))
		done
	done
	ok "F06 $variant: $ITER runs, $killed killed by SIGKILL, $(or_local "$kind" "$M/INBOX" | wc -l) of $((70 + ITER)) INBOX messages stored by them; O1/O3 and O2 checked after each"
	run_ms -c "$T/$variant.ini"
	ERR=$(grep -v 'removed a stale dotlock\|cut [0-9]* bytes of an unfinished append\|state was missing; rebuilt\|removed the dotlock of a process that no longer exists\|were stored but not recorded (an interrupted run)' <<<"$ERR")
	assert_eq "$RC $ERR" "0 " "F06 $variant: the clean run exits 0 (recovery notices only)"
	for f in $FOLDERS; do
		if [ $policy = delete ]; then
			or_complete $U "$f" "$kind" "$M/$f" "F06 $variant $f"
		else
			assert_eq "$(or_local "$kind" "$M/$f" | uniq | sha256sum)" \
				"$(cut -d' ' -f2 "$T/oracle/$f.exp" | sort -u | sha256sum)" \
				"F06 $variant $f: every message stored, byte-identical"
			assert_eq "$(dv_count $U "$f")" $((70 + ITER)) "F06 $variant $f: all $((70 + ITER)) still on the server"
		fi
	done
	or_idempotent $U "$kind" "$M/INBOX" "F06 $variant" -c "$T/$variant.ini"
done
[ "$stale" = 0 ] || echo "# stale dotlocks aged by the test (CRASH_LENIENT): $stale"
t_done
