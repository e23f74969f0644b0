#!/usr/bin/env bash
# F39 (a): a deleting policy removes from the server only what the store
# still holds.  Messages stored in keep mode, then lost locally (some
# Maildir files, the mbox and its index, the whole store directory), are
# reported once, fetched again in the same run and not deleted on the
# server in that run (nothing in that folder is); the next run deletes
# normally.  Keep mode does not check: local deletions stay deleted.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/assert.sh"
. "$here/../lib/dovecot.sh"
. "$here/../lib/verify.sh"
t_setup
ms_use_faketime
dovecot_start

for i in 1 2 3 4 5 6 7 8; do
	crlf_msg "$T/m$i" "Subject: msg $i" "Message-ID: <m$i@x>" "" "body $i" "From here" "."
done
WARN='message(s) recorded as stored are missing from the store; fetched again, not deleted on the server'

# seed USER FILE...: 400-day-old INTERNALDATE (so IMAP delete-after 1 applies)
seed() {
	local u=$1 pw=$DV_PASS
	shift
	[ "$u" = "$DV_USER2" ] && pw=$DV_PASS2
	python3 "$here/../lib/imap_append.py" $DV_IMAPS_PORT "$DV_CA" "$u" "$pw" INBOX 400 "$@"
}
server_set() { # USER: sorted hashes of the server's messages, CRLF -> LF
	local u
	for u in $(dv_uids "$1" INBOX); do dv_body "$1" INBOX "$u" | crlf_to_lf | sha256sum; done | sort
}

# scenario NAME USER PROTO KIND POLICY LOSS
#   KIND maildir|mbox, LOSS some (two Maildir files) | mbox (mbox + index)
#   | all (the store directory)
scenario() {
	local name=$1 u=$2 proto=$3 kind=$4 policy=$5 loss=$6 D=$T/$1 store path
	local acct=${name//-/}  miss=6
	mkdir -p "$D"
	dv_doveadm expunge -u "$u" mailbox INBOX all
	seed "$u" "$T/m1" "$T/m2" "$T/m3" "$T/m4" "$T/m5" "$T/m6"
	case $kind/$proto in
	maildir/*) store=maildir:$D/Mail path=$D/Mail/INBOX ;;
	mbox/imaps) store=mbox:$D/Mail path=$D/Mail/INBOX ;;
	mbox/pop3s) store=mbox:$D/in.mbox path=$D/in.mbox ;;
	esac
	ms_write_config "$D/c.ini" "$acct" "$proto" "$store" user="$u" policy=keep
	run_ms -c "$D/c.ini"
	assert_eq "$RC$ERR" 0 "$name: keep run stores the six silently"
	ms_write_config "$D/c.ini" "$acct" "$proto" "$store" user="$u" "policy=$policy"
	case $loss in
	some) rm -f $(grep -l -e '^Message-ID: <m2@x>' -e '^Message-ID: <m5@x>' "$path"/new/* "$path"/cur/* 2>/dev/null)
	      miss=2
	      assert_eq "$(md_count "$path")" 4 "$name: two local files removed" ;;
	mbox) rm -f "$path" "$path.msidx" ;;
	all)  rm -rf "$D/Mail" "$D/in.mbox" "$D/in.mbox.msidx" ;;
	esac
	seed "$u" "$T/m7" "$T/m8"
	want=$(server_set "$u")
	if [ "$loss" = some ]; then
		run_ms -n -c "$D/c.ini"
		assert_eq "$RC $(head -1 <<<"$ERR")" "0 mailsync: $acct/INBOX: $miss $WARN" "$name: dry run: the same warning"
		assert_match "$(sed 1d <<<"$ERR")" "^mailsync: $acct/INBOX: would fetch 4 \\([0-9]+ bytes\\), would delete 0\$" \
			"$name: dry run: would fetch the lost two and the new two, would delete none"
		assert_eq "$(dv_count "$u" INBOX) $(md_count "$path")" "8 4" "$name: dry run changes nothing"
	fi
	dv_rawlog_clear "$u"
	run_ms -c "$D/c.ini"
	assert_eq "$RC" 0 "$name: run after the loss exits 0"
	assert_eq "$ERR" "mailsync: $acct/INBOX: $miss $WARN" "$name: one exact warning"
	assert_eq "$(dv_count "$u" INBOX)" 8 "$name: nothing deleted on the server in that run"
	assert_eq "$(dv_commands "$u" | grep -Ec '^[^ ]* ?(DELE|UID STORE|UID EXPUNGE|EXPUNGE)')" 0 \
		"$name: no DELE, STORE or EXPUNGE sent"
	assert_same_set "$(stored_hashes "$kind" "$path")" "$want" "$name: lost ones fetched again, store byte-identical to the server"
	dv_rawlog_clear "$u"
	# POP3 delete-after counts from when the message was stored (now)
	if [ "$proto/$policy" = "pop3s/delete-after 1" ]; then
		faketime -f +2d "$MAILSYNC" -c "$D/c.ini" >"$T/out" 2>"$T/err"
		RC=$? ERR=$(cat "$T/err")
	else
		run_ms -c "$D/c.ini"
	fi
	assert_eq "$RC$ERR" 0 "$name: next run exits 0 silently"
	assert_eq "$(dv_count "$u" INBOX)" 0 "$name: next run deletes normally"
	assert_eq "$(dv_commands "$u" | grep -Ec 'BODY.PEEK|^RETR')" 0 "$name: next run downloads nothing"
	assert_same_set "$(stored_hashes "$kind" "$path")" "$want" "$name: local copies intact"
}

scenario imap-md-some   $DV_USER2 imaps maildir delete         some
scenario imap-md-all    $DV_USER2 imaps maildir 'delete-after 1' all
scenario imap-mbox-gone $DV_USER2 imaps mbox    delete         mbox
scenario imap-mbox-age  $DV_USER2 imaps mbox    'delete-after 1' all
scenario pop-md-some    $DV_USER  pop3s maildir 'delete-after 1' some
scenario pop-md-all     $DV_USER  pop3s maildir delete         all
scenario pop-mbox-gone  $DV_USER  pop3s mbox    delete         mbox
scenario pop-mbox-age   $DV_USER  pop3s mbox    'delete-after 1' mbox

# --- keep mode does not check: a local deletion stays deleted ---
D=$T/keep; mkdir -p "$D"
dv_doveadm expunge -u $DV_USER2 mailbox INBOX all
seed $DV_USER2 "$T/m1" "$T/m2" "$T/m3"
ms_write_config "$D/c.ini" kp imaps "maildir:$D/Mail" user=$DV_USER2
run_ms -c "$D/c.ini"
assert_eq "$RC$ERR" 0 "keep: first run silent"
rm -f "$(grep -l '^Message-ID: <m2@x>' "$D"/Mail/INBOX/new/* "$D"/Mail/INBOX/cur/* 2>/dev/null)"
dv_rawlog_clear $DV_USER2
run_ms -c "$D/c.ini"
assert_eq "$RC$ERR" 0 "keep: no warning after a local deletion"
assert_eq "$(md_count "$D/Mail/INBOX")" 2 "keep: the deleted one is not fetched again"
assert_eq "$(dv_commands $DV_USER2 | grep -c BODY.PEEK)" 0 "keep: nothing downloaded"
t_done
