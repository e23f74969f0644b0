#!/usr/bin/env bash
# F39 clock skew (libfaketime) with policy delete-after 30, IMAP and POP3:
#  (a) '+400d' after a normal run: whatever the skewed clock makes "old" may
#      be deleted, but only messages stored locally, byte-identical (O3);
#  (b) '-400d' after a normal run (last run and first-seen times in the
#      future): exactly one warning "clock moved backwards since the last
#      run (...)", no time-based deletion in that run, the server keeps
#      every message; the sync itself works, exit 0; the recorded last run
#      is kept, so a second skewed run warns again; the next normal run
#      deletes nothing (first-seen was recorded as the last run's time);
#  (c) a skew that makes the server certificate expired or not yet valid
#      (the certificate is made valid from 500 days ago for 3650 days):
#      exit 77, no login (no post-login session in Dovecot's rawlog), no
#      insecure retry.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/assert.sh"
. "$here/../lib/dovecot.sh"
. "$here/../lib/verify.sh"
. "$here/lib_oracle.sh"
t_setup
ms_use_faketime
# a private copy: a rebuild of the tree's binary during a long run must not
# make an exec fail half way through the matrix
cp "$MAILSYNC" "$T/mailsync" && MAILSYNC=$T/mailsync
# a server certificate valid from 500 days ago for 3650 days, so that only
# the cert tests below fall outside it
dv_make_cert() {
	faketime -f -500d openssl req -x509 -newkey ec \
		-pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
		-subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
		-keyout "$DV_DIR/key.pem" -out "$DV_DIR/cert.pem" >/dev/null 2>&1 || return 1
	chmod 0600 "$DV_DIR/key.pem"
	DV_PIN=unused
}
dovecot_start
U=$DV_USER
deletes() { dv_commands $U | grep -Eci ' UID STORE .*Deleted|^DELE '; }

n=0
seed() { # COUNT: COUNT new messages into INBOX
	local i
	for ((i = 0; i < $1; i++)); do
		n=$((n + 1))
		crlf_msg "$T/m$n" "Subject: clock $n" "Message-ID: <k$n.$RANDOM@x>" "" "clock body $n"
		dv_seed $U INBOX "$T/m$n"
	done
}

for proto in imaps pop3s; do
	for skew in +400d -400d; do
		name=$proto-back
		[ $skew = +400d ] && name=$proto-fwd
		dv_doveadm expunge -u $U mailbox INBOX all
		seed 5
		ms_write_config "$T/$name.ini" "c$name" $proto "maildir:$T/$name" "policy=delete-after 30"
		run_ms -c "$T/$name.ini"
		assert_eq "$RC $ERR $(dv_count $U INBOX)" "0  5" "$name: a normal run stores 5 and deletes none"
		seed 3
		or_record $U INBOX
		dv_rawlog_clear $U
		faketime -f "$skew" "$MAILSYNC" -c "$T/$name.ini" >"$T/out" 2>"$T/err"
		RC=$? ERR=$(cat "$T/err")
		echo "# $name: rc $RC, stderr: ${ERR:-(none)}; deleted $(deletes), left $(dv_count $U INBOX)"
		assert_eq "$RC" 0 "$name ($skew): the skewed run exits 0"
		assert_eq "$(md_count "$T/$name/INBOX")" 8 "$name: all 8 stored"
		or_check $U INBOX maildir "$T/$name/INBOX" "$name"
		if [ $skew = -400d ]; then
			assert_eq "$(deletes)" 0 "$name: no time-based deletion while the clock is behind"
			assert_eq "$(dv_count $U INBOX)" 8 "$name: the server still has all 8"
			lf=$T/state/c$name/last-run
			last=$(sed -n 2p "$lf")
			iso='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z'
			lastiso=$(date -u -d "@$last" +%Y-%m-%dT%H:%M:%SZ)
			want="^mailsync: c$name: clock moved backwards since the last run \\(last run $lastiso, now $iso\\): no time-based deletions this run\$"
			assert_eq "$(wc -l <"$T/err")" 1 "$name: exactly one line on stderr"
			assert_match "$ERR" "$want" "$name: the exact warning"
			# the year in "now" is the skewed one, 400 days back
			assert_match "$ERR" "now $(faketime -f -400d date -u +%Y-%m-%d)T" "$name: the warning's now is the skewed clock"
			assert_eq "$(sed -n 2p "$lf")" "$last" "$name: the last-run time is not overwritten by the earlier clock"
			# a clock that stays wrong keeps being reported
			faketime -f "$skew" "$MAILSYNC" -c "$T/$name.ini" >"$T/out" 2>"$T/err"
			RC=$? ERR=$(cat "$T/err")
			assert_eq "$RC $(wc -l <"$T/err")" "0 1" "$name: a second skewed run warns again, exit 0"
			assert_match "$ERR" "last run $lastiso, now $iso" "$name: again against the same last run"
			# what the times recorded under the skew do next: the
			# 3 new ones were recorded as first seen at the last
			# run, not 400 days ago, so nothing is due yet
			dv_rawlog_clear $U
			run_ms -c "$T/$name.ini"
			echo "# $name: the next normal run: rc $RC, deleted $(deletes), left $(dv_count $U INBOX) of 8"
			assert_eq "$RC $ERR $(deletes) $(dv_count $U INBOX)" "0  0 8" "$name: the next normal run is silent and deletes nothing"
			or_check $U INBOX maildir "$T/$name/INBOX" "$name, next normal run"
		else
			# IMAP: INTERNALDATE is now, 400 days before the fake
			# clock: all 8 are old.  POP3: age from first-seen, so
			# only the 5 seen by the normal run are old.
			want=0
			[ $proto = pop3s ] && want=3
			assert_eq "$(dv_count $U INBOX)" $want "$name: exactly the messages old by the skewed clock deleted"
		fi
	done
done

# (c) the certificate under skew
for skew in +3200d -600d; do
	dv_rawlog_clear $U
	faketime -f "$skew" "$MAILSYNC" -c "$T/imaps-fwd.ini" >"$T/out" 2>"$T/err"
	RC=$? ERR=$(cat "$T/err")
	assert_eq "$RC" 77 "cert $skew: exit 77"
	assert_match "$ERR" 'certificate|SSL|TLS' "cert $skew: the message names the TLS verification"
	assert_eq "$(ls "$DV_RAWLOG/$U" | wc -l)" 0 "cert $skew: no login (no post-login session)"
done
t_done
