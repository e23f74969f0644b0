#!/usr/bin/env bash
# F25: Gmail labels and Message-ID anomalies (fake server in Gmail mode:
# X-GM-EXT-1 and SPECIAL-USE advertised, German folder names, every
# message carrying an X-GM-MSGID).
# Mailbox: INBOX holds S (X-GM-MSGID 1001, also in Work and in \All),
# three messages without Message-ID and two different messages sharing
# one Message-ID; "[Gmail]/Alle Nachrichten" (\All) holds all of those
# plus the sent T; "[Gmail]/Gesendet" (\Sent) T; "[Gmail]/Papierkorb"
# (\Trash) X; "[Gmail]/Spam" (\Junk) Y; "[Gmail]" is \Noselect.
# Proves, per-folder mode (the default):
# - LIST asks for the special-use attributes (RETURN (SPECIAL-USE));
# - folders = * !\Trash !\Junk excludes Papierkorb and Spam by attribute
#   (never EXAMINEd, no directory), syncs the other 4 folders;
# - exact files per folder, compared by hash: INBOX 6, Work 1, Alle
#   Nachrichten 7, Gesendet 1; S stored once per folder (3 copies); all 5
#   Message-ID anomalies stored in INBOX and in \All (no collapse);
# - a re-run fetches no body and stores nothing (15 files);
# - folders = \all (any case) syncs only the \All folder (7 files);
# - folders = INBOX \Sent: INBOX and Gesendet only;
# - an unknown attribute (!\Bin) is a configuration error (exit 78)
#   naming it, before any connection.
# "All Mail + labels" (gmail = all-mail):
# - only the \All folder is synced: 7 files, S once, all 5 anomalies;
# - one UID FETCH 1:* (UID X-GM-MSGID X-GM-LABELS); the labels file
#   "[Gmail]/Alle Nachrichten/mailsync-labels" holds exactly the header and
#   one line per message (X-GM-MSGID, UID, labels incl. "Mein Label");
# - a re-run fetches no body, same 7 files, same labels file;
# - with folders, or policy = delete: exit 78; a server without
#   X-GM-EXT-1, or without a \All folder: exit 76 naming the cause.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/assert.sh"
. "$here/../lib/dovecot.sh"
. "$here/fake.sh"
t_setup
fake_cert
python3 - "$T" <<'EOF'
import json, sys
t = sys.argv[1]
def w(name, text):
    data = text.replace("\n", "\r\n").encode()
    open("%s/%s" % (t, name), "wb").write(data)
    return name
w("S", "From: a@example.org\nSubject: in three labels\n"
  "Message-ID: <shared@gmail.example>\n\nS body\n")
for i in (1, 2, 3):
    w("n%d" % i, "From: a@example.org\nSubject: no message-id %d\n\n"
      "body without id %d\n" % (i, i))
for i in (1, 2):
    w("d%d" % i, "From: a@example.org\nSubject: same id, text %d\n"
      "Message-ID: <same@gmail.example>\n\ndifferent body %d\n" % (i, i))
w("T", "From: me@example.org\nSubject: sent\nMessage-ID: <t@x>\n\nT\n")
w("X", "From: z@example.org\nSubject: trash\nMessage-ID: <x@x>\n\nX\n")
w("Y", "From: y@example.org\nSubject: spam\nMessage-ID: <y@x>\n\nY\n")
gm = {"S": 1001, "n1": 1002, "n2": 1003, "n3": 1004, "d1": 1005,
      "d2": 1006, "T": 1007, "X": 1008, "Y": 1009}
lab = {"S": ["\\Inbox", "Work", "Mein Label"], "T": ["\\Sent"]}
def m(f):
    return {"file": f, "gm_msgid": gm[f], "gm_labels": lab.get(f, ["\\Inbox"])}
anom = ["n1", "n2", "n3", "d1", "d2"]
folders = [
    {"name": "INBOX", "messages": [m(f) for f in ["S"] + anom]},
    {"name": "Work", "messages": [m("S")]},
    {"name": "[Gmail]", "noselect": True, "attrs": ["\\HasChildren"]},
    {"name": "[Gmail]/Alle Nachrichten", "attrs": ["\\All", "\\HasNoChildren"],
     "messages": [m(f) for f in ["S"] + anom + ["T"]]},
    {"name": "[Gmail]/Gesendet", "attrs": ["\\HasNoChildren", "\\Sent"],
     "messages": [m("T")]},
    {"name": "[Gmail]/Papierkorb", "attrs": ["\\HasNoChildren", "\\Trash"],
     "messages": [m("X")]},
    {"name": "[Gmail]/Spam", "attrs": ["\\HasNoChildren", "\\Junk"],
     "messages": [m("Y")]},
]
json.dump({"folders": folders, "capability":
           "IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN "
           "X-GM-EXT-1 UIDPLUS COMPRESS=DEFLATE ENABLE MOVE CONDSTORE "
           "ESEARCH UTF8=ACCEPT LIST-EXTENDED LIST-STATUS LITERAL- "
           "SPECIAL-USE APPENDLIMIT=35651584 AUTH=PLAIN SASL-IR"},
          open(t + "/gmail.json", "w"), indent=1)
# the same without X-GM-EXT-1, and without any \All folder
caps = "IMAP4rev1 UIDPLUS SPECIAL-USE AUTH=PLAIN SASL-IR"
json.dump({"folders": folders, "capability": caps},
          open(t + "/nogm.json", "w"), indent=1)
for f in folders:
    f["attrs"] = [a for a in f.get("attrs", []) if a != "\\All"]
json.dump({"folders": folders, "capability": caps + " X-GM-EXT-1"},
          open(t + "/noall.json", "w"), indent=1)
EOF
h() { fk_want_hashes "$@"; }
A='[Gmail]/Alle Nachrichten'
G='[Gmail]/Gesendet'
fake_start imap "$T/gmail.json" 8 90

# per-folder mode, special folders excluded by attribute
M=$T/M
fake_config "$T/a.ini" gm imaps "maildir:$M" 'folders=* !\Trash !\Junk'
run_ms -c "$T/a.ini"
assert_eq "$RC$ERR" 0 "per-folder run 1: exit 0, silent"
assert_eq "$(fake_count '^LIST "" "\*" RETURN \(SPECIAL-USE( STATUS \(.*\))?\)$')" 1 "LIST asks for the special-use attributes"
assert_eq "$(fake_cmds | sed -nE 's/^(EXAMINE|SELECT) //p' | sed 's/ (CONDSTORE)$//' | tr -d '"' | LC_ALL=C sort | tr '\n' '|')" "INBOX|Work|$A|$G|" "EXAMINE only the 4 selected folders: not \\Trash, \\Junk, \\Noselect"
assert_eq "$(cd "$M" && find . -type d -name cur | sed 's#/cur$##' | LC_ALL=C sort | tr '\n' '|')" "./INBOX|./Work|./$A|./$G|" "Maildirs for exactly the 4 selected folders"
assert_eq "$(find "$M" -name Papierkorb -o -name Spam | wc -l)" 0 "no Papierkorb or Spam directory"
assert_eq "$(fk_stored_hashes "$M/INBOX")" "$(cd "$T" && h S n1 n2 n3 d1 d2)" "INBOX: exactly S and the 5 Message-ID anomalies, byte-identical"
assert_eq "$(fk_stored_hashes "$M/Work")" "$(h "$T/S")" "Work: exactly S"
assert_eq "$(fk_stored_hashes "$M/$A")" "$(cd "$T" && h S n1 n2 n3 d1 d2 T)" "\\All (Alle Nachrichten): exactly its 7 messages"
assert_eq "$(fk_stored_hashes "$M/$G")" "$(h "$T/T")" "\\Sent (Gesendet): exactly T"
all=$(for d in INBOX Work "$A" "$G"; do fk_stored_hashes "$M/$d"; done)
assert_eq "$(grep -c "$(h "$T/S")" <<<"$all")" 3 "S (one X-GM-MSGID in 3 labels): one copy per folder, 3 in all"
assert_eq "$(grep -c "$(h "$T/d1")" <<<"$all")$(grep -c "$(h "$T/d2")" <<<"$all")" 22 "the 2 messages sharing a Message-ID: both kept, in INBOX and \\All"
assert_eq "$(for f in n1 n2 n3; do grep -c "$(h "$T/$f")" <<<"$all"; done | tr -d '\n')" 222 "the 3 messages without Message-ID: each in INBOX and \\All"
assert_eq "$(find "$M" -type f -path '*/[nc][eu][wr]/*' | wc -l)" 15 "15 files in all"
: >"$FK_DIR/log"
run_ms -c "$T/a.ini"
assert_eq "$RC$ERR" 0 "per-folder run 2: exit 0, silent"
assert_eq "$(fake_count 'BODY')" 0 "run 2: no body fetched"
assert_eq "$(find "$M" -type f -path '*/[nc][eu][wr]/*' | wc -l)" 15 "run 2: nothing stored again (15 files)"

# only the \All folder, the attribute in another case
N=$T/N
fake_config "$T/b.ini" gmall imaps "maildir:$N" 'folders=\all'
run_ms -c "$T/b.ini"
assert_eq "$RC$ERR" 0 "folders = \\all: exit 0, silent"
assert_eq "$(cd "$N" && find . -type f -path '*/[nc][eu][wr]/*' | sed -E 's#/(new|cur)/[^/]*$##' | LC_ALL=C sort | uniq -c | sed 's/^ *//' | tr '\n' '|')" "7 ./$A|" "folders = \\all: only Alle Nachrichten, its 7 messages"

# a name and an attribute
O=$T/O
fake_config "$T/c.ini" gmsent imaps "maildir:$O" 'folders=INBOX \Sent'
run_ms -c "$T/c.ini"
assert_eq "$RC$ERR" 0 "folders = INBOX \\Sent: exit 0, silent"
assert_eq "$(cd "$O" && find . -type f -path '*/[nc][eu][wr]/*' | sed -E 's#/(new|cur)/[^/]*$##' | LC_ALL=C sort | uniq -c | sed 's/^ *//' | tr '\n' '|')" "6 ./INBOX|1 ./$G|" "folders = INBOX \\Sent: INBOX (6) and Gesendet (1) only"

# "All Mail + labels": each X-GM-MSGID stored once, labels recorded
L=$T/L
fake_config "$T/l.ini" gmlab imaps "maildir:$L" gmail=all-mail
: >"$FK_DIR/log"
run_ms -c "$T/l.ini"
assert_eq "$RC$ERR" 0 "gmail = all-mail: exit 0, silent"
assert_eq "$(cd "$L" && find . -type f -path '*/[nc][eu][wr]/*' | sed -E 's#/(new|cur)/[^/]*$##' | LC_ALL=C sort | uniq -c | sed 's/^ *//' | tr '\n' '|')" "7 ./$A|" "all-mail: only the \\All folder, 7 messages"
assert_eq "$(fk_stored_hashes "$L/$A")" "$(cd "$T" && h S n1 n2 n3 d1 d2 T)" "all-mail: each X-GM-MSGID once, byte-identical (S once, all 5 anomalies)"
assert_eq "$(fake_count '^UID FETCH 1:\* \(UID X-GM-MSGID X-GM-LABELS\)$')" 1 "all-mail: labels asked once, for the whole folder"
printf -v want_labels '%s\n' '# mailsync-labels 1 uidvalidity=1234' \
	"$(printf '1001\t1\t\\Inbox\tWork\tMein Label')" \
	"$(printf '1002\t2\t\\Inbox')" "$(printf '1003\t3\t\\Inbox')" \
	"$(printf '1004\t4\t\\Inbox')" "$(printf '1005\t5\t\\Inbox')" \
	"$(printf '1006\t6\t\\Inbox')" "$(printf '1007\t7\t\\Sent')"
assert_eq "$(cat "$L/$A/mailsync-labels")
" "$want_labels" "all-mail: the labels file lists every X-GM-MSGID, UID and its labels"
: >"$FK_DIR/log"
run_ms -c "$T/l.ini"
assert_eq "$RC$ERR" 0 "all-mail run 2: exit 0, silent"
assert_eq "$(fake_count 'BODY')" 0 "all-mail run 2: no body fetched"
assert_eq "$(find "$L" -type f -path '*/[nc][eu][wr]/*' | wc -l)" 7 "all-mail run 2: still 7 files"
assert_eq "$(cat "$L/$A/mailsync-labels")
" "$want_labels" "all-mail run 2: labels file unchanged"
fake_stop

# all-mail refused by configuration: with folders, with a deleting policy
fake_config "$T/m.ini" gmbad2 imaps "maildir:$T/store-bad" gmail=all-mail 'folders=INBOX'
run_ms -c "$T/m.ini"
assert_eq "$RC" 78 "gmail = all-mail with folders: exit 78"
assert_match "$ERR" '"folders" in \[gmbad2\] cannot be combined with "gmail = all-mail"' "the message says why"
fake_config "$T/m2.ini" gmbad3 imaps "maildir:$T/store-bad" gmail=all-mail policy=delete
run_ms -c "$T/m2.ini"
assert_eq "$RC" 78 "gmail = all-mail with policy = delete: exit 78"

# all-mail against a server without X-GM-EXT-1, then without \All
fake_start imap "$T/nogm.json" 2 60
fake_config "$T/n.ini" nogm imaps "maildir:$T/store-nogm" gmail=all-mail
run_ms -c "$T/n.ini"
assert_eq "$RC" 76 "no X-GM-EXT-1: exit 76"
assert_match "$ERR" 'nogm/.*: server does not announce X-GM-EXT-1' "no X-GM-EXT-1: the message names it"
fake_stop
fake_start imap "$T/noall.json" 2 60
fake_config "$T/o.ini" noall imaps "maildir:$T/store-noall" gmail=all-mail
run_ms -c "$T/o.ini"
assert_eq "$RC" 76 "no \\All folder: exit 76"
assert_match "$ERR" 'noall: no folder carries the \\All attribute' "no \\All folder: the message says so"
assert_eq "$(fake_count '^(EXAMINE|SELECT)')" 0 "no \\All folder: nothing opened"
fake_stop

# an unknown attribute is refused before connecting
fake_config "$T/d.ini" gmbad imaps "maildir:$T/P" 'folders=* !\Bin'
run_ms -c "$T/d.ini"
assert_eq "$RC" 78 "unknown attribute \\Bin: exit 78"
assert_match "$ERR" 'unknown special-use attribute "\\Bin"' "the message names \\Bin"
assert_eq "$(test -e "$T/P" && echo created)" "" "nothing created for it"
t_done
