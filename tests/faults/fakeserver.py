#!/usr/bin/env python3
"""tests/faults/fakeserver.py: a scripted fake IMAP/POP3 server over
implicit TLS for the protocol-level fault tests (Python 3 stdlib only).

    fakeserver.py --proto imap|pop3 --scenario S.json --cert C --key K
                  --dir D [--max-conn N] [--time-limit SECS]

Listens on 127.0.0.1, an ephemeral port written to D/port once listening.
Bounded: at most --max-conn connections (default 4), 20 s socket timeouts,
and the whole server exits after --time-limit seconds (default 60) or
once the last allowed connection has ended.

D/log gets one line per received command:  TIME<TAB>CONN<TAB>TAG<TAB>LINE
(TAG is "-" for POP3 and for SASL continuation lines); bytes outside
0x20-0x7e are written as \\xNN, so a CR or LF inside a literal shows as
\\x0d / \\x0a; credentials are redacted (LOGIN u <redacted>,
AUTHENTICATE PLAIN <redacted>, PASS <redacted>).  Events are logged with
TAG "*" (connect, tls-ok, tls-fail, close, drop, stall, marker...).
D/state.json is rewritten after every connection: per folder the UIDs
present, flagged \\Deleted, expunged; for POP3 the UIDLs present and the
DELE-committed ones; plus counters of bodies sent.

The scenario (JSON) holds the mailbox, which persists across the
connections of one server run, and the fault knobs; see README-like notes
at the top of tests/faults/fake.sh and the keys used below (sc.get(...)).
"""
import argparse
import base64
import json
import os
import re
import socket
import ssl
import sys
import threading
import time

SOCK_TIMEOUT = 20
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def esc(b):
    out = []
    for c in b:
        if 0x20 <= c < 0x7f:
            out.append(chr(c))
        else:
            out.append("\\x%02x" % c)
    return "".join(out)


class Closed(Exception):
    pass


class Msg:
    def __init__(self, d, base):
        if "file" in d:
            p = d["file"]
            if not os.path.isabs(p):
                p = os.path.join(base, p)
            with open(p, "rb") as f:
                self.data = f.read()
        elif "gen" in d:  # {"gen": size, "seed": n}: generated CRLF text
            self.data = gen_msg(int(d["gen"]), d.get("seed", 0))
        else:
            self.data = d.get("data", "").encode("utf-8", "surrogateescape")
        self.uid = int(d.get("uid", 0))
        self.uidl = d.get("uidl")
        self.flags = list(d.get("flags", []))
        self.date = d.get("date", "01-Jan-2020 00:00:00 +0000")
        self.size_delta = int(d.get("size_delta", 0))
        # Gmail mode (X-GM-EXT-1): the message's id across its labels
        self.gm_msgid = d.get("gm_msgid")
        self.gm_labels = list(d.get("gm_labels", []))
        # POP3: the message arrives for connection from_conn on
        self.from_conn = int(d.get("from_conn", 1))


def gen_msg(size, seed):
    head = ("From: a@example.org\r\nTo: b@example.org\r\n"
            "Subject: generated %s\r\nMessage-ID: <gen%s@fake>\r\n\r\n"
            % (seed, seed)).encode()
    line = ("%s-" % seed).encode()
    body = bytearray()
    i = 0
    while len(head) + len(body) < size:
        body += (b"line %d %s" % (i, line * 5))[:70] + b"\r\n"
        i += 1
    return bytes(head + body)[:size - 2] + b"\r\n" if size > len(head) + 2 \
        else head


class Server:
    def __init__(self, args):
        self.a = args
        with open(args.scenario) as f:
            self.sc = json.load(f)
        base = os.path.dirname(os.path.abspath(args.scenario))
        self.lock = threading.RLock()
        self.t0 = time.time()
        self.deadline = self.t0 + args.time_limit
        self.nconn = 0
        self.bodies_sent = 0
        self.folders = []
        for fd in self.sc.get("folders", [{"name": "INBOX"}]):
            f = {
                "name": fd.get("name", "INBOX"),
                "list": fd.get("list"),  # raw LIST line tail override
                "delim": fd.get("delim", "/"),
                "uidvalidity": fd.get("uidvalidity", 1234),
                "msgs": [],
                "expunged": [],
                "deleted": [],  # POP3: DELE-committed UIDLs
                "noselect": fd.get("noselect", False),
                # LIST attributes, e.g. ["\\All"] (RFC 6154 special use)
                "attrs": list(fd.get("attrs", [])),
            }
            uid = 0
            for i, md in enumerate(fd.get("messages", [])):
                m = Msg(md, base)
                if not m.uid:
                    m.uid = uid + 1
                uid = max(uid, m.uid)
                if m.uidl is None:
                    m.uidl = "uidl-%d" % m.uid
                f["msgs"].append(m)
            f["uidnext"] = fd.get("uidnext", uid + 1)
            self.folders.append(f)
        self.markers_done = set()
        self.logf = open(os.path.join(args.dir, "log"), "a", buffering=1)

    # ---- logging and state ----
    def log(self, conn, tag, line):
        with self.lock:
            self.logf.write("%.6f\t%d\t%s\t%s\n" % (time.time(), conn, tag,
                                                   line))

    def write_state(self):
        with self.lock:
            st = {"connections": self.nconn, "bodies_sent": self.bodies_sent,
                  "folders": {}}
            for f in self.folders:
                st["folders"][f["name"]] = {
                    "uidvalidity": f["uidvalidity"],
                    "present": [m.uid for m in f["msgs"]],
                    "present_uidl": [m.uidl for m in f["msgs"]],
                    "flagged_deleted": [m.uid for m in f["msgs"]
                                        if "\\Deleted" in m.flags],
                    "seen": [m.uid for m in f["msgs"]
                             if "\\Seen" in m.flags],
                    "expunged": f["expunged"],
                    "dele_committed": f["deleted"],
                }
            p = os.path.join(self.a.dir, "state.json")
            with open(p + ".tmp", "w") as o:
                json.dump(st, o, indent=1, sort_keys=True)
            os.rename(p + ".tmp", p)

    def fault(self, name, conn=None, default=None):
        """A fault knob; {"conn": K, ...} restricts it to connection K."""
        v = self.sc.get("faults", {}).get(name, default)
        if isinstance(v, dict) and "conn" in v and conn is not None:
            if v["conn"] != conn:
                return default
        return v

    def marker(self, conn, cmdline):
        mk = self.sc.get("faults", {}).get("marker")
        if not mk:
            return False
        if not cmdline.upper().startswith(mk["cmd"].upper()):
            return False
        if mk.get("conn") not in (None, conn):
            return False
        with self.lock:
            if mk["file"] in self.markers_done:
                return False
            self.markers_done.add(mk["file"])
        with open(mk["file"], "w") as o:
            o.write("%s\n" % cmdline)
        self.log(conn, "*", "marker " + cmdline)
        # give the harness time to kill the client before we answer
        time.sleep(float(mk.get("delay", 5)))
        # "stop": this command takes effect, later ones are never read
        return bool(mk.get("stop"))

    # ---- main loop ----
    def run(self):
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", 0))
        ls.listen(16)
        ls.settimeout(0.2)
        p = os.path.join(self.a.dir, "port")
        with open(p + ".tmp", "w") as o:
            o.write("%d\n" % ls.getsockname()[1])
        os.rename(p + ".tmp", p)
        self.write_state()
        threads = []
        while time.time() < self.deadline and self.nconn < self.a.max_conn:
            try:
                s, _ = ls.accept()
            except socket.timeout:
                continue
            self.nconn += 1
            t = threading.Thread(target=self.conn_main, args=(s, self.nconn),
                                 daemon=True)
            t.start()
            threads.append(t)
        ls.close()
        for t in threads:
            t.join(max(0.1, self.deadline - time.time()))
        self.write_state()
        self.log(0, "*", "exit")

    def stall(self, conn, sock, what):
        """Wait until the client goes away or our own bound is reached."""
        self.log(conn, "*", "stall " + what)
        sock.settimeout(0.5)
        while time.time() < self.deadline:
            try:
                if sock.recv(4096) == b"":
                    break
            except socket.timeout:
                continue
            except (OSError, ssl.SSLError):
                break
        self.log(conn, "*", "stall-end " + what)

    def conn_main(self, raw, conn):
        raw.settimeout(SOCK_TIMEOUT)
        self.log(conn, "*", "connect")
        sock = raw
        try:
            if self.fault("stall_tls", conn):
                self.stall(conn, raw, "tls")
                return
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.a.cert, self.a.key)
            self.ctx = ctx
            if not self.a.starttls:
                try:
                    sock = ctx.wrap_socket(raw, server_side=True)
                except (ssl.SSLError, OSError) as ex:
                    self.log(conn, "*", "tls-fail " + esc(str(ex).encode()))
                    return
                self.log(conn, "*", "tls-ok")
            h = (Imap if self.a.proto == "imap" else Pop3)(self, sock, conn)
            h.tls = not self.a.starttls
            try:
                h.run()
            except Closed as ex:
                self.log(conn, "*", "closed " + str(ex))
            except (OSError, ssl.SSLError) as ex:
                self.log(conn, "*", "io-error " + esc(str(ex).encode()))
            h.on_end()
            sock = h.sock
        finally:
            try:
                sock.close()
            except OSError:
                pass
            self.log(conn, "*", "close")
            self.write_state()


class Conn:
    def __init__(self, srv, sock, conn):
        self.srv = srv
        self.sock = sock
        self.conn = conn
        self.buf = b""
        self.sent_body = 0  # body bytes this connection
        self.nbody = 0      # bodies started this connection
        self.closed = False

    def f(self, name, default=None):
        return self.srv.fault(name, self.conn, default)

    def send(self, b):
        if isinstance(b, str):
            b = b.encode("utf-8", "surrogateescape")
        self.sock.sendall(b)

    def readline(self, limit=1 << 20):
        while b"\n" not in self.buf:
            if len(self.buf) > limit:
                raise Closed("line too long")
            if time.time() > self.srv.deadline:
                raise Closed("time limit")
            try:
                d = self.sock.recv(65536)
            except socket.timeout:
                raise Closed("timeout")
            if not d:
                raise Closed("eof")
            self.buf += d
        i = self.buf.index(b"\n")
        line, self.buf = self.buf[:i + 1], self.buf[i + 1:]
        return line.rstrip(b"\r\n")

    def readn(self, n):
        while len(self.buf) < n:
            d = self.sock.recv(65536)
            if not d:
                raise Closed("eof in literal")
            self.buf += d
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def drop(self, why):
        self.srv.log(self.conn, "*", "drop " + why)
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        raise Closed("dropped: " + why)

    def send_body(self, prefix, data, suffix):
        """Send one message body with the drop/stall/throttle knobs."""
        self.nbody += 1
        with self.srv.lock:
            self.srv.bodies_sent += 1
        d = self.f("drop_body")
        st = self.f("stall_body")
        bye = self.f("bye_after_bytes")
        cut = None
        if d and d.get("nth", 1) == self.nbody:
            cut = ("drop", int(d.get("bytes", 1000)))
        elif st and st.get("nth", 1) == self.nbody:
            cut = ("stall", int(st.get("bytes", 1000)))
        elif bye and self.sent_body + len(data) > int(bye["bytes"]):
            cut = ("bye", 0)
        if cut is None:
            self.send(prefix + data + suffix)
            self.sent_body += len(data)
            return
        if cut[0] == "bye":
            self.throttle(bye)
            return
        self.send(prefix + data[:cut[1]])
        if cut[0] == "drop":
            self.drop("body %d after %d bytes" % (self.nbody, cut[1]))
        self.stall(self.sock, "body")
        raise Closed("stalled")

    def stall(self, sock, what):
        self.srv.stall(self.conn, sock, what)

    def start_tls(self, ok):
        """STARTTLS / STLS (server run with --starttls): answer ok, plus
        faults.starttls_inject bytes in the same write (they are plaintext
        a client must discard), or stall (faults.stall_starttls)."""
        if self.tls or self.f("no_starttls"):
            w = ok.split(" ")
            self.send(("-ERR" if w[0] == "+OK" else w[0] + " BAD")
                      + " no TLS for you\r\n")
            return
        self.send(ok + "\r\n" + (self.f("starttls_inject") or ""))
        if self.f("stall_starttls"):
            self.stall(self.sock, "starttls")
            raise Closed("stalled")
        if self.buf:
            self.srv.log(self.conn, "*", "discard-plaintext " + esc(self.buf))
        self.buf = b""
        try:
            self.sock = self.srv.ctx.wrap_socket(self.sock, server_side=True)
        except (ssl.SSLError, OSError) as ex:
            self.srv.log(self.conn, "*", "tls-fail " + esc(str(ex).encode()))
            raise Closed("tls failed")
        self.tls = True
        self.srv.log(self.conn, "*", "tls-ok")

    def gen_seg(self, s, tag):
        """{"repeat": text, "times": n} or {"seq": "fmt with %d",
        "times": n, "step": k}: streamed in 64 KiB pieces, bounded by
        the server's time limit (a client that hangs up ends it)."""
        n = int(s["times"])
        if "repeat" in s:
            chunk = s["repeat"].replace("{TAG}", tag).encode()
            per = max(1, 65536 // len(chunk))
            while n > 0 and time.time() < self.srv.deadline:
                k = min(n, per)
                self.send(chunk * k)
                n -= k
            return
        fmt, step, i = s["seq"], int(s.get("step", 1)), 0
        k = fmt.count("%d")
        while i < n and time.time() < self.srv.deadline:
            hi = min(n, i + 4096)
            self.send("".join(fmt % ((1 + j * step,) * k)
                              for j in range(i, hi)))
            i = hi

    def raw_segs(self, key):
        """faults.raw[key]: a list of segments (every time), or
        {"nth": k, "segs": [...]} for the k-th such command only."""
        raw = self.f("raw", {}) or {}
        v = raw.get(key)
        if v is None:
            return None
        self.seen = getattr(self, "seen", {})
        self.seen[key] = self.seen.get(key, 0) + 1
        if isinstance(v, dict):
            return v["segs"] if v.get("nth", 1) == self.seen[key] else None
        return v

    def on_end(self):
        pass


# ---------------------------------------------------------------- IMAP

def parse_set(s, maxuid):
    out = set()
    for part in s.split(","):
        a, _, b = part.partition(":")
        a = maxuid if a == "*" else int(a)
        if not b:
            out.add(a)
            continue
        b = maxuid if b == "*" else int(b)
        lo, hi = min(a, b), max(a, b)
        if hi - lo > 10000000:
            raise ValueError("set too large")
        out.update(range(lo, hi + 1))
    return out


def astring(b):
    """Quote a name for a response: atom-safe, quoted, or literal."""
    if re.fullmatch(rb"[A-Za-z0-9_./&+-]+", b) and b.upper() != b"NIL":
        return b
    if b"\r" in b or b"\n" in b or b"\0" in b or len(b) > 1000:
        return b"{%d}\r\n" % len(b) + b
    return b'"' + b.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


class Imap(Conn):
    def __init__(self, *a):
        super().__init__(*a)
        self.sel = None
        self.rw = False
        self.authed = False

    def tok(self, b):
        """Split a command into arguments: atoms, "quoted", literals,
        (lists kept raw)."""
        out, i, n = [], 0, len(b)
        while i < n:
            c = b[i:i + 1]
            if c == b" ":
                i += 1
            elif c == b'"':
                j, v = i + 1, bytearray()
                while j < n and b[j:j + 1] != b'"':
                    if b[j:j + 1] == b"\\":
                        j += 1
                    v += b[j:j + 1]
                    j += 1
                out.append(bytes(v))
                i = j + 1
            elif c == b"\0" and b[i:i + 5] == b"\0LIT[":
                j = b.index(b"]", i)
                k = int(b[i + 5:j])
                out.append(self.lits[k])
                i = j + 1
            elif c == b"(":
                depth, j = 0, i
                while j < n:
                    if b[j:j + 1] == b"(":
                        depth += 1
                    elif b[j:j + 1] == b")":
                        depth -= 1
                        if depth == 0:
                            break
                    j += 1
                out.append(b[i:j + 1])
                i = j + 1
            else:
                j = i
                while j < n and b[j:j + 1] != b" ":
                    if b[j:j + 1] == b"[":
                        j = b.find(b"]", j)
                        if j < 0:
                            j = n
                            break
                    j += 1
                out.append(b[i:j])
                i = j
        return out

    def read_cmd(self):
        """One command with its literals; returns (raw-for-log, tokens)."""
        self.lits = []
        parts, logp = [], []
        while True:
            line = self.readline()
            m = re.search(rb"\{(\d+)(\+?)\}$", line)
            if not m:
                parts.append(line)
                logp.append(line)
                break
            n = int(m.group(1))
            if n > 1 << 20:
                raise Closed("client literal too big")
            if not m.group(2):
                self.send(b"+ go ahead\r\n")
            lit = self.readn(n)
            parts.append(line[:m.start()] + b"\0LIT[%d]" % len(self.lits))
            logp.append(line + lit)
            self.lits.append(lit)
        return b"".join(logp), b"".join(parts)

    def run(self):
        g = self.f("stall_greeting")
        if g:
            self.stall(self.sock, "greeting")
            raise Closed("stalled")
        self.send(self.srv.sc.get("greeting",
                                  "* OK [CAPABILITY %s] fake IMAP ready"
                                  % self.caps()) + "\r\n")
        for _ in range(100000):
            if self.closed:
                return
            raw, line = self.read_cmd()
            toks = self.tok(line)
            if not toks:
                continue
            tag = toks[0].decode("ascii", "replace")
            cmd = [t for t in toks[1:]]
            name = cmd[0].decode("ascii", "replace").upper() if cmd else ""
            if name == "UID" and len(cmd) > 1:
                name = "UID " + cmd[1].decode("ascii", "replace").upper()
                args = cmd[2:]
            else:
                args = cmd[1:]
            self.log_cmd(tag, name, raw)
            stop = self.srv.marker(self.conn, esc(raw[len(toks[0]) + 1:]))
            if stop:
                self.closed = True
            if self.raw_reply(tag, name):
                continue
            if self.canned(tag, name, args):
                continue
            h = getattr(self, "c_" + name.replace(" ", "_"), None)
            if h is None:
                self.send("%s BAD unknown command\r\n" % tag)
                continue
            try:
                h(tag, args)
            except (ValueError, IndexError) as ex:
                self.send("%s BAD %s\r\n" % (tag, ex))

    def log_cmd(self, tag, name, raw):
        body = raw[len(tag) + 1:]
        if name == "LOGIN":
            t = self.tok(body)
            body = b"LOGIN " + (t[1] if len(t) > 1 else b"") + b" <redacted>"
        elif name == "AUTHENTICATE":
            t = body.split(b" ")
            body = b" ".join(t[:2]) + (b" <redacted>" if len(t) > 2 else b"")
        self.srv.log(self.conn, tag, esc(body))

    def caps(self):
        c = self.srv.sc.get("capability",
                            "IMAP4rev1 UIDPLUS AUTH=PLAIN SASL-IR")
        if not getattr(self, "tls", True) and not self.f("no_starttls"):
            c = c.replace("AUTH=PLAIN", "") + " STARTTLS LOGINDISABLED"
        return c

    def raw_reply(self, tag, name):
        """faults.raw: {"CMD": [segments]}: send these bytes instead of the
        answer; a segment is a string ({TAG} replaced) or {"repeat": s,
        "times": n}; then optionally {"close": true}."""
        segs = self.raw_segs(name)
        if segs is None:
            return False
        for s in segs:
            if isinstance(s, str):
                self.send(s.replace("{TAG}", tag))
            elif "repeat" in s or "seq" in s:
                self.gen_seg(s, tag)
            elif s.get("close"):
                self.drop("raw reply")
            elif s.get("stall"):
                self.stall(self.sock, "raw")
                raise Closed("stalled")
        return True

    def canned(self, tag, name, args):
        """faults.reply: {"UID STORE": "NO [SERVERBUG] no"}: a tagged
        answer instead of doing the command (no effect)."""
        rep = self.f("reply", {}) or {}
        r = rep.get(name)
        if r is None:
            return False
        if r.startswith("*"):
            self.send(r + "\r\n")
            self.drop("after " + r)
        self.send("%s %s\r\n" % (tag, r))
        return True

    def untagged_extra(self, when):
        for u in self.f("untagged", []) or []:
            if u.get("before", "").upper() == when:
                self.send(u["line"] + "\r\n")

    # -- commands --
    def c_CAPABILITY(self, tag, args):
        self.send("* CAPABILITY %s\r\n%s OK done\r\n" % (self.caps(), tag))

    def c_NOOP(self, tag, args):
        self.send("%s OK noop\r\n" % tag)

    def c_STARTTLS(self, tag, args):
        self.start_tls("%s OK Begin TLS negotiation now" % tag)

    def c_ID(self, tag, args):
        self.send('* ID NIL\r\n%s OK id\r\n' % tag)

    def c_ENABLE(self, tag, args):
        self.send("* ENABLED\r\n%s OK enabled\r\n" % tag)

    def login_ok(self, tag, user, pw):
        if not self.tls:
            self.srv.log(self.conn, "*", "CLEARTEXT-CREDENTIALS")
            self.send("%s NO [PRIVACYREQUIRED] use STARTTLS\r\n" % tag)
            return
        lr = self.f("login_reply")
        if lr:
            self.send("%s %s\r\n" % (tag, lr))
            return
        want = self.srv.sc.get("password", "fake-Pw.1")
        if pw != want.encode():
            self.send("%s NO [AUTHENTICATIONFAILED] bad password\r\n" % tag)
            return
        self.authed = True
        self.user = user
        self.srv.log(self.conn, "*", "login-ok " + esc(user))
        # faults.login_caps: false = no CAPABILITY code in the login's OK
        # (the client must ask), a string = that capability text instead
        lc = self.f("login_caps")
        if lc is False:
            self.send("%s OK logged in\r\n" % tag)
        else:
            self.send("%s OK [CAPABILITY %s] logged in\r\n"
                      % (tag, lc if isinstance(lc, str) else self.caps()))

    def c_LOGIN(self, tag, args):
        self.login_ok(tag, args[0], args[1])

    def c_AUTHENTICATE(self, tag, args):
        mech = args[0].upper()
        if len(args) > 1:
            resp = args[1]
        else:
            self.send("+ \r\n")
            resp = self.readline()
            self.srv.log(self.conn, "-", "<sasl response redacted>")
        if resp == b"*":
            self.send("%s BAD cancelled\r\n" % tag)
            return
        try:
            dec = base64.b64decode(resp) if resp != b"=" else b""
        except ValueError:
            self.send("%s BAD bad base64\r\n" % tag)
            return
        if mech == b"PLAIN":
            p = dec.split(b"\0")
            if len(p) != 3:
                self.send("%s BAD bad PLAIN\r\n" % tag)
                return
            self.login_ok(tag, p[1], p[2])
        elif mech == b"XOAUTH2":
            m = re.match(rb"user=([^\x01]*)\x01auth=Bearer ([^\x01]*)\x01\x01",
                         dec)
            if not m:
                self.send("%s BAD bad XOAUTH2\r\n" % tag)
                return
            if self.f("xoauth2_error"):
                err = base64.b64encode(
                    b'{"status":"401","schemes":"bearer",'
                    b'"scope":"https://mail.google.com/"}')
                self.send(b"+ " + err + b"\r\n")
                r = self.readline()
                self.srv.log(self.conn, "-", "xoauth2-error-reply " + esc(r))
                self.send("%s NO [AUTHENTICATIONFAILED] Invalid "
                          "credentials (Failure)\r\n" % tag)
                return
            self.login_ok(tag, m.group(1), m.group(2))
        else:
            self.send("%s NO unsupported mechanism\r\n" % tag)

    def c_LOGOUT(self, tag, args):
        self.send("* BYE logging out\r\n%s OK bye\r\n" % tag)
        self.expunge_on_end("logout")
        self.closed = True

    def expunge_on_end(self, why):
        if self.f("expunge_on_close") and self.sel is not None:
            n = self.expunge(None, send=False)
            if n:
                self.srv.log(self.conn, "*", "expunge-at-%s %d" % (why, n))

    def on_end(self):
        self.expunge_on_end("drop")

    def c_LIST(self, tag, args):
        self.untagged_extra("LIST")
        for f in self.srv.folders:
            if f["list"] is not None:
                self.send("* LIST " + f["list"] + "\r\n")
                continue
            d = f["delim"]
            delim = b"NIL" if d is None else b'"' + d.encode() + b'"'
            name = f["name"].encode("utf-8", "surrogateescape")
            al = (["\\Noselect"] if f["noselect"] else []) + f["attrs"]
            attrs = "(" + " ".join(al) + ")"
            self.send(b"* LIST " + attrs.encode() + b" " + delim + b" "
                      + astring(name) + b"\r\n")
        self.send("%s OK list done\r\n" % tag)

    def folder(self, name):
        for f in self.srv.folders:
            if f["name"].encode("utf-8", "surrogateescape") == name or (
                    name.upper() == b"INBOX" and f["name"] == "INBOX"):
                return f
        return None

    def c_SELECT(self, tag, args, rw=True):
        if not self.authed:
            self.send("%s NO not logged in\r\n" % tag)
            return
        f = self.folder(args[0])
        if f is None or f["noselect"]:
            self.sel = None
            self.send("%s NO no such folder\r\n" % tag)
            return
        self.sel = f
        self.rw = rw
        self.send("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
                  "* %d EXISTS\r\n* 0 RECENT\r\n" % len(f["msgs"]))
        uv = f["uidvalidity"]
        if uv is not None:
            self.send("* OK [UIDVALIDITY %d] uids valid\r\n" % uv)
        self.send("* OK [UIDNEXT %d] next\r\n" % f["uidnext"])
        self.untagged_extra("SELECT")
        self.send("%s OK [%s] done\r\n"
                  % (tag, "READ-WRITE" if rw else "READ-ONLY"))

    def c_EXAMINE(self, tag, args):
        self.c_SELECT(tag, args, rw=False)

    def c_STATUS(self, tag, args):
        f = self.folder(args[0])
        if f is None or f["noselect"]:
            self.send("%s NO no such folder\r\n" % tag)
            return
        items = args[1].strip(b"()").upper().split() if len(args) > 1 else []
        val = {b"MESSAGES": len(f["msgs"]), b"UIDNEXT": f["uidnext"],
               b"UIDVALIDITY": f["uidvalidity"], b"RECENT": 0,
               b"UNSEEN": len([m for m in f["msgs"]
                               if "\\Seen" not in m.flags])}
        out = [b"%s %d" % (k, val[k]) for k in items
               if k in val and val[k] is not None]
        self.send(b"* STATUS " + astring(args[0]) + b" (" + b" ".join(out)
                  + b")\r\n" + tag.encode() + b" OK status done\r\n")

    def c_CLOSE(self, tag, args):
        self.sel = None
        self.send("%s OK closed\r\n" % tag)

    def c_UNSELECT(self, tag, args):
        self.c_CLOSE(tag, args)

    def maxuid(self):
        m = self.sel["msgs"]
        return max([x.uid for x in m]) if m else 0

    def c_UID_SEARCH(self, tag, args):
        msgs = list(self.sel["msgs"])
        words = [a.upper() for a in args]
        esearch = False
        if words[:1] == [b"RETURN"]:
            esearch = True
            words = words[2:]
        if words[:1] == [b"BEFORE"]:
            d = words[1].decode()
            dd, mm, yy = d.split("-")
            key = (int(yy), MONTHS.index(mm.capitalize()), int(dd))

            def dkey(m):
                p = m.date.split(" ")[0].split("-")
                return (int(p[2]), MONTHS.index(p[1]), int(p[0]))
            msgs = [m for m in msgs if dkey(m) < key]
        uids = [m.uid for m in msgs] + list(self.f("search_extra", []) or [])
        self.untagged_extra("UID SEARCH")
        if esearch:
            s = ",".join(str(u) for u in uids)
            self.send('* ESEARCH (TAG "%s") UID%s\r\n'
                      % (tag, " ALL " + s if s else ""))
        else:
            self.send("* SEARCH%s\r\n" % "".join(" %d" % u for u in uids))
        self.send("%s OK search done\r\n" % tag)

    def fetch_items(self, m, seq, want_body, items):
        flags = "(%s)" % " ".join(m.flags)
        parts = {
            "UID": b"UID %d" % m.uid,
            "RFC822.SIZE": b"RFC822.SIZE %d" % (len(m.data) + m.size_delta),
            "FLAGS": b"FLAGS " + flags.encode(),
            "INTERNALDATE": b'INTERNALDATE "' + m.date.encode() + b'"',
        }
        if m.gm_msgid is not None:
            parts["X-GM-MSGID"] = b"X-GM-MSGID %d" % int(m.gm_msgid)
            # system labels as Gmail sends them: \Inbox, unquoted
            parts["X-GM-LABELS"] = b"X-GM-LABELS (" + b" ".join(
                x.encode() if re.fullmatch(r"\\[A-Za-z]+", x)
                else astring(x.encode()) for x in m.gm_labels) + b")"
        order = ["UID", "RFC822.SIZE", "FLAGS", "INTERNALDATE",
                 "X-GM-MSGID", "X-GM-LABELS"]
        if self.f("fetch_order") == "odd":
            order = ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "UID"]
        pre = [parts[k] for k in order
               if k == "UID" or (k in items and k in parts)]
        head = b"* %d FETCH (" % seq
        if not want_body:
            self.send(head + b" ".join(pre) + b")\r\n")
            return
        if self.rw and want_body == "BODY[]" and "\\Seen" not in m.flags:
            m.flags.append("\\Seen")
        lit = len(m.data) + int(self.f("literal_delta", 0) or 0)
        if self.f("fetch_order") == "odd":
            prefix = head + b"BODY[] {%d}\r\n" % lit
            suffix = b" " + b" ".join(pre) + b")\r\n"
        else:
            prefix = head + b" ".join(pre) + b" BODY[] {%d}\r\n" % lit
            suffix = b")\r\n"
        self.send_body(prefix, m.data, suffix)

    def c_UID_FETCH(self, tag, args):
        if self.sel is None:
            self.send("%s BAD no folder selected\r\n" % tag)
            return
        want = parse_set(args[0].decode(), self.maxuid())
        spec = b" ".join(args[1:]).upper().decode()
        body = None
        if "BODY.PEEK[]" in spec:
            body = "PEEK"
        elif "BODY[]" in spec or "RFC822 " in spec + " ":
            body = "BODY[]"
        items = [k for k in ("RFC822.SIZE", "FLAGS", "INTERNALDATE",
                             "X-GM-MSGID", "X-GM-LABELS") if k in spec]
        self.untagged_extra("UID FETCH")
        ex = self.f("extra_fetch")
        for seq, m in enumerate(list(self.sel["msgs"]), 1):
            if m.uid not in want:
                continue
            if ex and body and not ex.get("done"):
                ex["done"] = True
                fake = Msg({"uid": ex["uid"], "data": "Subject: intruder"
                            "\r\n\r\nnot requested\r\n"}, ".")
                self.fetch_items(fake, seq, body, items)
            self.fetch_items(m, seq, body, items)
            for u in self.f("untagged", []) or []:
                if u.get("after_each") and body:
                    self.send(u["line"] + "\r\n")
        self.send("%s OK fetch done\r\n" % tag)

    def c_UID_STORE(self, tag, args):
        if self.sel is None or not self.rw:
            self.send("%s NO not read-write\r\n" % tag)
            return
        want = parse_set(args[0].decode(), self.maxuid())
        op = args[1].upper()
        fl = args[2].strip(b"()").decode().split()
        silent = op.endswith(b".SILENT")
        for seq, m in enumerate(list(self.sel["msgs"]), 1):
            if m.uid not in want:
                continue
            if op.startswith(b"+"):
                for x in fl:
                    if x not in m.flags:
                        m.flags.append(x)
            elif op.startswith(b"-"):
                m.flags = [x for x in m.flags if x not in fl]
            else:
                m.flags = fl[:]
            if not silent:
                self.send("* %d FETCH (UID %d FLAGS (%s))\r\n"
                          % (seq, m.uid, " ".join(m.flags)))
        if self.f("self_expunge") and "\\Deleted" in fl:
            # Gmail autoExpunge: what this STORE flagged goes at once
            self.expunge(want)
        self.send("%s OK store done\r\n" % tag)

    def expunge(self, only, send=True):
        f = self.sel
        n = 0
        i = 0
        while i < len(f["msgs"]):
            m = f["msgs"][i]
            if "\\Deleted" in m.flags and (only is None or m.uid in only):
                del f["msgs"][i]
                f["expunged"].append(m.uid)
                n += 1
                if send:
                    self.send("* %d EXPUNGE\r\n" % (i + 1))
            else:
                i += 1
        return n

    def c_UID_EXPUNGE(self, tag, args):
        if self.sel is None or not self.rw:
            self.send("%s NO not read-write\r\n" % tag)
            return
        if not self.f("ignore_expunge"):
            self.expunge(parse_set(args[0].decode(), self.maxuid()))
        self.send("%s OK expunged\r\n" % tag)

    def c_EXPUNGE(self, tag, args):
        if self.sel is None or not self.rw:
            self.send("%s NO not read-write\r\n" % tag)
            return
        self.expunge(None)
        self.send("%s OK expunged\r\n" % tag)

    def throttle(self, bye):
        self.send("* BYE %s\r\n" % bye.get("text",
                                          "[UNAVAILABLE] bandwidth limit"))
        self.drop("throttled")


# ---------------------------------------------------------------- POP3

class Pop3(Conn):
    def __init__(self, *a):
        super().__init__(*a)
        self.box = self.srv.folders[0]
        self.authed = False
        self.dele = set()
        self.user = None
        self.view = []

    def uidl_of(self, m):
        ch = self.f("uidl_change")  # {"from_conn": 2, "suffix": "x"}
        if ch and self.conn >= ch.get("from_conn", 2):
            return m.uidl + ch.get("suffix", "-new")
        return m.uidl

    def caps(self):
        c = self.srv.sc.get("capa")
        if c is None:
            c = ["TOP", "USER", "SASL PLAIN", "PIPELINING"]
            if not self.f("no_uidl"):
                c.insert(1, "UIDL")
        if not getattr(self, "tls", True) and not self.f("no_starttls"):
            c = c + ["STLS"]
        return c

    def run(self):
        if self.f("stall_greeting"):
            self.stall(self.sock, "greeting")
            raise Closed("stalled")
        self.send(self.srv.sc.get("greeting", "+OK fake POP3 ready") + "\r\n")
        for _ in range(100000):
            if self.closed:
                return
            line = self.readline()
            w = line.split(b" ")
            name = w[0].decode("ascii", "replace").upper()
            args = w[1:]
            logl = line
            if name == "PASS":
                logl = b"PASS <redacted>"
            elif name == "AUTH" and len(w) > 2:
                logl = b" ".join(w[:2]) + b" <redacted>"
            self.srv.log(self.conn, "-", esc(logl))
            full = esc(line)
            if self.srv.marker(self.conn, full):
                self.closed = True
            if self.raw_reply(name, full):
                continue
            rep = self.f("reply", {}) or {}
            r = rep.get(full.upper(), rep.get(name))
            if r is not None:
                self.send(r + "\r\n")
                if r.startswith("-ERR") and name == "QUIT":
                    self.closed = True
                continue
            h = getattr(self, "c_" + name, None)
            if h is None:
                self.send("-ERR unknown command\r\n")
                continue
            try:
                h(args)
            except (ValueError, IndexError) as ex:
                self.send("-ERR %s\r\n" % ex)

    def raw_reply(self, name, full):
        segs = self.raw_segs(full.upper())
        if segs is None and full.upper() != name:
            segs = self.raw_segs(name)
        if segs is None:
            return False
        for s in segs:
            if isinstance(s, str):
                self.send(s)
            elif "repeat" in s or "seq" in s:
                self.gen_seg(s, "")
            elif s.get("close"):
                self.drop("raw reply")
        return True

    def c_STLS(self, args):
        self.start_tls("+OK Begin TLS negotiation")

    def c_CAPA(self, args):
        self.send("+OK capa\r\n" + "".join(c + "\r\n" for c in self.caps())
                  + ".\r\n")

    def c_USER(self, args):
        self.user = args[0]
        self.send("+OK user\r\n")

    def login(self, pw):
        if not self.tls:
            self.srv.log(self.conn, "*", "CLEARTEXT-CREDENTIALS")
            self.send("-ERR use STLS\r\n")
            return
        lr = self.f("login_reply")
        if lr:
            self.send(lr + "\r\n")
            return
        if pw != self.srv.sc.get("password", "fake-Pw.1").encode():
            self.send("-ERR [AUTH] bad password\r\n")
            return
        self.authed = True
        # message numbers: this session
        self.view = [m for m in self.box["msgs"] if m.from_conn <= self.conn]
        self.srv.log(self.conn, "*", "login-ok")
        self.send("+OK logged in\r\n")

    def c_PASS(self, args):
        self.login(b" ".join(args))

    def c_AUTH(self, args):
        if not args:
            self.send("+OK\r\nPLAIN\r\n.\r\n")
            return
        if args[0].upper() != b"PLAIN":
            self.send("-ERR unsupported\r\n")
            return
        if len(args) > 1:
            resp = args[1]
        else:
            self.send("+ \r\n")
            resp = self.readline()
            self.srv.log(self.conn, "-", "<sasl response redacted>")
        p = base64.b64decode(resp).split(b"\0")
        if len(p) != 3:
            self.send("-ERR bad PLAIN\r\n")
            return
        self.login(p[2])

    def need_auth(self):
        if not self.authed:
            self.send("-ERR not logged in\r\n")
            return False
        return True

    def msg(self, a):
        n = int(a)
        if n < 1 or n > len(self.view) or n in self.dele:
            raise ValueError("no such message")
        return n, self.view[n - 1]

    def c_STAT(self, args):
        if self.need_auth():
            live = [m for i, m in enumerate(self.view, 1)
                    if i not in self.dele]
            self.send("+OK %d %d\r\n" % (len(live),
                                         sum(len(m.data) for m in live)))

    def c_LIST(self, args):
        if not self.need_auth():
            return
        if args:
            n, m = self.msg(args[0])
            self.send("+OK %d %d\r\n" % (n, len(m.data) + m.size_delta))
            return
        out = ["+OK list"]
        for i, m in enumerate(self.view, 1):
            if i not in self.dele:
                out.append("%d %d" % (i, len(m.data) + m.size_delta))
        self.send("\r\n".join(out) + "\r\n.\r\n")

    def c_UIDL(self, args):
        if not self.need_auth():
            return
        if self.f("no_uidl"):
            self.send("-ERR command not supported\r\n")
            return
        if args:
            n, m = self.msg(args[0])
            self.send("+OK %d %s\r\n" % (n, self.uidl_of(m)))
            return
        out = ["+OK uidl"]
        for i, m in enumerate(self.view, 1):
            if i not in self.dele:
                out.append("%d %s" % (i, self.uidl_of(m)))
        self.send("\r\n".join(out) + "\r\n.\r\n")

    def c_RETR(self, args):
        if not self.need_auth():
            return
        n, m = self.msg(args[0])
        lines = m.data.split(b"\r\n")
        if lines and lines[-1] == b"":
            lines.pop()
        body = b"".join((b"." + l if l.startswith(b".") else l) + b"\r\n"
                        for l in lines)
        self.send_body(b"+OK %d octets\r\n" % len(m.data), body, b".\r\n")

    def c_DELE(self, args):
        if not self.need_auth():
            return
        n, m = self.msg(args[0])
        self.dele.add(n)
        self.send("+OK deleted %d\r\n" % n)

    def c_RSET(self, args):
        self.dele = set()
        self.send("+OK reset\r\n")

    def c_NOOP(self, args):
        self.send("+OK\r\n")

    def c_QUIT(self, args):
        if self.authed and self.dele:
            gone = [self.view[n - 1] for n in sorted(self.dele)]
            with self.srv.lock:
                for m in gone:
                    self.box["msgs"].remove(m)
                    self.box["deleted"].append(m.uidl)
            self.srv.log(self.conn, "*", "commit %d" % len(gone))
        self.send("+OK bye\r\n")
        self.closed = True

    def throttle(self, bye):
        self.send("-ERR %s\r\n" % bye.get("text",
                                          "[SYS/TEMP] bandwidth limit"))
        self.drop("throttled")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--proto", choices=("imap", "pop3"), required=True)
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--max-conn", type=int, default=4)
    ap.add_argument("--time-limit", type=float, default=60)
    ap.add_argument("--starttls", action="store_true",
                    help="plain TCP, TLS only after STARTTLS/STLS")
    a = ap.parse_args()
    Server(a).run()


if __name__ == "__main__":
    main()
