#!/usr/bin/env bash
# F31 secrets never leak: every command (sync, check, folders, status) with
# -vv, with the right and a wrong password, for password, password_file and
# password_command, and an XOAUTH2 token: grep -a -F stdout, stderr, every
# file under the state dir and the store for the secret, its base64 (AUTH
# LOGIN), base64("\0user\0secret") and base64("user\0user\0secret") (SASL
# PLAIN) and "user=...\1auth=Bearer ..." (XOAUTH2): no hit.  Also samples
# /proc/PID/cmdline and environ of mailsync and of every process below it
# while a slow password_command runs: no hit.  (Dovecot offers no XOAUTH2
# here, so the token runs end before any token is sent: exit 77.)
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/start.sh"
U=$DV_USER
crlf_msg "$T/m1" "Subject: secret test" "Message-ID: <s1@x>" "" "nothing secret here"
dv_seed $U INBOX "$T/m1"

# needles SECRET: every encoding of SECRET that must never appear, one a line
needles() {
	printf '%s\n' "$1"
	printf '%s' "$1" | base64 -w0; echo
	printf '\0%s\0%s' "$U" "$1" | base64 -w0; echo
	printf '%s\0%s\0%s' "$U" "$U" "$1" | base64 -w0; echo
	printf 'user=%s\1auth=Bearer %s\1\1' "$U" "$1" | base64 -w0; echo
	printf 'user=%s\1auth=Bearer %s' "$U" "$1"; echo
}
# hits NEEDLEFILE FILE...: the number of files holding any needle
hits() {
	local nf=$1 f n=0
	shift
	for f in "$@"; do
		[ -f "$f" ] || continue
		if grep -a -q -F -f "$nf" "$f"; then
			n=$((n + 1))
			echo "# secret found in $f" >&2
		fi
	done
	echo $n
}

WRONG='wrong-Secret.9xq'
TOKEN='ya29.tok3n-Secr3t_value'
echo "$DV_PASS" >"$T/pw.good"
echo "$WRONG" >"$T/pw.bad"
echo "$TOKEN" >"$T/pw.tok"
chmod 0600 "$T"/pw.*
{ needles "$DV_PASS"; needles "$WRONG"; needles "$TOKEN"; } | grep -v '^$' >"$T/needles"

# the grep must be able to fail: a SASL PLAIN line with the password
printf 'C: A1 AUTHENTICATE PLAIN %s\n' "$(printf '\0%s\0%s' "$U" "$DV_PASS" | base64 -w0)" >"$T/ctrl"
assert_eq "$(hits "$T/needles" "$T/ctrl" 2>/dev/null)" 1 "F31: the check finds a SASL PLAIN response"

n=0 total=0 rcs=""
for src in password password_file password_command xoauth2; do
	for which in good bad; do
		case $src-$which in
		password-good) kv=("password=$DV_PASS") ;;
		password-bad) kv=("password=$WRONG") ;;
		password_file-*) kv=(password= "password_file=$T/pw.$which") ;;
		password_command-*) kv=(password= "password_command=cat $T/pw.$which") ;;
		xoauth2-good) kv=(password= "password_file=$T/pw.tok" auth=xoauth2) ;;
		xoauth2-bad) kv=(password= "password_command=cat $T/pw.tok" auth=oauthbearer) ;;
		esac
		d=$T/$src-$which
		mkdir -p "$d"
		ms_write_config "$d/c.ini" sec imaps "maildir:$d/Mail" "${kv[@]}"
		for cmd in "" check "folders sec" status; do
			"$MAILSYNC" -vv -c "$d/c.ini" $cmd >"$d/out.${cmd%% *}" 2>"$d/err.${cmd%% *}"
			r=$? c=${cmd%% *}
			rcs="$rcs $src-$which:${c:-sync}=$r"
			total=$((total + 1))
		done
		mapfile -t files < <(find "$d" -type f ! -name c.ini)
		n=$((n + $(hits "$T/needles" "${files[@]}")))
	done
done
assert_eq "$n" 0 "F31: no secret in stdout, stderr, state or store of $total runs (-vv)"
# the runs did what they should, so the grep looked at real output
assert_match "$rcs" ' password-good:sync=0 password-good:check=0 password-good:folders=0 password-good:status=0 ' \
	"F31: password: sync, check, folders, status succeed"
assert_match "$rcs" ' password-bad:sync=77 password-bad:check=77 password-bad:folders=77 ' \
	"F31: wrong password: exit 77"
assert_match "$rcs" ' password_file-good:sync=0 .* password_command-good:sync=0 ' \
	"F31: password_file and password_command work"
assert_match "$rcs" ' password_command-bad:sync=77 ' "F31: wrong password from a command: exit 77"
assert_match "$(cat "$T/password-good/err.")" 'LOGIN|AUTHENTICATE|UID FETCH' \
	"F31: -vv really traced the dialogue"
assert_eq "$(md_count "$T/password-good/Mail/INBOX")" 1 "F31: the good sync stored the message"

# /proc of mailsync and of the password command while it runs
d=$T/proc
mkdir -p "$d"
ms_write_config "$d/c.ini" sec imaps "maildir:$d/Mail" password= \
	"password_command=sleep 1.5; cat $T/pw.good"
# the harness's own DV_PASS* variables are not mailsync's doing
env -u DV_PASS -u DV_PASS2 "$MAILSYNC" -vv -c "$d/c.ini" >"$d/out" 2>"$d/err" &
mpid=$!
samples=0
for ((i = 0; i < 20; i++)); do
	sleep 0.1
	for p in $mpid $(pgrep -P $mpid) $(for c in $(pgrep -P $mpid); do pgrep -P "$c"; done); do
		cat /proc/"$p"/cmdline >>"$d/proc.cmdline" 2>/dev/null && samples=$((samples + 1))
		cat /proc/"$p"/environ >>"$d/proc.environ" 2>/dev/null
	done
done
wait $mpid
assert_eq "$?" 0 "F31 /proc: the run with a slow password_command exits 0"
assert_match "$(tr '\0' ' ' <"$d/proc.cmdline")" "sleep 1.5" "F31 /proc: the password command's processes were sampled ($samples samples)"
assert_eq "$(hits "$T/needles" "$d/proc.cmdline" "$d/proc.environ" "$d/out" "$d/err")" 0 \
	"F31 /proc: no secret in cmdline or environ of mailsync and its children"
t_done
