#!/usr/bin/env bash
# F11b: the server stalls (at the greeting, in the TLS handshake, in the
# middle of a literal / RETR body) with timeout = 3: mailsync gives up
# within 3*timeout + 5 s, exits 75 with "timeout" in its message, stores
# no partial message, deletes nothing, and releases the account lock (a
# following run can start and succeeds once the server behaves).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/assert.sh"
. "$here/../lib/dovecot.sh"
. "$here/fake.sh"
t_setup
fake_cert
msgs=$(fk_gen 3 200000 st)
bound=$((3 * 3 + 5))

stall_case() { # name proto faults-json
	local name=$1 proto=$2 flt=$3 t0 t1 M=$T/Mail-$1
	fk_scenario "$T/$name.json" "$msgs" "$flt"
	fake_start "$proto" "$T/$name.json" 2 60
	fake_config "$T/$name.ini" "s-$name" "${proto}s" "maildir:$M" policy=delete timeout=3
	t0=$(date +%s.%N)
	run_ms -c "$T/$name.ini"
	t1=$(date +%s.%N)
	assert_eq "$RC" 75 "$name: exit 75"
	assert_match "$ERR" "s-$name.*time(d)? ?out" "$name: message names the account and the timeout"
	local secs
	secs=$(python3 -c "print(int($t1 - $t0))")
	echo "# $name: gave up after $(python3 -c "print(round($t1 - $t0, 1))") s"
	if [ "$secs" -lt "$bound" ]; then ok "$name: gave up within ${bound} s (${secs} s)"; else not_ok "$name: gave up within ${bound} s" "took $secs s"; fi
	assert_eq "$(find "$M" -path '*/new/*' -o -path '*/cur/*' -o -path '*/tmp/*' 2>/dev/null | grep -c '/[0-9]*\.M')" "${4:-0}" "$name: ${4:-0} message(s) stored, no partial"
	assert_eq "$(fake_count '^(UID STORE|UID EXPUNGE|DELE|QUIT)')" 0 "$name: nothing deleted"
	# the lock is free: the next run (no fault now) starts and succeeds
	run_ms -c "$T/$name.ini"
	assert_eq "$RC" 0 "$name: the next run gets the lock and completes (exit 0)"
	assert_eq "$(find "$M/INBOX/new" "$M/INBOX/cur" -type f | wc -l)" 3 "$name: next run stores all 3"
	fake_stop
}

stall_case imap-greeting imap '{"stall_greeting": {"conn": 1}}'
stall_case imap-tls imap '{"stall_tls": {"conn": 1}}'
stall_case imap-literal imap '{"stall_body": {"conn": 1, "nth": 2, "bytes": 5000}}' 1
stall_case pop3-retr pop3 '{"stall_body": {"conn": 1, "nth": 2, "bytes": 5000}}' 1
t_done
