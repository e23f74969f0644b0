/*
 * test_imap_parse.c: table-driven tests of the streaming IMAP tokenizer:
 * expected token streams, identical results for every way of splitting
 * the input, and hostile inputs (FAULTS.md F15) ending in MS_EPROTO.
 */
#include "imap_parse.h"

#include <stdlib.h>

#include "t.h"

struct out {
	char s[8192];
	size_t len;
	int in_data;
};

static void put(struct out *o, const char *p, size_t n)
{
	if (o->len + n >= sizeof o->s)
		n = sizeof o->s - o->len - 1;
	memcpy(o->s + o->len, p, n);
	o->len += n;
	o->s[o->len] = '\0';
}

static void puts_(struct out *o, const char *p)
{
	put(o, p, strlen(p));
}

/* Serialize one token; consecutive LITDATA pieces merge into one D<...>. */
static void emit(struct out *o, const struct ms_imap_tok *t)
{
	char num[64];

	if (t->type != MS_IMAP_T_LITDATA && o->in_data) {
		puts_(o, ">");
		o->in_data = 0;
	}
	switch (t->type) {
	case MS_IMAP_T_START:
		snprintf(num, sizeof num, "S%d:", t->kind);
		puts_(o, num);
		put(o, t->s, t->n);
		break;
	case MS_IMAP_T_ATOM: puts_(o, " A:"); put(o, t->s, t->n); break;
	case MS_IMAP_T_NUMBER:
		snprintf(num, sizeof num, " N:%" PRIu64, t->num);
		puts_(o, num);
		break;
	case MS_IMAP_T_QUOTED: puts_(o, " Q:"); put(o, t->s, t->n); break;
	case MS_IMAP_T_NIL: puts_(o, " NIL"); break;
	case MS_IMAP_T_LPAREN: puts_(o, " ("); break;
	case MS_IMAP_T_RPAREN: puts_(o, " )"); break;
	case MS_IMAP_T_LITERAL:
		snprintf(num, sizeof num, " L%" PRIu64, t->num);
		puts_(o, num);
		break;
	case MS_IMAP_T_LITDATA:
		if (!o->in_data)
			puts_(o, " D<");
		o->in_data = 1;
		put(o, t->s, t->n);
		break;
	case MS_IMAP_T_LITEND: puts_(o, " LE"); break;
	case MS_IMAP_T_CODE: puts_(o, " C:"); put(o, t->s, t->n); break;
	case MS_IMAP_T_TEXT: puts_(o, " T:"); put(o, t->s, t->n); break;
	case MS_IMAP_T_END: puts_(o, " $\n"); break;
	default: puts_(o, " ???"); break;
	}
}

/* Feed in, cut at the given points (ascending, < len), collect tokens. */
static int run(const char *in, size_t len, const size_t *cuts, size_t ncut,
	       struct out *o, struct ms_err *e)
{
	struct ms_imap_parser p;
	struct ms_imap_tok t;
	size_t start = 0, k, used;
	int r = 0;

	memset(o, 0, sizeof *o);
	ms_imap_parse_init(&p);
	p.max_literal = 1000;
	for (k = 0; k <= ncut && r >= 0; k++) {
		size_t end = k < ncut ? cuts[k] : len, pos = start;
		while ((r = ms_imap_parse_next(&p, in + pos, end - pos, &used,
					       &t, e)) > 0) {
			pos += used;
			emit(o, &t);
		}
		if (r == 0 && pos + used != end) {
			r = -999; /* must consume everything when it says 0 */
		}
		start = end;
	}
	if (o->in_data)
		puts_(o, ">");
	ms_imap_parse_free(&p);
	return r;
}

struct tcase {
	const char *name;
	const char *in;
	size_t len; /* 0: strlen */
	const char *want; /* token stream, or NULL when MS_EPROTO expected */
};

#define F15_NEST_DEPTH 40

static const struct tcase cases[] = {
	{ "tagged OK", "m1 OK done\r\n", 0, "S1:m1 A:OK T:done $\n" },
	{ "tagged NO with code", "m2 NO [UNAVAILABLE] try later\r\n", 0,
	  "S1:m2 A:NO C:UNAVAILABLE T:try later $\n" },
	{ "tagged BAD no text", "m3 BAD\r\n", 0, "S1:m3 A:BAD T: $\n" },
	{ "untagged OK code with list",
	  "* OK [PERMANENTFLAGS (\\Seen \\*)] Limited\r\n", 0,
	  "S2:* A:OK C:PERMANENTFLAGS (\\Seen \\*) T:Limited $\n" },
	{ "untagged UIDVALIDITY", "* OK [UIDVALIDITY 1700000000] UIDs\r\n",
	  0, "S2:* A:OK C:UIDVALIDITY 1700000000 T:UIDs $\n" },
	{ "BYE text with quotes", "* BYE don't \"go (\r\n", 0,
	  "S2:* A:BYE T:don't \"go ( $\n" },
	{ "continuation", "+ Ready\r\n", 0, "S3:+ T:Ready $\n" },
	{ "bare continuation", "+\r\n", 0, "S3:+ T: $\n" },
	{ "exists", "* 23 EXISTS\r\n", 0, "S2:* N:23 A:EXISTS $\n" },
	{ "capability", "* CAPABILITY IMAP4rev1 UIDPLUS LITERAL+\r\n", 0,
	  "S2:* A:CAPABILITY A:IMAP4rev1 A:UIDPLUS A:LITERAL+ $\n" },
	{ "list quoted", "* LIST (\\HasNoChildren) \"/\" \"a b\\\"c\"\r\n",
	  0, "S2:* A:LIST ( A:\\HasNoChildren ) Q:/ Q:a b\"c $\n" },
	{ "list literal NIL", "* LIST () NIL {5}\r\na\r\nbc\r\n", 0,
	  "S2:* A:LIST ( ) NIL L5 D<a\r\nbc> LE $\n" },
	{ "fetch odd order",
	  "* 5 FETCH (RFC822.SIZE 19189 BODY[] {12}\r\nm1 OK done\r\n"
	  " UID 12 FLAGS (\\Seen))\r\n", 0,
	  "S2:* N:5 A:FETCH ( A:RFC822.SIZE N:19189 A:BODY[] L12 "
	  "D<m1 OK done\r\n> LE A:UID N:12 A:FLAGS ( A:\\Seen ) ) $\n" },
	{ "fetch section with spaces",
	  "* 1 FETCH (BODY[HEADER.FIELDS (FROM TO)]<0> {0}\r\n)\r\n", 0,
	  "S2:* N:1 A:FETCH ( A:BODY[HEADER.FIELDS (FROM TO)]<0> L0 LE ) $\n" },
	{ "literal+ and 8-bit quoted", "* X {3+}\r\n\x01\r\n \"\xc3\xa9\"\r\n",
	  20, "S2:* A:X L3 D<\x01\r\n> LE Q:\xc3\xa9 $\n" },
	{ "empty quoted and internaldate",
	  "* 1 FETCH (INTERNALDATE \" 1-Jan-2020 10:00:00 +0100\" X \"\")\r\n",
	  0, "S2:* N:1 A:FETCH ( A:INTERNALDATE Q: 1-Jan-2020 10:00:00 +0100 "
	  "A:X Q: ) $\n" },
	{ "uint64 max", "* 18446744073709551615 X\r\n", 0,
	  "S2:* N:18446744073709551615 A:X $\n" },
	{ "number overflow is an atom", "* 18446744073709551616 X\r\n", 0,
	  "S2:* A:18446744073709551616 A:X $\n" },
	{ "esearch", "* ESEARCH (TAG \"m4\") UID ALL 1:5,7\r\n", 0,
	  "S2:* A:ESEARCH ( A:TAG Q:m4 ) A:UID A:ALL A:1:5,7 $\n" },
	{ "two responses", "* 1 EXPUNGE\r\nm9 OK x\r\n", 0,
	  "S2:* N:1 A:EXPUNGE $\nS1:m9 A:OK T:x $\n" },
	/* hostile (F15) */
	{ "literal -1", "* 1 FETCH (BODY[] {-1}\r\n", 0, NULL },
	{ "literal 2^64", "* 1 FETCH (BODY[] {18446744073709551616}\r\n", 0,
	  NULL },
	{ "literal 12a", "* 1 FETCH (BODY[] {12a}\r\nabc", 0, NULL },
	{ "literal empty", "* 1 FETCH (BODY[] {}\r\n", 0, NULL },
	{ "literal no CRLF", "* 1 FETCH (BODY[] {3}abc)\r\n", 0, NULL },
	{ "literal over cap", "* 1 FETCH (BODY[] {1001}\r\n", 0, NULL },
	{ "NUL in capability", "* CAPABILITY IMAP4rev1 \0X\r\n", 26, NULL },
	{ "NUL in text", "* OK a\0b\r\n", 10, NULL },
	{ "bare LF", "* 1 EXISTS\n", 0, NULL },
	{ "bare LF in text", "m1 OK done\n* 2 EXISTS\r\n", 0, NULL },
	{ "bare CR", "* 1 EXISTS\rX\r\n", 0, NULL },
	{ "unbalanced quote", "* LIST () \"/\" \"abc\r\n", 0, NULL },
	{ "bad escape", "* LIST () \"/\" \"a\\bc\"\r\n", 0, NULL },
	{ "unterminated list", "* LIST (\\Noselect \"/\" x\r\n", 0, NULL },
	{ "unbalanced close", "* 1 FETCH (UID 3))\r\n", 0, NULL },
	{ "tagged without status", "m1 (x)\r\n", 0, NULL },
	{ "tagged empty", "m1 \r\n", 0, NULL },
	{ "no tag", " OK\r\n", 0, NULL },
	{ "empty line", "\r\n", 0, NULL },
	{ "unterminated code", "* OK [UIDVALIDITY 3\r\n", 0, NULL },
	{ "unterminated section", "* 1 FETCH (BODY[HEADER\r\n)\r\n", 0,
	  NULL },
};

static int check_case(const struct tcase *c)
{
	size_t len = c->len ? c->len : strlen(c->in), i, cuts[4096];
	struct out whole, split;
	struct ms_err e;
	int r, ok = 1;
	char name[200];

	r = run(c->in, len, NULL, 0, &whole, &e);
	if (c->want) {
		snprintf(name, sizeof name, "%s: tokens", c->name);
		if (!T_OK(r == 0 && whole.len == strlen(c->want) &&
				  !memcmp(whole.s, c->want, whole.len),
			  name))
			printf("#   r=%d %s\n#   got  %s#   want %s", r,
			       r ? e.msg : "", whole.s, c->want);
	} else {
		snprintf(name, sizeof name, "%s: MS_EPROTO", c->name);
		if (!T_OK(r == MS_EPROTO, name))
			printf("#   r=%d got %s\n", r, whole.s);
		snprintf(name, sizeof name, "%s: message has excerpt",
			 c->name);
		T_OK(r != MS_EPROTO || strstr(e.msg, "near \""), name);
	}
	/* every single cut point, then every byte on its own */
	for (i = 1; i < len && ok; i++) {
		struct ms_err e2;
		cuts[0] = i;
		r = run(c->in, len, cuts, 1, &split, &e2);
		ok = c->want ? r == 0 && !strcmp(split.s, whole.s)
			     : r == MS_EPROTO;
	}
	for (i = 1; i < len && i <= 4096; i++)
		cuts[i - 1] = i;
	if (ok && len <= 4096) {
		r = run(c->in, len, cuts, len - 1, &split, &e);
		ok = c->want ? r == 0 && !strcmp(split.s, whole.s)
			     : r == MS_EPROTO;
	}
	snprintf(name, sizeof name, "%s: same result for every split",
		 c->name);
	T_OK(ok, name);
	return 0;
}

static void test_limits(void)
{
	struct ms_imap_parser p;
	struct ms_imap_tok t;
	struct ms_err e;
	size_t used, i, pos = 0;
	char buf[4096];
	int r = 0, n = 0;

	/* a list nested 100,000 deep: rejected at the depth cap */
	ms_imap_parse_init(&p);
	memset(buf, '(', sizeof buf);
	r = ms_imap_parse_next(&p, "* X ", 4, &used, &t, &e); /* START */
	r = ms_imap_parse_next(&p, "* X ", 4, &used, &t, &e); /* X */
	for (i = 0; i < 25 && r >= 0; i++) {
		pos = 0;
		while ((r = ms_imap_parse_next(&p, buf + pos, sizeof buf - pos,
					       &used, &t, &e)) > 0)
			pos += used, n++;
	}
	T_EQ_INT(r, MS_EPROTO, "deep nesting: MS_EPROTO");
	T_OK(n <= (int)MS_IMAP_MAX_DEPTH_DEFAULT + 5, "deep nesting: bounded");
	T_OK(strstr(e.msg, "nested") != NULL, "deep nesting: message");
	ms_imap_parse_free(&p);

	/* 1 MiB capability line: rejected by the line cap */
	ms_imap_parse_init(&p);
	memset(buf, 'A', sizeof buf);
	r = ms_imap_parse_next(&p, "* CAPABILITY ", 13, &used, &t, &e);
	n = 0;
	for (i = 0; i < 256 && r >= 0; i++) {
		pos = 0;
		while ((r = ms_imap_parse_next(&p, buf + pos, sizeof buf - pos,
					       &used, &t, &e)) > 0)
			pos += used;
		n++;
	}
	T_EQ_INT(r, MS_EPROTO, "1 MiB line: MS_EPROTO");
	T_OK(n <= 17, "1 MiB line: stopped at 64 KiB");
	ms_imap_parse_free(&p);

	/* endless text of spaces-separated atoms also hits the line cap */
	ms_imap_parse_init(&p);
	p.max_line = 100;
	memset(buf, ' ', 200);
	buf[0] = '*';
	buf[1] = ' ';
	buf[2] = 'X';
	pos = 0;
	while ((r = ms_imap_parse_next(&p, buf + pos, 200 - pos, &used, &t,
				       &e)) > 0)
		pos += used;
	T_EQ_INT(r, MS_EPROTO, "line cap counts separators");
	ms_imap_parse_free(&p);
}

static void test_literal_zero_copy(void)
{
	struct ms_imap_parser p;
	struct ms_imap_tok t;
	struct ms_err e;
	const char *in = "* 1 FETCH (BODY[] {6}\r\nabcdef)\r\n";
	size_t used, pos = 0;
	int r, ptr_ok = 0;

	ms_imap_parse_init(&p);
	while ((r = ms_imap_parse_next(&p, in + pos, strlen(in) - pos, &used,
				       &t, &e)) > 0) {
		if (t.type == MS_IMAP_T_LITDATA)
			ptr_ok = t.s == in + pos && t.n == 6;
		pos += used;
	}
	T_OK(ptr_ok, "literal data points into the input");
	T_EQ_STR(ms_imap_parse_excerpt(&p), "* 1 FETCH (BODY[] {6})",
		 "excerpt leaves out literal bytes");
	ms_imap_parse_free(&p);
}

int main(void)
{
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
		check_case(&cases[i]);
	test_limits();
	test_literal_zero_copy();
	return t_done();
}
