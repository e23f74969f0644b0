#!/bin/sh
# tests/integration/cli_config.sh: the command line and the config file as
# a user meets them, with the real binary and no server: --help,
# --version, usage errors (64), config errors with their exact
# "FILE:LINE: what" (78), the 0600 rule, unknown accounts, a failing
# password_command, and mandoc -Tlint on both man pages.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/lib/assert.sh"
: "${MAILSYNC:=$top/build/mailsync}"
T=$(mktemp -d /tmp/cli_config.XXXXXX)
trap 'rm -rf "$T"' EXIT INT TERM
export HOME="$T/home"
unset XDG_CONFIG_HOME XDG_STATE_HOME
mkdir -p "$HOME"

# exact_err NAME WANT_RC WANT_STDERR ARGS...: stdout must be empty
exact_err() {
	name=$1 want_rc=$2 want_err=$3
	shift 3
	run_ms "$@"
	assert_eq "$RC" "$want_rc" "$name: exit $want_rc"
	assert_eq "$ERR" "$want_err" "$name: stderr"
	assert_eq "$OUT" "" "$name: nothing on stdout"
}

try="Try 'mailsync --help'"

# --- help and version
run_ms --help
assert_eq "$RC" 0 "--help exits 0"
assert_eq "$ERR" "" "--help: nothing on stderr"
for w in check folders status --config --dry-run --verbose --quiet \
	--help --version ' -c' ' -n' ' -v' ' -q'; do
	assert_match "$OUT" "$w" "--help mentions $w"
done
run_ms --version
assert_eq "$RC" 0 "--version exits 0"
assert_match "$OUT" '^mailsync [0-9]+\.[0-9]+\.[0-9]+$' "--version output"

# --- usage errors
exact_err "unknown short option" 64 "mailsync: unknown option -x
$try" -x
exact_err "unknown long option" 64 "mailsync: unknown option --bogus
$try" --bogus
exact_err "-c without file" 64 "mailsync: option -c needs an argument
$try" -c
exact_err "--config without file" 64 "mailsync: option --config needs an argument
$try" --config
exact_err "-q with -v" 64 "mailsync: -q and -v cannot be combined
$try" -q -v
exact_err "folders without account" 64 "mailsync: folders needs exactly one ACCOUNT
$try" -c "$T/none.ini" folders
exact_err "folders with two accounts" 64 "mailsync: folders needs exactly one ACCOUNT
$try" -c "$T/none.ini" folders a b

# --- missing config
exact_err "missing -c file" 78 \
	"mailsync: $T/none.ini: cannot open: No such file or directory" \
	-c "$T/none.ini"
exact_err "missing default file" 78 \
	"mailsync: $HOME/.config/mailsync/mailsync.ini: cannot open: No such file or directory"
export XDG_CONFIG_HOME="$T/xdg"
exact_err "missing XDG file" 78 \
	"mailsync: $T/xdg/mailsync/mailsync.ini: cannot open: No such file or directory" \
	check
unset XDG_CONFIG_HOME

# --- config errors: exact file:line messages
good='[a]
source = imaps://127.0.0.1:1
user = u
store = maildir:'"$T"'/Mail
password_command = exit 3'
cfg() { printf '%s\n' "$1" >"$T/$2"; }

cfg "$good
pasword = x" bad1.ini
exact_err "unknown key" 78 \
	"mailsync: $T/bad1.ini:6: unknown key \"pasword\" in [a]" -c "$T/bad1.ini"
cfg "$good
user = v" bad2.ini
exact_err "duplicate key" 78 \
	"mailsync: $T/bad2.ini:6: duplicate key \"user\" in [a] (first on line 3)" \
	-c "$T/bad2.ini"
cfg "[general]
jobs = 0
$good" bad3.ini
exact_err "bad jobs" 78 \
	"mailsync: $T/bad3.ini:2: bad value for \"jobs\" in [general]: \"0\" is not a whole number from 1 to 64" \
	-c "$T/bad3.ini"
cfg "[a]
source = imaps://h
user = u
password = x" bad4.ini
chmod 600 "$T/bad4.ini"
exact_err "missing store" 78 \
	"mailsync: $T/bad4.ini:1: missing required key \"store\" in [a]" \
	-c "$T/bad4.ini"
cfg "$good
policy = delete-after 0" bad5.ini
exact_err "bad policy" 78 \
	"mailsync: $T/bad5.ini:6: bad value for \"policy\" in [a]: \"delete-after 0\" must give DAYS as a whole number from 1 to 36500 (\"30\" or \"30d\")" \
	-c "$T/bad5.ini" -q
cfg "; nothing here" bad6.ini
exact_err "no accounts" 78 \
	"mailsync: $T/bad6.ini: no accounts (add a [NAME] section with source, user, store and a password source)" \
	-c "$T/bad6.ini" status

# --- the 0600 rule (F32)
cfg "[a]
source = imaps://127.0.0.1:1
user = u
store = maildir:$T/Mail
password = hunter2" pw.ini
chmod 644 "$T/pw.ini"
exact_err "password in 0644 config" 78 \
	"mailsync: config $T/pw.ini: mode 0644, must be 0600 or stricter because it contains a password" \
	-c "$T/pw.ini"
assert_no_match "$ERR" hunter2 "0644 config: password not shown"
chmod 640 "$T/pw.ini"
exact_err "password in 0640 config" 78 \
	"mailsync: config $T/pw.ini: mode 0640, must be 0600 or stricter because it contains a password" \
	-c "$T/pw.ini" check
chmod 600 "$T/pw.ini"
ln -s pw.ini "$T/link.ini"
chmod 644 "$T/pw.ini"
exact_err "symlink to 0644 config" 78 \
	"mailsync: config $T/link.ini: mode 0644, must be 0600 or stricter because it contains a password" \
	-c "$T/link.ini"

# --- unknown accounts
cfg "$good" ok.ini
exact_err "unknown account" 64 "mailsync: no account nope in $T/ok.ini" \
	-c "$T/ok.ini" nope
exact_err "unknown account for check" 64 \
	"mailsync: no account nope in $T/ok.ini" -c "$T/ok.ini" check a nope
exact_err "unknown account for folders" 64 \
	"mailsync: no account nope in $T/ok.ini" -c "$T/ok.ini" folders nope

# --- a failing password_command: config status, output never shown
cfg "[a]
source = imaps://127.0.0.1:1
user = u
store = maildir:$T/Mail
password_command = echo leaked-secret; exit 3" cmd.ini
run_ms -c "$T/cmd.ini" check a
assert_eq "$RC" 78 "failing password_command: exit 78"
assert_match "$ERR" '^mailsync: a: .*password_command exited with status 3$' \
	"failing password_command: message"
assert_no_match "$ERR$OUT" leaked-secret "password_command output not shown"

# --- man pages
if command -v mandoc >/dev/null 2>&1; then
	for m in mailsync.1 mailsync.ini.5; do
		out=$(mandoc -Tlint -Wwarning "$top/man/$m" 2>&1)
		assert_eq "$?:$out" "0:" "mandoc -Tlint -Wwarning $m is clean"
	done
else
	not_ok "mandoc is installed (make setup)"
fi

t_done
