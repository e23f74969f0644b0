#!/usr/bin/env bash
# STARTTLS / STLS against the fake server (imap://, pop3://), F11b/F28:
# - normal upgrade: exit 0, every credential sent only after the TLS
#   handshake, never in clear.
# - server without STARTTLS/STLS: exit 77, no credential sent.
# - plaintext bytes pipelined after "OK Begin TLS" (STARTTLS injection,
#   CVE-2021-22947 class): refused (exit 76), never read as a response,
#   no credential sent.
# - stall after the STARTTLS OK (fetchmail CVE-2011-1947), timeout = 3:
#   exit 75 within 3*timeout + 5 s with "timed out", no credential sent.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/assert.sh"
. "$here/../lib/dovecot.sh"
. "$here/fake.sh"
t_setup
fake_cert
msgs=$(fk_gen 2 2000 s)
FK_STARTTLS=1

# stcase NAME PROTO FAULTS WANT_RC REGEX
stcase() {
	local name=$1 proto=$2 want=$4 re=$5 t0 secs
	fk_scenario "$T/$name.json" "$msgs" "$3"
	fake_start "$proto" "$T/$name.json" 1 30
	fake_config "$T/$name.ini" "st-$name" "$proto" "maildir:$T/M-$name" timeout=3
	t0=$(date +%s)
	run_ms -c "$T/$name.ini"
	secs=$(($(date +%s) - t0))
	assert_eq "$RC" "$want" "$name: exit $want"
	[ -n "$re" ] && assert_match "$ERR" "st-$name: .*$re" "$name: message names the account and the cause"
	if [ "$secs" -le 14 ]; then ok "$name: bounded time (${secs} s)"; else not_ok "$name: bounded time" "$secs s"; fi
	fake_wait_close 1
	assert_eq "$(grep -c CLEARTEXT-CREDENTIALS "$FK_DIR/log")" 0 "$name: no credential sent in clear"
	# credentials only after "tls-ok"
	assert_eq "$(awk -F '\t' '$4 == "tls-ok" { t = 1 } $4 ~ /^(AUTHENTICATE|LOGIN|AUTH|USER|PASS)/ && !t { n++ } END { print n + 0 }' "$FK_DIR/log")" 0 "$name: nothing credential-like before the TLS handshake"
	if [ "$want" = 0 ]; then
		assert_eq "$(fk_stored_hashes "$T/M-$name/INBOX" | wc -l)" 2 "$name: both messages stored"
		assert_eq "$(grep -c 'login-ok' "$FK_DIR/log")" 1 "$name: logged in after the upgrade"
	else
		assert_eq "$(grep -c 'login-ok' "$FK_DIR/log")" 0 "$name: never logged in"
		assert_eq "$(find "$T/M-$name" -type f 2>/dev/null | wc -l)" 0 "$name: nothing stored"
	fi
	fake_stop
}
stcase imap-ok imap '' 0 ''
stcase pop3-ok pop3 '' 0 ''
stcase imap-none imap '{"no_starttls": true}' 77 'STARTTLS'
stcase pop3-none pop3 '{"no_starttls": true}' 77 'STLS'
stcase imap-inject imap '{"starttls_inject": "A003 OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n"}' 76 ''
stcase pop3-inject pop3 '{"starttls_inject": "+OK injected\r\n"}' 76 ''
stcase imap-stall imap '{"stall_starttls": true}' 75 'timed out'
t_done
