/*
 * imap.c: the IMAP source (ms_imap_source): session, command/response
 * plumbing, CAPABILITY, LIST, SELECT/EXAMINE, LOGOUT.  UID operations
 * live in imap_uid.c, pipelined FETCH in imap_fetch.c.
 *
 * libcurl has logged in (CONNECT_ONLY); from then on we speak IMAP
 * ourselves with "m<n>" tags, which never collide with libcurl's.  Every
 * byte from the server goes through the streaming tokenizer
 * (imap_parse.c), so untagged data is always data and never mistaken for
 * an answer, and literals are never buffered whole.  Any transport or
 * parse error marks the connection dead (account scope).
 */
#include "imap_int.h"
#include "text.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "net.h"
#include "rules.h"

#define MAX_FOLDERS 100000ul

int imap_fatal(struct ms_source *s, int rc, struct ms_err *e)
{
	s->dead = 1;
	if (e && rc < 0 && (!e->scope || e->scope < MS_SCOPE_ACCOUNT))
		e->scope = MS_SCOPE_ACCOUNT;
	if (e && rc < 0 && ms_log_enabled(MS_LOG_DEBUG))
		ms_log(MS_LOG_DEBUG, "IMAP error: %s", e->msg);
	return rc;
}

int imap_usable(struct ms_source *s, int need_selected, struct ms_err *e)
{
	int rc;

	if ((s->pre_tag || s->ids_tag) && (rc = imap_drain(s, e)))
		return rc;
	if (s->dead)
		return imap_fatal(s, ms_err_set(e, MS_ETEMP,
			"IMAP connection unusable after an earlier error"), e);
	if (need_selected && !s->selected)
		return ms_err_set(e, MS_EINTERNAL, "IMAP: no folder selected");
	return 0;
}

int imap_tok(struct ms_source *s, struct ms_imap_tok *t, struct ms_err *e)
{
	size_t used, got;
	int rc;

	for (;;) {
		rc = ms_imap_parse_next(&s->p, s->rbuf + s->rpos,
					s->rlen - s->rpos, &used, t, e);
		s->rpos += used;
		if (rc < 0)
			return imap_fatal(s, rc, e);
		if (rc > 0)
			break;
		s->rpos = s->rlen = 0;
		rc = ms_net_recv(s->net, s->rbuf, IMAP_RBUF, &got, e);
		if (rc < 0)
			return imap_fatal(s, rc, e);
		s->rlen = got;
	}
	if (t->type == MS_IMAP_T_END && ms_log_enabled(MS_LOG_DEBUG))
		ms_log(MS_LOG_DEBUG, "S: %s", ms_imap_parse_excerpt(&s->p));
	return 0;
}

static int status_of(const char *a)
{
	if (!strcasecmp(a, "OK"))
		return IMAP_OK;
	if (!strcasecmp(a, "NO"))
		return IMAP_NO;
	if (!strcasecmp(a, "BAD"))
		return IMAP_BAD;
	if (!strcasecmp(a, "BYE"))
		return IMAP_BYE;
	if (!strcasecmp(a, "PREAUTH"))
		return IMAP_PREAUTH;
	return 0;
}

/* [code] text CRLF of a status response. */
static int read_resp_text(struct ms_source *s, struct imap_resp *r,
			  struct ms_err *e)
{
	struct ms_imap_tok t;
	int rc;

	ms_buf_reset(&s->code);
	ms_buf_reset(&s->text);
	while (!(rc = imap_tok(s, &t, e)) && t.type != MS_IMAP_T_END) {
		struct ms_buf *b = t.type == MS_IMAP_T_CODE ? &s->code
							    : &s->text;
		if ((rc = ms_buf_add(b, t.s, t.n, e)))
			return imap_fatal(s, rc, e);
	}
	r->done = 1;
	return rc;
}

unsigned imap_our_tag(const char *tag)
{
	char *end;
	unsigned long v;

	if (tag[0] != 'm' || !isdigit((unsigned char)tag[1]))
		return 0;
	v = strtoul(tag + 1, &end, 10);
	return *end || v > 0xffffffffu ? 0 : (unsigned)v;
}

int imap_resp(struct ms_source *s, struct imap_resp *r, struct ms_err *e)
{
	struct ms_imap_tok t;
	int rc;

	memset(r, 0, sizeof *r);
	if ((rc = imap_tok(s, &t, e)))
		return rc;
	if (t.type != MS_IMAP_T_START) /* cannot happen: parser invariant */
		return imap_fatal(s, ms_err_set(e, MS_EPROTO,
			"IMAP: response does not start with a tag"), e);
	r->kind = t.kind;
	if (r->kind == MS_IMAP_TAGGED)
		r->tag = imap_our_tag(t.s);
	if (r->kind == MS_IMAP_CONTINUE)
		return read_resp_text(s, r, e);
	if ((rc = imap_tok(s, &t, e)))
		return rc;
	if (t.type == MS_IMAP_T_NUMBER && r->kind == MS_IMAP_UNTAGGED) {
		r->has_num = 1;
		r->num = t.num;
		if ((rc = imap_tok(s, &t, e)))
			return rc;
	}
	if (t.type == MS_IMAP_T_END) {
		r->done = 1;
		return 0;
	}
	if (t.type == MS_IMAP_T_ATOM && t.n < sizeof r->name) {
		size_t i;
		for (i = 0; i < t.n; i++)
			r->name[i] = (char)toupper((unsigned char)t.s[i]);
		r->name[t.n] = '\0';
	}
	r->status = r->has_num ? 0 : status_of(r->name);
	if (r->status)
		return read_resp_text(s, r, e);
	return 0;
}

int imap_skip(struct ms_source *s, struct imap_resp *r, struct ms_err *e)
{
	struct ms_imap_tok t;
	int rc = 0;

	while (!r->done && !(rc = imap_tok(s, &t, e)))
		r->done = t.type == MS_IMAP_T_END;
	return rc;
}

static void sanitize_buf(char *dst, size_t cap, const struct ms_buf *b)
{
	ms_text_excerpt(dst, cap, b->s, b->len);
}

int imap_untagged(struct ms_source *s, struct imap_resp *r,
		  struct ms_err *e)
{
	char code[200], text[400];

	if (r->status) {
		sanitize_buf(code, sizeof code, &s->code);
		sanitize_buf(text, sizeof text, &s->text);
	}
	if (r->status == IMAP_BYE && !s->in_logout)
		return imap_fatal(s, ms_err_set(e, MS_ETEMP,
			"IMAP server closed the session: BYE %s%s%s%s",
			code[0] ? "[" : "", code, code[0] ? "] " : "", text),
			e);
	if (r->status && !strncasecmp(s->code.s, "ALERT", 5))
		ms_log(MS_LOG_WARN, "IMAP server alert: %s", text);
	else if (r->status == IMAP_NO || r->status == IMAP_BAD)
		ms_log(MS_LOG_INFO, "IMAP server warning: %s%s%s%s",
		       code[0] ? "[" : "", code, code[0] ? "] " : "", text);
	if (r->has_num && !strcmp(r->name, "EXISTS"))
		s->exists = r->num > 0xffffffffu ? 0xffffffffu
						  : (uint32_t)r->num;
	else if (r->has_num && !strcmp(r->name, "EXPUNGE") && s->exists)
		s->exists--;
	return imap_skip(s, r, e);
}

int imap_queue(struct ms_source *s, const char *line, unsigned *tag,
	       struct ms_err *e)
{
	size_t start = s->out.len;
	int rc;

	*tag = ++s->tagn;
	rc = ms_buf_addf(&s->out, e, "m%u %s\r\n", *tag, line);
	if (rc)
		return rc;
	if (ms_log_enabled(MS_LOG_DEBUG)) {
		char tr[600];
		ms_text_excerpt(tr, sizeof tr, s->out.s + start,
				 s->out.len - start - 2);
		ms_log(MS_LOG_DEBUG, "C: %s", tr);
	}
	return 0;
}

int imap_flush(struct ms_source *s, struct ms_err *e)
{
	int rc = 0;

	if (s->out.len)
		rc = ms_net_send(s->net, s->out.s, s->out.len, e);
	ms_buf_reset(&s->out);
	return rc ? imap_fatal(s, rc, e) : 0;
}

/* NO with one of these codes is worth retrying later (RFC 5530). */
static int temporary_code(const char *c)
{
	static const char *const tmp[] = { "UNAVAILABLE", "LIMIT", "INUSE",
					   "SERVERBUG", "OVERQUOTA" };
	size_t i, n;

	for (i = 0; i < sizeof tmp / sizeof tmp[0]; i++) {
		n = strlen(tmp[i]);
		if (!strncasecmp(c, tmp[i], n) && (!c[n] || c[n] == ' '))
			return 1;
	}
	return 0;
}

int imap_cmd_error(struct ms_source *s, const struct imap_resp *r,
		   const char *what, struct ms_err *e)
{
	char code[200], text[400];
	int rc = MS_EPROTO;

	sanitize_buf(code, sizeof code, &s->code);
	sanitize_buf(text, sizeof text, &s->text);
	if (r->status == IMAP_NO && temporary_code(s->code.s))
		rc = MS_ETEMP;
	ms_err_set(e, rc, "%s failed: %s %s%s%s%s", what,
		   r->status == IMAP_NO ? "NO" : "BAD", code[0] ? "[" : "",
		   code, code[0] ? "] " : "", text);
	if (rc == MS_ETEMP)
		e->scope = MS_SCOPE_FOLDER; /* the connection is still fine */
	return rc;
}

/* Read until the tagged answer to tag (already sent).  fn sees every
 * untagged response first (returns 1 when it consumed it). */
int imap_wait(struct ms_source *s, unsigned tag, const char *what,
	      imap_untagged_fn fn, void *ctx, unsigned long max_untagged,
	      struct ms_err *e)
{
	struct imap_resp r;
	unsigned long n = 0;
	int rc;

	for (;;) {
		if ((rc = imap_resp(s, &r, e)))
			return rc;
		if (r.kind == MS_IMAP_TAGGED) {
			if (r.tag != tag)
				return imap_fatal(s, ms_err_set(e, MS_EPROTO,
					"IMAP: unexpected tagged response "
					"\"%s\" to %s", s->p.ex, what), e);
			if (r.status == IMAP_OK)
				return 0;
			return imap_cmd_error(s, &r, what, e);
		}
		if (r.kind == MS_IMAP_CONTINUE)
			return imap_fatal(s, ms_err_set(e, MS_EPROTO,
				"IMAP: unexpected continuation to %s", what),
				e);
		if (++n > max_untagged)
			return imap_fatal(s, ms_err_set(e, MS_EPROTO,
				"IMAP: more than %lu responses to %s",
				max_untagged, what), e);
		rc = fn ? fn(s, &r, ctx, e) : 0;
		if (rc < 0)
			return rc;
		if (!rc && (rc = imap_untagged(s, &r, e)))
			return rc;
	}
}

/* Send one command and read until its tagged answer. */
int imap_run(struct ms_source *s, const char *line, const char *what,
	     imap_untagged_fn fn, void *ctx, unsigned long max_untagged,
	     struct ms_err *e)
{
	unsigned tag;
	int rc;

	if ((rc = imap_queue(s, line, &tag, e)) || (rc = imap_flush(s, e)))
		return rc;
	return imap_wait(s, tag, what, fn, ctx, max_untagged, e);
}

/*
 * Answers to commands sent ahead (imap_preselect, or an EXAMINE + UID
 * SEARCH whose SEARCH nobody read) that no one will use: read and drop
 * them.  A pending SELECT/EXAMINE changed the server's selection, so
 * nothing counts as selected afterwards.
 */
int imap_drain(struct ms_source *s, struct ms_err *e)
{
	unsigned last = s->ids_tag ? s->ids_tag : s->pre_tag;
	struct imap_resp r;
	unsigned long n = 0;
	int rc = 0;

	if (!last)
		return 0;
	if (s->pre_tag) {
		s->selected = 0;
		s->exists = 0;
	}
	s->pre_tag = s->ids_tag = 0;
	free(s->pre_name);
	s->pre_name = NULL;
	if (s->dead)
		return 0;
	s->p.max_line = IMAP_SEARCH_MAX_LINE;
	s->p.max_token = IMAP_SEARCH_MAX_TOKEN;
	for (;;) {
		if ((rc = imap_resp(s, &r, e)))
			break;
		if (r.kind == MS_IMAP_TAGGED && r.tag == last)
			break;
		if (r.kind == MS_IMAP_CONTINUE ||
		    (r.kind == MS_IMAP_TAGGED && (!r.tag || r.tag > last)) ||
		    ++n > IMAP_MAX_UNTAGGED_BIG) {
			rc = imap_fatal(s, ms_err_set(e, MS_EPROTO,
				"IMAP: unexpected response \"%s\"", s->p.ex),
				e);
			break;
		}
		if (r.kind != MS_IMAP_TAGGED && (rc = imap_untagged(s, &r, e)))
			break;
	}
	s->p.max_line = MS_IMAP_MAX_LINE_DEFAULT;
	s->p.max_token = MS_IMAP_MAX_TOKEN_DEFAULT;
	return rc;
}

/* ---- open / CAPABILITY ---- */

static unsigned cap_bit(const char *w, size_t n)
{
	static const struct { const char *n; unsigned bit; } caps[] = {
		{ "IMAP4rev1", IMAP_CAP_IMAP4REV1 },
		{ "UIDPLUS", IMAP_CAP_UIDPLUS },
		{ "ESEARCH", IMAP_CAP_ESEARCH },
		{ "CONDSTORE", IMAP_CAP_CONDSTORE },
		{ "QRESYNC", IMAP_CAP_QRESYNC },
		{ "LITERAL+", IMAP_CAP_LITERALPLUS },
		{ "ENABLE", IMAP_CAP_ENABLE },
		{ "ID", IMAP_CAP_ID },
		{ "SPECIAL-USE", IMAP_CAP_SPECIALUSE },
		{ "LIST-STATUS", IMAP_CAP_LISTSTATUS },
		{ "X-GM-EXT-1", IMAP_CAP_XGMEXT1 },
		{ "LIST-EXTENDED", IMAP_CAP_LISTEXTENDED },
	};
	size_t i;

	for (i = 0; i < sizeof caps / sizeof caps[0]; i++)
		if (strlen(caps[i].n) == n && !strncasecmp(w, caps[i].n, n))
			return caps[i].bit;
	return 0;
}

static int cap_fn(struct ms_source *s, struct imap_resp *r, void *ctx,
		  struct ms_err *e)
{
	struct ms_imap_tok t;
	int rc;

	(void)ctx;
	if (r->has_num || strcmp(r->name, "CAPABILITY"))
		return 0;
	s->caps = 0;
	while (!(rc = imap_tok(s, &t, e)) && t.type != MS_IMAP_T_END)
		if (t.type == MS_IMAP_T_ATOM)
			s->caps |= cap_bit(t.s, t.n);
	r->done = 1;
	return rc ? rc : 1;
}

/* The capabilities libcurl saw with the login's tagged OK, if any: one
 * round trip less than asking again. */
static int caps_from_login(struct ms_source *s)
{
	const char *p = ms_net_login_caps(s->net);
	size_t n;

	if (!p)
		return 0;
	s->caps = 0;
	while (*p) {
		n = strcspn(p, " ");
		s->caps |= cap_bit(p, n);
		p += n;
		p += strspn(p, " ");
	}
	if (ms_log_enabled(MS_LOG_DEBUG))
		ms_log(MS_LOG_DEBUG, "IMAP: capabilities from the login: %s",
		       ms_net_login_caps(s->net));
	return 1;
}

static int imap_open(struct ms_source **out, struct ms_net *net,
		     const struct ms_account *a, struct ms_err *e)
{
	struct ms_source *s;
	int rc;

	*out = NULL;
	if (!(s = calloc(1, sizeof *s)) || !(s->rbuf = malloc(IMAP_RBUF))) {
		free(s);
		ms_net_close(net);
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	}
	s->net = net;
	s->acct = a;
	ms_imap_parse_init(&s->p);
	if (ms_log_enabled(MS_LOG_DEBUG))
		s->p.excerpt_max = MS_IMAP_EXCERPT_MAX;
	ms_buf_init(&s->out, 0);
	ms_buf_init(&s->code, 0);
	ms_buf_init(&s->text, 0);
	rc = caps_from_login(s) ? 0 : imap_run(s, "CAPABILITY", "CAPABILITY",
					      cap_fn, NULL,
					      IMAP_MAX_UNTAGGED, e);
	if (!rc && !(s->caps & IMAP_CAP_IMAP4REV1))
		ms_log(MS_LOG_WARN, "IMAP server does not announce IMAP4rev1");
	if (rc) {
		e->scope = MS_SCOPE_ACCOUNT;
		s->dead = 1;
		ms_imap_source.close(s, 0, NULL);
		return rc;
	}
	*out = s;
	return 0;
}

/* ---- LIST ---- */

struct list_ctx {
	ms_folder_cb cb;
	void *ctx;
	unsigned long n;
	int cbrc;
	struct ms_err cberr;
	struct ms_buf name;
	int lstatus;     /* RETURN (STATUS ...) asked */
};

static int list_attrs(struct ms_source *s, unsigned *attrs, struct ms_err *e)
{
	struct ms_imap_tok t;
	int rc;

	if ((rc = imap_tok(s, &t, e)))
		return rc;
	if (t.type != MS_IMAP_T_LPAREN)
		return -1;
	while (!(rc = imap_tok(s, &t, e)) && t.type != MS_IMAP_T_RPAREN) {
		if (t.type != MS_IMAP_T_ATOM)
			return -1;
		if (!strcasecmp(t.s, "\\Noselect") ||
		    !strcasecmp(t.s, "\\NonExistent"))
			*attrs |= MS_FOLDER_NOSELECT;
		*attrs |= ms_rules_special_use(t.s);
	}
	return rc;
}

/* The mailbox name: atom, number, quoted or literal (collected). */
int imap_astring(struct ms_source *s, struct ms_buf *b, struct ms_err *e)
{
	struct ms_imap_tok t;
	int rc;

	ms_buf_reset(b);
	if ((rc = imap_tok(s, &t, e)))
		return rc;
	if (t.type == MS_IMAP_T_ATOM || t.type == MS_IMAP_T_NUMBER ||
	    t.type == MS_IMAP_T_QUOTED)
		return ms_buf_add(b, t.s, t.n, e);
	if (t.type != MS_IMAP_T_LITERAL)
		return -1;
	while (!(rc = imap_tok(s, &t, e)) && t.type == MS_IMAP_T_LITDATA)
		if ((rc = ms_buf_add(b, t.s, t.n, e)))
			return imap_fatal(s, rc, e);
	return rc;
}

static int list_fn(struct ms_source *s, struct imap_resp *r, void *vctx,
		   struct ms_err *e)
{
	struct list_ctx *c = vctx;
	struct ms_folder f = { 0 };
	struct ms_imap_tok t;
	int rc;

	if (!r->has_num && !strcmp(r->name, "STATUS") && c->lstatus)
		return imap_lstatus_fn(s, r, &c->name, e);
	if (r->has_num || strcmp(r->name, "LIST"))
		return 0;
	if (++c->n > MAX_FOLDERS)
		return imap_fatal(s, ms_err_set(e, MS_EPROTO,
			"IMAP: more than %lu folders in LIST", MAX_FOLDERS), e);
	if ((rc = list_attrs(s, &f.attrs, e)) ||
	    (rc = imap_tok(s, &t, e)))
		goto bad;
	if (t.type == MS_IMAP_T_QUOTED && t.n == 1)
		f.delim = t.s[0];
	else if (t.type != MS_IMAP_T_NIL)
		rc = -1;
	if (rc || (rc = imap_astring(s, &c->name, e)) ||
	    (rc = imap_skip(s, r, e)))
		goto bad;
	f.name = c->name.s;
	if (memchr(c->name.s, '\0', c->name.len)) {
		ms_log(MS_LOG_WARN, "IMAP: ignoring a folder name with a NUL "
		       "byte");
		return 1;
	}
	if (!c->cbrc && (c->cbrc = c->cb(c->ctx, &f, &c->cberr)))
		if (!c->cberr.code)
			ms_err_set(&c->cberr, c->cbrc, "folder callback "
				   "failed");
	return 1;
bad:
	if (rc == -1)
		rc = imap_fatal(s, ms_err_set(e, MS_EPROTO,
			"IMAP: malformed LIST response \"%s\"", s->p.ex), e);
	return rc;
}

static int imap_list(struct ms_source *s, ms_folder_cb cb, void *ctx,
		     struct ms_err *e)
{
	struct list_ctx c = { .cb = cb, .ctx = ctx };
	struct ms_buf cmd;
	int rc, special;

	if ((rc = imap_usable(s, 0, e)))
		return rc;
	ms_buf_init(&c.name, MS_IMAP_MAX_TOKEN_DEFAULT);
	ms_buf_init(&cmd, 0);
	ms_err_clear(&c.cberr);
	imap_lstatus_clear(s);
	/* RFC 6154: with SPECIAL-USE the server returns \\All, \\Sent...
	 * when asked with the RETURN option of extended LIST (RFC 5258;
	 * erratum 5581: SPECIAL-USE alone may not imply LIST-EXTENDED, so
	 * both are required).  Gmail and Dovecot also put them in a plain
	 * LIST, which is all we send to other servers.  LIST-STATUS (RFC
	 * 5819): the folders' STATUS in the same round trip. */
	special = (s->caps & IMAP_CAP_SPECIALUSE) &&
		  (s->caps & IMAP_CAP_LISTEXTENDED);
	c.lstatus = !!(s->caps & IMAP_CAP_LISTSTATUS);
	if ((rc = ms_buf_adds(&cmd, "LIST \"\" \"*\"", e)) ||
	    ((special || c.lstatus) &&
	     (rc = ms_buf_adds(&cmd, " RETURN (", e))) ||
	    (special && (rc = ms_buf_adds(&cmd, c.lstatus ? "SPECIAL-USE " :
					  "SPECIAL-USE", e))) ||
	    (c.lstatus &&
	     ((rc = ms_buf_adds(&cmd, "STATUS", e)) ||
	      (rc = ms_buf_adds(&cmd, imap_status_items(s), e)))) ||
	    ((special || c.lstatus) && (rc = ms_buf_adds(&cmd, ")", e))))
		goto out;
	rc = imap_run(s, cmd.s, "LIST", list_fn, &c, 2 * MAX_FOLDERS + 1000,
		      e);
	if (!rc && c.lstatus)
		imap_lstatus_done(s);
	if (!rc && c.cbrc) {
		*e = c.cberr;
		rc = c.cbrc;
	}
out:
	ms_buf_free(&cmd);
	ms_buf_free(&c.name);
	return rc;
}

/* ---- SELECT / EXAMINE ---- */

/* "NAME n" in a response code: 1 and *v when it matches, 0 when the code
 * is another one, -1 when malformed or out of range. */
static int code_num(const char *code, const char *name, uint64_t max,
		    uint64_t *v)
{
	size_t n = strlen(name), i;
	uint64_t x = 0;

	if (strncasecmp(code, name, n) || code[n] != ' ')
		return 0;
	code += n + 1;
	for (i = 0; isdigit((unsigned char)code[i]); i++) {
		unsigned d = (unsigned)(code[i] - '0');
		if (x > (UINT64_MAX - d) / 10)
			return -1;
		x = x * 10 + d;
	}
	if (!i || (code[i] && code[i] != ' ') || x > max)
		return -1;
	*v = x;
	return 1;
}

static int select_fn(struct ms_source *s, struct imap_resp *r, void *ctx,
		     struct ms_err *e)
{
	struct ms_folder_status *st = ctx;
	static const char *const names[] = { "UIDVALIDITY", "UIDNEXT",
					     "HIGHESTMODSEQ" };
	uint64_t v;
	size_t i;
	int m;

	if (r->has_num && !strcmp(r->name, "EXISTS")) {
		if (r->num > 0xffffffffu)
			goto bad;
		st->exists = (uint32_t)r->num;
		return 0; /* imap_untagged records it too */
	}
	if (r->status != IMAP_OK || !s->code.len)
		return 0;
	for (i = 0; i < 3; i++) {
		m = code_num(s->code.s, names[i],
			     i < 2 ? 0xffffffffu : UINT64_MAX, &v);
		if (m < 0)
			goto bad;
		if (m && i == 0)
			st->uidvalidity = (uint32_t)v;
		else if (m && i == 1)
			st->uidnext = (uint32_t)v;
		else if (m)
			st->highestmodseq = v;
	}
	return 0;
bad:
	return imap_fatal(s, ms_err_set(e, MS_EPROTO,
		"IMAP: bad value in \"%s\"", s->p.ex), e);
}

/* A quoted string for a command; names with CR, LF or NUL are refused
 * (they could inject commands). */
int imap_add_quoted(struct ms_buf *b, const char *name, struct ms_err *e)
{
	const char *p;
	int rc = ms_buf_addc(b, '"', e);

	for (p = name; !rc && *p; p++) {
		if (*p == '\r' || *p == '\n')
			return ms_err_set(e, MS_EPROTO,
				"IMAP: refusing folder name with CR/LF");
		if (*p == '"' || *p == '\\')
			rc = ms_buf_addc(b, '\\', e);
		if (!rc)
			rc = ms_buf_addc(b, *p, e);
	}
	return rc ? rc : ms_buf_addc(b, '"', e);
}

static int queue_select(struct ms_source *s, const char *name, int rw,
			unsigned *tag, struct ms_err *e)
{
	struct ms_buf cmd;
	int rc;

	ms_buf_init(&cmd, 64 * 1024);
	if (!(rc = ms_buf_adds(&cmd, (rw & MS_SELECT_RW) ? "SELECT "
						       : "EXAMINE ", e)) &&
	    !(rc = imap_add_quoted(&cmd, name, e)) &&
	    !((s->caps & IMAP_CAP_CONDSTORE) &&
	      (rc = ms_buf_adds(&cmd, " (CONDSTORE)", e))) &&
	    !(rc = imap_queue(s, cmd.s, tag, e)) && (rw & MS_SELECT_IDS) &&
	    !(rc = imap_queue(s, imap_search_cmd(s, "ALL"), &s->ids_tag, e)))
		rc = imap_flush(s, e);
	else if (!rc)
		rc = imap_flush(s, e);
	ms_buf_free(&cmd);
	return rc;
}

static int imap_select(struct ms_source *s, const char *name, int rw,
		       struct ms_folder_status *st, struct ms_err *e)
{
	const char *what = (rw & MS_SELECT_RW) ? "SELECT" : "EXAMINE";
	unsigned tag = 0;
	int rc;

	memset(st, 0, sizeof *st);
	if (s->pre_tag && s->pre_name && !s->dead &&
	    !strcmp(s->pre_name, name) &&
	    s->pre_rw == (rw & MS_SELECT_RW) && (rw & MS_SELECT_IDS)) {
		tag = s->pre_tag; /* sent by imap_preselect */
		s->pre_tag = 0;
		free(s->pre_name);
		s->pre_name = NULL;
	} else if ((rc = imap_usable(s, 0, e))) {
		return rc;
	}
	free(s->folder);
	s->selected = 0;
	s->exists = 0;
	if (!(s->folder = strdup(name))) {
		rc = ms_err_set(e, MS_EINTERNAL, "out of memory");
		goto out;
	}
	if (!tag && (rc = queue_select(s, name, rw, &tag, e)))
		goto out;
	rc = imap_wait(s, tag, what, select_fn, st, IMAP_MAX_UNTAGGED, e);
	if (rc)
		goto out;
	st->readwrite = (rw & MS_SELECT_RW) &&
			strncasecmp(s->code.s, "READ-ONLY", 9);
	s->selected = 1;
	s->readwrite = st->readwrite;
	s->uidvalidity = st->uidvalidity;
	s->exists = st->exists;
out:
	if (rc && s->ids_tag) { /* the SEARCH's answer is of no use */
		struct ms_err de;
		imap_drain(s, &de);
	}
	if (rc && e->code == MS_EPROTO && e->scope < MS_SCOPE_FOLDER)
		e->scope = MS_SCOPE_FOLDER;
	return rc;
}

static int imap_preselect(struct ms_source *s, const char *name, int rw,
			  struct ms_err *e)
{
	unsigned tag;
	int rc;

	if ((rc = imap_usable(s, 0, e)))
		return rc;
	if (!(s->pre_name = strdup(name)))
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	/* the server will have left the current folder */
	s->selected = 0;
	if ((rc = queue_select(s, name, (rw & MS_SELECT_RW) | MS_SELECT_IDS,
			       &tag, e))) {
		free(s->pre_name);
		s->pre_name = NULL;
		s->ids_tag = 0;
		return rc;
	}
	s->pre_tag = tag;
	s->pre_rw = rw & MS_SELECT_RW;
	return 0;
}

/* ---- close ---- */

static int imap_close(struct ms_source *s, int commit, struct ms_err *e)
{
	unsigned tag;

	(void)e;
	if (!s)
		return 0;
	if (commit && !s->dead) {
		/* nothing the answer could say changes what is done: every
		 * command before was answered; send it and go */
		struct ms_err e2;
		s->in_logout = 1;
		if (!imap_queue(s, "LOGOUT", &tag, &e2))
			imap_flush(s, &e2);
	}
	ms_net_close(s->net);
	ms_imap_parse_free(&s->p);
	ms_buf_free(&s->out);
	ms_buf_free(&s->code);
	ms_buf_free(&s->text);
	free(s->folder);
	free(s->pre_name);
	imap_lstatus_clear(s);
	free(s->rbuf);
	free(s);
	return 0;
}

const struct ms_source_ops ms_imap_source = {
	.proto = "imap",
	.open = imap_open,
	.list = imap_list,
	.select = imap_select,
	.preselect = imap_preselect,
	.ids = imap_ids,
	.meta = imap_meta,
	.older_than = imap_older_than,
	.fetch = imap_fetch,
	.remove = imap_remove,
	.flags = imap_flags,
	.status = imap_status_many,
	.gm_labels = imap_gm_labels,
	.close = imap_close,
};
