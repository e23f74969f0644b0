#!/usr/bin/env bash
# F15: malformed and endless server responses.  One fake-server run per
# file in tests/faults/corpus/*.json (proto, faults, expected exit codes),
# under the normal binary and, when present, build-asan/mailsync
# (MAILSYNC_ASAN to override).  Each case proves: exit code as listed
# (76, or 75 for a transport fault), no crash or sanitizer report,
# finishes within 40 s, (optional keys: policy, default delete;
# hostile_ok: the server's odd body is legal and may be stored) nothing deleted (no UID STORE/EXPUNGE/DELE),
# nothing partial or hostile stored (every stored file is one of the
# server's real messages, tmp/ empty), an error line naming the account.
# CORPUS=name[,name] runs only those.
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$here/../lib/assert.sh"
. "$here/../lib/dovecot.sh"
. "$here/fake.sh"
t_setup
fake_cert
msgs=$(fk_gen 3 4000 c)
want=$(fk_want_hashes "$T"/c1 "$T"/c2 "$T"/c3)
bins=("$MAILSYNC")
asan=${MAILSYNC_ASAN:-$top/build-asan/mailsync}
[ -x "$asan" ] && bins+=("$asan")

i=0
for cf in "$here"/corpus/*.json; do
	name=$(basename "$cf" .json)
	[ -n "${CORPUS:-}" ] && [[ ",$CORPUS," != *",$name,"* ]] && continue
	read -r proto expect policy hostile_ok < <(python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print(c["proto"], ",".join(map(str,c["expect"])), c.get("policy", "delete"), int(c.get("hostile_ok", 0)))' "$cf")
	for bin in "${bins[@]}"; do
		i=$((i + 1))
		tag=$name$([ "$bin" = "$MAILSYNC" ] || echo "/asan")
		M=$T/M$i
		python3 -c 'import json,sys; sc={"folders":[{"name":"INBOX","messages":json.loads(sys.argv[2])}],"faults":json.load(open(sys.argv[3]))["faults"]}; json.dump(sc,open(sys.argv[1],"w"))' "$T/c$i.json" "$msgs" "$cf"
		fake_start "$proto" "$T/c$i.json" 1 45
		fake_config "$T/c$i.ini" "corp$i" "${proto}s" "maildir:$M" policy=$policy timeout=10
		t0=$(date +%s%N)
		ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
			timeout -k 5 60 "$bin" -c "$T/c$i.ini" >"$T/out" 2>"$T/err"
		RC=$?
		ms=$(( ($(date +%s%N) - t0) / 1000000 ))
		ERR=$(cat "$T/err")
		echo "# $tag: exit $RC in ${ms} ms: $(head -c 300 "$T/err" | head -2 | tr '\n' '|')"
		if [[ ",$expect," == *",$RC,"* ]]; then ok "$tag: exit $RC (allowed: $expect)"; else not_ok "$tag: exit in {$expect}" "got $RC" "$ERR"; fi
		assert_no_match "$ERR" 'AddressSanitizer|runtime error|LeakSanitizer' "$tag: no sanitizer report"
		if [ "$ms" -lt 40000 ]; then ok "$tag: bounded time (${ms} ms)"; else not_ok "$tag: bounded time" "$ms ms"; fi
		[ "$RC" = 0 ] || assert_match "$ERR" "corp$i" "$tag: error names the account"
		fake_stop
		assert_eq "$(fake_count '^(UID STORE|UID EXPUNGE|EXPUNGE|DELE)')" 0 "$tag: nothing deleted"
		bad=0
		for f in "$M"/*/new/* "$M"/*/cur/*; do
			[ -f "$f" ] || continue
			grep -qx "$(sha256sum <"$f" | cut -d' ' -f1)" <<<"$want" || bad=$((bad + 1))
		done
		[ "$hostile_ok" = 1 ] || assert_eq "$bad" 0 "$tag: nothing partial or hostile stored"
		assert_eq "$(find "$M" -type f -path "$M/*/tmp/*" 2>/dev/null | wc -l)" 0 "$tag: tmp/ empty"
	done
done
t_done
