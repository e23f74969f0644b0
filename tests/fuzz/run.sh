#!/bin/sh
# tests/fuzz/run.sh: the fuzz targets (one per parser: IMAP responses,
# POP3 replies, names/paths, mbox quoting, state files, the config).
#   sh tests/fuzz/run.sh [SECONDS]  libFuzzer + ASan/UBSan (clang), each
#                                   target SECONDS (default 60) seeded from
#                                   tests/fuzz/corpus/NAME; findings are
#                                   written to build-fuzz/findings/
#   sh tests/fuzz/run.sh --replay   replay the corpora with the ordinary
#                                   compiler under ASan/UBSan (make check)
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
B=build-fuzz
PKG_LIBS=$(pkg-config --libs libcurl openssl libarchive inih)
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all"
mkdir -p "$B"

build_core() { # CC FLAGS OUTDIR
	mkdir -p "$3"
	for c in core/*.c; do
		o="$3/$(basename "$c" .c).o"
		[ "$o" -nt "$c" ] || $1 -std=c11 -D_GNU_SOURCE -g -O1 $2 -Icore \
			-c "$c" -o "$o" || return 1
	done
}

if [ "${1:-}" = "--replay" ]; then
	build_core cc "$SAN" "$B/replay-core" || exit 1
	n=0
	for t in tests/fuzz/fuzz_*.c; do
		name=$(basename "$t" .c)
		corpus=tests/fuzz/corpus/${name#fuzz_}
		cc -std=c11 -D_GNU_SOURCE -g -O1 $SAN -Icore -o "$B/$name.replay" \
			"$t" tests/fuzz/standalone.c "$B"/replay-core/*.o $PKG_LIBS ||
			{ echo "not ok - build $name"; continue; }
		files=$(find "$corpus" -type f 2>/dev/null | sort)
		[ -n "$files" ] || { echo "not ok - $name: empty corpus $corpus"; continue; }
		# shellcheck disable=SC2086
		if "$B/$name.replay" $files >"$B/$name.replay.log" 2>&1; then
			echo "ok $((n += 1)) - $name: $(grep -c '^ok' "$B/$name.replay.log") corpus files replayed clean"
		else
			echo "not ok $((n += 1)) - $name: replay failed"
			tail -20 "$B/$name.replay.log" | sed 's/^/#   /'
		fi
	done
	exit 0
fi

secs=${1:-60}
command -v clang >/dev/null || { echo "fuzz: clang is needed (make setup)" >&2; exit 1; }
build_core clang "-fsanitize=fuzzer-no-link,address,undefined" "$B/fuzz-core" || exit 1
mkdir -p "$B/findings"
fail=0
for t in tests/fuzz/fuzz_*.c; do
	name=$(basename "$t" .c)
	seeds=tests/fuzz/corpus/${name#fuzz_}
	work="$B/corpus/$name"
	mkdir -p "$work"
	clang -g -O1 -fsanitize=fuzzer,address,undefined -Icore -o "$B/$name" \
		"$t" "$B"/fuzz-core/*.o $PKG_LIBS || { fail=1; continue; }
	echo "fuzz: $name for ${secs}s"
	if ! "$B/$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$B/findings/$name-" "$work" "$seeds" \
		>"$B/$name.log" 2>&1; then
		echo "fuzz: $name FOUND A PROBLEM: see $B/$name.log and $B/findings/" >&2
		fail=1
	else
		grep -E '^Done|stat::number_of_executed_units' "$B/$name.log" | tail -1
	fi
done
exit $fail
