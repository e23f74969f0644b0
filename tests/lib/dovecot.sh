# tests/lib/dovecot.sh: a private Dovecot for one test run (bash; sourced).
# shellcheck shell=bash disable=SC2016
#
# Each test script that sources this file gets its own Dovecot on 127.0.0.1
# with ports picked at run time, its own base_dir/config/log under a temp dir,
# passwd-file users, a fresh self-signed certificate and Maildir storage.  The
# system Dovecot (if any) is never used or touched.  Needs root (CI runs as
# root): the mail processes run as "nobody", the login processes as the
# packaged dovenull/dovecot users.
#
# Functions:
#   t_setup              make the per-test temp dir $T, removed at exit
#                        (kept when KEEP=1); also sets up the cleanup list
#   ms_cleanup_add CMD   run CMD (a string, eval'd) at exit, last added first
#   dovecot_start        start the server, wait until all 4 ports accept;
#                        exports DV_DIR DV_IMAPS_PORT DV_IMAP_PORT
#                        DV_POP3S_PORT DV_POP3_PORT DV_CA (cert = CA file)
#                        DV_PIN (sha256//... of the server key) DV_USER
#                        DV_PASS DV_USER2 DV_PASS2 DV_RAWLOG; the server is
#                        stopped at exit even when the test fails
#   dovecot_stop         kill the master by its pid file, wait for it
#   dv_doveadm ARGS...   doveadm with the private config
#   dv_mkfolder U F      create folder F (and parents) for user U
#   dv_seed U F FILE...  append FILEs to folder F (created as needed)
#   dv_set_flags U F UID FLAG...  replace the flags of one message
#   dv_count U F         number of messages in F
#   dv_uids U F          UIDs in F, space separated, ascending
#   dv_flags U F         one "UID FLAGS..." line per message
#   dv_body U F UID      exact bytes an IMAP client gets for BODY[] (stored
#                        LF -> CRLF, as Dovecot sends it; POP3 RETR also
#                        adds CRLF when the message has no final newline)
#   dv_uidvalidity U F   UIDVALIDITY of F
#   dv_commands U        every IMAP/POP3 command the server received from U
#                        after login (rawlog, client->server), one per line
#   dv_rawlog_clear U    forget U's rawlog (call before the step you check)
#   dv_free_ports N      N free TCP ports on 127.0.0.1, space separated
#   ms_write_config FILE ACCOUNT PROTO STORE [KEY=VALUE...]
#                        write a 0600 mailsync config for this server
#                        (state_dir = dirname(FILE)/state, user alice,
#                        tls_ca_file = DV_CA, policy keep); PROTO
#                        imaps|imap|pop3s|pop3, STORE maildir:P|mbox:P;
#                        KEY=VALUE replaces a default (empty VALUE drops
#                        it) or adds a key; user=bob implies bob's password
#
# Users: alice / bob (DV_USER/DV_PASS, DV_USER2/DV_PASS2), mail stored as
# maildir:~/Maildir:LAYOUT=fs ("Lists/dev" is nested).  Failed logins are
# not delayed (no auth penalty).  Plaintext LOGIN on the imap/pop3 ports is
# accepted without STARTTLS because Dovecot treats loopback as secure, even
# with ssl = required (checked): test "no plaintext" with a fake server.
#
# Set DV_EXTRA_CONF (lines of dovecot.conf) before dovecot_start to add or
# override settings, e.g. DV_EXTRA_CONF='auth_mechanisms = cram-md5'.
#
# Command log: Dovecot's rawlog_dir (set in the userdb) records every byte
# of every post-login session in $DV_DIR/rawlog/USER/*.in/.out.  The login
# phase itself is not recorded (it holds the password anyway).

DV_USER=alice
DV_PASS='alice-Pw.1'
DV_USER2=bob
DV_PASS2='bob-Pw.2'
export DV_USER DV_PASS DV_USER2 DV_PASS2

MS_CLEANUP=()

ms_cleanup_run() {
	local i
	for ((i = ${#MS_CLEANUP[@]} - 1; i >= 0; i--)); do
		eval "${MS_CLEANUP[$i]}" || true
	done
	MS_CLEANUP=()
}

MS_CLEANUP_PID=

# In a subshell the parent's list is not ours to run: start a new one.
ms_cleanup_add() {
	if [ "$MS_CLEANUP_PID" != "$BASHPID" ]; then
		MS_CLEANUP=()
		MS_CLEANUP_PID=$BASHPID
		# keep a trap installed before us (if any) running too
		local prev
		prev=$(trap -p EXIT | sed -e "s/^trap -- '//" -e "s/' EXIT\$//")
		[ -n "$prev" ] && [ "$prev" != ms_cleanup_run ] &&
			MS_CLEANUP+=("$prev")
		trap 'ms_cleanup_run' EXIT
		trap 'exit 130' INT
		trap 'exit 143' TERM
	fi
	MS_CLEANUP+=("$1")
}

t_setup() {
	T=$(mktemp -d /tmp/mailsync-t.XXXXXX) || exit 1
	export T
	if [ "${KEEP:-0}" = 1 ]; then
		ms_cleanup_add 'echo "# kept $T" >&2'
	else
		ms_cleanup_add 'rm -rf "$T"'
	fi
}

# Print N free TCP ports on 127.0.0.1 (all bound at once, so distinct).
dv_free_ports() {
	python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# dv_wait_port PORT: wait up to 10 s until PORT accepts.
dv_wait_port() {
	python3 - "$1" <<'EOF'
import socket, sys, time
end = time.time() + 10
while time.time() < end:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
EOF
}

dv_wait_file() {
	local i
	for ((i = 0; i < 100; i++)); do
		[ -s "$1" ] && return 0
		sleep 0.05
	done
	return 1
}

dv_make_cert() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-nodes -days 3650 -subj /CN=localhost \
		-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
		-keyout "$DV_DIR/key.pem" -out "$DV_DIR/cert.pem" \
		>/dev/null 2>&1 || return 1
	chmod 0600 "$DV_DIR/key.pem"
	DV_PIN="sha256//$(openssl x509 -in "$DV_DIR/cert.pem" -pubkey -noout |
		openssl pkey -pubin -outform der |
		openssl dgst -sha256 -binary | base64)"
}

dv_write_conf() {
	cat >"$DV_DIR/dovecot.conf" <<EOF
# private test instance; generated by tests/lib/dovecot.sh
base_dir = $DV_DIR/run
state_dir = $DV_DIR/state
instance_name = mailsync-test-$$
log_path = $DV_DIR/dovecot.log
info_log_path = $DV_DIR/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
ssl = yes
ssl_cert = <$DV_DIR/cert.pem
ssl_key = <$DV_DIR/key.pem
ssl_min_protocol = TLSv1.2
auth_mechanisms = plain login
# no 2 s delay and no anvil penalty after a failed login: tests fail on
# purpose, many times in a row
auth_failure_delay = 0
disable_plaintext_auth = yes
first_valid_uid = 1
last_valid_uid = 0
first_valid_gid = 1
mail_location = maildir:~/Maildir:LAYOUT=fs
pop3_uidl_format = %08Xu%08Xv
# "dovecot-INSTANCE/imap [alice 127.0.0.1]": dv_commands waits for these to end
verbose_proctitle = yes
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%n $DV_DIR/users
  default_fields = nodelay=yes
}
userdb {
  driver = passwd-file
  args = username_format=%n $DV_DIR/users
  default_fields = rawlog_dir=$DV_DIR/rawlog/%n
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $DV_IMAP_PORT
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $DV_IMAPS_PORT
    ssl = yes
  }
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $DV_POP3_PORT
  }
  inet_listener pop3s {
    address = 127.0.0.1
    port = $DV_POP3S_PORT
    ssl = yes
  }
}
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service imap-urlauth-login {
  inet_listener imap-urlauth {
    port = 0
  }
}
${DV_EXTRA_CONF:-}
EOF
}

dv_write_users() {
	local uid gid u
	uid=$(id -u nobody) gid=$(id -g nobody)
	: >"$DV_DIR/users"
	for u in "$DV_USER:$DV_PASS" "$DV_USER2:$DV_PASS2"; do
		mkdir -p "$DV_DIR/home/${u%%:*}" "$DV_DIR/rawlog/${u%%:*}"
		printf '%s:{PLAIN}%s:%s:%s::%s::\n' "${u%%:*}" "${u#*:}" \
			"$uid" "$gid" "$DV_DIR/home/${u%%:*}" >>"$DV_DIR/users"
	done
	chown -R "$uid:$gid" "$DV_DIR/home" "$DV_DIR/rawlog"
	chmod 0640 "$DV_DIR/users"
	chgrp dovecot "$DV_DIR/users" 2>/dev/null || true
}

dovecot_start() {
	local try
	if [ "$(id -u)" != 0 ]; then
		echo "dovecot.sh: must run as root" >&2
		return 1
	fi
	DV_DIR=$(mktemp -d /tmp/mailsync-dv.XXXXXX) || return 1
	chmod 0755 "$DV_DIR"
	export DV_DIR DV_CA="$DV_DIR/cert.pem" DV_RAWLOG="$DV_DIR/rawlog"
	if [ "${KEEP:-0}" = 1 ]; then
		ms_cleanup_add 'dovecot_stop; echo "# kept $DV_DIR" >&2'
	else
		ms_cleanup_add 'dovecot_stop; rm -rf "$DV_DIR"'
	fi
	dv_make_cert || { echo "dovecot.sh: openssl failed" >&2; return 1; }
	export DV_PIN
	dv_write_users
	for try in 1 2 3; do
		[ "$try" -gt 1 ] && echo "dovecot.sh: retry $try" >>"$DV_DIR/start.log"
		read -r DV_IMAPS_PORT DV_IMAP_PORT DV_POP3S_PORT DV_POP3_PORT \
			< <(dv_free_ports 4)
		export DV_IMAPS_PORT DV_IMAP_PORT DV_POP3S_PORT DV_POP3_PORT
		dv_write_conf
		if /usr/sbin/dovecot -c "$DV_DIR/dovecot.conf" \
			>>"$DV_DIR/start.log" 2>&1 &&
			dv_wait_file "$DV_DIR/run/master.pid" &&
			dv_wait_port "$DV_IMAPS_PORT" &&
			dv_wait_port "$DV_IMAP_PORT" &&
			dv_wait_port "$DV_POP3S_PORT" &&
			dv_wait_port "$DV_POP3_PORT"; then
			return 0
		fi
		dovecot_stop
	done
	echo "dovecot.sh: cannot start dovecot:" >&2
	cat "$DV_DIR/start.log" "$DV_DIR/dovecot.log" >&2 2>/dev/null
	return 1
}

# The master is found by its pid file, or (if we were interrupted before
# it wrote one) by its command line, which names our private config.
dovecot_stop() {
	local pidf="$DV_DIR/run/master.pid" pid i
	[ -n "${DV_DIR:-}" ] || return 0
	pid=$(cat "$pidf" 2>/dev/null)
	[ -n "$pid" ] ||
		pid=$(pgrep -xf "/usr/sbin/dovecot -c $DV_DIR/dovecot.conf")
	if [ -z "$pid" ] || ! kill "$pid" 2>/dev/null; then
		rm -f "$pidf"
		return 0
	fi
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
	rm -f "$pidf"
	return 0
}

dv_doveadm() {
	doveadm -c "$DV_DIR/dovecot.conf" "$@"
}

dv_mkfolder() {
	[ "$2" = INBOX ] && return 0
	dv_doveadm mailbox status -u "$1" messages "$2" >/dev/null 2>&1 ||
		dv_doveadm mailbox create -u "$1" "$2"
}

dv_seed() {
	local u=$1 f=$2 file
	shift 2
	dv_mkfolder "$u" "$f" || return 1
	for file in "$@"; do
		dv_doveadm save -u "$u" -m "$f" <"$file" || return 1
	done
}

dv_set_flags() {
	local u=$1 f=$2 uid=$3
	shift 3
	dv_doveadm flags replace -u "$u" "$*" mailbox "$f" uid "$uid"
}

# tab output: a header line, then one record per line
dv_count() {
	dv_doveadm -f tab mailbox status -u "$1" messages "$2" |
		awk -F '\t' 'END { print $NF }'
}

dv_uids() {
	dv_doveadm -f tab fetch -u "$1" uid mailbox "$2" all | tail -n +2 |
		sort -n | tr '\n' ' ' | sed 's/ $//'
}

# \Recent is per-session noise and is left out.
dv_flags() {
	dv_doveadm -f tab fetch -u "$1" "uid flags" mailbox "$2" all |
		tail -n +2 | sed -E 's/\\Recent ?//; s/\t/ /; s/ +$//' | sort -n
}

dv_uidvalidity() {
	dv_doveadm -f tab mailbox status -u "$1" uidvalidity "$2" |
		awk -F '\t' 'END { print $NF }'
}

# "doveadm -f pager fetch text" prints "text:\n" and the stored bytes.
# Dovecot stores lines with LF (mail_save_crlf=no) and turns every LF not
# preceded by CR into CRLF when it sends a message (IMAP BODY[], POP3
# RETR), so the same conversion gives the exact bytes a client receives.
dv_body() {
	dv_doveadm -f pager fetch -u "$1" text mailbox "$2" uid "$3" |
		python3 -c '
import re, sys
d = sys.stdin.buffer.read()
if not d.startswith(b"text:\n"):
    sys.exit("dv_body: no such message")
sys.stdout.buffer.write(re.sub(rb"(?<!\r)\n", b"\r\n", d[6:]))'
}

# Waits (up to 3 s) until U has no imap/pop3 process left, so that the
# rawlog is complete.
dv_commands() {
	local f i master
	master=$(cat "$DV_DIR/run/master.pid" 2>/dev/null)
	for ((i = 0; i < 30; i++)); do
		[ -n "$master" ] || break
		pgrep -P "$master" -f "^dovecot[^/]*/(imap|pop3) \\[$1 " \
			>/dev/null || break
		sleep 0.1
	done
	for f in "$DV_RAWLOG/$1"/*.in; do
		[ -f "$f" ] && tr -d '\r' <"$f" | sed -E 's/^[0-9]+\.[0-9]+ //'
	done
	return 0
}

dv_rawlog_clear() {
	rm -f "$DV_RAWLOG/$1"/*.in "$DV_RAWLOG/$1"/*.out
}

# ms_ini_write FILE ACCT STATE_DIR SOURCE USER PASSWORD CA STORE [KEY=VALUE...]
# writes a one-account config (mode 0600, created under umask 077).
# KEY=VALUE replaces a default key (an empty VALUE drops it), other keys
# are appended in order.  Used by ms_write_config and fake_config.
ms_ini_write() {
	local file=$1 acct=$2 state=$3 kv k
	local -A val=()
	local keys=(source user password tls_ca_file store policy)
	val[source]=$4 val[user]=$5 val[password]=$6 val[tls_ca_file]=$7
	val[store]=$8 val[policy]=keep
	shift 8
	for kv in "$@"; do
		k=${kv%%=*}
		[ -z "${val[$k]+x}" ] && keys+=("$k")
		val[$k]=${kv#*=}
	done
	(
		umask 077
		{
			echo "[general]"
			echo "state_dir = $state"
			echo "[$acct]"
			for k in "${keys[@]}"; do
				[ -n "${val[$k]}" ] && echo "$k = ${val[$k]}"
			done
		} >"$file"
	)
	chmod 0600 "$file"
}

ms_write_config() {
	local file=$1 acct=$2 proto=$3 store=$4 port kv user=$DV_USER pass=$DV_PASS
	shift 4
	case $proto in
	imaps) port=$DV_IMAPS_PORT ;;
	imap) port=$DV_IMAP_PORT ;;
	pop3s) port=$DV_POP3S_PORT ;;
	pop3) port=$DV_POP3_PORT ;;
	*) echo "ms_write_config: bad proto $proto" >&2; return 1 ;;
	esac
	# user=$DV_USER2 without password= gets bob's password
	for kv in "$@"; do
		case $kv in user=*) user=${kv#user=} ;; esac
	done
	case " $* " in
	*" password="*) ;;
	*) [ "$user" = "$DV_USER2" ] && pass=$DV_PASS2 ;;
	esac
	ms_ini_write "$file" "$acct" "$(dirname "$file")/state" \
		"$proto://127.0.0.1:$port" "$DV_USER" "$pass" "$DV_CA" "$store" "$@"
}
