#!/usr/bin/env bash
# Two accounts, one store, servers that number alike.  alice and bob have
# the same INBOX UIDVALIDITY and the same UIDs, so the same IMAP identity
# (UIDVALIDITY, UID) and the same POP3 UIDLs (Dovecot's %08Xu%08Xv).
# alice (keep) backs up into a Maildir or mbox; then bob (policy =
# delete) starts backing up into the same store.  bob's first run must
# fetch his own three messages before deleting them on the server: the
# store's files carry the account (Maildir ,A=NAME; mbox index a=NAME),
# so alice's files never count as bob's.  (Without it, bob's state was
# rebuilt from alice's files and his mail deleted unfetched.)
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/start.sh"
A=$DV_USER B=$DV_USER2

mkdir -p "$T/src"
for i in 1 2 3; do
	# the same sizes too: nothing but the account tells them apart
	crlf_msg "$T/src/a$i" "From: a@example.org" "Subject: alice $i" \
		"Message-ID: <a$i@shared>" "" "alice's message $i" "From here on"
	crlf_msg "$T/src/b$i" "From: b@example.org" "Subject: bobby $i" \
		"Message-ID: <b$i@shared>" "" "bobby's message $i" "From here on"
done
want_a=$(sha_lf "$T/src/a1" "$T/src/a2" "$T/src/a3")
want_b=$(sha_lf "$T/src/b1" "$T/src/b2" "$T/src/b3")
want_ab=$(printf '%s\n%s\n' "$want_a" "$want_b" | sort)

# fresh USER UIDVALIDITY FIRSTUID FILE...: INBOX emptied, given that
# UIDVALIDITY, the next UID raised to FIRSTUID, the files imported
fresh() {
	local u=$1 uv=$2 first=$3
	shift 3
	dv_doveadm expunge -u "$u" mailbox INBOX all &&
		dv_doveadm mailbox update -u "$u" --uid-validity "$uv" \
			--min-next-uid "$first" INBOX &&
		dv_import_inbox "$u" "$@" || not_ok "fresh $u"
}
uidv() { dv_doveadm -f tab mailbox status -u "$1" uidvalidity INBOX | tail -n 1 | cut -f 2; }

k=0
for combo in pop3s/maildir pop3s/mbox imaps/maildir imaps/mbox; do
	k=$((k + 1))
	proto=${combo%/*} kind=${combo#*/} D=$T/$k n=$combo
	uv=$((1700000000 + k)) first=$((k * 10))
	fresh $A $uv $first "$T/src/a1" "$T/src/a2" "$T/src/a3"
	fresh $B $uv $first "$T/src/b1" "$T/src/b2" "$T/src/b3"
	uids="$first $((first + 1)) $((first + 2))"
	assert_eq "$(dv_uids $A INBOX) / $(dv_uids $B INBOX)" "$uids / $uids" \
		"$n: alice and bob have the same UIDs"
	assert_eq "$(uidv $A) $(uidv $B)" "$uv $uv" "$n: and the same UIDVALIDITY"
	case $combo in
	pop3s/maildir | imaps/maildir) store=maildir:$D/Mail path=$D/Mail/INBOX ;;
	imaps/mbox) store=mbox:$D/Mail path=$D/Mail/INBOX ;;
	pop3s/mbox) store=mbox:$D/in.mbox path=$D/in.mbox ;;
	esac
	mkdir -p "$D"
	extra=()
	[ "$proto" = imaps ] && extra=(folders=INBOX)
	ms_write_config "$D/a.ini" alice "$proto" "$store" policy=keep "${extra[@]}"
	ms_write_config "$D/b.ini" bob "$proto" "$store" user="$B" policy=delete "${extra[@]}"

	run_ms -c "$D/a.ini"
	assert_eq "$RC$ERR" 0 "$n: alice's run: exit 0, silent"
	assert_eq "$(stored_hashes $kind "$path")" "$want_a" "$n: alice's three stored"

	run_ms -c "$D/b.ini"
	assert_eq "$RC$ERR" 0 "$n: bob's first run into the same store: exit 0, silent"
	assert_eq "$(stored_hashes $kind "$path")" "$want_ab" \
		"$n: bob's three fetched beside alice's, byte-identical"
	assert_eq "$(dv_count $B INBOX)" 0 "$n: bob's three deleted on his server after the fetch"
	assert_eq "$(dv_count $A INBOX)" 3 "$n: alice's server untouched"

	run_ms -c "$D/a.ini"
	assert_eq "$RC$ERR" 0 "$n: alice again: exit 0, silent"
	assert_eq "$(stored_hashes $kind "$path")" "$want_ab" \
		"$n: alice again: nothing fetched twice (bob's files are not hers)"
	if [ "$kind" = maildir ]; then
		assert_eq "$(ls "$path"/new "$path"/cur | grep -c ',A=alice,')/$(ls "$path"/new "$path"/cur | grep -c ',A=bob,')" \
			"3/3" "$n: every file names its account"
	else
		assert_eq "$(grep -c ' a=alice$' "$path.msidx")/$(grep -c ' a=bob$' "$path.msidx")" \
			"3/3" "$n: every index record names its account"
	fi

	# alice's state lost: rebuilt from her files only; bob's are not
	# hers, and nothing is fetched again
	rm -rf "${D:?}/state/alice"
	run_ms -c "$D/a.ini"
	assert_eq "$RC $ERR" "0 mailsync: alice/INBOX: state was missing; rebuilt from the store: 3 messages" \
		"$n: alice's state lost: rebuilt from her 3 files, not bob's (exit 0, one line)"
	assert_eq "$(stored_hashes $kind "$path")" "$want_ab" \
		"$n: alice's state lost: rebuilt, no duplicate"
done

t_done
