#!/usr/bin/env bash
# kill -9 after the store committed a chunk but before the state journal
# recorded it: the next run records the stored copies instead of fetching
# them again (no duplicate), IMAP and POP3, Maildir and mbox.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/start.sh"
U=$DV_USER

for i in 1 2 3 4 5 6 7; do
	crlf_msg "$T/m$i" "Subject: m$i" "Message-ID: <m$i@x>" "" "body $i"
done

# one case: PROTO STORE-KIND STORE-PATH COUNT-FN
check_case() {
	local name=$1 proto=$2 store=$3 count=$4 dir="$T/$1"
	mkdir -p "$dir"
	dv_doveadm expunge -u $U mailbox INBOX all
	dv_seed $U INBOX "$T/m1" "$T/m2"
	ms_write_config "$dir/ms.ini" acct "$proto" "$store"
	run_ms -c "$dir/ms.ini"
	assert_eq "$RC$ERR" 0 "$name: first run stores 2"
	dv_seed $U INBOX "$T/m3" "$T/m4" "$T/m5" "$T/m6" "$T/m7"
	# SIGKILL at the first write to the journal (the write is not
	# done): the chunk is committed in the store, the state does not
	# know it
	ms_strace -f -qq -o /dev/null -P "$dir/state/acct/INBOX.journal" \
		-e trace=write,pwrite64,writev \
		-e inject=write,pwrite64,writev:signal=SIGKILL:when=1 \
		"$MAILSYNC" -c "$dir/ms.ini" >/dev/null 2>&1 || true
	assert_eq "$($count)" 7 "$name: killed run had committed all 7 to the store"
	dv_rawlog_clear $U
	run_ms -c "$dir/ms.ini"
	assert_eq "$RC" 0 "$name: next run exits 0"
	assert_match "$ERR" '^mailsync: acct/INBOX: 5 messages were stored but not recorded \(an interrupted run\); recorded now' "$name: says what it recovered"
	assert_eq "$(dv_commands $U | grep -Ec 'BODY.PEEK|^RETR')" 0 "$name: nothing fetched again"
	assert_eq "$($count)" 7 "$name: no duplicate"
	run_ms -c "$dir/ms.ini"
	assert_eq "$RC$ERR" 0 "$name: the run after is clean"
}
md_n() { md_count "$T/$1/Mail/INBOX"; }
mbox_n() { python3 "$here/../lib/mboxrd_split.py" "$1" "$T/split.$RANDOM"; }
imap_md() { md_n imap-maildir; }
pop_md() { md_n pop3-maildir; }
imap_mbox() { mbox_n "$T/imap-mbox/Mail/INBOX"; }
pop_mbox() { mbox_n "$T/pop3-mbox/in.mbox"; }
check_case imap-maildir imaps "maildir:$T/imap-maildir/Mail" imap_md
check_case pop3-maildir pop3s "maildir:$T/pop3-maildir/Mail" pop_md
check_case imap-mbox imaps "mbox:$T/imap-mbox/Mail" imap_mbox
check_case pop3-mbox pop3s "mbox:$T/pop3-mbox/in.mbox" pop_mbox
t_done
