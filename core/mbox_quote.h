/*
 * mbox_quote.h: the pure (no I/O; fuzzed) text transformations of the mbox
 * store, implemented in mbox_quote.c: CRLF -> LF, mboxrd From_ quoting,
 * and the From_ separator line (envelope sender from Return-Path, asctime
 * date in UTC).  All streaming: state survives chunk boundaries.
 */
#ifndef MS_MBOX_QUOTE_H
#define MS_MBOX_QUOTE_H

#include <stddef.h>
#include <stdint.h>

/* CRLF -> LF.  A lone CR is kept; a CR at a chunk end waits for the next
 * chunk.  out needs room for n + 1 bytes; returns the bytes written. */
struct ms_mbox_crlf {
	int cr; /* a CR is held back */
};
size_t ms_mbox_crlf_feed(struct ms_mbox_crlf *c, const char *in, size_t n,
			 char *out);
/* End of message: the held CR, if any (0 or 1 byte written). */
size_t ms_mbox_crlf_flush(struct ms_mbox_crlf *c, char *out);

/* mboxrd: every line matching ^>*From  gains one '>'.  Input is LF text.
 * Only a partial "From " (at most 4 bytes) is ever held back; '>' runs
 * pass at once because the added '>' may go anywhere in the run.  out
 * needs room for 2 * n + 8 bytes; returns the bytes written. */
struct ms_mbox_quote {
	int mid; /* not at line start (nor in a leading '>' run) */
	int k;   /* bytes of "From " matched at line start */
};
void ms_mbox_quote_init(struct ms_mbox_quote *q);
size_t ms_mbox_quote_feed(struct ms_mbox_quote *q, const char *in, size_t n,
			  char *out);
size_t ms_mbox_quote_flush(struct ms_mbox_quote *q, char *out);

/* Envelope sender for the From_ line from raw (LF) header bytes: the first
 * Return-Path header's value, unfolded, angle brackets removed, every byte
 * outside 0x21-0x7E replaced by '-'; empty -> "MAILER-DAEMON".  At most
 * cap - 1 bytes (cap >= 16). */
void ms_mbox_sender(const char *hdr, size_t n, char *out, size_t cap);

/* "Mon Jan  1 00:00:00 2024" in UTC, locale-independent (out >= 32). */
void ms_mbox_date(int64_t t, char *out, size_t cap);

#endif
