/*
 * pop3_parse.h: the pure (no I/O) parts of the POP3 engine, for unit tests
 * and fuzzing: the multi-line response state machine (RFC 1939 section 3:
 * dot-unstuffing and the terminating "." line) and the line parsers for
 * STAT, UIDL and LIST.  Implemented in pop3.c.
 */
#ifndef MS_POP3_PARSE_H
#define MS_POP3_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "source.h"

#define MS_POP3_MAX_COUNT 1000000u /* messages in a maildrop (mpop) */

/* Multi-line reader state: only the position in the current line. */
struct ms_pop3_ml {
	int st; /* internal; 0 after ms_pop3_ml_init */
};

void ms_pop3_ml_init(struct ms_pop3_ml *m);
/* Feed n bytes that follow the "+OK" status line.  Writes the unstuffed
 * bytes to out (room for n + 2 bytes) and their count to *outn.  Returns
 * the number of input bytes used: n, or fewer once the terminating "."
 * line has been seen (then ms_pop3_ml_done() is true and the remaining
 * input belongs to the next response).  A line starting with "." loses
 * exactly that first dot; CRLF and bare LF both end a line; every other
 * byte passes through unchanged, so the output is the exact message
 * including the CRLF before the terminator. */
size_t ms_pop3_ml_feed(struct ms_pop3_ml *m, const char *in, size_t n,
		       char *out, size_t *outn);
int ms_pop3_ml_done(const struct ms_pop3_ml *m);

/* Parsers of one line without its CRLF.  Return 0, or -1 with a short
 * static reason in *why. */
int ms_pop3_parse_stat(const char *line, size_t len, uint32_t *count,
		       uint64_t *size, const char **why);
/* "N UIDL": uidl 1-70 chars of 0x21-0x7E (copied NUL-terminated). */
int ms_pop3_parse_uidl(const char *line, size_t len, uint32_t *num,
		       char uidl[MS_UIDL_MAX + 1], const char **why);
/* "N SIZE [more]" */
int ms_pop3_parse_list(const char *line, size_t len, uint32_t *num,
		       uint64_t *size, const char **why);

#endif
