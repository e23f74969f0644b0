/*
 * buf.h: growable byte buffers with an owner and a hard limit.
 *
 * s is never NULL after ms_buf_init and always NUL-terminated; max bounds
 * len so a hostile peer cannot make us allocate without limit.  One owner
 * per buffer; ms_buf_detach hands the bytes over and re-initialises.
 */
#ifndef MS_BUF_H
#define MS_BUF_H

#include <stddef.h>

#include "err.h"

struct ms_buf {
	char *s;     /* owned; never NULL after init; NUL-terminated */
	size_t len;  /* bytes used, excluding the terminating NUL */
	size_t cap;  /* bytes allocated, including room for the NUL */
	size_t max;  /* len may never exceed this (0 = SIZE_MAX/2) */
};

void ms_buf_init(struct ms_buf *b, size_t max);
/* Free the bytes; the buffer is left initialised and empty. */
void ms_buf_free(struct ms_buf *b);
/* Wipe with explicit_bzero, then free (for secrets). */
void ms_buf_wipe(struct ms_buf *b);
void ms_buf_reset(struct ms_buf *b);
/* Make room for n more bytes. MS_EPROTO when max would be exceeded,
 * MS_EINTERNAL when out of memory. */
int ms_buf_grow(struct ms_buf *b, size_t n, struct ms_err *e);
int ms_buf_add(struct ms_buf *b, const void *p, size_t n, struct ms_err *e);
int ms_buf_adds(struct ms_buf *b, const char *s, struct ms_err *e);
int ms_buf_addc(struct ms_buf *b, char c, struct ms_err *e);
int ms_buf_addf(struct ms_buf *b, struct ms_err *e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Drop the first n bytes (n <= len). */
void ms_buf_consume(struct ms_buf *b, size_t n);
/* Hand the bytes to the caller (free() them); b is re-initialised. */
char *ms_buf_detach(struct ms_buf *b, size_t *len);

#endif
