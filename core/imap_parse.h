/*
 * imap_parse.h: a pure, streaming IMAP response tokenizer (no I/O).
 *
 * Pull model: the caller hands in whatever bytes it has; the parser returns
 * one token at a time and says how many input bytes it used.  Tokens that
 * span input pieces are accumulated in a bounded internal buffer; literal
 * bytes are never buffered: MS_IMAP_T_LITDATA points straight into the
 * caller's input, so a message body goes from the receive buffer to its
 * sink without a copy.  Results are identical however the input is split.
 *
 *	while ((r = ms_imap_parse_next(p, in, len, &used, &t, e)) > 0) {
 *		in += used; len -= used; ... use t ...
 *	}
 *	(r == 0: all of in consumed, feed more; r < 0: MS_EPROTO)
 *
 * A response is T_START, then tokens, then T_END.  Status responses
 * (tagged, "* OK/NO/BAD/BYE/PREAUTH") give T_START, T_ATOM (the status),
 * an optional T_CODE (the raw text between [ and ]), T_TEXT, T_END;
 * "+" continuations give T_START, T_TEXT, T_END.  Everything else is
 * tokenized: atoms (BODY[...]<n> is one atom), numbers, quoted strings
 * (unescaped), NIL, ( ) with a depth cap, literals {n} / {n+}.
 */
#ifndef MS_IMAP_PARSE_H
#define MS_IMAP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

enum ms_imap_tok_type {
	MS_IMAP_T_START = 1, /* kind set; s = tag ("*", "+" or the tag) */
	MS_IMAP_T_ATOM,      /* s, n */
	MS_IMAP_T_NUMBER,    /* num; s = the digits */
	MS_IMAP_T_QUOTED,    /* s, n: unescaped contents (may be empty) */
	MS_IMAP_T_NIL,
	MS_IMAP_T_LPAREN,    /* depth: after the paren */
	MS_IMAP_T_RPAREN,    /* depth: after the paren */
	MS_IMAP_T_LITERAL,   /* num: announced length; data follows */
	MS_IMAP_T_LITDATA,   /* s, n: a piece of literal bytes (in input) */
	MS_IMAP_T_LITEND,    /* all num bytes of the literal were given */
	MS_IMAP_T_CODE,      /* s, n: response code without [ ] */
	MS_IMAP_T_TEXT,      /* s, n: human-readable rest of the line */
	MS_IMAP_T_END,       /* CRLF that ends the response */
};

enum ms_imap_kind {
	MS_IMAP_TAGGED = 1,
	MS_IMAP_UNTAGGED,
	MS_IMAP_CONTINUE,
};

struct ms_imap_tok {
	int type;        /* enum ms_imap_tok_type */
	int kind;        /* enum ms_imap_kind of the current response */
	const char *s;   /* NUL-terminated except for LITDATA; valid until the
			  * next call (LITDATA: as long as the input is) */
	size_t n;
	uint64_t num;
	unsigned depth;  /* paren depth after this token */
};

#define MS_IMAP_MAX_LINE_DEFAULT (64u * 1024)
#define MS_IMAP_MAX_TOKEN_DEFAULT (64u * 1024)
#define MS_IMAP_MAX_DEPTH_DEFAULT 32u
#define MS_IMAP_MAX_LITERAL_DEFAULT ((uint64_t)1 << 34) /* 16 GiB */
#define MS_IMAP_EXCERPT_MAX 1024

struct ms_imap_parser {
	/* Limits: set after init; may be changed between responses. */
	size_t max_line;      /* non-literal bytes of one response */
	size_t max_token;     /* bytes of one token (atom, quoted, text) */
	unsigned max_depth;   /* parenthesis nesting */
	uint64_t max_literal; /* announced literal size */
	size_t excerpt_max;   /* bytes kept for traces/errors (<= _MAX) */

	/* Private. */
	int st, kind, sub, emit_end;
	unsigned depth;
	size_t line_bytes;
	uint64_t lit_left, lit_len;
	int first;            /* 1: first token of untagged, 2: tagged */
	int fresh;            /* next byte starts a new excerpt */
	struct ms_buf tok;
	char ex[MS_IMAP_EXCERPT_MAX + 1];
	size_t ex_len;
};

void ms_imap_parse_init(struct ms_imap_parser *p);
void ms_imap_parse_free(struct ms_imap_parser *p);
/* Forget any partial response (e.g. after an error, for a fresh stream). */
void ms_imap_parse_reset(struct ms_imap_parser *p);

/* Next token from in[0..len).  Returns 1 with *t filled, 0 when all of in
 * was used and more input is needed, or MS_EPROTO (e filled, quoting a
 * sanitized excerpt) / MS_EINTERNAL.  *used: bytes of in consumed (also on
 * 0).  After an error the parser must be reset before reuse. */
int ms_imap_parse_next(struct ms_imap_parser *p, const char *in, size_t len,
		       size_t *used, struct ms_imap_tok *t, struct ms_err *e);

/* The non-literal text of the current/last response so far (literal bytes
 * left out, CRLF dropped), sanitized, at most excerpt_max bytes: for
 * traces ("S: ...") and error messages.  Always NUL-terminated. */
const char *ms_imap_parse_excerpt(const struct ms_imap_parser *p);


#endif
