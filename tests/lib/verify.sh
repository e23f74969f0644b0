# tests/lib/verify.sh: compare what mailsync stored with what the server has
# (bash; sourced after dovecot.sh).  Bytes are compared after CRLF -> LF,
# the only change the stores make.

MS_TEST_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# crlf_to_lf < in > out
crlf_to_lf() {
	python3 -c 'import sys; sys.stdout.buffer.write(sys.stdin.buffer.read().replace(b"\r\n", b"\n"))'
}

# md_file DIR UID: the Maildir file holding IMAP UID (new/ or cur/)
md_file() {
	local f
	for f in "$1"/cur/*,U="$2",V=* "$1"/new/*,U="$2",V=*; do
		[ -e "$f" ] && { echo "$f"; return 0; }
	done
	return 1
}

# stored_hashes maildir|mbox PATH: sorted SHA-256 (after CRLF -> LF, as
# sha_lf prints them) of every message in a Maildir folder or an mbox
stored_hashes() {
	if [ "$1" = maildir ]; then
		sha_lf "$2"/new/* "$2"/cur/*
	else
		rm -rf "$T/split.hashes" && mkdir -p "$T/split.hashes"
		[ -f "$2" ] && python3 "$MS_TEST_LIB/mboxrd_split.py" "$2" "$T/split.hashes" >/dev/null
		sha_lf "$T"/split.hashes/*
	fi
}

# cached_bytes FILE...: bytes of the files resident in the page cache
# (fincore, util-linux-extra); "fincore failed" rather than a vacuous 0
cached_bytes() {
	local out
	out=$(fincore --bytes --raw --noheadings -o RES "$@") || {
		echo "fincore failed"
		return
	}
	awk '{ n += $1 } END { print n + 0 }' <<<"$out"
}

# md_count DIR: messages in a Maildir folder
md_count() {
	find "$1/cur" "$1/new" -maxdepth 1 -type f 2>/dev/null | wc -l
}

# verify_maildir USER FOLDER DIR: prints "N BAD": N messages on the server,
# BAD of them missing locally or not byte-identical.
verify_maildir() {
	local u=$1 f=$2 dir=$3 n=0 bad=0 uid file
	for uid in $(dv_uids "$u" "$f"); do
		n=$((n + 1))
		if ! file=$(md_file "$dir" "$uid"); then
			bad=$((bad + 1)); echo "# missing: $f UID $uid" >&2; continue
		fi
		dv_body "$u" "$f" "$uid" | crlf_to_lf >"$T/verify.exp"
		if ! cmp -s "$T/verify.exp" "$file"; then
			bad=$((bad + 1)); echo "# differs: $f UID $uid ($file)" >&2
		fi
	done
	echo "$n $bad"
}

# crlf_msg FILE LINE...: write a message with CRLF line ends
crlf_msg() {
	local out=$1; shift
	: >"$out"
	local l
	for l in "$@"; do printf '%s\r\n' "$l" >>"$out"; done
}

# dv_import_inbox USER FILE...: append many messages to INBOX at once
# (doveadm import from a scratch Maildir; UIDs follow the argument order).
# Much faster than one `doveadm save` per message.
dv_import_inbox() {
	local u=$1 src i=0 file
	shift
	src=$(mktemp -d "$T/import.XXXXXX") || return 1
	mkdir -p "$src/cur" "$src/new" "$src/tmp"
	for file in "$@"; do
		i=$((i + 1))
		cp "$file" "$src/cur/$(printf %08d $i).import:2,"
	done
	chown -R nobody:nogroup "$src" && chmod a+x "$T" &&
		dv_doveadm import -u "$u" -s "maildir:$src" "" all
}

# sha_lf FILE...: sorted SHA-256 of each file after CRLF -> LF (one process)
sha_lf() {
	python3 - "$@" <<'PY'
import hashlib, sys
import os
print("\n".join(sorted(hashlib.sha256(open(f, "rb").read().replace(b"\r\n", b"\n")).hexdigest() + "  -" for f in sys.argv[1:] if os.path.isfile(f))))
PY
}

# assert_same_set GOT WANT NAME: two newline-separated lists (e.g. sorted
# hashes) are equal; on failure print the sizes and the first differences
# instead of both lists.
assert_same_set() {
	if [ "$1" = "$2" ]; then
		ok "$3"
	else
		not_ok "$3" "got $(grep -c . <<<"$1") lines, want $(grep -c . <<<"$2")" \
			"only in got: $(comm -23 <(sort <<<"$1") <(sort <<<"$2") | head -3 | tr '\n' ' ')" \
			"only in want: $(comm -13 <(sort <<<"$1") <(sort <<<"$2") | head -3 | tr '\n' ' ')"
	fi
}

# ms_strace ARGS...: strace with LeakSanitizer off (it cannot run under
# ptrace and would turn every exit code into 1 under `make sanitize`; the
# rest of ASan/UBSan stays on)
ms_strace() {
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 strace "$@"
}

# ms_use_faketime: libfaketime is an LD_PRELOAD, so an ASan build must not
# insist on coming first; skips the whole test when faketime is missing
ms_use_faketime() {
	export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0
	command -v faketime >/dev/null || { echo "1..0 # SKIP faketime not installed"; exit 0; }
}

# ms_hold_fcntl FILE SECONDS: another program holds an fcntl write lock on
# FILE for SECONDS; returns once the lock is held, its pid in HOLD_PID
ms_hold_fcntl() {
	local ready
	ready=$(mktemp -u "${T:-/tmp}/held.XXXXXX")
	python3 -c '
import fcntl, sys, time
f = open(sys.argv[1], "r+")
fcntl.lockf(f, fcntl.LOCK_EX)
open(sys.argv[2], "w").close()
time.sleep(float(sys.argv[3]))' "$1" "$ready" "$2" &
	HOLD_PID=$!
	for ((i = 0; i < 50; i++)); do [ -e "$ready" ] && break; sleep 0.1; done
	rm -f "$ready"
}
