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
	dup=$(uniq -d "$T/oracle/local" | wc -l)
	assert_eq "$dup" 0 "$label: O2 no local duplicate"
}

or_complete() {
	local u=$1 f=$2 kind=$3 p=$4 label=$5
	local exp="$T/oracle/${f//\//_}.exp"
	assert_eq "$(or_local "$kind" "$p" | sha256sum)" \
		"$(cut -d' ' -f2 "$exp" | sort | sha256sum)" \
		"$label: every message stored exactly once, byte-identical"
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
