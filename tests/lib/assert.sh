# tests/lib/assert.sh: TAP assertions for shell tests (sourced).
# Every assertion prints exactly one "ok N - name" / "not ok N - name".
T_N=0
T_FAIL=0
ok() { T_N=$((T_N + 1)); echo "ok $T_N - $1"; }
not_ok() { T_N=$((T_N + 1)); T_FAIL=$((T_FAIL + 1)); echo "not ok $T_N - $1"; shift; for l in "$@"; do echo "#   $l"; done; }
# assert_eq GOT WANT NAME
assert_eq() {
	if [ "$1" = "$2" ]; then ok "$3"; else not_ok "$3" "got:  '$1'" "want: '$2'"; fi
}
assert_ne() {
	if [ "$1" != "$2" ]; then ok "$3"; else not_ok "$3" "both: '$1'"; fi
}
# assert_match TEXT REGEX NAME (grep -E)
assert_match() {
	if printf '%s\n' "$1" | grep -Eq -- "$2"; then ok "$3"; else not_ok "$3" "text:  '$1'" "regex: '$2'"; fi
}
assert_no_match() {
	if printf '%s\n' "$1" | grep -Eq -- "$2"; then not_ok "$3" "text:  '$1'" "regex: '$2'"; else ok "$3"; fi
}
# assert_files_eq A B NAME (byte-identical)
assert_files_eq() {
	if cmp -s "$1" "$2"; then ok "$3"; else not_ok "$3" "$1 and $2 differ"; fi
}
# run_ms [args...]: run $MAILSYNC, capture RC, OUT (stdout), ERR (stderr)
run_ms() {
	"$MAILSYNC" "$@" >"$T/out" 2>"$T/err"
	RC=$?
	OUT=$(cat "$T/out"); ERR=$(cat "$T/err")
}
t_done() { echo "1..$T_N"; [ "$T_FAIL" -eq 0 ]; }
