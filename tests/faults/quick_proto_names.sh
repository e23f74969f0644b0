#!/usr/bin/env bash
# F34: hostile folder names from LIST (fake server), verbatim and maildir++
# layouts.  Proves: nothing is created outside the store root (the whole
# parent directory is listed and compared), the dangerous names
# (../../etc, /abs, a/../../b, .., ., "", INBOX/../x, CR/LF inside a
# literal name, a 4 KB name, ..hidden and x..y with delimiter ".") are
# skipped with one warning line each that names them (escaped, no raw
# CR/LF on stderr) and are never SELECTed/EXAMINEd; the benign
# Entw&APw-rfe, Sales/2024 (delimiter "."), Work.Sub (delimiter "."),
# nil/../up (delimiter NIL) and %0d%0aDELETE x are synced to the expected
# escaped paths; no command sent back holds CR or LF or starts a DELETE;
# the other folders are synced; exit 0.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/assert.sh"
. "$here/../lib/dovecot.sh"
. "$here/fake.sh"
t_setup
fake_cert
python3 - "$T/names.json" <<'EOF2'
import json, sys
n = [0]
def F(name=None, delim="/", lst=None):
    n[0] += 1
    d = {"delim": delim, "messages": [{"data": "Subject: folder %d\r\n\r\nbody %d\r\n" % (n[0], n[0])}]}
    if name is not None:
        d["name"] = name
    if lst is not None:
        d["list"] = lst
        d["name"] = "raw-%d" % n[0]
    return d
folders = [F("INBOX"), F("../../etc"), F("/abs"), F("a/../../b"), F(".."),
           F("."), F(lst='() "/" ""'), F("INBOX/../x"),
           F(lst='() "/" {6}\r\nab\r\ncd'), F("%0d%0aDELETE x"), F("L" * 4096),
           F("..hidden", delim="."), F("x..y", delim="."),
           F("nil/../up", delim=None), F("Entw&APw-rfe"),
           F("Sales/2024", delim="."), F("Work.Sub", delim=".")]
json.dump({"folders": folders}, open(sys.argv[1], "w"), indent=1)
EOF2
bad_re='^(\.\./\.\./etc|/abs|a/\.\./\.\./b|\.\.|\.|INBOX/\.\./x|ab.*cd|L{300,}|\.\.hidden|x\.\.y|)$'

run_layout() { # layout account expected-dirs
	local layout=$1 acct=$2 want=$3 R=$T/jail-$2/root n new
	mkdir -p "$R"
	before=$(cd "$T" && find . | sort)
	fake_start imap "$T/names.json" 1 30
	fake_config "$T/$acct.ini" "$acct" imaps "maildir:$R/store" layout=$layout
	run_ms -c "$T/$acct.ini"
	assert_eq "$RC" 0 "$layout: exit 0"
	fake_wait_close 1
	new=$(comm -13 <(echo "$before") <(cd "$T" && find . | sort) |
		grep -Ev "^\./(jail-$acct/root/store(/.*)?|$acct\\.ini|state(/.*)?|fake\.[^/]+(/.*)?|out|err)\$")
	assert_eq "$new" "" "$layout: nothing created outside the store root (test dir compared before/after)"
	assert_eq "$(cd "$T/jail-$acct" && find . | sort | grep -v '^\./root/store/' | tr '\n' ' ')" ". ./root ./root/store " "$layout: nothing beside store/ in its parents"
	[ -e /abs ] || [ -e "$T/etc" ] && not_ok "$layout: /abs or ../etc created" || ok "$layout: no /abs, no etc/ above the root"
	got=$(cd "$R/store" && find . -type f | sed -E 's#/(new|cur)/[^/]*$##' | sort | tr '\n' '|')
	assert_eq "$got" "$want" "$layout: benign folders stored at the expected escaped paths, one message each"
	assert_eq "$(grep -c 'skipped folder' <<<"$ERR")" 11 "$layout: 11 dangerous names skipped, one warning each"
	assert_eq "$(grep -vc 'skipped folder' <<<"$ERR")" 0 "$layout: no other stderr line (no raw CR/LF split a warning)"
	for n in '"../../etc"' '"/abs"' '"a/../../b"' '"..":' '".":' '"":' '"INBOX/../x"' '"ab\x0d\x0acd"' '"LLLLLLLLLLLL' '"..hidden"' '"x..y"'; do
		assert_eq "$(grep -Fc -- "$acct: skipped folder $n" <<<"$ERR")" 1 "$layout: warning names $n"
	done
	assert_eq "$(awk -F '\t' '$3 != "*"' "$FK_DIR/log" | grep -c 'x0d\|x0a')" 0 "$layout: no CR/LF in any command sent"
	assert_eq "$(fake_cmds | grep -Eic '^(DELETE|CREATE|RENAME)')" 0 "$layout: no DELETE/CREATE/RENAME command"
	sel=$(fake_cmds | sed -nE 's/^(SELECT|EXAMINE) //p' | tr -d '"')
	assert_eq "$(grep -Ec "$bad_re" <<<"$sel")" 0 "$layout: no dangerous folder was opened"
	assert_eq "$(wc -l <<<"$sel")" 6 "$layout: the 6 benign folders were opened"
	fake_stop
}
run_layout verbatim names-vb './%250d%250aDELETE x|./Entwürfe|./INBOX|./Sales%2F2024|./Work/Sub|./nil%2F..%2Fup|'
run_layout maildir++ names-mdpp '.|./.%250d%250aDELETE x|./.Entwürfe|./.Sales%2F2024|./.Work.Sub|./.nil%2F%2E%2E%2Fup|'
t_done
