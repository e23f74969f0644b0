#!/usr/bin/env python3
"""tests/lib/gen_corpus.py: deterministic RFC 5322 test messages.

Writes one message per file (CRLF line endings) into OUT:
  00001.eml ...        --count messages: mostly 2-20 KB of text, about one
                       in ten with a base64 attachment of 50 KB - 2 MB
  tricky-NN-*.eml      with --tricky: lines that look like protocol
                       responses or mbox separators, bare LF, 8-bit
                       headers, an empty file, no final newline, a 20,000
                       character line
  big.eml              with --big MB: one message with an MB-sized
                       attachment

Same --seed, same bytes.  Every message has a unique Message-ID and Date.
Dovecot notes: doveadm save accepts the empty file; Dovecot stores LF and
sends CRLF, so a bare LF comes back from the server as CRLF (tests compare
with dv_body, not with these files, when a message has bare LFs).
"""
import argparse
import base64
import os
import random
import sys
import time

WORDS = ("mail backup server folder message archive sync local remote "
         "delivery header body test quick brown fox jumps over lazy dog "
         "lorem ipsum dolor sit amet consectetur adipiscing elit sed do "
         "eiusmod tempor incididunt ut labore et dolore magna aliqua").split()
BASE_TIME = 1700000000  # fixed: dates do not depend on when we run


def fmt_date(t):
    return time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(t))


def text_lines(rng, size):
    """Lines of words (max 76 chars) adding up to about size bytes."""
    out, total = [], 0
    while total < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 11)))
        line = line[:76]
        out.append(line)
        total += len(line) + 2
    return out


class Gen:
    def __init__(self, seed, domain="mailsync.test"):
        self.rng = random.Random(seed)
        self.seed = seed
        self.domain = domain
        self.n = 0

    def headers(self, subject, extra=()):
        self.n += 1
        h = [
            "Return-Path: <sender%d@%s>" % (self.n % 7, self.domain),
            "From: Sender %d <sender%d@%s>" % (self.n % 7, self.n % 7,
                                              self.domain),
            "To: Alice <alice@%s>" % self.domain,
            "Subject: %s" % subject,
            "Date: %s" % fmt_date(BASE_TIME + self.n * 3607),
            "Message-ID: <%d.%d.%08x@%s>" % (self.seed, self.n,
                                             self.rng.getrandbits(32),
                                             self.domain),
            "MIME-Version: 1.0",
        ]
        h.extend(extra)
        return h

    def plain(self, subject, body_lines, extra=()):
        h = self.headers(subject, list(extra) + [
            "Content-Type: text/plain; charset=us-ascii"])
        return ("\r\n".join(h + [""] + body_lines) + "\r\n").encode()

    def with_attachment(self, subject, nbytes):
        boundary = "=_b%08x" % self.rng.getrandbits(32)
        h = self.headers(subject, [
            'Content-Type: multipart/mixed; boundary="%s"' % boundary])
        text = text_lines(self.rng, self.rng.randint(500, 3000))
        data = base64.b64encode(self.rng.randbytes(nbytes)).decode()
        b64 = [data[i:i + 76] for i in range(0, len(data), 76)]
        body = ["This is a multi-part message in MIME format.", "",
                "--" + boundary,
                "Content-Type: text/plain; charset=us-ascii", ""] + text + [
                "", "--" + boundary,
                "Content-Type: application/octet-stream",
                "Content-Transfer-Encoding: base64",
                'Content-Disposition: attachment; filename="data%d.bin"'
                % self.n, ""] + b64 + ["", "--" + boundary + "--"]
        return ("\r\n".join(h + [""] + body) + "\r\n").encode()

    def normal(self, i):
        if self.rng.randrange(10) == 0:
            size = self.rng.randint(50 * 1024, 2 * 1024 * 1024)
            return self.with_attachment("Attachment %d" % i, size)
        lines = text_lines(self.rng, self.rng.randint(2048, 20480))
        return self.plain("Message %d" % i, lines)

    def tricky(self):
        """(name, bytes) pairs of messages that break naive code."""
        t = []
        t.append(("protocol-lines", self.plain("Looks like protocol", [
            "A001 OK LOGOUT completed", "* OK [ALERT] not a response",
            "* BYE not really", "+OK not pop3", "-ERR not pop3",
            "A002 BAD fake", ")", "* 1 FETCH (BODY[] {5}", "{10}", ""])))
        t.append(("dots", self.plain("Dots", [
            ".", "..", "...", ".hidden", "a line", ".", "end"])))
        t.append(("from-lines", self.plain("From lines", [
            "From here on it gets tricky", ">From quoted once",
            ">>From quoted twice", "From: not a header",
            "From sender@example.org Mon Jan  1 00:00:00 2024", "x"])))
        h = self.headers("bare LF inside",
                         ["Content-Type: text/plain; charset=us-ascii"])
        t.append(("bare-lf", ("\r\n".join(h) + "\r\n\r\nline one\nline two"
                              "\r\nline three\n\r\nend\r\n").encode()))
        h = self.headers("Grüße aus Köln – ünïcödé ✓",
                         ["Content-Type: text/plain; charset=utf-8",
                          "Content-Transfer-Encoding: 8bit"])
        t.append(("8bit-header", ("\r\n".join(h) + "\r\n\r\n"
                                  "Schöne Grüße, €100\r\n").encode("utf-8")))
        t.append(("empty", b""))
        h = self.headers("No final newline",
                         ["Content-Type: text/plain; charset=us-ascii"])
        t.append(("no-final-newline",
                  ("\r\n".join(h) + "\r\n\r\nlast line without CRLF")
                  .encode()))
        long_line = "".join(self.rng.choice("abcdefghij") for _ in
                            range(20000))
        t.append(("long-line", self.plain("A 20000 character line",
                                          ["before", long_line, "after"])))
        return t

    def big(self, mb):
        # base64 of N bytes is 4/3 N: aim the encoded size at MB MiB
        return self.with_attachment("Big %d MB" % mb, mb * 1024 * 1024 * 3
                                    // 4)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="directory to write into (created)")
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tricky", action="store_true")
    ap.add_argument("--big", type=int, metavar="MB", default=0)
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()

    os.makedirs(a.out, exist_ok=True)
    g = Gen(a.seed)
    files = [("%05d.eml" % i, g.normal(i)) for i in range(1, a.count + 1)]
    if a.tricky:
        files += [("tricky-%02d-%s.eml" % (k + 1, name), data)
                  for k, (name, data) in enumerate(g.tricky())]
    if a.big:
        files.append(("big.eml", g.big(a.big)))
    total = 0
    for name, data in files:
        with open(os.path.join(a.out, name), "wb") as f:
            f.write(data)
        total += len(data)
    if a.verbose:
        print("%d files, %d bytes in %s" % (len(files), total, a.out),
              file=sys.stderr)


if __name__ == "__main__":
    main()
