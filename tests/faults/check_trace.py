#!/usr/bin/env python3
"""check_trace.py: check the durability order of a delete-mode run (F10).

usage: check_trace.py --trace FILE --rawlog DIR --proto imap|pop3
                      --store maildir|mbox --state DIR [--expect N]

FILE is the output of
  strace -f -ttt -s 65536 -e trace=openat,write,fsync,fdatasync,close,
         rename,renameat,renameat2,link,linkat,dup,dup2,dup3,fcntl \
         -o FILE mailsync ...
DIR (--rawlog) holds Dovecot's rawlog of the run (*.in: "SECS.USECS line",
*.out: the server's answers, used for POP3's UIDL -> message number map).
File descriptors are mapped to paths from the openat lines (relative
openat on a directory fd is resolved against that fd's path) and dup.

For every message the server was asked to delete (IMAP UID STORE
+FLAGS.SILENT (\\Deleted), POP3 DELE) it checks, in the trace:
  maildir: tmp/ file created with O_CREAT|O_EXCL -> last write -> fsync of
    that fd -> rename into new/ or cur/ (name carrying ,U=UID or ,P=UIDL)
    -> fsync of the new/ or cur/ directory
  mbox: write to the mbox -> fsync of the mbox -> index record (u UIDV UID
    / p UIDL, then a=ACCOUNT) written -> fsync of the index
  both: then a state journal write holding "+u UID" / "+p UIDL" -> fsync
    of the journal; every file created on the way (mbox, index, journal)
    followed by an fsync of its directory
and that the server received the deletion after all of these.  Prints one
line per violation and "checked N" at the end; exit 0 when all is well and
at least --expect messages were checked.
"""
import argparse
import glob
import os
import re
import sys

LINE = re.compile(r"^(\d+)\s+(\d+\.\d+) (.*)$")
CALL = re.compile(r"^(\w+)\((.*)\)\s+=\s+(-?\d+|\?)")


def unescape(s):
    """Decode a C string as strace prints it (without the quotes)."""
    out = bytearray()
    i = 0
    simple = {"n": 10, "t": 9, "r": 13, "v": 11, "f": 12, '"': 34,
              "\\": 92, "a": 7, "b": 8}
    while i < len(s):
        c = s[i]
        if c != "\\":
            out += c.encode("utf-8", "surrogateescape")
            i += 1
            continue
        n = s[i + 1]
        if n in simple:
            out.append(simple[n])
            i += 2
        elif n == "x":
            out.append(int(s[i + 2:i + 4], 16))
            i += 4
        else:
            m = re.match(r"[0-7]{1,3}", s[i + 1:])
            out.append(int(m.group(0), 8) & 255)
            i += 1 + len(m.group(0))
    return bytes(out)


def split_args(a):
    """Split strace arguments at top-level commas (strings kept whole)."""
    args, cur, q, depth, i = [], "", False, 0, 0
    while i < len(a):
        c = a[i]
        if q:
            cur += c
            if c == "\\":
                cur += a[i + 1]
                i += 1
            elif c == '"':
                q = False
        elif c == '"':
            q = True
            cur += c
        elif c in "{[":
            depth += 1
            cur += c
        elif c in "}]":
            depth -= 1
            cur += c
        elif c == "," and depth == 0:
            args.append(cur.strip())
            cur = ""
        else:
            cur += c
        i += 1
    if cur.strip():
        args.append(cur.strip())
    return args


def strarg(a):
    m = re.match(r'^"(.*)"(\.\.\.)?$', a, re.S)
    return unescape(m.group(1)) if m else None


class Trace:
    def __init__(self, path):
        self.events = []  # (ts, kind, dict)
        fds = {}          # (pid, fd) -> path
        pending = {}      # pid -> text of an unfinished call
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            for raw in f:
                m = LINE.match(raw.rstrip("\n"))
                if not m:
                    continue
                pid, ts, rest = m.group(1), float(m.group(2)), m.group(3)
                if rest.endswith("<unfinished ...>"):
                    pending[pid] = (ts, rest[:-len("<unfinished ...>")])
                    continue
                r = re.match(r"^<\.\.\. \w+ resumed>(.*)$", rest)
                if r:
                    if pid not in pending:
                        continue
                    ts, head = pending.pop(pid)
                    rest = head + r.group(1)
                c = CALL.match(rest)
                if not c:
                    continue
                self.call(pid, ts, c.group(1), split_args(c.group(2)),
                          c.group(3), fds)

    def path(self, fds, pid, dirfd, name):
        name = name.decode("utf-8", "surrogateescape")
        if name.startswith("/"):
            return os.path.normpath(name)
        base = os.getcwd() if dirfd == "AT_FDCWD" else \
            fds.get((pid, dirfd), "?fd" + dirfd)
        return os.path.normpath(os.path.join(base, name))

    def call(self, pid, ts, name, args, ret, fds):
        ok = ret != "?" and int(ret) >= 0
        ev = None
        if name == "openat" and ok:
            p = self.path(fds, pid, args[0], strarg(args[1]))
            fds[(pid, ret)] = p
            ev = ("open", {"path": p, "flags": args[2], "fd": ret})
        elif name == "dup" and ok:
            fds[(pid, ret)] = fds.get((pid, args[0]), "?fd" + args[0])
        elif name in ("dup2", "dup3") and ok:
            fds[(pid, args[1])] = fds.get((pid, args[0]), "?fd" + args[0])
        elif name == "fcntl" and ok and args[1].startswith("F_DUPFD"):
            fds[(pid, ret)] = fds.get((pid, args[0]), "?fd" + args[0])
        elif name == "close" and ok:
            fds.pop((pid, args[0]), None)
        elif name == "write" and ok:
            p = fds.get((pid, args[0]))
            ev = ("write", {"path": p, "data": strarg(args[1]) or b""})
        elif name in ("fsync", "fdatasync") and ok:
            ev = ("fsync", {"path": fds.get((pid, args[0]))})
        elif name in ("rename", "link") and ok:
            ev = (name, {"old": self.path(fds, pid, "AT_FDCWD",
                                          strarg(args[0])),
                         "new": self.path(fds, pid, "AT_FDCWD",
                                          strarg(args[1]))})
        elif name in ("renameat", "renameat2", "linkat") and ok:
            kind = "link" if name == "linkat" else "rename"
            ev = (kind, {"old": self.path(fds, pid, args[0], strarg(args[1])),
                         "new": self.path(fds, pid, args[2],
                                          strarg(args[3]))})
        if ev:
            self.events.append((ts, ev[0], ev[1]))

    def first(self, kind, after, pred):
        for ts, k, d in self.events:
            if k == kind and ts >= after and pred(d):
                return ts, d
        return None, None

    def last(self, kind, before, pred):
        hit = (None, None)
        for ts, k, d in self.events:
            if ts > before:
                break
            if k == kind and pred(d):
                hit = (ts, d)
        return hit


def server_deletes(rawlog, proto):
    """{identity: time the server received its deletion}"""
    dels = {}
    for fin in sorted(glob.glob(os.path.join(rawlog, "*.in"))):
        num2uidl = {}
        fout = fin[:-3] + ".out"
        if proto == "pop3" and os.path.exists(fout):
            with open(fout, "rb") as f:
                for line in f.read().decode("latin-1").splitlines():
                    m = re.match(r"^(?:\d+\.\d+ )?(\d+) (\S+)$", line.strip())
                    if m and not m.group(2).isdigit():
                        num2uidl[m.group(1)] = m.group(2)
        with open(fin, "rb") as f:
            for line in f.read().decode("latin-1").splitlines():
                m = re.match(r"^(\d+\.\d+) (.*?)\r?$", line)
                if not m:
                    continue
                ts, cmd = float(m.group(1)), m.group(2)
                if proto == "imap":
                    s = re.match(r"^\S+ UID STORE (\S+) \+FLAGS(?:\.SILENT)? "
                                 r"\(.*\\Deleted.*\)", cmd, re.I)
                    if s:
                        for part in s.group(1).split(","):
                            a, _, b = part.partition(":")
                            for u in range(int(a), int(b or a) + 1):
                                dels.setdefault(str(u), ts)
                else:
                    d = re.match(r"^DELE (\d+)$", cmd, re.I)
                    if d:
                        dels.setdefault(num2uidl.get(d.group(1),
                                                     "#" + d.group(1)), ts)
    return dels


def under(p, d):
    return p is not None and (p == d or p.startswith(d.rstrip("/") + "/"))


def check(tr, proto, store, state, ident, t_del, bad):
    def fail(msg):
        bad.append("%s: %s" % (ident, msg))

    created = []  # files that must have a durable directory entry
    if store == "maildir":
        mark = (",U=%s" if proto == "imap" else ",P=%s") % ident
        ts_ren, ren = tr.first("rename", 0, lambda d: (
            d["new"].endswith(mark) or mark + "," in d["new"] or
            mark + ":" in d["new"]))
        if ren is None:
            return fail("no rename into the Maildir")
        if os.path.basename(os.path.dirname(ren["new"])) not in ("new",
                                                               "cur"):
            return fail("renamed to %s, not into new/ or cur/" % ren["new"])
        if os.path.basename(os.path.dirname(ren["old"])) != "tmp":
            return fail("rename source %s not in tmp/" % ren["old"])
        ts_open, op = tr.last("open", ts_ren, lambda d: d["path"] ==
                              ren["old"])
        if op is None or "O_CREAT" not in op["flags"] or \
                "O_EXCL" not in op["flags"]:
            return fail("tmp file not created with O_CREAT|O_EXCL")
        ts_w, _ = tr.last("write", ts_ren, lambda d: d["path"] == ren["old"])
        ts_fs, _ = tr.last("fsync", ts_ren, lambda d: d["path"] ==
                           ren["old"])
        if ts_fs is None or ts_fs < ts_open or \
                (ts_w is not None and ts_fs < ts_w):
            return fail("no fsync of the tmp file after its last write "
                        "and before the rename")
        newdir = os.path.dirname(ren["new"])
        ts_dsync, _ = tr.first("fsync", ts_ren, lambda d: d["path"] ==
                               newdir)
        if ts_dsync is None:
            return fail("no fsync of %s after the rename" % newdir)
        ts_local = ts_dsync
    else:
        # the record ends with the identity, then " a=ACCOUNT"
        pat = re.compile((r"^m .* u \d+ %s( a=\S+)?$" if proto == "imap"
                          else r"^m .* p %s( a=\S+)?$") % re.escape(ident),
                         re.M)
        ts_iw, iw = tr.first("write", 0, lambda d: d["path"] is not None and
                             d["path"].endswith(".msidx") and
                             pat.search(d["data"].decode("latin-1")))
        if iw is None:
            return fail("no index record")
        mbox = iw["path"][:-len(".msidx")]
        ts_mw, _ = tr.last("write", ts_iw, lambda d: d["path"] == mbox)
        if ts_mw is None:
            return fail("no write to %s before the index record" % mbox)
        ts_ms, _ = tr.first("fsync", ts_mw, lambda d: d["path"] == mbox)
        if ts_ms is None or ts_ms > ts_iw:
            return fail("mbox not fsynced between its write and the index")
        ts_is, _ = tr.first("fsync", ts_iw, lambda d: d["path"] ==
                            iw["path"])
        if ts_is is None:
            return fail("index not fsynced after the record")
        ts_local = ts_is
        created += [mbox, iw["path"]]
    # the state record
    rec = ("+u %s\n" if proto == "imap" else "+p %s ") % ident
    ts_jw, jw = tr.first("write", ts_local, lambda d: under(
        d["path"], state) and b"\n" + rec.encode() in b"\n" + d["data"])
    if jw is None:
        return fail("no state record %r written after the local commit"
                    % rec.strip())
    ts_js, _ = tr.first("fsync", ts_jw, lambda d: d["path"] == jw["path"])
    if ts_js is None:
        return fail("state record not fsynced")
    created.append(jw["path"])
    ts_all = ts_js
    for p in created:
        ts_c, _ = tr.first("open", 0, lambda d: d["path"] == p and
                           "O_CREAT" in d["flags"])
        if ts_c is None:
            continue  # existed before this run
        ts_d, _ = tr.first("fsync", ts_c, lambda d: d["path"] ==
                           os.path.dirname(p))
        if ts_d is None:
            return fail("%s created but its directory never fsynced" % p)
        ts_all = max(ts_all, ts_d)
    if t_del is not None and t_del <= ts_all:
        fail("server deletion at %.6f before the local commit was durable "
             "(%.6f)" % (t_del, ts_all))
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trace", required=True)
    ap.add_argument("--rawlog", required=True)
    ap.add_argument("--proto", choices=("imap", "pop3"), required=True)
    ap.add_argument("--store", choices=("maildir", "mbox"), required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("--expect", type=int, default=1)
    o = ap.parse_args()
    tr = Trace(o.trace)
    dels = server_deletes(o.rawlog, o.proto)
    bad = []
    for ident, t_del in sorted(dels.items()):
        if ident.startswith("#"):
            bad.append("DELE %s: no UIDL known for it" % ident[1:])
            continue
        check(tr, o.proto, o.store, os.path.normpath(o.state), ident, t_del,
              bad)
    for b in bad:
        print("violation: " + b)
    print("checked %d" % len(dels))
    return 0 if not bad and len(dels) >= o.expect else 1


if __name__ == "__main__":
    sys.exit(main())
