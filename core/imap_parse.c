/*
 * imap_parse.c: the streaming IMAP response tokenizer (see imap_parse.h).
 *
 * A byte-at-a-time state machine for the non-literal parts (they are short
 * and every byte is counted against max_line), and a bulk pass-through for
 * literal bytes, which are handed out as pointers into the caller's input
 * and never copied.  Hostile input (absurd literal sizes, NUL, bare CR/LF,
 * endless lines, deep nesting) ends in MS_EPROTO with a short excerpt; the
 * parser never allocates more than max_token bytes.
 */
#include "imap_parse.h"
#include "text.h"

#include <stdio.h>
#include <string.h>

enum {
	ST_START = 0, /* reading the tag */
	ST_TOKENS,    /* between tokens */
	ST_ATOM,      /* sub: 1 inside [ ] */
	ST_QUOTED,    /* sub: 1 after a backslash */
	ST_LITHDR,    /* sub: 0 digits, 1 after +, 2 after }, 3 after CR */
	ST_LITDATA,
	ST_LITEND,    /* LITEND pending */
	ST_CR,        /* CR seen between tokens */
	ST_RESPTEXT,  /* after a status atom */
	ST_CODE,
	ST_CODEEND,
	ST_TEXT,
	ST_TEXTCR,
};

/* step() results */
#define EAT 0     /* byte consumed, no token yet */
#define TOK 1     /* byte consumed, token ready */
#define TOK_KEEP 2 /* token ready, byte NOT consumed */

void ms_imap_parse_init(struct ms_imap_parser *p)
{
	memset(p, 0, sizeof *p);
	p->max_line = MS_IMAP_MAX_LINE_DEFAULT;
	p->max_token = MS_IMAP_MAX_TOKEN_DEFAULT;
	p->max_depth = MS_IMAP_MAX_DEPTH_DEFAULT;
	p->max_literal = MS_IMAP_MAX_LITERAL_DEFAULT;
	p->excerpt_max = 200;
	ms_buf_init(&p->tok, p->max_token);
	p->fresh = 1;
}

void ms_imap_parse_free(struct ms_imap_parser *p)
{
	ms_buf_free(&p->tok);
}

void ms_imap_parse_reset(struct ms_imap_parser *p)
{
	p->st = ST_START;
	p->kind = p->sub = p->emit_end = p->first = 0;
	p->depth = 0;
	p->line_bytes = 0;
	p->lit_left = p->lit_len = 0;
	ms_buf_reset(&p->tok);
	p->fresh = 1;
}


const char *ms_imap_parse_excerpt(const struct ms_imap_parser *p)
{
	return p->ex;
}

static int fail(struct ms_imap_parser *p, struct ms_err *e, const char *what)
{
	char ex[96];

	ms_text_excerpt(ex, sizeof ex, p->ex,
			 p->ex_len > 60 ? 60 : p->ex_len);
	return ms_err_set(e, MS_EPROTO, "IMAP protocol error: %s near \"%s\"",
			  what, ex);
}

static void excerpt_add(struct ms_imap_parser *p, unsigned char c)
{
	size_t max = p->excerpt_max < MS_IMAP_EXCERPT_MAX ?
			     p->excerpt_max : MS_IMAP_EXCERPT_MAX;

	if (p->fresh) {
		p->ex_len = 0;
		p->fresh = 0;
	}
	if (c == '\r' || c == '\n' || p->ex_len >= max)
		return;
	p->ex[p->ex_len++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	p->ex[p->ex_len] = '\0';
}

static int tok_put(struct ms_imap_parser *p, char c, struct ms_err *e)
{
	struct ms_buf *b = &p->tok;

	if (b->len + 1 < b->cap && b->len < b->max) {
		b->s[b->len++] = c;
		b->s[b->len] = '\0';
		return 0;
	}
	if (b->len >= p->max_token)
		return fail(p, e, "token too long");
	return ms_buf_addc(b, c, e);
}

static void tok_begin(struct ms_imap_parser *p)
{
	ms_buf_reset(&p->tok);
	p->tok.max = p->max_token;
}

static int is_atom_char(unsigned char c)
{
	return c > 0x20 && c != 0x7f && c != '(' && c != ')' && c != '{' &&
	       c != '"';
}

static int is_status(const char *s)
{
	return !strcasecmp(s, "OK") || !strcasecmp(s, "NO") ||
	       !strcasecmp(s, "BAD") || !strcasecmp(s, "BYE") ||
	       !strcasecmp(s, "PREAUTH");
}

static void set_tok(struct ms_imap_parser *p, struct ms_imap_tok *t,
		    int type)
{
	t->type = type;
	t->s = p->tok.s;
	t->n = p->tok.len;
}

/* A finished atom: NIL, a number, a status word, or a plain atom. */
static int finish_atom(struct ms_imap_parser *p, struct ms_imap_tok *t)
{
	const char *s = p->tok.s;
	size_t i, n = p->tok.len;
	uint64_t v = 0;
	int digits = n > 0 && n <= 20;

	for (i = 0; digits && i < n; i++) {
		unsigned d = (unsigned)(s[i] - '0');
		if (d > 9 || v > (UINT64_MAX - d) / 10)
			digits = 0;
		else
			v = v * 10 + d;
	}
	set_tok(p, t, MS_IMAP_T_ATOM);
	if (digits) {
		t->type = MS_IMAP_T_NUMBER;
		t->num = v;
	} else if (n == 3 && !strcasecmp(s, "NIL")) {
		t->type = MS_IMAP_T_NIL;
	}
	if (p->first == 2 || (p->first == 1 && is_status(s)))
		p->st = ST_RESPTEXT;
	else
		p->st = ST_TOKENS;
	p->first = 0;
	p->sub = 0;
	return TOK_KEEP;
}

static int step_start(struct ms_imap_parser *p, unsigned char c,
		      struct ms_imap_tok *t, struct ms_err *e)
{
	const char *tag = p->tok.s;

	if (c == ' ' || (c == '\r' && !strcmp(tag, "+"))) {
		if (!p->tok.len)
			return fail(p, e, "response without a tag");
		if (!strcmp(tag, "*")) {
			p->kind = MS_IMAP_UNTAGGED;
			p->first = 1;
			p->st = ST_TOKENS;
		} else if (!strcmp(tag, "+")) {
			p->kind = MS_IMAP_CONTINUE;
			p->st = ST_RESPTEXT;
			p->sub = 1; /* the SP is eaten: text or [code] next */
		} else {
			p->kind = MS_IMAP_TAGGED;
			p->first = 2;
			p->st = ST_TOKENS;
		}
		set_tok(p, t, MS_IMAP_T_START);
		t->kind = p->kind;
		return c == '\r' ? TOK_KEEP : TOK;
	}
	if (!is_atom_char(c) || c == '[' || c == ']')
		return fail(p, e, "bad character in tag");
	return tok_put(p, (char)c, e);
}

static int step_tokens(struct ms_imap_parser *p, unsigned char c,
		       struct ms_imap_tok *t, struct ms_err *e)
{
	if (p->first == 2 && c != ' ' && (!is_atom_char(c) || c == '['))
		return fail(p, e, "tagged response without status");
	switch (c) {
	case ' ':
		return EAT;
	case '\r':
		p->st = ST_CR;
		return EAT;
	case '(':
		if (p->depth >= p->max_depth)
			return fail(p, e, "lists nested too deep");
		p->depth++;
		p->first = 0;
		t->type = MS_IMAP_T_LPAREN;
		return TOK;
	case ')':
		if (!p->depth)
			return fail(p, e, "unbalanced ')'");
		p->depth--;
		t->type = MS_IMAP_T_RPAREN;
		return TOK;
	case '"':
		tok_begin(p);
		p->first = 0;
		p->st = ST_QUOTED;
		p->sub = 0;
		return EAT;
	case '{':
		p->first = 0;
		p->st = ST_LITHDR;
		p->sub = 0;
		p->lit_len = 0;
		tok_begin(p);
		return EAT;
	}
	if (!is_atom_char(c))
		return fail(p, e, c == '\n' ? "bare LF" : "control character");
	tok_begin(p);
	p->st = ST_ATOM;
	p->sub = c == '[';
	return tok_put(p, (char)c, e);
}

static int step_atom(struct ms_imap_parser *p, unsigned char c,
		     struct ms_imap_tok *t, struct ms_err *e)
{
	if (p->sub) { /* inside [...]: section specs contain SP and parens */
		if (c < 0x20 || c == 0x7f)
			return fail(p, e, "unterminated '['");
		if (c == ']')
			p->sub = 0;
		return tok_put(p, (char)c, e);
	}
	if (!is_atom_char(c))
		return finish_atom(p, t);
	if (c == '[')
		p->sub = 1;
	return tok_put(p, (char)c, e);
}

static int step_quoted(struct ms_imap_parser *p, unsigned char c,
		       struct ms_imap_tok *t, struct ms_err *e)
{
	if (c == '\0' || c == '\r' || c == '\n')
		return fail(p, e, "unterminated quoted string");
	if (p->sub) {
		if (c != '\\' && c != '"')
			return fail(p, e, "bad escape in quoted string");
		p->sub = 0;
		return tok_put(p, (char)c, e);
	}
	if (c == '\\') {
		p->sub = 1;
		return EAT;
	}
	if (c == '"') {
		set_tok(p, t, MS_IMAP_T_QUOTED);
		p->st = ST_TOKENS;
		return TOK;
	}
	return tok_put(p, (char)c, e);
}

static int step_lithdr(struct ms_imap_parser *p, unsigned char c,
		       struct ms_imap_tok *t, struct ms_err *e)
{
	unsigned d = (unsigned)c - '0';

	if (p->sub == 0 && d <= 9) {
		if (p->tok.len >= 20 || p->lit_len > (UINT64_MAX - d) / 10)
			return fail(p, e, "literal size overflows");
		p->lit_len = p->lit_len * 10 + d;
		return tok_put(p, (char)c, e);
	}
	if (p->sub == 0 && c == '+' && p->tok.len) {
		p->sub = 1;
		return EAT;
	}
	if (p->sub <= 1 && c == '}' && p->tok.len) {
		p->sub = 2;
		return EAT;
	}
	if (p->sub == 2 && c == '\r') {
		p->sub = 3;
		return EAT;
	}
	if (p->sub != 3 || c != '\n')
		return fail(p, e, "malformed literal");
	if (p->lit_len > p->max_literal)
		return fail(p, e, "literal larger than the limit");
	set_tok(p, t, MS_IMAP_T_LITERAL);
	t->num = p->lit_len;
	p->lit_left = p->lit_len;
	p->st = p->lit_len ? ST_LITDATA : ST_LITEND;
	return TOK;
}

static int step_text(struct ms_imap_parser *p, unsigned char c,
		     struct ms_imap_tok *t, struct ms_err *e)
{
	switch (p->st) {
	case ST_RESPTEXT:
		if (c == ' ' && !p->sub) {
			p->sub = 1;
			return EAT;
		}
		if (c == '[' && p->sub) {
			tok_begin(p);
			p->st = ST_CODE;
			return EAT;
		}
		tok_begin(p);
		p->st = ST_TEXT;
		return TOK_KEEP + 1; /* re-dispatch without a token */
	case ST_CODE:
		if (c == ']') {
			set_tok(p, t, MS_IMAP_T_CODE);
			p->st = ST_CODEEND;
			return TOK;
		}
		if (c < 0x20 && c != '\t')
			return fail(p, e, "unterminated response code");
		return tok_put(p, (char)c, e);
	case ST_CODEEND:
		tok_begin(p);
		p->st = ST_TEXT;
		return c == ' ' ? EAT : TOK_KEEP + 1;
	case ST_TEXT:
		if (c == '\r') {
			p->st = ST_TEXTCR;
			return EAT;
		}
		if (c == '\0' || c == '\n')
			return fail(p, e, c ? "bare LF" : "NUL in response");
		return tok_put(p, (char)c, e);
	default: /* ST_TEXTCR */
		if (c != '\n')
			return fail(p, e, "bare CR");
		set_tok(p, t, MS_IMAP_T_TEXT);
		p->emit_end = 1;
		return TOK;
	}
}

static int step(struct ms_imap_parser *p, unsigned char c,
		struct ms_imap_tok *t, struct ms_err *e)
{
	switch (p->st) {
	case ST_START:
		return step_start(p, c, t, e);
	case ST_TOKENS:
		return step_tokens(p, c, t, e);
	case ST_ATOM:
		return step_atom(p, c, t, e);
	case ST_QUOTED:
		return step_quoted(p, c, t, e);
	case ST_LITHDR:
		return step_lithdr(p, c, t, e);
	case ST_CR:
		if (c != '\n')
			return fail(p, e, "bare CR");
		if (p->depth)
			return fail(p, e, "unterminated list");
		if (p->first == 2)
			return fail(p, e, "tagged response without status");
		p->emit_end = 1;
		return EAT;
	default:
		return step_text(p, c, t, e);
	}
}

/* Tokens that need no input: END, LITEND, literal pieces. */
static int pending(struct ms_imap_parser *p, const char *in, size_t len,
		   size_t *used, struct ms_imap_tok *t)
{
	if (p->emit_end) {
		p->emit_end = 0;
		t->type = MS_IMAP_T_END;
		p->st = ST_START;
		p->depth = 0;
		p->line_bytes = 0;
		p->first = 0;
		p->fresh = 1;
		tok_begin(p);
		return 1;
	}
	if (p->st == ST_LITEND) {
		t->type = MS_IMAP_T_LITEND;
		t->num = p->lit_len;
		p->st = ST_TOKENS;
		return 1;
	}
	if (p->st == ST_LITDATA) {
		if (!len)
			return 0;
		t->type = MS_IMAP_T_LITDATA;
		t->s = in;
		t->n = p->lit_left < len ? (size_t)p->lit_left : len;
		p->lit_left -= t->n;
		*used = t->n;
		if (!p->lit_left)
			p->st = ST_LITEND;
		return 1;
	}
	return -1;
}

int ms_imap_parse_next(struct ms_imap_parser *p, const char *in, size_t len,
		       size_t *used, struct ms_imap_tok *t, struct ms_err *e)
{
	size_t i = 0;
	int r;

	memset(t, 0, sizeof *t);
	t->s = "";
	*used = 0;
	r = pending(p, in, len, used, t);
	if (r >= 0)
		goto out;
	r = 0;
	while (i < len) {
		unsigned char c = (unsigned char)in[i];

		r = step(p, c, t, e);
		if (r < 0)
			break;
		if (r == TOK_KEEP + 1)
			continue; /* state changed, look at c again */
		if (r != TOK_KEEP) {
			i++;
			excerpt_add(p, c);
			if (++p->line_bytes > p->max_line) {
				r = fail(p, e, "response line too long");
				break;
			}
		}
		if (r == EAT && p->emit_end) /* CRLF: END needs no more */
			r = pending(p, in, 0, used, t);
		if (r != EAT) {
			r = 1;
			break;
		}
	}
	*used = i;
	if (r == TOK_KEEP + 1)
		r = 0;
out:
	t->kind = p->kind;
	t->depth = p->depth;
	return r;
}
