#!/bin/sh
# tests/run.sh: run the unit tests and the integration and fault scripts,
# count TAP lines, and end with "N passed, N failed".
#   sh tests/run.sh            unit + integration + quick faults (make check)
#   sh tests/run.sh --faults   the slow fault suite (make faults)
#   sh tests/run.sh FILE...    only these scripts / unit binaries
# Needs MAILSYNC (the binary) and UNITDIR (built unit tests).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
: "${MAILSYNC:=$top/build/mailsync}"
: "${UNITDIR:=$top/build/tests}"
export MAILSYNC UNITDIR
log=$(mktemp -d /tmp/mailsync-tests.XXXXXX)
pass=0 fail=0

run_one() { # name command...
	name=$1; shift
	out="$log/$(echo "$name" | tr '/' '_').log"
	start=$(date +%s)
	timeout -k 10 900 "$@" >"$out" 2>&1
	rc=$?
	p=$(grep -c '^ok ' "$out")
	f=$(grep -c '^not ok ' "$out")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		echo "not ok - $name exited $rc" >>"$out"
	fi
	pass=$((pass + p)); fail=$((fail + f))
	secs=$(( $(date +%s) - start ))
	if [ "$f" -eq 0 ]; then
		printf '%-44s %4d ok   (%ss)\n' "$name" "$p" "$secs"
	else
		printf '%-44s %4d ok %3d FAILED (%ss)\n' "$name" "$p" "$f" "$secs"
		grep -E -A6 '^not ok' "$out" | head -60 | sed 's/^/    /'
		echo "    (full log: $out)"
	fi
}

mode=check
[ "${1:-}" = "--faults" ] && { mode=faults; shift; }

if [ $# -gt 0 ]; then
	for t in "$@"; do
		case $t in
		*.sh) run_one "$t" bash "$t" ;;
		*) run_one "$t" "$t" ;;
		esac
	done
elif [ $mode = check ]; then
	for t in "$UNITDIR"/test_*; do
		[ -x "$t" ] && run_one "unit/$(basename "$t")" "$t"
	done
	for t in "$top"/tests/integration/*.sh "$top"/tests/faults/quick_*.sh; do
		[ -f "$t" ] && run_one "${t#"$top"/tests/}" bash "$t"
	done
else
	for t in "$top"/tests/faults/slow_*.sh; do
		[ -f "$t" ] && run_one "${t#"$top"/tests/}" bash "$t"
	done
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
