#!/usr/bin/env bash
# F30 (fake server): XOAUTH2.
# - auth = xoauth2 with the token as the secret: one AUTHENTICATE XOAUTH2,
#   logged in, messages stored, exit 0; the token never appears in
#   mailsync's output.
# - the server answers with the SASL error challenge (base64 JSON status
#   401): exit 77 within a few seconds, a single connection and a single
#   AUTHENTICATE (no retry loop, no hang), nothing fetched, the token in
#   no output.
# - two accounts to the same server in one run (jobs = 1 and jobs = 2):
#   two separate connections, each with its own authentication as its own
#   user, each account's mail in its own store.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/assert.sh"
. "$here/../lib/dovecot.sh"
. "$here/fake.sh"
t_setup
fake_cert
tok='ya29.tok-SECRET-123'
msgs=$(fk_gen 2 3000 x)
top="{\"capability\": \"IMAP4rev1 UIDPLUS AUTH=XOAUTH2 AUTH=PLAIN SASL-IR\", \"password\": \"$tok\"}"

fk_scenario "$T/ok.json" "$msgs" '' "$top"
fake_start imap "$T/ok.json" 1 30
fake_config "$T/ok.ini" xo imaps "maildir:$T/OK" auth=xoauth2 "password=$tok"
run_ms -c "$T/ok.ini"
assert_eq "$RC$ERR" 0 "xoauth2: exit 0, silent"
assert_eq "$(fake_count '^AUTHENTICATE XOAUTH2')" 1 "xoauth2: one AUTHENTICATE XOAUTH2"
assert_eq "$(fk_stored_hashes "$T/OK/INBOX" | wc -l)" 2 "xoauth2: both messages stored"
fake_stop

fk_scenario "$T/err.json" "$msgs" '{"xoauth2_error": true}' "$top"
fake_start imap "$T/err.json" 3 30
fake_config "$T/err.ini" xoerr imaps "maildir:$T/ERR" auth=xoauth2 "password=$tok"
t0=$(date +%s)
run_ms -c "$T/err.ini"
secs=$(($(date +%s) - t0))
assert_eq "$RC" 77 "xoauth2 error challenge: exit 77"
# libcurl gives up on the error challenge (no tagged NO follows): the
# decoded challenge is the server's answer, not an earlier "A001 OK" line
assert_eq "$ERR" "mailsync: xoerr: authentication failed for $FK_USER at 127.0.0.1:$FK_PORT: {\"status\":\"401\",\"schemes\":\"bearer\",\"scope\":\"https://mail.google.com/\"}" "xoauth2 error: one line, the account once, the server's error challenge decoded"
if [ "$secs" -le 5 ]; then ok "xoauth2 error: no hang (${secs} s)"; else not_ok "xoauth2 error: no hang" "$secs s"; fi
fake_wait_close 1
assert_eq "$(awk -F '\t' '$3 == "*" && $4 == "connect"' "$FK_DIR/log" | wc -l)" 1 "xoauth2 error: one connection"
assert_eq "$(fake_count '^AUTHENTICATE')" 1 "xoauth2 error: one AUTHENTICATE, no retry"
assert_eq "$(fake_count '^(LIST|SELECT|EXAMINE|UID)')" 0 "xoauth2 error: nothing after the failed login"
assert_no_match "$OUT$ERR" 'tok-SECRET' "xoauth2 error: the token is in no output"
fake_stop

for jobs in 1 2; do
	fk_scenario "$T/two$jobs.json" "$msgs"
	fake_start imap "$T/two$jobs.json" 2 30
	fake_config "$T/two$jobs.ini" one$jobs imaps "maildir:$T/Two$jobs-a"
	{
		echo "[two$jobs]"
		echo "source = imaps://127.0.0.1:$FK_PORT"
		echo "user = seconduser"
		echo "password = $FK_PASS"
		echo "tls_ca_file = $FK_CA"
		echo "store = maildir:$T/Two$jobs-b"
	} >>"$T/two$jobs.ini"
	sed -i "s/^\[general\]\$/[general]\njobs = $jobs/" "$T/two$jobs.ini"
	run_ms -c "$T/two$jobs.ini"
	assert_eq "$RC$ERR" 0 "two accounts, jobs = $jobs: exit 0"
	fake_wait_close 2
	assert_eq "$(awk -F '\t' '$3 == "*" && $4 == "connect"' "$FK_DIR/log" | wc -l)" 2 "jobs = $jobs: two connections"
	assert_eq "$(awk -F '\t' '$3 == "*" && $4 ~ /^login-ok/ { print $2, $4 }' "$FK_DIR/log" | sort -u | awk '{print $3}' | sort | tr '\n' ' ')" "fakeuser seconduser " "jobs = $jobs: each connection authenticated as its own user"
	assert_eq "$(awk -F '\t' '$4 ~ /^AUTHENTICATE/ { print $2 }' "$FK_DIR/log" | sort -u | wc -l)" 2 "jobs = $jobs: one authentication per connection"
	assert_eq "$(fk_stored_hashes "$T/Two$jobs-a/INBOX" | wc -l) $(fk_stored_hashes "$T/Two$jobs-b/INBOX" | wc -l)" "2 2" "jobs = $jobs: each account's mail in its own store"
	fake_stop
done
t_done
