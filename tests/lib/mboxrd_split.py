#!/usr/bin/env python3
"""mboxrd_split.py MBOX OUTDIR: split an mboxrd file into OUTDIR/1, 2, ...

An independent reader for the shell tests (no code shared with mbox.c):
a message starts at a line beginning with "From " (at the start of the
file or after a newline); the line before the next From_ line (or the end
of the file) is the blank separator and is dropped; every line matching
^>+From  loses exactly one '>'.  Prints the number of messages.
"""
import os
import re
import sys

QUOTED = re.compile(rb"^>+From ")


def split(data):
    msgs = []
    cur = None
    # only LF ends a line (bytes.splitlines would also split at CR)
    for line in re.findall(rb"[^\n]*\n|[^\n]+$", data):
        if line.startswith(b"From "):
            cur = []
            msgs.append(cur)
            continue
        if cur is None:
            continue  # bytes before the first From_ line are not mail
        if QUOTED.match(line):
            line = line[1:]
        cur.append(line)
    out = []
    for m in msgs:
        body = b"".join(m)
        if body.endswith(b"\n"):
            body = body[:-1]  # the blank separator line
        out.append(body)
    return out


def main():
    if len(sys.argv) != 3:
        sys.stderr.write("usage: mboxrd_split.py MBOX OUTDIR\n")
        return 64
    with open(sys.argv[1], "rb") as f:
        msgs = split(f.read())
    os.makedirs(sys.argv[2], exist_ok=True)
    for i, body in enumerate(msgs, 1):
        with open(os.path.join(sys.argv[2], str(i)), "wb") as f:
            f.write(body)
    print(len(msgs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
