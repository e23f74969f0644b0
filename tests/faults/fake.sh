# tests/faults/fake.sh: start/stop the scripted fake IMAP/POP3 server
# (fakeserver.py) from a test and read its log and state (bash; sourced
# after tests/lib/dovecot.sh for t_setup/ms_cleanup_add).
# shellcheck shell=bash
#
#   fake_cert [NAME [openssl req args...]]  make $T/NAME.pem/.key (default
#                        "cert", CN=localhost, SAN DNS:localhost,IP:127.0.0.1);
#                        sets FK_CA (the cert, used as tls_ca_file) and FK_PIN
#   fake_start PROTO SCENARIO [MAXCONN [TIMELIMIT]]
#                        start the server (imap|pop3) with a scenario JSON;
#                        sets FK_DIR FK_PORT FK_PID; stopped at exit
#   fake_stop            stop it (by its pid) and wait; writes final state
#   fake_wait            wait (up to its own bound) until it has exited
#   fake_log             the command log: CONN<TAB>TAG<TAB>LINE, no times
#   fake_cmds            only the command lines (no tag), events left out
#   fake_state EXPR      evaluate a Python expression over the state JSON
#                        (variable s), e.g. fake_state 's["folders"]["INBOX"]["present"]'
#   fake_config FILE ACCT PROTO STORE [KEY=VALUE...]
#                        write a 0600 mailsync config for the fake server
#   fk_msgs N SIZE PREFIX   write N generated messages $T/PREFIX1..N of
#                        SIZE bytes (CRLF lines), print a JSON messages list
#
# Scenario JSON: {"folders": [{"name": "INBOX", "delim": "/",
#   "uidvalidity": 1234 (null: none), "messages": [{"file": F | "data": S |
#   "gen": SIZE, "uid": U, "uidl": "x", "flags": [..], "date": "..",
#   "size_delta": n, "gm_msgid": N, "gm_labels": [..], "from_conn": K
#   (POP3: listed from connection K on)}],
#   "attrs": ["\\All"], "list": "raw LIST tail"}],
#   "capability": "...", "capa": [POP3 CAPA lines], "password": "...",
#   "faults": {...}} ; fault knobs (each may carry "conn": K to act only on
#   connection K): drop_body {nth,bytes}, stall_body {nth,bytes},
#   stall_greeting, stall_tls, bye_after_bytes {bytes,text},
#   login_reply "NO [LIMIT] ..", reply {"UID STORE": "NO ..",
#   "DELE 2": "-ERR .."}, raw {"CMD": [segments]}, untagged [{before,
#   line} | {after_each, line}], marker {cmd,file,delay}, no_uidl,
#   uidl_change {from_conn,suffix}, fetch_order "odd", literal_delta,
#   extra_fetch {uid}, search_extra [uids], self_expunge, expunge_on_close,
#   ignore_expunge (UID EXPUNGE answers OK, does nothing),
#   xoauth2_error.

FK_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FK_PASS='fake-Pw.1'
FK_USER='fakeuser'

fake_cert() {
	local name=${1:-cert}
	shift || true
	[ $# -gt 0 ] || set -- -subj /CN=localhost \
		-addext "subjectAltName=DNS:localhost,IP:127.0.0.1"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-nodes -days 30 "$@" \
		-keyout "$T/$name.key" -out "$T/$name.pem" >/dev/null 2>&1 ||
		return 1
	FK_CA=$T/$name.pem
	FK_KEY=$T/$name.key
	FK_PIN="sha256//$(openssl x509 -in "$FK_CA" -pubkey -noout |
		openssl pkey -pubin -outform der |
		openssl dgst -sha256 -binary | base64)"
}

fake_start() {
	local proto=$1 sc=$2 maxc=${3:-4} tl=${4:-60} i
	[ -n "${FK_CA:-}" ] || fake_cert || return 1
	FK_DIR=$(mktemp -d "$T/fake.XXXXXX")
	python3 "$FK_HERE/fakeserver.py" --proto "$proto" --scenario "$sc" \
		--cert "${FK_SCERT:-$FK_CA}" --key "${FK_SKEY:-$FK_KEY}" \
		--dir "$FK_DIR" --max-conn "$maxc" --time-limit "$tl" \
		${FK_STARTTLS:+--starttls} \
		>"$FK_DIR/stdout" 2>"$FK_DIR/stderr" &
	FK_PID=$!
	ms_cleanup_add "fake_stop_pid $FK_PID"
	for ((i = 0; i < 100; i++)); do
		[ -s "$FK_DIR/port" ] && break
		sleep 0.05
	done
	FK_PORT=$(cat "$FK_DIR/port" 2>/dev/null)
	[ -n "$FK_PORT" ] || { cat "$FK_DIR/stderr" >&2; return 1; }
}

fake_stop_pid() {
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || return 0
	kill "$pid" 2>/dev/null
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null
	return 0
}

fake_stop() { [ -n "${FK_PID:-}" ] && fake_stop_pid "$FK_PID"; FK_PID=; }

fake_wait() {
	local i
	for ((i = 0; i < 1200; i++)); do
		kill -0 "$FK_PID" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

fake_log() { cut -f2- "$FK_DIR/log"; }

# command lines only: no events ("*") and no tags
fake_cmds() { awk -F '\t' '$3 != "*" { print $4 }' "$FK_DIR/log"; }

# fake_count REGEX: how many command lines match (grep -E)
fake_count() { fake_cmds | grep -Ec -- "$1"; }

fake_state() {
	python3 -c 'import json, sys
s = json.load(open(sys.argv[1]))
v = eval(sys.argv[2])
print(" ".join(str(x) for x in v) if isinstance(v, list) else v)' \
		"$FK_DIR/state.json" "$1"
}

fake_config() {
	local file=$1 acct=$2 proto=$3 store=$4
	shift 4
	ms_ini_write "$file" "$acct" "${FK_STATE:-$(dirname "$file")/state}" \
		"$proto://127.0.0.1:$FK_PORT" "$FK_USER" "$FK_PASS" "$FK_CA" \
		"$store" "$@"
}

# fk_gen N SIZE PREFIX: generated messages $T/PREFIX1..N (CRLF), each SIZE
# bytes; prints the JSON "messages" list with their files
fk_gen() {
	python3 - "$1" "$2" "$T/$3" <<'EOF'
import json, sys
n, size, pre = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
out = []
for i in range(1, n + 1):
    head = ("From: a@example.org\r\nTo: b@example.org\r\nSubject: msg %d\r\n"
            "Message-ID: <m%d.%s@fake>\r\n\r\n" % (i, i, pre[-12:])).encode()
    body = bytearray()
    k = 0
    while len(head) + len(body) < size - 80:
        body += b"%d.%d The quick brown fox jumps over the lazy dog %d\r\n" % (
            i, k, size)
        k += 1
    body += b"." * 3 + b" dot line\r\n" + b"end\r\n"
    with open("%s%d" % (pre, i), "wb") as f:
        f.write(head + bytes(body))
    out.append({"file": "%s%d" % (pre, i)})
print(json.dumps(out))
EOF
}

# fk_scenario FILE MESSAGES_JSON [FAULTS_JSON [EXTRA_TOPLEVEL_JSON]]
fk_scenario() {
	python3 - "$@" <<'EOF'
import json, sys
msgs = json.loads(sys.argv[2])
sc = {"folders": [{"name": "INBOX", "messages": msgs}]}
if len(sys.argv) > 3 and sys.argv[3]:
    sc["faults"] = json.loads(sys.argv[3])
if len(sys.argv) > 4 and sys.argv[4]:
    extra = json.loads(sys.argv[4])
    if "folder" in extra:
        sc["folders"][0].update(extra.pop("folder"))
    sc.update(extra)
json.dump(sc, open(sys.argv[1], "w"), indent=1)
EOF
}

# fk_stored_hashes DIR: sha256 of every message in a Maildir folder, sorted
fk_stored_hashes() {
	local f
	for f in "$1"/new/* "$1"/cur/*; do
		[ -f "$f" ] && sha256sum <"$f" | cut -d' ' -f1
	done | sort
}

# fk_want_hashes FILE...: sha256 after CRLF -> LF, sorted
fk_want_hashes() {
	local f
	for f in "$@"; do
		python3 -c 'import sys; sys.stdout.buffer.write(open(sys.argv[1],"rb").read().replace(b"\r\n", b"\n"))' "$f" |
			sha256sum | cut -d' ' -f1
	done | sort
}

# fake_wait_close CONN: wait (up to 30 s) until connection CONN has ended
# on the server side, so that state.json includes its effects
fake_wait_close() {
	local i
	for ((i = 0; i < 300; i++)); do
		awk -F '\t' -v c="$1" '$2 == c && $3 == "*" && $4 == "close" { f = 1 } END { exit !f }' "$FK_DIR/log" && return 0
		sleep 0.1
	done
	return 1
}
