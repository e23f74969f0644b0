#!/usr/bin/env python3
"""tests/bench/bench.py: mailsync against mbsync, offlineimap3, getmail6,
fetchmail and mpop on one private Dovecot (started by run.sh).

Environment (set by run.sh): MAILSYNC, DV_DIR, DV_CA, DV_IMAPS_PORT,
DV_POP3S_PORT, DV_USER, DV_PASS, DV_USER2, DV_PASS2, BENCH_WORK (a
directory on a real disk for the tools' stores), BENCH_PRESET (messages),
BENCH_REPS, BENCH_RTTS ("0 20"), BENCH_TOOLS (names, default all),
BENCH_MEMTEST (1/0), BENCH_OUT (the report), BENCH_SCENARIOS (a subset
of "imap-full imap-none imap-new100 pop3-full pop3-none"; default all),
BENCH_MAILSYNC_BASE (a second mailsync binary, timed as "mailsync-base"
next to MAILSYNC in the same sitting, for before/after comparisons),
BENCH_TRACE (1: also count, for each mailsync binary, IMAPS full and
nothing-new runs: CPU user+sys, fsync calls, and at RTT > 0 the polls
that waited >= 3/4 RTT, i.e. round trips with nothing in flight; logged).

Every timed run is verified before its time counts: message counts for
every tool, and for mailsync the SHA-256 of every stored message against
the bytes in the server's store.
"""
import collections
import datetime
import hashlib
import os
import platform
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in tests/lib
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import gen_corpus  # noqa: E402
import mboxrd_split  # noqa: E402

E = os.environ
MS = E["MAILSYNC"]
DV_DIR = E["DV_DIR"]
CA = E["DV_CA"]
CONF = os.path.join(DV_DIR, "dovecot.conf")
WORK = E["BENCH_WORK"]
PRESET = int(E.get("BENCH_PRESET", "1000"))
REPS = int(E.get("BENCH_REPS", "3"))
RTTS = [int(x) for x in E.get("BENCH_RTTS", "0 20").split()]
MEMTEST = E.get("BENCH_MEMTEST", "1") == "1"
OUT = E.get("BENCH_OUT", os.path.join(HERE, "RESULTS.md"))
RUN_TIMEOUT = int(E.get("BENCH_TIMEOUT", "1200"))
ALL_SCENARIOS = "imap-full imap-none imap-new100 pop3-full pop3-none"
SCENARIOS = E.get("BENCH_SCENARIOS", ALL_SCENARIOS).split()
MS_BASE = E.get("BENCH_MAILSYNC_BASE", "")
TRACE = E.get("BENCH_TRACE", "0") == "1"
NEW = 100
SEED = 5

# folder, share of the corpus; nested and non-ASCII names included
FOLDERS = [("INBOX", 50), ("Archive/2023", 14), ("Archive/2024", 14),
           ("Lists/dev", 8), ("Lists/announce", 4), ("Entwürfe", 3),
           ("Sent", 7)]


def log(*a):
    print("bench:", *a, file=sys.stderr, flush=True)


def mutf7(name):
    """IMAP modified UTF-7 (RFC 3501 5.1.3)."""
    import base64
    out, buf = [], []

    def flush():
        if buf:
            b = base64.b64encode("".join(buf).encode("utf-16-be"))
            out.append("&" + b.decode().rstrip("=").replace("/", ",") + "-")
            buf.clear()
    for ch in name:
        if 0x20 <= ord(ch) <= 0x7e:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            buf.append(ch)
    flush()
    return "".join(out)


def doveadm(*args, **kw):
    return subprocess.run(["doveadm", "-c", CONF] + list(args), check=True,
                          stdout=subprocess.PIPE, **kw).stdout


def dv_status(user, field, folder):
    out = doveadm("-f", "tab", "mailbox", "status", "-u", user, field,
                  folder).decode().splitlines()
    return int(out[-1].split("\t")[-1])


class Store:
    """The server side: writes Maildir files straight into the user's
    Dovecot Maildir (LAYOUT=fs) and remembers what it wrote."""

    def __init__(self, user):
        self.user = user
        self.root = os.path.join(DV_DIR, "home", user, "Maildir")
        self.n = 0
        self.exp = collections.defaultdict(list)  # folder -> [(sha, size)]
        self.uid = int(subprocess.check_output(["id", "-u", "nobody"]))
        self.gid = int(subprocess.check_output(["id", "-g", "nobody"]))

    def fdir(self, folder):
        if folder == "INBOX":
            return self.root
        return os.path.join(self.root, *[mutf7(p) for p in
                                         folder.split("/")])

    def create(self, folder):
        # Dovecot makes the directories (owned by the mail user)
        if folder != "INBOX":
            doveadm("mailbox", "create", "-u", self.user, folder)
        dv_status(self.user, "messages", folder)

    def add(self, folder, crlf, flags="", record=True):
        lf = crlf.replace(b"\r\n", b"\n")
        self.n += 1
        sub = "cur" if flags else "new"
        name = "%d.M%dP1.bench,S=%d,W=%d" % (1700000000 + self.n, self.n,
                                             len(lf), len(crlf))
        if flags:
            name += ":2," + flags
        d = os.path.join(self.fdir(folder), sub)
        os.makedirs(d, exist_ok=True)
        p = os.path.join(d, name)
        with open(p, "wb") as f:
            f.write(lf)
        os.chown(p, self.uid, self.gid)
        if record:
            self.exp[folder].append((hashlib.sha256(lf).hexdigest(),
                                     len(crlf)))
        return p

    def fix_owner(self):
        for top, dirs, files in os.walk(self.root):
            for x in dirs + files:
                os.lchown(os.path.join(top, x), self.uid, self.gid)

    def count(self, folders=None):
        return sum(len(v) for k, v in self.exp.items()
                   if folders is None or k in folders)

    def nbytes(self, folders=None):
        return sum(s for k, v in self.exp.items()
                   if folders is None or k in folders for _, s in v)


def seed_corpus(st):
    g = gen_corpus.Gen(SEED)
    import random
    rng = random.Random(SEED)
    names = [f for f, _ in FOLDERS]
    weights = [w for _, w in FOLDERS]
    for f in names:
        st.create(f)
    for i in range(1, PRESET + 1):
        folder = rng.choices(names, weights)[0]
        r = rng.random()
        flags = "S" if r < 0.7 else ("FS" if r < 0.75 else "")
        st.add(folder, g.normal(i), flags)
    st.fix_owner()


# ---------------------------------------------------------------- tools

def walk_maildirs(top):
    """{relative folder dir: [file paths]} for every cur/new under top."""
    res = collections.defaultdict(list)
    for d, dirs, files in os.walk(top):
        b = os.path.basename(d)
        if b in ("cur", "new"):
            rel = os.path.relpath(os.path.dirname(d), top)
            res[rel].extend(os.path.join(d, f) for f in files)
    return res


def mbox_count(path):
    if not os.path.exists(path):
        return 0
    with open(path, "rb") as f:
        data = f.read()
    return len(re.findall(rb"(?:^|\n)From ", data))


def sha_files(paths):
    c = collections.Counter()
    for p in paths:
        with open(p, "rb") as f:
            c[hashlib.sha256(f.read()).hexdigest()] += 1
    return c


class Tool:
    """One client setup.  proto imap|pop3; kind maildir|mbox."""
    name = "?"
    proto = "imap"
    kind = "maildir"
    all_folders = True
    note = ""

    def __init__(self, user, pw, port):
        self.user, self.pw, self.port = user, pw, port
        self.dir = None

    def prepare(self, d):
        """Fresh working directory d: write the config."""
        self.dir = d
        if os.path.exists(d):
            shutil.rmtree(d)
        os.makedirs(d)
        os.chmod(d, 0o755)  # getmail delivers as nobody
        self.store = os.path.join(d, "store")
        self.write_config()

    def env(self):
        return None

    def ok_rc(self, rc):
        return rc == 0

    def got(self):
        """Messages now in the local store."""
        if self.kind == "mbox":
            return mbox_count(self.store)
        return sum(len(v) for v in walk_maildirs(self.store).values())

    def verify_full(self, srv, folders):
        """Extra verification; returns an error string or None."""
        return None


def w(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


class Mailsync(Tool):
    name = "mailsync"

    def __init__(self, user, pw, port, proto="imap", kind="maildir",
                 folders=None, binary=None):
        super().__init__(user, pw, port)
        self.proto, self.kind, self.folders = proto, kind, folders
        self.binary = binary or MS
        if binary:
            self.name = "mailsync-base"
        if proto == "pop3":
            self.name = "%s (%s)" % (self.name, kind)

    def write_config(self):
        src = "%ss://127.0.0.1:%d" % (self.proto, self.port)
        extra = "folders = %s\n" % self.folders if self.folders else ""
        w(os.path.join(self.dir, "ms.ini"),
          "[general]\nstate_dir = %s/state\n[b]\nsource = %s\nuser = %s\n"
          "password = %s\ntls_ca_file = %s\nstore = %s:%s\npolicy = keep\n%s"
          % (self.dir, src, self.user, self.pw, CA, self.kind, self.store,
             extra))

    def cmd(self):
        return [self.binary, "-q", "-c", os.path.join(self.dir, "ms.ini")]

    def verify_full(self, srv, folders):
        """SHA-256 of every message against the server's bytes, per
        folder for IMAP Maildir."""
        if self.kind == "mbox":
            with open(self.store, "rb") as f:
                msgs = mboxrd_split.split(f.read())
            got = collections.Counter(
                hashlib.sha256(m).hexdigest() for m in msgs)
            want = collections.Counter(h for fo in folders
                                       for h, _ in srv.exp[fo])
            return None if got == want else "mbox hashes differ"
        md = walk_maildirs(self.store)
        if self.proto == "pop3":
            got = sha_files(p for v in md.values() for p in v)
            want = collections.Counter(h for fo in folders
                                       for h, _ in srv.exp[fo])
            return None if got == want else "maildir hashes differ"
        for fo in folders:
            got = sha_files(md.get(fo, []))
            want = collections.Counter(h for h, _ in srv.exp[fo])
            if got != want:
                return "%s: %d stored, %d on server, hashes differ" % (
                    fo, sum(got.values()), sum(want.values()))
        return None


class Mbsync(Tool):
    name = "mbsync"

    def __init__(self, user, pw, port, patterns="*"):
        super().__init__(user, pw, port)
        self.patterns = patterns

    def write_config(self):
        w(os.path.join(self.dir, "mbsyncrc"), """\
IMAPAccount b
Host localhost
Port %d
User %s
Pass "%s"
SSLType IMAPS
CertificateFile %s
SystemCertificates no

IMAPStore r
Account b

MaildirStore l
Path %s/
Inbox %s/INBOX
SubFolders Verbatim

Channel b
Far :r:
Near :l:
Patterns %s
Create Near
Sync Pull
Expunge None
SyncState *
""" % (self.port, self.user, self.pw, CA, self.store, self.store,
            self.patterns))
        os.makedirs(self.store)

    def cmd(self):
        return ["mbsync", "-q", "-c", os.path.join(self.dir, "mbsyncrc"),
                "b"]


class Offlineimap(Tool):
    name = "offlineimap3"

    def write_config(self):
        w(os.path.join(self.dir, "oirc"), """\
[general]
accounts = b
metadata = %s/meta
ui = quiet

[Account b]
localrepository = l
remoterepository = r

[Repository l]
type = Maildir
localfolders = %s

[Repository r]
type = IMAP
remotehost = localhost
remoteport = %d
remoteuser = %s
remotepass = %s
ssl = yes
sslcacertfile = %s
readonly = True
""" % (self.dir, self.store, self.port, self.user, self.pw, CA))
        os.makedirs(self.store)

    def cmd(self):
        return ["offlineimap", "-c", os.path.join(self.dir, "oirc"), "-u",
                "quiet"]


class Getmail(Tool):
    name = "getmail6"

    def __init__(self, user, pw, port, proto="imap"):
        super().__init__(user, pw, port)
        self.proto = proto
        self.all_folders = True
        if proto == "imap":
            self.note = ("mailboxes = ALL, all folders delivered into one "
                         "Maildir (getmail keeps no folder structure)")

    def write_config(self):
        if self.proto == "imap":
            r = "type = SimpleIMAPSSLRetriever\nmailboxes = ALL\n"
        else:
            r = "type = SimplePOP3SSLRetriever\n"
        w(os.path.join(self.dir, "getmailrc"), """\
[retriever]
%sserver = 127.0.0.1
port = %d
username = %s
password = %s
ca_certs = %s
timeout = 20

[destination]
type = Maildir
path = %s/
user = nobody

[options]
read_all = false
delete = false
verbose = 0
""" % (r, self.port, self.user, self.pw, CA, self.store))
        for s in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(self.store, s))
        # getmail refuses to deliver as root: it delivers as nobody
        for s in ("", "cur", "new", "tmp"):
            shutil.chown(os.path.join(self.store, s), "nobody")

    def cmd(self):
        return ["getmail", "--rcfile", os.path.join(self.dir, "getmailrc"),
                "--getmaildir", self.dir, "-q"]


class Fetchmail(Tool):
    name = "fetchmail+procmail"
    proto = "pop3"
    note = "MDA procmail (one process per message) into Maildir"

    def write_config(self):
        w(os.path.join(self.dir, "procmailrc"),
          "VERBOSE=off\nLOGFILE=%s/procmail.log\n:0\n%s/\n"
          % (self.dir, self.store))
        w(os.path.join(self.dir, "fetchmailrc"), """\
set no syslog
poll localhost with proto POP3 port %d
  user "%s" there with password "%s" is "root" here
  options keep ssl sslcertck sslcertfile "%s" sslproto "TLS1.2+"
  mda "/usr/bin/procmail -m %s/procmailrc"
""" % (self.port, self.user, self.pw, CA, self.dir), 0o600)
        for s in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(self.store, s))

    def env(self):
        e = dict(os.environ)
        e["FETCHMAILHOME"] = self.dir
        return e

    def ok_rc(self, rc):
        return rc in (0, 1)  # 1: no new mail

    def cmd(self):
        return ["fetchmail", "-s", "-f",
                os.path.join(self.dir, "fetchmailrc"), "--idfile",
                os.path.join(self.dir, "fetchids"), "--nodetach"]


class Mpop(Tool):
    proto = "pop3"

    def __init__(self, user, pw, port, kind="maildir"):
        super().__init__(user, pw, port)
        self.kind = kind
        self.name = "mpop (%s)" % kind

    def write_config(self):
        w(os.path.join(self.dir, "mpoprc"), """\
account b
host 127.0.0.1
port %d
user %s
password %s
tls on
tls_starttls off
tls_trust_file %s
keep on
uidls_file %s/uidls
delivery %s %s
""" % (self.port, self.user, self.pw, CA, self.dir, self.kind, self.store))
        if self.kind == "maildir":
            for s in ("cur", "new", "tmp"):
                os.makedirs(os.path.join(self.store, s))

    def cmd(self):
        return ["mpop", "-q", "-C", os.path.join(self.dir, "mpoprc"), "b"]


# ------------------------------------------------------------- running

class Proxy:
    def __init__(self, port, delay_ms):
        self.p = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "proxy.py"), str(port),
             str(delay_ms), "14400"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE)
        self.port = int(self.p.stdout.readline())

    def stop(self):
        self.p.stdin.close()
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def timed(tool, tag):
    """Run the tool once under /usr/bin/time: (rc, wall s, rss KiB)."""
    tf = os.path.join(tool.dir, "time.%s" % tag)
    lf = os.path.join(tool.dir, "log.%s" % tag)
    os.sync()  # no dirty pages of the previous run charged to this one
    with open(lf, "wb") as logf:
        t0 = time.monotonic()
        p = subprocess.Popen(["/usr/bin/time", "-f", "%e %M", "-o", tf] +
                             tool.cmd(), stdout=logf, stderr=logf,
                             stdin=subprocess.DEVNULL, env=tool.env(),
                             start_new_session=True)
        try:
            rc = p.wait(RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)
            p.wait()
            rc = -9
        wall = time.monotonic() - t0
    try:
        with open(tf) as f:
            last = f.read().split("\n")
            rss = int([x for x in last if x.strip()][-1].split()[1])
    except (OSError, IndexError, ValueError):
        rss = 0
    return rc, wall, rss


def tail(path, n=5):
    try:
        with open(path, "rb") as f:
            return " | ".join(f.read().decode(errors="replace")
                              .strip().splitlines()[-n:])
    except OSError:
        return ""


class Results:
    def __init__(self):
        # (scenario, rtt, tool) -> [(wall, rss)] ; failures -> reason
        self.t = collections.defaultdict(list)
        self.fail = {}
        self.meta = {}  # scenario -> (messages, bytes)

    def add(self, sc, rtt, tool, wall, rss):
        self.t[(sc, rtt, tool)].append((wall, rss))

    def med(self, sc, rtt, tool):
        v = self.t.get((sc, rtt, tool))
        if not v:
            return None
        return (statistics.median(x for x, _ in v),
                max(r for _, r in v), len(v))


def run_case(res, tool, sc, rtt, want, srv, folders, full_verify):
    key = (sc, rtt, tool.name)
    if not sc.endswith("full"):
        # a follow-up run: let the store's directory mtimes fall into the
        # past, as they are when runs are minutes apart (mbsync otherwise
        # sleeps a second to be safe against same-second Maildir changes)
        time.sleep(1.1)
    rc, wall, rss = timed(tool, "%s.%d" % (sc, rtt))
    got = tool.got()
    err = None
    if not tool.ok_rc(rc):
        err = "exit %d: %s" % (rc, tail(os.path.join(
            tool.dir, "log.%s.%d" % (sc, rtt))))
    elif got != want:
        err = "stored %d messages, want %d" % (got, want)
    elif full_verify:
        err = tool.verify_full(srv, folders)
    if err:
        res.fail.setdefault(key, []).append(err)
        log("FAIL", sc, rtt, tool.name, err)
        return False
    res.add(sc, rtt, tool.name, wall, rss)
    log("%-14s rtt %2d %-20s %7.2f s %6d KiB" % (sc, rtt, tool.name, wall,
                                                  rss))
    return True


def add_new(srv, gnew, k):
    """100 new messages into INBOX; returns the first new UID."""
    first = dv_status(srv.user, "uidnext", "INBOX")
    base = dv_status(srv.user, "messages", "INBOX")
    for i in range(NEW):
        srv.add("INBOX", gnew[i], "", record=False)
    srv.fix_owner()
    n = dv_status(srv.user, "messages", "INBOX")
    if n != base + NEW:
        raise SystemExit("bench: INBOX has %d after adding, want %d"
                         % (n, base + NEW))
    return first


def del_new(srv, first):
    doveadm("expunge", "-u", srv.user, "mailbox", "INBOX", "uid",
            "%d:*" % first)
    n = dv_status(srv.user, "messages", "INBOX")
    if n != srv.count(["INBOX"]):
        raise SystemExit("bench: INBOX has %d after expunge" % n)


def raw_fetch(port, user, pw, folders, store=None):
    """Reference: one TLS connection, every EXAMINE + UID FETCH 1:*
    BODY.PEEK[] sent at once (pipelined); literals counted, not stored;
    or, with store (a directory), each literal written to a new file there
    and fsynced before the next is read (the naive durable client), the
    directory fsynced at the end.  Returns (messages, literal bytes)."""
    ctx = ssl.create_default_context(cafile=CA)
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), 20),
                        server_hostname="127.0.0.1")
    f = s.makefile("rb", buffering=1 << 20)
    f.readline()
    s.sendall(b'l LOGIN "%s" "%s"\r\n' % (user.encode(), pw.encode()))
    while not f.readline().startswith(b"l "):
        pass
    cmds = []
    for i, fo in enumerate(folders):
        cmds.append(b'e%d EXAMINE "%s"\r\nf%d UID FETCH 1:* BODY.PEEK[]\r\n'
                    % (i, mutf7(fo).encode(), i))
    s.sendall(b"".join(cmds))
    pending = {b"e%d" % i for i in range(len(folders))} | \
        {b"f%d" % i for i in range(len(folders))}
    nmsg = nbytes = 0
    lit = re.compile(rb"\{(\d+)\}\r\n$")
    while pending:
        line = f.readline()
        if not line:
            raise OSError("connection closed")
        m = lit.search(line)
        while m:
            n = int(m.group(1))
            nmsg += 1
            nbytes += n
            left = n
            fd = -1
            if store:
                fd = os.open(os.path.join(store, "%d" % nmsg),
                             os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            while left:
                chunk = f.read(min(left, 1 << 20))
                if not chunk:
                    raise OSError("short literal")
                left -= len(chunk)
                if fd >= 0:
                    os.write(fd, chunk)
            if fd >= 0:
                os.fsync(fd)
                os.close(fd)
            line = f.readline()
            m = lit.search(line)
        tag = line.split(b" ", 1)[0]
        if tag in pending:
            if b" OK " not in line:
                raise OSError(line.decode(errors="replace"))
            pending.discard(tag)
    s.sendall(b"z LOGOUT\r\n")
    s.close()
    if store:
        dfd = os.open(store, os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(dfd)
        os.close(dfd)
    return nmsg, nbytes


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, timeout=20
                              ).stdout.decode().strip()
    except subprocess.TimeoutExpired:
        return "?"


def machine():
    cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
    src = sh("findmnt -no SOURCE,FSTYPE -T %s" % WORK)
    dev = os.path.basename(src.split()[0]) if src else ""
    rot = sh("cat /sys/block/%s/queue/rotational 2>/dev/null" %
             re.sub(r"\d+$", "", dev)) if dev else ""
    rot = {"0": "rotational=0", "1": "rotational=1"}.get(rot, "unknown")
    mem = sh("awk '/MemTotal/ {printf \"%.1f GiB\", $2/1048576}' "
             "/proc/meminfo")
    return [
        "- date: %s" % datetime.datetime.utcnow().strftime(
            "%Y-%m-%d %H:%M UTC"),
        "- machine: %s CPUs (nproc), %s, %s RAM, kernel %s" % (
            os.cpu_count(), cpu, mem, platform.release()),
        "- load average at start: %s" % sh("cut -d' ' -f1-3 /proc/loadavg"),
        "- store directory %s: %s (virtual block device, %s)" % (
            WORK, src, rot),
        "- Dovecot %s (private instance, rawlog off), server store on the "
        "same filesystem" % sh("dovecot --version"),
        "- versions: mailsync %s; %s" % (
            sh("%s --version" % MS).split("\n")[0],
            ", ".join("%s %s" % (p, sh("dpkg-query -W -f '${Version}' %s" % p))
                      for p in ("isync", "offlineimap3", "getmail6",
                                "fetchmail", "procmail", "mpop"))),
    ]


def main():
    t_start = time.monotonic()
    os.makedirs(WORK, exist_ok=True)
    os.chmod(WORK, 0o755)
    user, pw = E["DV_USER"], E["DV_PASS"]
    imaps, pop3s = int(E["DV_IMAPS_PORT"]), int(E["DV_POP3S_PORT"])
    srv = Store(user)
    log("generating and seeding %d messages" % PRESET)
    seed_corpus(srv)
    folders = [f for f, _ in FOLDERS if srv.exp[f]]
    for f in folders:
        n = dv_status(user, "messages", f)
        if n != len(srv.exp[f]):
            raise SystemExit("bench: %s has %d messages, seeded %d" %
                             (f, n, len(srv.exp[f])))
    gnew = [gen_corpus.Gen(SEED + 1000).normal(i) for i in range(NEW)]
    N, B = srv.count(), srv.nbytes()
    NI, BI = srv.count(["INBOX"]), srv.nbytes(["INBOX"])
    NEWB = sum(len(x) for x in gnew)
    log("corpus: %d messages, %.1f MB, INBOX %d, %.1f MB" % (
        N, B / 1e6, NI, BI / 1e6))
    res = Results()
    res.meta = {"imap-full": (N, B), "imap-none": (N, 0),
                "imap-new100": (NEW, NEWB), "pop3-full": (NI, BI),
                "pop3-none": (NI, 0)}

    # reference: doveadm fetch (server side, also warms the server)
    refs = collections.defaultdict(list)
    for rep in range(REPS + 1):
        t0 = time.monotonic()
        subprocess.run(["doveadm", "-c", CONF, "-f", "pager", "fetch", "-u",
                        user, "text", "all"], stdout=subprocess.DEVNULL,
                       check=True)
        if rep:  # the first one warms up
            refs["doveadm"].append(time.monotonic() - t0)

    want_tools = E.get("BENCH_TOOLS", "").split()

    def wanted(name):
        return not want_tools or any(name.startswith(x) for x in want_tools)

    proxies = {}
    try:
        for rtt in RTTS:
            if rtt:
                proxies[rtt] = (Proxy(imaps, rtt // 2), Proxy(pop3s, rtt // 2))
        port = {0: (imaps, pop3s)}
        for rtt, (pi, pp) in proxies.items():
            port[rtt] = (pi.port, pp.port)

        for rep in range(REPS):
            for rtt in RTTS:
                ip, pp = port[rtt]
                # reference: raw pipelined fetch over one TLS connection
                t0 = time.monotonic()
                nm, nb = raw_fetch(ip, user, pw, folders)
                if nm != N or nb != B:
                    raise SystemExit("bench: raw fetch got %d/%d, want %d/%d"
                                     % (nm, nb, N, B))
                refs["raw%d" % rtt].append(time.monotonic() - t0)
                # the same, plus one fsynced file per message
                rdir = os.path.join(WORK, "rawfs")
                shutil.rmtree(rdir, ignore_errors=True)
                os.makedirs(rdir)
                subprocess.run(["sync"])
                t0 = time.monotonic()
                nm, nb = raw_fetch(ip, user, pw, folders, rdir)
                if nm != N or nb != B:
                    raise SystemExit("bench: raw fetch + files got %d/%d, "
                                     "want %d/%d" % (nm, nb, N, B))
                refs["rawfs%d" % rtt].append(time.monotonic() - t0)
                shutil.rmtree(rdir, ignore_errors=True)
                imap_tools = [Mailsync(user, pw, ip), Mbsync(user, pw, ip),
                              Offlineimap(user, pw, ip),
                              Getmail(user, pw, ip)]
                if MS_BASE:
                    imap_tools.insert(1, Mailsync(user, pw, ip,
                                                  binary=MS_BASE))
                if "imap-full" not in SCENARIOS:
                    imap_tools = []
                for tool in imap_tools:
                    if not wanted(tool.name):
                        continue
                    tool.prepare(os.path.join(WORK, "t"))
                    is_ms = isinstance(tool, Mailsync)
                    if not run_case(res, tool, "imap-full", rtt, N, srv,
                                    folders, is_ms):
                        continue
                    if "imap-none" in SCENARIOS:
                        run_case(res, tool, "imap-none", rtt, N, srv,
                                 folders, False)
                    if "imap-new100" not in SCENARIOS:
                        continue
                    first = add_new(srv, gnew, rep)
                    try:
                        run_case(res, tool, "imap-new100", rtt, N + NEW, srv,
                                 folders, False)
                    finally:
                        del_new(srv, first)
                    res.notes = getattr(res, "notes", {})
                    if tool.note:
                        res.notes[tool.name] = tool.note
                pop_tools = [Mailsync(user, pw, pp, "pop3", "maildir"),
                             Mailsync(user, pw, pp, "pop3", "mbox"),
                             Mpop(user, pw, pp, "maildir"),
                             Mpop(user, pw, pp, "mbox"),
                             Fetchmail(user, pw, pp),
                             Getmail(user, pw, pp, "pop3")]
                if "pop3-full" not in SCENARIOS:
                    pop_tools = []
                for tool in pop_tools:
                    if not wanted(tool.name):
                        continue
                    tool.prepare(os.path.join(WORK, "t"))
                    is_ms = isinstance(tool, Mailsync)
                    if run_case(res, tool, "pop3-full", rtt, NI, srv,
                                ["INBOX"], is_ms):
                        run_case(res, tool, "pop3-none", rtt, NI, srv,
                                 ["INBOX"], False)
                    if tool.note:
                        res.notes = getattr(res, "notes", {})
                        res.notes[tool.name] = tool.note
        shutil.rmtree(os.path.join(WORK, "t"), ignore_errors=True)
        if TRACE:
            trace_runs(user, pw, [(r, port[r][0]) for r in RTTS], folders, N)
            shutil.rmtree(os.path.join(WORK, "tr"), ignore_errors=True)
    finally:
        for a, b in proxies.values():
            a.stop()
            b.stop()

    mem = memtest() if MEMTEST else None
    write_report(res, refs, mem, time.monotonic() - t_start)


def trace_runs(user, pw, port, folders, N):
    """CPU time, fsyncs and idle round trips of mailsync (and the base
    build): one run under /usr/bin/time, one under strace, per case."""
    bins = [("mailsync", MS)] + ([("mailsync-base", MS_BASE)]
                                 if MS_BASE else [])
    for rtt, p in port:
        for name, b in bins:
            t = Mailsync(user, pw, p, binary=b)
            t.name = name
            for sc in ("imap-full", "imap-none"):
                cpu = []
                for how in ("time", "strace"):
                    if sc == "imap-full":
                        t.prepare(os.path.join(WORK, "tr"))
                    else:
                        time.sleep(1.1)
                    out = os.path.join(WORK, "tr.%s.%s" % (how, sc))
                    if how == "time":
                        cmd = ["/usr/bin/time", "-f", "%e %U %S", "-o", out]
                    else:
                        cmd = ["strace", "-f", "-qq", "-T", "-o", out, "-e",
                               "trace=poll,ppoll,fsync,fdatasync"]
                    rc = subprocess.run(cmd + t.cmd(),
                                        stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL).returncode
                    if rc or t.got() != N:
                        log("TRACE FAIL", name, sc, rtt, rc)
                        break
                    with open(out) as f:
                        text = f.read()
                    if how == "time":
                        w, u, sy = text.split()[-3:]
                        cpu = [float(w), float(u) + float(sy)]
                        continue
                    fs = len(re.findall(r"\b(fsync|fdatasync)\(", text))
                    waits = [float(x) for x in re.findall(
                        r"poll\(.*<([0-9.]+)>", text)]
                    idle = sum(1 for x in waits if rtt and
                               x >= 0.75 * rtt / 1000.0)
                    idle_s = sum(x for x in waits if rtt and
                                 x >= 0.75 * rtt / 1000.0)
                    log("trace %-9s rtt %2d %-13s wall %5.2f s cpu %5.2f s "
                        "fsync %4d idle-rtt %3d (%.2f s)" % (
                            sc, rtt, name, cpu[0], cpu[1], fs, idle, idle_s))


def memtest():
    """mailsync's peak RSS with a 200 MB message and a 100,000-message
    folder (bob's mailbox), then a 100,000-message POP3 maildrop; mbsync
    and mpop alongside for reference."""
    user, pw = E["DV_USER2"], E["DV_PASS2"]
    imaps, pop3s = int(E["DV_IMAPS_PORT"]), int(E["DV_POP3S_PORT"])
    srv = Store(user)
    log("memtest: seeding a 200 MB message and 100,000 small ones")
    srv.create("INBOX")
    g = gen_corpus.Gen(SEED + 2000)
    srv.add("INBOX", g.big(200), "S")
    srv.create("Huge")
    g.rng.seed(7)
    seed_small(srv, "Huge", "tiny")
    for f in ("INBOX", "Huge"):
        dv_status(user, "messages", f)  # index before timing
    out = []
    cases = [
        ("200 MB message, IMAPS", Mailsync(user, pw, imaps,
                                           folders="INBOX"), ["INBOX"]),
        ("200 MB message, POP3S to Maildir",
         Mailsync(user, pw, pop3s, "pop3", "maildir"), ["INBOX"]),
        ("200 MB message, POP3S to mbox",
         Mailsync(user, pw, pop3s, "pop3", "mbox"), ["INBOX"]),
        ("100,000-message folder, IMAPS",
         Mailsync(user, pw, imaps, folders="Huge"), ["Huge"]),
        ("200 MB message, IMAPS", Mbsync(user, pw, imaps, "INBOX"),
         ["INBOX"]),
        ("100,000-message folder, IMAPS", Mbsync(user, pw, imaps, "Huge"),
         ["Huge"]),
    ]
    for what, tool, fo in cases:
        out.append(mem_case(what, tool, "memtest", srv, fo))
    # 100,000 small messages as a POP3 maildrop (INBOX), full fetch and
    # the run with nothing new after it
    log("memtest: a POP3 maildrop of 100,000 small messages")
    doveadm("expunge", "-u", user, "mailbox", "INBOX", "all")
    srv.exp["INBOX"] = []
    seed_small(srv, "INBOX", "pop")
    if dv_status(user, "messages", "INBOX") != 100000:
        raise SystemExit("bench: memtest INBOX not seeded")
    for tool in (Mailsync(user, pw, pop3s, "pop3", "maildir"),
                 Mailsync(user, pw, pop3s, "pop3", "mbox"),
                 Mpop(user, pw, pop3s, "maildir")):
        out.append(mem_case("100,000-message maildrop, POP3S", tool,
                            "memtest", srv, ["INBOX"]))
        out.append(mem_case("the same, nothing new", tool, "memnone", srv,
                            ["INBOX"]))
    shutil.rmtree(os.path.join(WORK, "mem"), ignore_errors=True)
    return out


def seed_small(srv, folder, tag, n=100000):
    """n small messages ("TAG message I") into folder, seen."""
    for i in range(n):
        srv.add(folder, ("From: a@b.test\r\nTo: c@d.test\r\nSubject: %s %d"
                         "\r\nMessage-ID: <%d.%s@bench.test>\r\n\r\n"
                         "%s message %d\r\n" % (tag, i, i, tag, tag,
                                                i)).encode(), "S")
    srv.fix_owner()


def mem_case(what, tool, sc, srv, fo):
    """One timed run of tool; (what, name, (wall, rss) or None, error).
    sc "memtest" starts from an empty store, "memnone" runs again on the
    store the previous case left."""
    if sc == "memtest":
        tool.prepare(os.path.join(WORK, "mem"))
    res = Results()
    ok = run_case(res, tool, sc, 0, srv.count(fo), srv, fo,
                  sc == "memtest" and isinstance(tool, Mailsync))
    v = res.med(sc, 0, tool.name)
    return (what, tool.name, v if ok else None,
            (res.fail.get((sc, 0, tool.name)) or [""])[0])


def fmt_row(name, v, n, b):
    if v is None:
        return None
    wall, rss, k = v
    mps = n / wall if wall else 0
    mbs = b / 1e6 / wall if wall and b else 0
    return "| %s | %.2f | %s | %s | %.1f | %d |" % (
        name, wall, "%.0f" % mps if b else "-", "%.1f" % mbs if b else "-",
        rss / 1024.0, k)


SC_TITLE = {
    "imap-full": "IMAPS full first backup, all folders, to Maildir",
    "imap-none": "IMAPS run with nothing new",
    "imap-new100": "IMAPS run with 100 new messages in INBOX",
    "pop3-full": "POP3S full fetch of INBOX (keep on server)",
    "pop3-none": "POP3S run with nothing new",
}


def write_report(res, refs, mem, total):
    L = ["# mailsync benchmark results", "",
         "Generated by `make bench` (tests/bench/run.sh) — preset %d "
         "messages, %d repetition(s), median wall time; RSS is the "
         "largest of the repetitions (GNU time %%M)." % (PRESET, REPS), ""]
    L += machine()
    L += ["- load average at the end: %s (other jobs on the machine make "
          "the times noisy: compare within one report only)"
          % sh("cut -d' ' -f1-3 /proc/loadavg"),
          "- bench wall time: %.0f s" % total, ""]
    n, b = res.meta["imap-full"]
    L += ["Corpus: %d messages, %.1f MB as sent (CRLF), in %d folders "
          "(%s); INBOX %d messages, %.1f MB.  Most messages 2-20 KB of text, "
          "about one in ten with a base64 attachment of 50 KB - 2 MB.  "
          "Deterministic (seed %d)." % (
              n, b / 1e6, len(FOLDERS), ", ".join(f for f, _ in FOLDERS),
              res.meta["pop3-full"][0], res.meta["pop3-full"][1] / 1e6,
              SEED), "",
          "RTT 0 = straight to Dovecot on 127.0.0.1; RTT 20 = through "
          "tests/bench/proxy.py, which holds every chunk 10 ms in each "
          "direction.  Every tool verifies the server certificate "
          "(its CA file option).  Every time counted was verified: "
          "message count for all tools, SHA-256 of every message for "
          "mailsync's full runs.  Each tool runs with its default "
          "durability settings (mbsync FSync yes, offlineimap fsync on, "
          "mailsync fsync per chunk) and keeps everything on the server; "
          "the store is on the disk above (not tmpfs); `sync` runs before "
          "every timed run, and follow-up runs start 1.1 s after the "
          "previous one (mbsync sleeps a second when a Maildir changed "
          "within the current second, which would not happen between "
          "runs minutes apart).  The server is warm (doveadm fetch of "
          "everything before timing).", ""]
    notes = getattr(res, "notes", {})
    for k, v in notes.items():
        L.append("- %s: %s" % (k, v))
    if MS_BASE:
        L.append("- mailsync-base: a second mailsync build (%s, %s), "
                 "timed in the IMAPS scenarios beside the one under test"
                 % (MS_BASE, sh("'%s' --version 2>&1 | head -1" % MS_BASE)))
    L.append("")
    L += ["## References", "",
          "| reference | s | MB/s |", "|---|---|---|"]
    if refs.get("doveadm"):
        t = statistics.median(refs["doveadm"])
        L.append("| doveadm fetch text all (server side, no network) | "
                 "%.2f | %.1f |" % (t, b / 1e6 / t))
    for rtt in RTTS:
        if refs.get("raw%d" % rtt):
            t = statistics.median(refs["raw%d" % rtt])
            L.append("| raw pipelined UID FETCH over one TLS connection, "
                     "RTT %d ms (no disk writes) | %.2f | %.1f |"
                     % (rtt, t, b / 1e6 / t))
        if refs.get("rawfs%d" % rtt):
            t = statistics.median(refs["rawfs%d" % rtt])
            L.append("| the same + one file per message, fsynced before "
                     "the next is read, RTT %d ms | %.2f | %.1f |"
                     % (rtt, t, b / 1e6 / t))
    L.append("")
    tools = sorted({k[2] for k in list(res.t) + list(res.fail)},
                   key=lambda x: (not x.startswith("mailsync"), x))
    for sc in ("imap-full", "imap-none", "imap-new100", "pop3-full",
               "pop3-none"):
        n, b = res.meta[sc]
        for rtt in RTTS:
            rows = []
            for tname in tools:
                r = fmt_row(tname, res.med(sc, rtt, tname), n, b)
                if r:
                    rows.append(r)
                for err in res.fail.get((sc, rtt, tname), []):
                    rows.append("| %s | failed: %s |||||" % (
                        tname, err[:200].replace("|", "/")))
            if not rows:
                continue
            L += ["## %s, RTT %d ms" % (SC_TITLE[sc], rtt), "",
                  "%d messages, %.1f MB" % (n, b / 1e6), "",
                  "| tool | wall s | msg/s | MB/s | peak RSS MiB | runs |",
                  "|---|---|---|---|---|---|"] + rows + [""]
    L += ["## Targets", "",
          "| target | measured | met |", "|---|---|---|"]

    def tgt(label, sc, rtt, ms, peer, want, speed):
        a, p = res.med(sc, rtt, ms), res.med(sc, rtt, peer)
        if not a or not p:
            L.append("| %s | not measured | - |" % label)
            return
        r = p[0] / a[0] if speed else a[0] / p[0]
        met = r >= want if speed else r <= want
        L.append("| %s | %.2fx (%.2f s vs %.2f s) | %s |" % (
            label, r, a[0], p[0], "yes" if met else "NO"))
    for rtt in RTTS:
        tgt("IMAPS full, RTT %d: mailsync >= 1.5x mbsync throughput" % rtt,
            "imap-full", rtt, "mailsync", "mbsync", 1.5, True)
    for rtt in RTTS:
        if rtt:
            tgt("IMAPS nothing new, RTT %d: mailsync time <= 0.5x mbsync"
                % rtt, "imap-none", rtt, "mailsync", "mbsync", 0.5, False)
    for rtt in RTTS:
        for k in ("maildir", "mbox"):
            tgt("POP3S full %s, RTT %d: mailsync >= 1.2x mpop" % (k, rtt),
                "pop3-full", rtt, "mailsync (%s)" % k, "mpop (%s)" % k,
                1.2, True)
    L.append("")
    L += ["## Ratios mailsync / peer (same run; >1 = mailsync faster)", "",
          "| scenario | RTT | peer | peer time / mailsync time |",
          "|---|---|---|---|"]
    for sc in ("imap-full", "imap-none", "imap-new100", "pop3-full",
               "pop3-none"):
        for rtt in RTTS:
            for tname in tools:
                if tname.startswith("mailsync"):
                    continue
                ms = "mailsync"
                if sc.startswith("pop3"):
                    ms = "mailsync (mbox)" if "mbox" in tname else \
                        "mailsync (maildir)"
                a, p = res.med(sc, rtt, ms), res.med(sc, rtt, tname)
                if a and p:
                    L.append("| %s | %d | %s | %.2f |" % (sc, rtt, tname,
                                                          p[0] / a[0]))
    L.append("")
    if mem is not None:
        L += ["## Memory", "",
              "| case | tool | wall s | peak RSS MiB | target <= 16 MiB |",
              "|---|---|---|---|---|"]
        for what, tname, v, err in mem:
            if v is None:
                L.append("| %s | %s | failed: %s | | |" % (what, tname, err))
            else:
                L.append("| %s | %s | %.2f | %.1f | %s |" % (
                    what, tname, v[0], v[1] / 1024.0,
                    ("yes" if v[1] <= 16384 else "NO")
                    if tname == "mailsync" or tname.startswith("mailsync")
                    else "(reference)"))
        L.append("")
    L += ["## All runs (wall s, in order)", ""]
    for (sc, rtt, tname), v in sorted(res.t.items()):
        L.append("- %s, RTT %d, %s: %s" % (sc, rtt, tname, " ".join(
            "%.2f" % x for x, _ in v)))
    L.append("")
    with open(OUT, "w") as f:
        f.write("\n".join(L))
    sys.stdout.write("\n".join(L))
    log("report written to", OUT)


if __name__ == "__main__":
    main()
