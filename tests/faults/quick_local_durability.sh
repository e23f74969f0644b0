#!/usr/bin/env bash
# F10 durability order: 20 messages, policy delete, IMAP and POP3 into
# Maildir and mbox, traced with strace.  check_trace.py checks for every
# message the server was asked to delete: tmp file O_EXCL -> fsync -> rename
# into new/|cur/ -> directory fsync (mbox: append -> fsync -> index record ->
# index fsync) -> state journal record -> fsync, all before the time the
# server received the UID STORE \Deleted / DELE (Dovecot rawlog).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/assert.sh"
. "$here/../lib/dovecot.sh"
. "$here/../lib/verify.sh"
. "$here/lib_oracle.sh"
t_setup
dovecot_start
U=$DV_USER

for i in $(seq 1 20); do
	crlf_msg "$T/m$i" "Subject: durability $i" "Message-ID: <d$i@x>" ""
	{ head -c $((i * 700)) /dev/zero | tr '\0' 'y' | fold -w 60; echo; } | sed 's/$/\r/' >>"$T/m$i"
done

trace_run() { # TRACE CONFIG
	ms_strace -f -ttt -s 65536 -o "$1" \
		-e trace=openat,write,fsync,fdatasync,close,rename,renameat,renameat2,link,linkat,dup,dup2,dup3,fcntl \
		"$MAILSYNC" -c "$2" >"$T/out" 2>"$T/err"
	RC=$?
	ERR=$(cat "$T/err")
}

for combo in "imaps maildir" "imaps mbox" "pop3s maildir" "pop3s mbox"; do
	set -- $combo
	proto=${1%s} kind=$2 name=$1-$2
	dv_seed $U INBOX "$T"/m{1..20}
	# some seen, some not: IMAP puts them in cur/ and new/
	for uid in $(dv_uids $U INBOX | cut -d' ' -f1-7); do
		dv_set_flags $U INBOX "$uid" '\Seen'
	done
	or_record $U INBOX
	case $proto-$kind in
	imap-maildir | pop3-maildir) store=maildir:$T/$name path=$T/$name/INBOX ;;
	imap-mbox) store=mbox:$T/$name path=$T/$name/INBOX ;;
	pop3-mbox) store=mbox:$T/$name.mbox path=$T/$name.mbox ;;
	esac
	ms_write_config "$T/$name.ini" "a-$name" "$1" "$store" policy=delete
	dv_rawlog_clear $U
	trace_run "$T/$name.trace" "$T/$name.ini"
	assert_eq "$RC $ERR" "0 " "$name: traced delete run exits 0 silently"
	dv_commands $U >/dev/null # waits until the session's rawlog is complete
	res=$(python3 "$here/check_trace.py" --trace "$T/$name.trace" \
		--rawlog "$DV_RAWLOG/$U" --proto "$proto" --store "$kind" \
		--state "$T/state" --expect 20)
	rc=$?
	assert_eq "$rc $(tail -1 <<<"$res")" "0 checked 20" \
		"$name: every one of 20 deletions came after file/dir fsync and the state fsync"
	[ "$rc" = 0 ] || echo "$res" | head -5 | sed 's/^/# /'
	or_complete $U INBOX "$kind" "$path" "$name"
	cp -r "$DV_RAWLOG/$U" "$T/$name.rawlog"
	or_idempotent $U "$kind" "$path" "$name" -c "$T/$name.ini"
done

# The checker must be able to fail: remove the fsync of new/ (Maildir) or of
# the index (mbox), or move the state journal's fsync, from a good trace.
n=$(grep -c 'fsync(' "$T/imaps-maildir.trace")
newfd=$(grep -E 'openat\([0-9]+, "new", ' "$T/imaps-maildir.trace" | tail -1 | sed -E 's/.*= ([0-9]+)$/\1/')
grep -v "fsync($newfd)" "$T/imaps-maildir.trace" >"$T/bad1.trace"
python3 "$here/check_trace.py" --trace "$T/bad1.trace" --rawlog "$T/imaps-maildir.rawlog" \
	--proto imap --store maildir --state "$T/state" --expect 20 >"$T/bad1.out"
assert_eq "$? $(grep -c 'no fsync of .*/new after the rename' "$T/bad1.out")" "1 13" \
	"checker: a missing fsync of new/ is reported for each of the 13 unseen messages"
idxfd=$(grep -E 'openat\([0-9]+, "INBOX.msidx", O_WRONLY\|O_APPEND' "$T/imaps-mbox.trace" | tail -1 | sed -E 's/.*= ([0-9]+)$/\1/')
awk -v fd="$idxfd" '!(index($0, "fsync(" fd ")") && seen) { print } /INBOX.msidx", O_WRONLY\|O_APPEND/ { seen = 1 }' \
	"$T/imaps-mbox.trace" >"$T/bad2.trace"
python3 "$here/check_trace.py" --trace "$T/bad2.trace" --rawlog "$T/imaps-mbox.rawlog" \
	--proto imap --store mbox --state "$T/state" --expect 20 >"$T/bad2.out"
assert_eq "$? $(grep -c 'index not fsynced' "$T/bad2.out")" "1 20" \
	"checker: a missing index fsync is reported for all 20"
# shift the server's STORE time back before the journal fsync
python3 - "$T/imaps-maildir.rawlog" "$T/imaps-maildir.trace" <<'EOF'
import glob, re, sys
t = [float(l.split()[1]) for l in open(sys.argv[2]) if "+u " in l and "write(" in l][0]
for f in glob.glob(sys.argv[1] + "/*.in"):
    d = open(f, "rb").read().decode("latin-1")
    d = re.sub(r"^\d+\.\d+ (\S+ UID STORE)", lambda m: "%.6f %s" % (t - 0.000001, m.group(1)), d, flags=re.M)
    open(f, "wb").write(d.encode("latin-1"))
EOF
python3 "$here/check_trace.py" --trace "$T/imaps-maildir.trace" --rawlog "$T/imaps-maildir.rawlog" \
	--proto imap --store maildir --state "$T/state" --expect 20 >"$T/bad3.out"
assert_eq "$? $(grep -c 'server deletion at .* before the local commit' "$T/bad3.out")" "1 20" \
	"checker: a deletion received before the journal fsync is reported"
[ "$n" -gt 20 ] || not_ok "trace has fsyncs"
t_done
