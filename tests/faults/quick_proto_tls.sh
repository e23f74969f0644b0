#!/usr/bin/env bash
# F28: certificate verification against the fake server (implicit TLS).
# Refused with exit 77 BEFORE any credential is sent (the server's log has
# no command at all: no CAPABILITY/LOGIN/AUTHENTICATE/USER/PASS), message
# naming the problem: hostname mismatch, expired certificate, self-signed
# certificate not trusted (system store), certificate from an unknown CA,
# public-key pin mismatch.  Positive controls: a CA-signed certificate via
# tls_ca_file, and the right pin, both exit 0.  IMAP and POP3.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/assert.sh"
. "$here/../lib/dovecot.sh"
. "$here/fake.sh"
t_setup
mkdir -p "$T/ca" && cd "$T/ca" || exit 1
cat >ca.cnf <<'CNF'
[ca]
default_ca = d
[d]
dir = .
database = ./index.txt
new_certs_dir = .
serial = ./serial
default_md = sha256
policy = p
copy_extensions = copy
unique_subject = no
[p]
commonName = supplied
CNF
: >index.txt
echo 01 >serial
newkey() { echo -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes; }
mkca() { openssl req -x509 $(newkey) -days 30 -subj "/CN=$1" -keyout "$1.key" -out "$1.pem" 2>/dev/null; }
# sign NAME CA SAN START END
sign() {
	openssl req -new $(newkey) -subj /CN=localhost -addext "subjectAltName=$3" \
		-keyout "$1.key" -out "$1.csr" 2>/dev/null &&
	openssl ca -batch -config ca.cnf -cert "$2.pem" -keyfile "$2.key" \
		-startdate "$4" -enddate "$5" -in "$1.csr" -out "$1.pem" >/dev/null 2>&1
}
pin_of() { echo "sha256//$(openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)"; }
mkca CA1
mkca CA2
now=$(date -u +%Y%m%d%H%M%SZ)
later=$(date -u -d '+30 days' +%Y%m%d%H%M%SZ)
sign good CA1 "DNS:localhost,IP:127.0.0.1" "$now" "$later"
sign expired CA1 "DNS:localhost,IP:127.0.0.1" 20200101000000Z 20200201000000Z
sign wrongname CA1 "DNS:other.example" "$now" "$later"
openssl req -x509 $(newkey) -days 30 -subj /CN=localhost \
	-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
	-keyout self.key -out self.pem 2>/dev/null
openssl req -x509 $(newkey) -days 30 -subj /CN=localhost -keyout other.key -out other.pem 2>/dev/null
cd / || exit 1
FK_CA=$T/ca/CA1.pem FK_KEY=$T/ca/CA1.key
msgs=$(fk_gen 2 2000 t)

# tcase NAME PROTO SERVERCERT WANT_RC REGEX [config KEY=VALUE...]
tcase() {
	local name=$1 proto=$2 cert=$3 want=$4 re=$5
	shift 5
	FK_SCERT=$T/ca/$cert.pem FK_SKEY=$T/ca/$cert.key
	fk_scenario "$T/$name.json" "$msgs"
	fake_start "$proto" "$T/$name.json" 1 30
	fake_config "$T/$name.ini" "tls-$name" "${proto}s" "maildir:$T/M-$name" "$@"
	run_ms -c "$T/$name.ini"
	assert_eq "$RC" "$want" "$name ($proto): exit $want"
	if [ "$want" = 77 ]; then
		assert_match "$ERR" "tls-$name: .*$re" "$name: message names the problem"
		fake_wait_close 1
		assert_eq "$(fake_cmds | wc -l)" 0 "$name: no command reached the server (no credential sent)"
		assert_no_match "$(cat "$FK_DIR/log")" 'login-ok|fake-Pw' "$name: no login"
		assert_eq "$(find "$T/M-$name" -type f 2>/dev/null | wc -l)" 0 "$name: nothing stored"
	else
		assert_eq "$(find "$T/M-$name/INBOX" -type f | wc -l)" 2 "$name: both messages stored"
	fi
	fake_stop
}
for p in imap pop3; do
	tcase good-$p $p good 0 ''
	tcase pin-ok-$p $p good 0 '' "tls_pin=$(pin_of "$T/ca/good.pem")"
	tcase mismatch-$p $p wrongname 77 "(match|name)"
	tcase expired-$p $p expired 77 "expired"
	tcase selfsigned-$p $p self 77 "(self.signed|local issuer)" tls_ca_file=
	tcase unknownca-$p $p good 77 "(local issuer|unknown ca|unable to get)" "tls_ca_file=$T/ca/CA2.pem"
	tcase pin-$p $p good 77 "(pin|public key)" "tls_pin=$(pin_of "$T/ca/other.pem")"
done
t_done
