#!/usr/bin/env bash
# SIGTERM in the middle of a run: the current message is finished, what is
# stored is committed and recorded, the run exits 75 and the next run
# fetches exactly the rest.  (strace slows every rename so the signal
# reliably lands mid-run.)
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/start.sh"
U=$DV_USER
python3 - "$T" <<'PY'
import sys
for i in range(1, 401):
    open("%s/s%d" % (sys.argv[1], i), "w").write(
        "Subject: s%d\r\nMessage-ID: <s%d@x>\r\n\r\n%s\r\n" % (i, i, "x" * 2000))
PY
files=(); for i in $(seq 1 400); do files+=("$T/s$i"); done
dv_import_inbox $U "${files[@]}"
M=$T/Mail
ms_write_config "$T/ms.ini" sig imaps "maildir:$M" policy=delete
# (not ms_strace: $! must be strace itself, so its child is mailsync)
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 strace -f -qq -o /dev/null -e trace=rename,renameat,renameat2 \
	-e inject=rename,renameat,renameat2:delay_enter=20000 \
	"$MAILSYNC" -c "$T/ms.ini" >"$T/out" 2>"$T/err" &
pid=$!
sleep 2
# signal mailsync itself, not strace (which would detach and let it run)
kill -TERM "$(pgrep -P $pid -n)"
wait $pid
RC=$?
ERR=$(cat "$T/err")
stored=$(md_count "$M/INBOX")
assert_eq "$RC" 75 "SIGTERM mid-run exits 75"
assert_match "$ERR" '^mailsync: sig/INBOX: interrupted by signal$' "stderr says it was interrupted"
assert_eq "$([ "$stored" -gt 0 ] && [ "$stored" -lt 400 ] && echo partial)" partial "stopped part-way ($stored of 400 stored)"
assert_eq "$(find "$M/INBOX/tmp" -type f | wc -l)" 0 "no partial file left in tmp/"
assert_eq "$(( $(dv_count $U INBOX) + stored >= 400 ))" 1 "nothing deleted that is not stored locally"
run_ms -c "$T/ms.ini"
assert_eq "$RC$ERR" 0 "next run exits 0 silently"
assert_eq "$(md_count "$M/INBOX")" 400 "all 400 stored exactly once"
assert_same_set "$(sha_lf "$M"/INBOX/new/*)" "$(sha_lf "${files[@]}")" "byte-identical"
assert_eq "$(dv_count $U INBOX)" 0 "and deleted on the server"
t_done
