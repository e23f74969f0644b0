/*
 * mbox_quote.c: CRLF -> LF, mboxrd quoting and the From_ line (pure code).
 *
 * mboxrd (qmail mbox(5)) is the only mbox variant that round-trips every
 * message: a reader strips one '>' from each ^>+From  line, so the writer
 * adds one to each ^>*From  line.  Content-Length is not trusted by mboxrd
 * readers, so incoming headers are stored unchanged.  Each function keeps
 * only a few bytes of state so chunk boundaries do not matter.
 */
#include "mbox_quote.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

size_t ms_mbox_crlf_feed(struct ms_mbox_crlf *c, const char *in, size_t n,
			 char *out)
{
	const char *p = in, *end = in + n, *r;
	char *o = out;

	if (n && c->cr) {
		c->cr = 0;
		if (*p == '\n') {
			*o++ = '\n';
			p++;
		} else {
			*o++ = '\r'; /* a lone CR; *p is seen below */
		}
	}
	/* Copy the spans between CRs whole; only a CR needs a look ahead. */
	while (p < end) {
		if (!(r = memchr(p, '\r', (size_t)(end - p)))) {
			memcpy(o, p, (size_t)(end - p));
			o += end - p;
			break;
		}
		memcpy(o, p, (size_t)(r - p));
		o += r - p;
		if (r + 1 == end) {
			c->cr = 1; /* maybe half a CRLF: wait for more */
			break;
		}
		if (r[1] == '\n') {
			*o++ = '\n';
			p = r + 2;
		} else {
			*o++ = '\r'; /* a lone CR is kept */
			p = r + 1;
		}
	}
	return (size_t)(o - out);
}

size_t ms_mbox_crlf_flush(struct ms_mbox_crlf *c, char *out)
{
	if (!c->cr)
		return 0;
	c->cr = 0;
	out[0] = '\r';
	return 1;
}

static const char from_[] = "From ";

void ms_mbox_quote_init(struct ms_mbox_quote *q)
{
	q->mid = 0;
	q->k = 0;
}

size_t ms_mbox_quote_feed(struct ms_mbox_quote *q, const char *in, size_t n,
			  char *out)
{
	const char *p = in, *end = in + n, *nl;
	char *o = out;
	char c;

	while (p < end) {
		if (q->mid) {
			/* Inside a line: copy through its LF in one go. */
			if (!(nl = memchr(p, '\n', (size_t)(end - p)))) {
				memcpy(o, p, (size_t)(end - p));
				o += end - p;
				break;
			}
			memcpy(o, p, (size_t)(nl + 1 - p));
			o += nl + 1 - p;
			p = nl + 1;
			q->mid = 0;
			continue;
		}
		/* Line start: a byte at a time through ^>*From  only. */
		c = *p++;
		if (q->k == 0 && c == '>') {
			*o++ = c; /* the run; our '>' goes at its end */
			continue;
		}
		if (c == from_[q->k]) {
			if (++q->k < 5)
				continue;
			*o++ = '>';
			memcpy(o, from_, 5);
			o += 5;
			q->k = 0;
			q->mid = 1;
			continue;
		}
		/* Not a From_ line: release what was held. */
		memcpy(o, from_, (size_t)q->k);
		o += q->k;
		q->k = 0;
		*o++ = c;
		q->mid = c != '\n';
	}
	return (size_t)(o - out);
}

size_t ms_mbox_quote_flush(struct ms_mbox_quote *q, char *out)
{
	size_t k = (size_t)q->k;

	memcpy(out, from_, k);
	ms_mbox_quote_init(q);
	return k;
}

static int is_field(const char *p, const char *end, const char *name)
{
	size_t n = strlen(name), i;

	if ((size_t)(end - p) < n)
		return 0;
	for (i = 0; i < n; i++) {
		char a = p[i], b = name[i];

		if (a >= 'A' && a <= 'Z')
			a = (char)(a - 'A' + 'a');
		if (b >= 'A' && b <= 'Z')
			b = (char)(b - 'A' + 'a');
		if (a != b)
			return 0;
	}
	return 1;
}

/* Start and end of the first Return-Path value (folded lines included). */
static int find_return_path(const char *p, const char *end, const char **vs,
			    const char **ve)
{
	const char *nl;

	while (p < end && *p != '\n') {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end;
		if (is_field(p, nl, "return-path:")) {
			*vs = p + 12;
			/* continuation lines start with SP or HTAB */
			while (nl + 1 < end &&
			       (nl[1] == ' ' || nl[1] == '\t')) {
				const char *q = memchr(nl + 1, '\n',
						       (size_t)(end - nl - 1));

				nl = q ? q : end;
			}
			*ve = nl;
			return 1;
		}
		p = nl + 1;
	}
	return 0;
}

void ms_mbox_sender(const char *hdr, size_t n, char *out, size_t cap)
{
	const char *vs, *ve, *p;
	size_t o = 0;

	if (find_return_path(hdr, hdr + n, &vs, &ve)) {
		while (vs < ve && (*vs == ' ' || *vs == '\t'))
			vs++;
		while (ve > vs && (ve[-1] == ' ' || ve[-1] == '\t' ||
				   ve[-1] == '\r' || ve[-1] == '\n'))
			ve--;
		for (p = vs; p < ve && o + 1 < cap; p++) {
			unsigned char c = (unsigned char)*p;

			if (c == '<' || c == '>')
				continue;
			out[o++] = c < 0x21 || c > 0x7e ? '-' : (char)c;
		}
	}
	out[o] = '\0';
	if (o == 0)
		snprintf(out, cap, "MAILER-DAEMON");
}

void ms_mbox_date(int64_t t, char *out, size_t cap)
{
	static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu",
					  "Fri", "Sat" };
	static const char mons[12][4] = { "Jan", "Feb", "Mar", "Apr", "May",
					  "Jun", "Jul", "Aug", "Sep", "Oct",
					  "Nov", "Dec" };
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm)) {
		tt = 0;
		gmtime_r(&tt, &tm);
	}
	snprintf(out, cap, "%s %s %2d %02d:%02d:%02d %d", days[tm.tm_wday],
		 mons[tm.tm_mon], tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 tm.tm_year + 1900);
}
