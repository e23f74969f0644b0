#!/usr/bin/env python3
"""imap_append.py PORT CAFILE USER PASS FOLDER DAYS_AGO FILE...

APPEND messages over IMAPS to the private test Dovecot on 127.0.0.1 with an
INTERNALDATE DAYS_AGO days in the past (doveadm save cannot set one).
"""
import imaplib
import ssl
import sys
import time

port, cafile, user, pw, folder, days = sys.argv[1:7]
ctx = ssl.create_default_context(cafile=cafile)
with imaplib.IMAP4_SSL("127.0.0.1", int(port), ssl_context=ctx) as c:
    c.login(user, pw)
    c.create('"%s"' % folder)
    when = time.time() - float(days) * 86400
    for path in sys.argv[7:]:
        with open(path, "rb") as f:
            data = f.read()
        typ, _ = c.append('"%s"' % folder, None, imaplib.Time2Internaldate(when), data)
        if typ != "OK":
            sys.exit("append failed")
    c.logout()
