# tests/faults/lib_oracle.sh: oracles for the local fault tests (bash;
# sourced after tests/lib/assert.sh, dovecot.sh and verify.sh).
#
# A message is known by the SHA-256 of its bytes as the server sends them
# with CRLF turned into LF (dv_body | crlf_to_lf), the only change the
# stores make; mbox files are split with tests/lib/mboxrd_split.py (an
# independent mboxrd reader).
#
#   or_record U F          remember "UID SHA" of every message now in
#                          folder F (call right after seeding) in
#                          $T/oracle/F.exp
#   or_local KIND PATH     "SHA" of every message stored locally, sorted
#                          (KIND maildir: PATH is the folder's Maildir;
#                          KIND mbox: PATH is the mbox file)
#   or_check U F KIND PATH LABEL
#                          O1/O3: every recorded message is still on the
#                          server or byte-identical locally;
#                          O2: no local duplicate (one assert each)
#   or_complete U F KIND PATH LABEL
#                          after a clean delete-mode run: the local store
#                          holds exactly the recorded messages, once each,
#                          and the folder is empty on the server
#   or_idempotent U KIND PATH LABEL [mailsync args...]
#                          O6: the next run exits 0, fetches nothing,
#                          deletes nothing, changes no flag, stores nothing
#   ms_strace is in tests/lib/verify.sh

ORACLE_SPLIT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../lib" && pwd)/mboxrd_split.py

or_record() {
	local u=$1 f=$2 uid
	mkdir -p "$T/oracle"
	for uid in $(dv_uids "$u" "$f"); do
		echo "$uid $(dv_body "$u" "$f" "$uid" | crlf_to_lf | sha256sum | cut -c1-64)"
	done >"$T/oracle/${f//\//_}.exp"
}

or_local() {
	local kind=$1 p=$2 d
	if [ "$kind" = maildir ]; then
		find "$p/new" "$p/cur" -maxdepth 1 -type f -print0 2>/dev/null |
			xargs -0 -r sha256sum | cut -c1-64 | sort
	else
		[ -f "$p" ] || return 0
		d=$(mktemp -d "$T/split.XXXXXX")
		python3 "$ORACLE_SPLIT" "$p" "$d" >/dev/null
		find "$d" -type f -print0 | xargs -0 -r sha256sum | cut -c1-64 | sort
		rm -rf "$d"
	fi
}

or_check() {
	local u=$1 f=$2 kind=$3 p=$4 label=$5 uid sha lost="" dup on
	local exp="$T/oracle/${f//\//_}.exp"
	on=" $(dv_uids "$u" "$f") "
	or_local "$kind" "$p" >"$T/oracle/local"
	while read -r uid sha; do
		case $on in *" $uid "*) continue ;; esac
		grep -qx "$sha" "$T/oracle/local" || lost="$lost $uid"
	done <"$exp"
	assert_eq "${lost# }" "" "$label: O1/O3 every message gone from the server is stored locally"
	dup=$(($(wc -l <"$T/oracle/local") - $(uniq "$T/oracle/local" | wc -l)))
	if [ -n "${ORACLE_DUP_KNOWN:-}" ] && [ "$dup" != 0 ]; then
		echo "# KNOWN BUG ($ORACLE_DUP_KNOWN): $label: $dup duplicate(s)"
	else
		assert_eq "$dup" 0 "$label: O2 no local duplicate"
	fi
}

or_complete() {
	local u=$1 f=$2 kind=$3 p=$4 label=$5 dup
	local exp="$T/oracle/${f//\//_}.exp"
	or_local "$kind" "$p" >"$T/oracle/local"
	assert_eq "$(uniq "$T/oracle/local" | sha256sum)" \
		"$(cut -d' ' -f2 "$exp" | sort -u | sha256sum)" \
		"$label: every message stored, byte-identical (O1)"
	dup=$(($(wc -l <"$T/oracle/local") - $(uniq "$T/oracle/local" | wc -l)))
	if [ -n "${ORACLE_DUP_KNOWN:-}" ] && [ "$dup" != 0 ]; then
		# a known engine bug, reported but not failed (see the caller)
		echo "# KNOWN BUG ($ORACLE_DUP_KNOWN): $label: $dup duplicate(s)"
		ORACLE_DUPS=$((${ORACLE_DUPS:-0} + dup))
	else
		assert_eq "$dup" 0 "$label: each message exactly once (O2)"
	fi
	assert_eq "$(dv_count "$u" "$f")" 0 "$label: server folder empty"
}

or_idempotent() {
	local u=$1 kind=$2 p=$3 label=$4 before flags_before cmds
	shift 4
	before=$(or_local "$kind" "$p" | sha256sum)
	flags_before=$(dv_flags "$u" INBOX 2>/dev/null)
	dv_rawlog_clear "$u"
	run_ms "$@"
	assert_eq "$RC" 0 "$label: O6 next run exits 0"
	cmds=$(dv_commands "$u" | grep -Ei ' (UID FETCH .*BODY|UID STORE|UID EXPUNGE|EXPUNGE|STORE)|^(RETR|DELE) ')
	assert_eq "$cmds" "" "$label: O6 next run fetches and deletes nothing"
	assert_eq "$(or_local "$kind" "$p" | sha256sum)" "$before" \
		"$label: O6 next run stores nothing"
	assert_eq "$(dv_flags "$u" INBOX 2>/dev/null)" "$flags_before" \
		"$label: O6 server flags unchanged"
}

# crash_matrix PROTO KIND SYSCALLS NMSG LABEL
#   Crash consistency: for every syscall S in SYSCALLS (comma separated)
#   and every N from 1 until a run is no longer killed (at most 80): seed
#   NMSG fresh messages into U's INBOX, run a delete-mode sync into a fresh
#   store under `strace -e inject=S:signal=SIGKILL:when=N`, check O1/O3 and
#   O2 right after the kill, then run once without faults and check that
#   the result equals the fault-free one (every message exactly once and
#   byte-identical, server empty).  PROTO imaps|pop3s, KIND maildir|mbox.
#   Two engine bugs this found (fixed in 6550ff7 and d430a91) can be
#   tolerated with CRASH_LENIENT=1 (for bisecting older builds): a kill
#   after the store commit (Maildir rename, mbox append + index) but before
#   the state record made the clean run store the messages again (counted
#   in ORACLE_DUPS), and mailsync's own mbox dotlock outlived SIGKILL and
#   blocked runs for 5 minutes (the test then ages it; ORACLE_STALE).
#   Uses $U; prints one summary assert per syscall (plus failures).
crash_matrix() {
	local proto=$1 kind=$2 calls=$3 nmsg=$4 label=$5 s n i d store path
	local killed fails dups aged ORACLE_DUP_KNOWN=
	[ "${CRASH_LENIENT:-0}" = 1 ] &&
		ORACLE_DUP_KNOWN="stored again after a kill between the store commit and the state record"
	ORACLE_DUPS=0
	for s in ${calls//,/ }; do
		killed=0 fails=$T_FAIL dups=$ORACLE_DUPS
		for ((n = 1; n <= 80; n++)); do
			d=$T/crash/$proto-$kind-$s-$n
			mkdir -p "$d"
			dv_doveadm expunge -u "$U" mailbox INBOX all 2>/dev/null
			for ((i = 1; i <= nmsg; i++)); do
				crlf_msg "$d/m$i" "Subject: crash $s $n $i" \
					"Message-ID: <c.$s.$n.$i.$RANDOM@x>" "" \
					"body $i of $label $s $n" "$(head -c $((i * 3000)) /dev/zero | tr '\0' c)"
			done
			dv_seed "$U" INBOX "$d"/m*
			or_record "$U" INBOX
			case $proto-$kind in
			*-maildir) store=maildir:$d/Mail path=$d/Mail/INBOX ;;
			imaps-mbox) store=mbox:$d/Mail path=$d/Mail/INBOX ;;
			pop3s-mbox) store=mbox:$d/in.mbox path=$d/in.mbox ;;
			esac
			ms_write_config "$d/c.ini" crash "$proto" "$store" policy=delete user="$U"
			{ ms_strace -f -qq -o /dev/null -e trace="$s" \
				-e inject="$s":signal=SIGKILL:when=$n \
				"$MAILSYNC" -c "$d/c.ini" >"$d/out1" 2>"$d/err1"; } 2>/dev/null
			RC=$?
			if [ "$RC" = 0 ]; then
				# no N-th call: the run completed; it must be complete
				or_complete "$U" INBOX "$kind" "$path" "$label $s: fault-free run (N=$n)" >"$d/tap"
				if grep '^not ok' "$d/tap"; then
					T_FAIL=$((T_FAIL + $(grep -c '^not ok' "$d/tap")))
					grep -A3 '^not ok' "$d/tap" | grep '^#' | head -6
				fi
				break
			fi
			if [ "$RC" != 137 ]; then
				not_ok "$label $s N=$n: killed run ends with SIGKILL" "rc $RC: $(head -3 "$d/err1")"
				break
			fi
			killed=$((killed + 1)) aged=0
			if [ "$kind" = mbox ] && [ -e "$path.lock" ] && [ "${CRASH_LENIENT:-0}" = 1 ]; then
				# known: mailsync's own dotlock outlives SIGKILL and
				# blocks every run (exit 75) until it is 5 minutes old
				echo "# KNOWN BUG (CRASH_LENIENT; stale dotlock after SIGKILL): $label $s N=$n"
				ORACLE_STALE=$((${ORACLE_STALE:-0} + 1))
				touch -d '-6 minutes' "$path.lock"
				aged=1
			fi
			{
				or_check "$U" INBOX "$kind" "$path" "$label $s N=$n after the kill"
				run_ms -c "$d/c.ini"
				# recovery notices are fine: an aged dotlock removed,
				# an interrupted mbox append cut away, state rebuilt,
				# stored-but-unrecorded messages recorded
				[ $aged = 1 ] && ERR=$(grep -Ev "^mailsync: crash(/INBOX)?: $path.lock: removed a stale dotlock" <<<"$ERR")
				ERR=$(grep -Ev "^mailsync: crash(/INBOX)?: $path.lock: removed the dotlock of a process that no longer exists\$" <<<"$ERR")
				ERR=$(grep -Ev "^mailsync: crash(/INBOX)?: $path: cut [0-9]+ bytes of an unfinished append \(interrupted run\)\$|^mailsync: crash/INBOX: state was missing; rebuilt from the store: [0-9]+ messages\$|^mailsync: crash/INBOX: [0-9]+ messages were stored but not recorded \(an interrupted run\); recorded now, not fetched again\$" <<<"$ERR")
				assert_eq "$RC $ERR" "0 " "$label $s N=$n: the clean run exits 0 (recovery notices only)"
				or_complete "$U" INBOX "$kind" "$path" "$label $s N=$n after the clean run"
			} >"$d/tap"
			grep '^# KNOWN' "$d/tap"
			if grep '^not ok' "$d/tap"; then
				T_FAIL=$((T_FAIL + $(grep -c '^not ok' "$d/tap")))
				grep -A3 '^not ok' "$d/tap" | grep '^#' | head -6
			else
				rm -rf "$d"
			fi
		done
		if [ "$T_FAIL" = "$fails" ] && [ "$killed" = 0 ]; then
			ok "$label $s: not called by this run (nothing to kill)"
		elif [ "$T_FAIL" = "$fails" ]; then
			dups=$((ORACLE_DUPS - dups))
			ok "$label $s: killed at each of $killed calls: O1 O2 O3 after each kill; the clean run: all stored, server empty$([ $dups = 0 ] || echo " ($dups known duplicates)")"
		else
			not_ok "$label $s: crash consistency ($killed kill points, $((T_FAIL - fails)) failed checks)"
			T_FAIL=$((T_FAIL - 1))
		fi
	done
}

# or_record_files U F FILE...: like or_record for a folder that was empty
# and got FILE... appended in this order (UIDs ascending), hashing the files
# themselves (CRLF -> LF) instead of fetching every body back: for messages
# with CRLF line ends only, which is what Dovecot sends back.
or_record_files() {
	local u=$1 f=$2
	shift 2
	mkdir -p "$T/oracle"
	paste -d' ' <(dv_uids "$u" "$f" | tr ' ' '\n') <(python3 -c '
import hashlib, sys
for p in sys.argv[1:]:
    d = open(p, "rb").read()
    if b"\n" in d.replace(b"\r\n", b""):
        sys.exit("or_record_files: %s has a bare LF" % p)
    print(hashlib.sha256(d.replace(b"\r\n", b"\n")).hexdigest())' "$@") \
		>"$T/oracle/${f//\//_}.exp"
}

# or_append_files U F FILE...: append FILE... to folder F over IMAP and add
# them to F's record (their UIDs are the new ones above every recorded UID)
or_append_files() {
	local u=$1 f=$2 max exp pw=$DV_PASS
	shift 2
	exp="$T/oracle/${f//\//_}.exp"
	[ "$u" = "$DV_USER2" ] && pw=$DV_PASS2
	python3 "$(dirname "$ORACLE_SPLIT")/imap_append.py" "$DV_IMAPS_PORT" "$DV_CA" "$u" "$pw" "$f" 0 "$@" || return 1
	max=$(cut -d' ' -f1 "$exp" | sort -n | tail -1)
	paste -d' ' <(dv_uids "$u" "$f" | tr ' ' '\n' | awk -v m="${max:-0}" '$1 > m') \
		<(python3 -c '
import hashlib, sys
for p in sys.argv[1:]:
    print(hashlib.sha256(open(p, "rb").read().replace(b"\r\n", b"\n")).hexdigest())' "$@") >>"$exp"
}
