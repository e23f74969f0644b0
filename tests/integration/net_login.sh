#!/usr/bin/env bash
# tests/integration/net_login.sh: log in to a private Dovecot with the real
# binary (`mailsync -c CFG check ACCOUNT`) and check exit codes and
# messages for every way a login can go wrong; then run net.c's unit test
# with the server's coordinates (its Dovecot half needs DV_*).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/assert.sh"
. "$top/tests/lib/dovecot.sh"
: "${MAILSYNC:=$top/build/mailsync}"
: "${UNITDIR:=$top/build/tests}"

t_setup
dovecot_start || { not_ok "dovecot starts"; t_done; exit 1; }

# check_login NAME WANT_RC PROTO [KEY=VALUE...]
check_login() {
	local name=$1 want=$2 proto=$3
	shift 3
	ms_write_config "$T/$name.ini" "$name" "$proto" "maildir:$T/Mail" "$@"
	run_ms -c "$T/$name.ini" check "$name"
	assert_eq "$RC" "$want" "$name: exit $want"
	if [ "$RC" != "$want" ]; then
		echo "#   stderr: $ERR"
	fi
	assert_no_match "$OUT$ERR" "$DV_PASS|wrong-Pw-9" "$name: no password"
}

check_login imaps-ok 0 imaps
check_login pop3s-ok 0 pop3s
check_login imap-starttls-ok 0 imap
check_login pop3-stls-ok 0 pop3
check_login imaps-plain 0 imaps auth=plain
check_login pop3s-login 0 pop3s auth=login
check_login bob-ok 0 imaps user=bob
check_login pin-ok 0 imaps "tls_pin=$DV_PIN"

check_login imaps-badpw 77 imaps password=wrong-Pw-9
assert_match "$ERR" "imaps-badpw" "wrong password: names the account"
assert_match "$ERR" "authentication failed" "wrong password: says so"
check_login pop3s-badpw 77 pop3s password=wrong-Pw-9
assert_match "$ERR" "authentication failed" "pop3 wrong password: says so"

check_login no-ca 77 imaps tls_ca_file=
assert_match "$ERR" "certificate" "system trust store: names the cert"
check_login no-ca-starttls 77 imap tls_ca_file=
check_login bad-pin 77 imaps \
	"tls_pin=sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
assert_match "$ERR" "pinned public key|pin" "wrong pin: says so"

port=$(dv_free_ports 1)
ms_write_config "$T/closed.ini" closed imaps "maildir:$T/Mail" \
	"source=imaps://127.0.0.1:$port"
run_ms -c "$T/closed.ini" check closed
assert_eq "$RC" 75 "closed port: exit 75"
assert_match "$ERR" "cannot connect to 127.0.0.1:$port" "closed port: says so"

# check touches no mailbox: no command after login but LOGOUT/QUIT (and
# whatever capability probe the engine does)
assert_no_match "$(dv_commands "$DV_USER")" "STORE|EXPUNGE|DELE|SELECT" \
	"check sends no STORE/EXPUNGE/DELE/SELECT"

# A server offering only CRAM-MD5: auto falls back to the server's choice,
# an explicit auth=plain refuses (exit 77).  Own Dovecot, in a subshell.
(
	DV_EXTRA_CONF='auth_mechanisms = cram-md5'
	dovecot_start || { not_ok "cram-md5 dovecot starts"; exit 1; }
	check_login cram-auto 0 imaps
	check_login cram-plain 77 imaps auth=plain
	assert_match "$ERR" "no allowed authentication mechanism" \
		"auth=plain against CRAM-MD5 only: says so"
	if [ -x "$UNITDIR/test_net" ]; then
		DV_FALLBACK=1 "$UNITDIR/test_net" | grep -c '^not ok' |
			grep -qx 0 && ok "test_net fallback part" ||
			not_ok "test_net fallback part"
	fi
	echo "T_N=$T_N T_FAIL=$T_FAIL" >"$T/sub.counts"
)
[ -f "$T/sub.counts" ] && . "$T/sub.counts"

# net.c itself against this server (TAP lines are counted with ours)
if [ -x "$UNITDIR/test_net" ]; then
	"$UNITDIR/test_net" | sed -n '/^ok \|^not ok \|^#/p' |
		sed 's/^\(not \)\{0,1\}ok [0-9]* - /&test_net: /' >"$T/unit"
	while IFS= read -r l; do
		case $l in
		"ok "*) ok "${l#ok * - }" ;;
		"not ok "*) not_ok "${l#not ok * - }" ;;
		*) echo "$l" ;;
		esac
	done <"$T/unit"
else
	not_ok "test_net built" "$UNITDIR/test_net missing"
fi
t_done
