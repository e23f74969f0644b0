/*
 * pop3_parse.c: the pure parts of POP3 (no I/O; fuzzed): the multi-line
 * reader and the STAT/UIDL/LIST line parsers.
 *
 * The multi-line reader is a state machine over the position in the
 * current line, so a terminator or a stuffed dot split across reads (down
 * to one byte per read) is handled the same way as one arriving whole, and
 * body lines of any length stream through without a line buffer.  Only
 * the first bytes of a line go through it one at a time; the rest of the
 * line is found with memchr and copied whole (this is the hot path).  Server strings are validated here before they can reach a
 * command, a log line or a file name (fetchmail CVE-2005-2335).
 */
#include "pop3_parse.h"

#include <string.h>

enum { ML_BOL = 0, ML_MID, ML_DOT, ML_DOTCR, ML_DONE };

void ms_pop3_ml_init(struct ms_pop3_ml *m)
{
	m->st = ML_BOL;
}

int ms_pop3_ml_done(const struct ms_pop3_ml *m)
{
	return m->st == ML_DONE;
}

size_t ms_pop3_ml_feed(struct ms_pop3_ml *m, const char *in, size_t n,
		       char *out, size_t *outn)
{
	const char *p = in, *end = in + n, *nl;
	char *o = out;
	char c;

	while (p < end && m->st != ML_DONE) {
		if (m->st == ML_MID) {
			/* Inside a line: copy through its LF in one go. */
			if (!(nl = memchr(p, '\n', (size_t)(end - p)))) {
				memcpy(o, p, (size_t)(end - p));
				o += end - p;
				p = end;
				break;
			}
			memcpy(o, p, (size_t)(nl + 1 - p));
			o += nl + 1 - p;
			p = nl + 1;
			m->st = ML_BOL;
			continue;
		}
		/* Line start: a byte at a time until the line is known. */
		c = *p++;
		switch (m->st) {
		case ML_BOL:
			if (c == '.') {
				m->st = ML_DOT; /* held back: stuffing or end */
				break;
			}
			*o++ = c;
			m->st = c == '\n' ? ML_BOL : ML_MID;
			break;
		case ML_DOT:
			if (c == '\r') {
				m->st = ML_DOTCR;
			} else if (c == '\n') {
				m->st = ML_DONE; /* ".\n": bare-LF terminator */
			} else if (c == '.') {
				/* RFC 1939 stuffing: "..x" -> ".x" */
				*o++ = c;
				m->st = ML_MID;
			} else {
				/* ".x" was never stuffed (a compliant server
				 * sends "..x"; Dovecot 2.3 does not stuff a
				 * message's first line): keep the dot rather
				 * than lose a byte. */
				*o++ = '.';
				*o++ = c;
				m->st = ML_MID;
			}
			break;
		case ML_DOTCR:
			if (c == '\n') {
				m->st = ML_DONE;
				break;
			}
			/* ".\r" then more: an unstuffed dot and a lone CR;
			 * keep both, as above. */
			*o++ = '.';
			*o++ = '\r';
			*o++ = c;
			m->st = ML_MID;
			break;
		}
	}
	*outn = (size_t)(o - out);
	return (size_t)(p - in);
}

static int parse_u64(const char **pp, const char *end, uint64_t max,
		     uint64_t *v)
{
	const char *p = *pp;
	uint64_t x = 0;

	if (p >= end || *p < '0' || *p > '9')
		return -1;
	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		if (x > (max - (uint64_t)(*p - '0')) / 10)
			return -1;
		x = x * 10 + (uint64_t)(*p - '0');
	}
	*pp = p;
	*v = x;
	return 0;
}

static const char *skip_sp(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

/* Trailing blanks are tolerated everywhere (some servers pad). */
static const char *trim_end(const char *p, const char *end)
{
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	return end;
}

static int parse_num(const char **pp, const char *end, uint32_t *num,
		     const char **why)
{
	uint64_t v;

	if (parse_u64(pp, end, UINT32_MAX, &v) < 0 || v == 0) {
		*why = "bad message number";
		return -1;
	}
	*num = (uint32_t)v;
	return 0;
}

int ms_pop3_parse_stat(const char *line, size_t len, uint32_t *count,
		       uint64_t *size, const char **why)
{
	const char *p = line, *end = trim_end(line, line + len);
	uint64_t c;

	if (len < 3 || memcmp(line, "+OK", 3) != 0) {
		*why = "not +OK";
		return -1;
	}
	p = skip_sp(p + 3, end);
	if (parse_u64(&p, end, UINT64_MAX, &c) < 0) {
		*why = "no message count";
		return -1;
	}
	if (c > MS_POP3_MAX_COUNT) {
		*why = "message count over 1000000";
		return -1;
	}
	if (p == end || (*p != ' ' && *p != '\t')) {
		*why = "no maildrop size";
		return -1;
	}
	p = skip_sp(p, end);
	if (parse_u64(&p, end, UINT64_MAX, size) < 0) {
		*why = "bad maildrop size";
		return -1;
	}
	*count = (uint32_t)c;
	return 0;
}

int ms_pop3_parse_uidl(const char *line, size_t len, uint32_t *num,
		       char uidl[MS_UIDL_MAX + 1], const char **why)
{
	const char *p = line, *end = trim_end(line, line + len), *u;

	if (parse_num(&p, end, num, why) < 0)
		return -1;
	if (p == end || *p != ' ') {
		*why = "no unique-id";
		return -1;
	}
	u = p = skip_sp(p, end);
	if (u == end) {
		*why = "empty unique-id";
		return -1;
	}
	if ((size_t)(end - u) > MS_UIDL_MAX) {
		*why = "unique-id longer than 70 characters";
		return -1;
	}
	for (; p < end; p++) {
		if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e) {
			*why = "unique-id has a byte outside 0x21-0x7E";
			return -1;
		}
	}
	memcpy(uidl, u, (size_t)(end - u));
	uidl[end - u] = '\0';
	return 0;
}

int ms_pop3_parse_list(const char *line, size_t len, uint32_t *num,
		       uint64_t *size, const char **why)
{
	const char *p = line, *end = trim_end(line, line + len);

	if (parse_num(&p, end, num, why) < 0)
		return -1;
	if (p == end || *p != ' ') {
		*why = "no size";
		return -1;
	}
	p = skip_sp(p, end);
	if (parse_u64(&p, end, UINT64_MAX, size) < 0) {
		*why = "bad size";
		return -1;
	}
	if (p != end && *p != ' ' && *p != '\t') {
		*why = "bad size";
		return -1;
	}
	return 0;
}
