#!/usr/bin/env bash
# POP3S against a real Dovecot: exact bytes into Maildir and mbox, keep mode
# is a no-op the second time, delete mode removes exactly what was stored.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/start.sh"
U=$DV_USER

crlf_msg "$T/p1" "Subject: dots" "Message-ID: <p1@x>" "" "." ".." "...x" ".leading" "From me" ">From you" ">>From them" "From"
crlf_msg "$T/p2" ".Subject-less first line starting with a dot" "Message-ID: <p2@x>" "" "body"
printf 'Subject: no final newline\r\nMessage-ID: <p3@x>\r\n\r\nlast' >"$T/p3"
printf 'Subject: bare LF\r\nMessage-ID: <p4@x>\r\n\r\na\nb\r\n.\nc\r\n' >"$T/p4"
dv_seed $U INBOX "$T/p1" "$T/p2" "$T/p3" "$T/p4"
bulk=()
python3 - "$T" <<'PY'
import sys
for i in range(1, 301):
    body = "Subject: bulk %d\r\nMessage-ID: <g%d@x>\r\n\r\nline %d\r\n.\r\nend\r\n" % (i, i, i)
    open("%s/g%d" % (sys.argv[1], i), "w").write(body)
PY
for i in $(seq 1 300); do bulk+=("$T/g$i"); done
dv_import_inbox $U "${bulk[@]}"
files=("$T/p1" "$T/p2" "$T/p3" "$T/p4" "${bulk[@]}")
n=${#files[@]}
# POP3 cannot carry a message without a final newline: the server adds
# CRLF before the terminating dot, so the stored copy ends with "\n".
with_nl() { python3 -c 'import sys; d=sys.stdin.buffer.read(); sys.stdout.buffer.write(d if d.endswith(b"\n") else d + b"\n")'; }
# the server's bytes for the tricky ones (doveadm), the seeded files for
# the bulk (faster; imap_backup.sh proves those two agree)
want=$( { for u in 1 2 3 4; do dv_body $U INBOX $u | crlf_to_lf | with_nl | sha256sum; done
	sha_lf "${bulk[@]}"; } | sort)

# --- keep into Maildir ---
M=$T/Mail
ms_write_config "$T/keep.ini" pk pop3s "maildir:$M"
dv_rawlog_clear $U
run_ms -c "$T/keep.ini"
assert_eq "$RC" 0 "POP3 keep run exits 0"
assert_eq "$ERR$OUT" "" "POP3 keep run prints nothing"
assert_eq "$(md_count "$M/INBOX")" "$n" "all $n messages stored"
# fsynced copies leave the page cache (ms_fs_drop_cache): a backup of
# gigabytes must not push out everything else (read before anything here
# reads the files)
mapfile -t stored < <(find "$M/INBOX/new" "$M/INBOX/cur" -type f)
assert_eq "${#stored[@]}|$(cached_bytes "${stored[@]}")" "$n|0" \
	"Maildir: no stored message left in the page cache"
got=$(sha_lf "$M"/INBOX/new/* "$M"/INBOX/cur/*)
assert_same_set "$got" "$want" "POP3 into Maildir: byte-identical (dot-unstuffed once)"
assert_eq "$(dv_count $U INBOX)" "$n" "keep: server still has all"
assert_match "$(ls "$M/INBOX/new" | head -1)" ',P=[0-9A-Fa-f]+$' "identity (UIDL) in the file name"
dv_rawlog_clear $U
run_ms -c "$T/keep.ini"
assert_eq "$RC$ERR" 0 "second keep run exits 0 silently"
assert_eq "$(dv_commands $U | grep -Ec '^(RETR|DELE)')" 0 "second keep run: no RETR, no DELE"
assert_eq "$(md_count "$M/INBOX")" "$n" "second keep run: no duplicate"
# nothing new: nothing written at all (the state is not rewritten
# either); only the F04 preflight probe is created in tmp/ and removed
ms_strace -f -qq -o "$T/trace.none" -e trace=fsync,fdatasync,rename,renameat,renameat2,unlink,unlinkat \
	"$MAILSYNC" -c "$T/keep.ini" >"$T/out" 2>"$T/err"
assert_eq "$?|$(cat "$T/err")" "0|" "nothing new again: exit 0, silent"
assert_eq "$(grep -E 'fsync|rename' "$T/trace.none")" "" \
	"nothing new: no fsync, no rename"
assert_match "$(grep -E 'unlink' "$T/trace.none")" \
	'^[0-9]+ +unlinkat\([0-9]+, "[0-9]+\.M[0-9]+P[0-9]+R[0-9a-f]+Q[0-9]+\.[^"]*", 0\) = 0$' \
	"nothing new: one unlink, the preflight probe in tmp/"

# --- lost state: rebuilt from the Maildir names ---
rm -rf "$T/state"
dv_rawlog_clear $U
run_ms -c "$T/keep.ini"
assert_eq "$RC" 0 "lost state run exits 0"
assert_eq "$(dv_commands $U | grep -Ec '^RETR')" 0 "lost state: nothing downloaded again"

# --- delete into mbox ---
ms_write_config "$T/del.ini" pd pop3s "mbox:$T/inbox.mbox" policy=delete
dv_rawlog_clear $U
run_ms -c "$T/del.ini"
assert_eq "$RC$ERR" 0 "POP3 delete run into mbox exits 0 silently"
assert_eq "$(dv_count $U INBOX)" 0 "delete: server emptied"
assert_eq "$(cached_bytes "$T/inbox.mbox")" 0 "mbox: the append left no page in the page cache"
mkdir -p "$T/split"
cnt=$(python3 "$here/../lib/mboxrd_split.py" "$T/inbox.mbox" "$T/split")
assert_eq "$cnt" "$n" "mbox holds $n messages (mboxrd reader)"
got=$(sha_lf "$T"/split/*)
assert_same_set "$got" "$want" "mbox messages byte-identical after mboxrd un-quoting"
cmds=$(dv_commands $U)
assert_eq "$(grep -c '^DELE' <<<"$cmds")" "$n" "one DELE per stored message"
assert_match "$(tail -1 <<<"$cmds")" '^QUIT' "QUIT commits"
assert_eq "$(stat -c %a "$T/inbox.mbox")" 600 "mbox created 0600"

# --- more mail arrives: appended, nothing re-fetched ---
dv_seed $U INBOX "$T/p1"
run_ms -c "$T/del.ini"
assert_eq "$RC$ERR" 0 "second delete run exits 0"
assert_eq "$(python3 "$here/../lib/mboxrd_split.py" "$T/inbox.mbox" "$T/split2")" "$((n + 1))" "one message appended"
assert_eq "$(dv_count $U INBOX)" 0 "and deleted on the server"
sums=$(sha256sum "$T/inbox.mbox" "$T/inbox.mbox.msidx")
ms_strace -f -qq -o "$T/trace.none2" -e trace=fsync,fdatasync,rename,renameat,renameat2,unlink,unlinkat \
	"$MAILSYNC" -c "$T/del.ini" >"$T/out" 2>"$T/err"
assert_eq "$?|$(cat "$T/err")" "0|" "mbox, nothing on the server: exit 0, silent"
assert_eq "$(grep -E 'fsync|rename|unlink' "$T/trace.none2")" "" \
	"mbox, nothing to do: no fsync, rename or unlink"
assert_eq "$(sha256sum "$T/inbox.mbox" "$T/inbox.mbox.msidx")" "$sums" "mbox, nothing to do: mbox and index untouched"
# --- bulk bodies: TLS read-ahead after login (net.c fast_reads) ---
# Without read-ahead OpenSSL reads each TLS record with two recv calls, the
# 5-byte record header then its body: a 4 MB fetch makes thousands of
# 5-byte reads.  With it, only curl's login (before read-ahead is on) does.
python3 - "$T" <<'PY'
import sys
for i in range(1, 5):
    lines = ["Subject: big %d" % i, "Message-ID: <big%d@x>" % i, ""]
    lines += [("%06d " % j) + "x" * 68 + ("." if j % 7 == 0 else "")
              for j in range(14000)]
    lines[10] = ".dot line"
    open("%s/big%d" % (sys.argv[1], i), "w", newline="").write(
        "\r\n".join(lines) + "\r\n")
PY
big=("$T/big1" "$T/big2" "$T/big3" "$T/big4")
dv_import_inbox $U "${big[@]}"
B=$T/BigMail
ms_write_config "$T/big.ini" pb pop3s "maildir:$B"
ms_strace -f -qq -e trace=recvfrom,read -o "$T/big.strace" \
	"$MAILSYNC" -c "$T/big.ini" >"$T/out" 2>"$T/err"
RC=$?
assert_eq "$RC$(cat "$T/err")" 0 "4 MB POP3 fetch exits 0 silently"
assert_same_set "$(sha_lf "$B"/INBOX/new/* "$B"/INBOX/cur/*)" "$(sha_lf "${big[@]}")" \
	"4 MB POP3 fetch: byte-identical"
hdr=$(grep -Ec '^[0-9]+ +(recvfrom|read)\([0-9]+, .*, 5(, 0, NULL, NULL)?\) += 5$' "$T/big.strace")
total=$(grep -Ec '^[0-9]+ +(recvfrom|read)\(' "$T/big.strace")
if [ "$hdr" -lt 100 ]; then ok "TLS read-ahead: $hdr lone 5-byte record-header reads (< 100) in $total reads"
else not_ok "TLS read-ahead: $hdr lone 5-byte record-header reads, want < 100" "reads: $total"; fi

# mbox: the commit's append starts writeback every MiB (sync_file_range on
# the mbox, before its fsync), so the fsync has little left to wait for
ms_write_config "$T/bigm.ini" pbm pop3s "mbox:$T/big.mbox"
ms_strace -f -qq -y -e trace=sync_file_range,fsync -o "$T/bigm.strace" \
	"$MAILSYNC" -c "$T/bigm.ini" >"$T/out" 2>"$T/err"
RC=$?
assert_eq "$RC$(cat "$T/err")" 0 "4 MB POP3 fetch into mbox exits 0 silently"
assert_eq "$(python3 "$here/../lib/mboxrd_split.py" "$T/big.mbox" "$T/bigm.split")" 4 \
	"4 MB POP3 fetch into mbox: 4 messages"
assert_same_set "$(sha_lf "$T"/bigm.split/*)" "$(sha_lf "${big[@]}")" \
	"4 MB POP3 fetch into mbox: byte-identical"
trace=$(grep -E "(sync_file_range|fsync)\([0-9]+<$T/big.mbox>" "$T/bigm.strace" | sed -E 's/^[0-9]+ +//; s/\(.*//')
assert_eq "$(grep -c sync_file_range <<<"$trace") $(tail -1 <<<"$trace")" "4 fsync" \
	"mbox append: writeback started every MiB (4 times for 4.2 MB), then the fsync"
t_done
