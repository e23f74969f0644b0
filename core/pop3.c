/*
 * pop3.c: the POP3 source (RFC 1939, RFC 2449 CAPA/PIPELINING) spoken
 * over an ms_net connection that libcurl has already authenticated.
 *
 * We speak POP3 ourselves because libcurl's RETR loses truncation (rc 0
 * on a dropped connection) and cannot pipeline.  RETR and DELE are sent
 * in windows of 128 (refilled at half) when the server lists PIPELINING,
 * so the server always has commands queued; bodies stream from a 256 KiB
 * read buffer through the dot-unstuffer (pop3_parse.c) straight to
 * the sink, so memory is flat whatever the message size.  Told the next
 * chunk (ahead), a fetch sends its first RETRs once its own are out, so
 * the server streams on while the caller commits; those replies are
 * read by the next fetch, or read and dropped before any other command
 * (drain_ahead), so no reply is ever taken for another's.  Message numbers
 * are valid for this session only: identity is the validated UIDL.  Once
 * the stream may be out of step (EOF, timeout, garbage, a reply cut
 * short) the source is marked dead and QUIT is never sent, because QUIT's
 * +OK commits the DELEs and must not be read from stray bytes.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "text.h"
#include "log.h"
#include "pop3_parse.h"
#include "source.h"

#define RBUF_SIZE (256 * 1024)
#define LINE_MAX_LEN 4096  /* status and listing lines, not body lines */
#define CAPA_MAX_LINES 1000
#define WINDOW 128         /* RETRs in flight with PIPELINING */
#define CMD_MAX 64

struct ms_source {
	struct ms_net *net;
	const struct ms_account *a;
	char *rbuf;             /* received bytes, [roff, rlen) unread */
	size_t roff, rlen;
	char *obuf;             /* unstuffed output, RBUF_SIZE + 2 */
	struct ms_buf line;     /* current status or listing line */
	struct ms_buf out;      /* commands being batched */
	int pipelining, has_uidl, has_top;
	int dead;               /* stream out of step: never send QUIT */
	const struct ms_msg *next; /* pop3_ahead: what the next fetch wants */
	size_t nnext;
	struct ms_msg *ahead;   /* RETRs sent for the next fetch, unread */
	size_t nahead;          /* (at most WINDOW) */
	uint32_t count;         /* STAT */
	uint64_t octets;
};

static int drain_ahead(struct ms_source *s, struct ms_err *e);

/* Printable excerpt of server bytes for logs and errors (120 chars). */
static void excerpt(const char *p, size_t n, char *dst, size_t cap)
{
	ms_text_excerpt(dst, cap < 128 ? cap : 128, p, n);
}

static int fail(struct ms_source *s, struct ms_err *e, int code,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Errors that leave the stream out of step: scope account, source dead. */
static int fail(struct ms_source *s, struct ms_err *e, int code,
		const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ms_err_vset(e, code, fmt, ap);
	va_end(ap);
	if (e)
		e->scope = MS_SCOPE_ACCOUNT;
	s->dead = 1;
	return code;
}

static int fill(struct ms_source *s, struct ms_err *e)
{
	size_t got = 0;
	int rc;

	s->roff = s->rlen = 0;
	rc = ms_net_recv(s->net, s->rbuf, RBUF_SIZE, &got, e);
	if (rc < 0) {
		s->dead = 1;
		if (e)
			e->scope = MS_SCOPE_ACCOUNT;
		return rc;
	}
	s->rlen = got;
	return 0;
}

/* One line without CRLF into s->line (capped: it is not a body line). */
static int read_line(struct ms_source *s, struct ms_err *e)
{
	const char *nl;
	size_t take;
	int rc;

	ms_buf_reset(&s->line);
	for (;;) {
		if (s->roff == s->rlen && (rc = fill(s, e)) < 0)
			return rc;
		nl = memchr(s->rbuf + s->roff, '\n', s->rlen - s->roff);
		take = nl ? (size_t)(nl - s->rbuf) + 1 - s->roff
			  : s->rlen - s->roff;
		if (s->line.len + take > LINE_MAX_LEN)
			return fail(s, e, MS_EPROTO,
				    "server line longer than %d bytes",
				    LINE_MAX_LEN);
		if ((rc = ms_buf_add(&s->line, s->rbuf + s->roff, take, e)) < 0)
			return rc;
		s->roff += take;
		if (nl)
			break;
	}
	s->line.len--; /* the LF */
	if (s->line.len && s->line.s[s->line.len - 1] == '\r')
		s->line.len--;
	s->line.s[s->line.len] = '\0';
	return 0;
}

/* Read a status line: 1 for +OK, 0 for -ERR (text in s->line). */
static int status(struct ms_source *s, struct ms_err *e)
{
	char ex[512];
	int rc;

	if ((rc = read_line(s, e)) < 0)
		return rc;
	if (ms_log_enabled(MS_LOG_DEBUG)) {
		excerpt(s->line.s, s->line.len, ex, sizeof ex);
		ms_log(MS_LOG_DEBUG, "S: %s", ex);
	}
	if (s->line.len >= 3 && memcmp(s->line.s, "+OK", 3) == 0)
		return 1;
	if (s->line.len >= 4 && memcmp(s->line.s, "-ERR", 4) == 0)
		return 0;
	excerpt(s->line.s, s->line.len, ex, sizeof ex);
	return fail(s, e, MS_EPROTO, "unexpected server reply: %s",
		    ex);
}

/* The server's text after -ERR / +OK, sanitised. */
static const char *server_text(struct ms_source *s, char *dst, size_t cap)
{
	size_t skip = s->line.len >= 4 && s->line.s[0] == '-' ? 4 : 3;

	while (skip < s->line.len && s->line.s[skip] == ' ')
		skip++;
	excerpt(s->line.s + skip, s->line.len - skip, dst, cap);
	return dst;
}

static int queue_cmd(struct ms_source *s, struct ms_err *e, const char *fmt,
		     ...) __attribute__((format(printf, 3, 4)));

static int queue_cmd(struct ms_source *s, struct ms_err *e, const char *fmt,
		     ...)
{
	char cmd[CMD_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	if (ms_log_enabled(MS_LOG_DEBUG))
		ms_log(MS_LOG_DEBUG, "C: %s", cmd);
	return ms_buf_addf(&s->out, e, "%s\r\n", cmd);
}

static int flush_cmds(struct ms_source *s, struct ms_err *e)
{
	int rc = 0;

	if (s->out.len) {
		rc = ms_net_send(s->net, s->out.s, s->out.len, e);
		ms_buf_reset(&s->out);
		if (rc < 0) {
			s->dead = 1;
			if (e)
				e->scope = MS_SCOPE_ACCOUNT;
		}
	}
	return rc;
}

static int alive(struct ms_source *s, struct ms_err *e)
{
	if (s->dead)
		return ms_err_set(e, MS_ETEMP,
				  "connection unusable after an earlier "
				  "error");
	return 0;
}

typedef int (*line_fn)(struct ms_source *s, void *ctx, const char *l,
		       size_t n, struct ms_err *e);

/* The body of a multi-line reply, line by line (lines capped). */
static int read_lines(struct ms_source *s, line_fn fn, void *ctx,
		      struct ms_buf *l, struct ms_err *e)
{
	struct ms_pop3_ml ml;
	size_t used, on, i, start;
	int rc;

	ms_pop3_ml_init(&ml);
	ms_buf_reset(l);
	while (!ms_pop3_ml_done(&ml)) {
		if (s->roff == s->rlen && (rc = fill(s, e)) < 0)
			return rc;
		used = ms_pop3_ml_feed(&ml, s->rbuf + s->roff,
				       s->rlen - s->roff, s->obuf, &on);
		s->roff += used;
		for (i = 0, start = 0; i < on; i++) {
			if (s->obuf[i] != '\n')
				continue;
			if (l->len + i - start > LINE_MAX_LEN)
				goto toolong;
			if ((rc = ms_buf_add(l, s->obuf + start, i - start,
					     e)) < 0)
				return rc;
			if (l->len && l->s[l->len - 1] == '\r')
				l->len--;
			if ((rc = fn(s, ctx, l->s, l->len, e)) < 0)
				return rc;
			ms_buf_reset(l);
			start = i + 1;
		}
		if (l->len + on - start > LINE_MAX_LEN)
			goto toolong;
		if ((rc = ms_buf_add(l, s->obuf + start, on - start, e)) < 0)
			return rc;
	}
	return 0;
toolong:
	return fail(s, e, MS_EPROTO, "server line longer than %d bytes",
		    LINE_MAX_LEN);
}

struct capa_ctx {
	unsigned lines;
};

static int word_is(const char *l, size_t n, const char *w)
{
	size_t wl = strlen(w);

	return n >= wl && strncasecmp(l, w, wl) == 0 &&
	       (n == wl || l[wl] == ' ');
}

static int capa_line(struct ms_source *s, void *ctx, const char *l, size_t n,
		     struct ms_err *e)
{
	struct capa_ctx *c = ctx;

	if (++c->lines > CAPA_MAX_LINES)
		return fail(s, e, MS_EPROTO, "CAPA longer than %d lines",
			    CAPA_MAX_LINES);
	if (word_is(l, n, "PIPELINING"))
		s->pipelining = 1;
	else if (word_is(l, n, "UIDL"))
		s->has_uidl = 1;
	else if (word_is(l, n, "TOP"))
		s->has_top = 1;
	return 0;
}

static void source_free(struct ms_source *s)
{
	if (!s)
		return;
	if (s->net)
		ms_net_close(s->net);
	ms_buf_free(&s->line);
	ms_buf_free(&s->out);
	free(s->rbuf);
	free(s->obuf);
	free(s->ahead);
	free(s);
}

static int pop3_open(struct ms_source **out, struct ms_net *net,
		     const struct ms_account *a, struct ms_err *e)
{
	struct ms_source *s = calloc(1, sizeof *s);
	struct capa_ctx cc = { 0 };
	struct ms_buf l;
	int rc;

	*out = NULL;
	ms_buf_init(&l, 0);
	if (!s) {
		ms_net_close(net);
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	}
	s->net = net;
	s->a = a;
	ms_buf_init(&s->line, 0);
	ms_buf_init(&s->out, 0);
	s->rbuf = malloc(RBUF_SIZE);
	s->obuf = malloc(RBUF_SIZE + 2);
	s->ahead = calloc(WINDOW, sizeof *s->ahead);
	if (!s->rbuf || !s->obuf || !s->ahead) {
		rc = ms_err_set(e, MS_EINTERNAL, "out of memory");
		goto out;
	}
	if ((rc = queue_cmd(s, e, "CAPA")) < 0 ||
	    (rc = flush_cmds(s, e)) < 0 || (rc = status(s, e)) < 0)
		goto out;
	/* Without CAPA (RFC 1939 servers) we assume nothing. */
	if (rc == 1 && (rc = read_lines(s, capa_line, &cc, &l, e)) < 0)
		goto out;
	rc = 0;
	*out = s;
	s = NULL;
out:
	ms_buf_free(&l);
	source_free(s);
	return rc;
}

static int pop3_list(struct ms_source *s, ms_folder_cb cb, void *ctx,
		     struct ms_err *e)
{
	struct ms_folder f = { .name = "INBOX", .delim = 0, .attrs = 0 };

	(void)s;
	return cb(ctx, &f, e);
}

static int pop3_select(struct ms_source *s, const char *name, int rw,
		       struct ms_folder_status *st, struct ms_err *e)
{
	const char *why = NULL;
	char ex[512];
	int rc;

	(void)rw; /* POP3 has only one mode */
	memset(st, 0, sizeof *st);
	if (strcasecmp(name, "INBOX") != 0)
		return ms_err_set(e, MS_EINTERNAL,
				  "POP3 has no folder \"%s\"", name);
	if ((rc = alive(s, e)) < 0 || (rc = drain_ahead(s, e)) < 0 ||
	    (rc = queue_cmd(s, e, "STAT")) < 0 ||
	    (rc = flush_cmds(s, e)) < 0 || (rc = status(s, e)) < 0)
		return rc;
	if (rc == 0)
		return ms_err_set(e, MS_EPROTO, "STAT failed: %s",
				  server_text(s, ex, sizeof ex));
	if (ms_pop3_parse_stat(s->line.s, s->line.len, &s->count, &s->octets,
			       &why) < 0) {
		excerpt(s->line.s, s->line.len, ex, sizeof ex);
		return fail(s, e, MS_EPROTO,
			    "bad STAT reply (%s): %s", why, ex);
	}
	st->exists = s->count;
	st->readwrite = 1;
	return 0;
}

/* ids: UIDL and LIST joined by message number. */
struct listing {
	uint32_t count;
	uint64_t *size;
	uint32_t *uoff;         /* offset of the UIDL in arena */
	unsigned char *have;    /* 1: in UIDL, 2: in LIST */
	struct ms_buf arena;
};

static int bad_line(struct ms_source *s, const char *what, const char *l,
		    size_t n, uint32_t num, const char *why, struct ms_err *e)
{
	char ex[512];

	excerpt(l, n, ex, sizeof ex);
	if (num)
		return fail(s, e, MS_EPROTO,
			    "%s of message %u: %s: \"%s\"", what, num, why, ex);
	return fail(s, e, MS_EPROTO, "bad %s line (%s): \"%s\"",
		    what, why, ex);
}

static int check_num(struct ms_source *s, struct listing *L, uint32_t num,
		     unsigned bit, const char *what, struct ms_err *e)
{
	if (num > L->count)
		return fail(s, e, MS_EPROTO,
			    "%s lists message %u but STAT said %u",
			    what, num, L->count);
	if (L->have[num] & bit)
		return fail(s, e, MS_EPROTO,
			    "%s lists message %u twice", what, num);
	L->have[num] |= (unsigned char)bit;
	return 0;
}

static int uidl_line(struct ms_source *s, void *ctx, const char *l, size_t n,
		     struct ms_err *e)
{
	struct listing *L = ctx;
	char uidl[MS_UIDL_MAX + 1];
	const char *why;
	uint32_t num = 0;
	int rc;

	if (ms_pop3_parse_uidl(l, n, &num, uidl, &why) < 0)
		return bad_line(s, "UIDL", l, n, num, why, e);
	if ((rc = check_num(s, L, num, 1, "UIDL", e)) < 0)
		return rc;
	L->uoff[num] = (uint32_t)L->arena.len;
	return ms_buf_add(&L->arena, uidl, strlen(uidl) + 1, e);
}

static int list_line(struct ms_source *s, void *ctx, const char *l, size_t n,
		     struct ms_err *e)
{
	struct listing *L = ctx;
	const char *why;
	uint32_t num = 0;
	uint64_t size;
	int rc;

	if (ms_pop3_parse_list(l, n, &num, &size, &why) < 0)
		return bad_line(s, "LIST", l, n, num, why, e);
	if ((rc = check_num(s, L, num, 2, "LIST", e)) < 0)
		return rc;
	L->size[num] = size;
	return 0;
}

/* Read the UIDL reply (-ERR: the server has no UIDL) then LIST's. */
static int read_listings(struct ms_source *s, struct listing *L, int piped,
			 int *have_uidl, struct ms_err *e)
{
	struct ms_buf l;
	char ex[512];
	int rc;

	ms_buf_init(&l, 0);
	if ((rc = status(s, e)) < 0)
		goto out;
	*have_uidl = rc;
	if (rc == 1 && (rc = read_lines(s, uidl_line, L, &l, e)) < 0)
		goto out;
	if (!*have_uidl)
		/* policy delete manages without; any other policy fails
		 * with one error line, so this is only for -v */
		ms_log(MS_LOG_INFO, "server refuses UIDL (%s): "
		       "messages have no identity",
		       server_text(s, ex, sizeof ex));
	if (!piped && ((rc = queue_cmd(s, e, "LIST")) < 0 ||
		       (rc = flush_cmds(s, e)) < 0))
		goto out;
	if ((rc = status(s, e)) < 0)
		goto out;
	if (rc == 0) {
		rc = ms_err_set(e, MS_EPROTO, "LIST failed: %s",
				server_text(s, ex, sizeof ex));
		goto out;
	}
	rc = read_lines(s, list_line, L, &l, e);
out:
	ms_buf_free(&l);
	return rc;
}

/* Check everything before the first callback: all or nothing. */
static int check_ids(struct listing *L, int have_uidl, struct ms_err *e)
{
	uint32_t i;

	for (i = 1; i <= L->count; i++) {
		if (!L->have[i])
			continue; /* deleted earlier in this session */
		if (!(L->have[i] & 2))
			return ms_err_set(e, MS_EPROTO, "message %u "
					  "is in UIDL but not in LIST",
					  i);
		if (have_uidl && !(L->have[i] & 1))
			return ms_err_set(e, MS_EPROTO, "message %u "
					  "is in LIST but has no UIDL",
					  i);
	}
	return 0;
}

static int emit_ids(struct listing *L, int have_uidl, ms_msg_cb cb, void *ctx,
		    struct ms_err *e)
{
	struct ms_msg m;
	uint32_t i;
	int rc;

	if ((rc = check_ids(L, have_uidl, e)) < 0)
		return rc;
	for (i = 1; i <= L->count; i++) {
		if (!L->have[i])
			continue;
		memset(&m, 0, sizeof m);
		m.uid = i;
		if (have_uidl)
			snprintf(m.uidl, sizeof m.uidl, "%s",
				 L->arena.s + L->uoff[i]);
		m.size = L->size[i];
		m.has_meta = 1;
		if ((rc = cb(ctx, &m, e)) < 0)
			return rc;
	}
	return 0;
}

static int pop3_ids(struct ms_source *s, ms_msg_cb cb, void *ctx,
		    struct ms_err *e)
{
	struct listing L = { .count = s->count };
	int rc, have_uidl = 0;

	ms_buf_init(&L.arena, (size_t)s->count * (MS_UIDL_MAX + 1) + 1);
	if ((rc = alive(s, e)) < 0 || (rc = drain_ahead(s, e)) < 0 ||
	    s->count == 0)
		goto out;
	L.size = calloc((size_t)s->count + 1, sizeof *L.size);
	L.uoff = calloc((size_t)s->count + 1, sizeof *L.uoff);
	L.have = calloc((size_t)s->count + 1, 1);
	if (!L.size || !L.uoff || !L.have) {
		rc = ms_err_set(e, MS_EINTERNAL, "out of memory");
		goto out;
	}
	if ((rc = queue_cmd(s, e, "UIDL")) < 0 ||
	    (s->pipelining && (rc = queue_cmd(s, e, "LIST")) < 0) ||
	    (rc = flush_cmds(s, e)) < 0 ||
	    (rc = read_listings(s, &L, s->pipelining, &have_uidl, e)) < 0)
		goto out;
	rc = emit_ids(&L, have_uidl, cb, ctx, e);
out:
	free(L.size);
	free(L.uoff);
	free(L.have);
	ms_buf_free(&L.arena);
	return rc;
}

/* fetch: one RETR reply streamed to the sink. */
struct fetch_run {
	const struct ms_fetch_sink *sink;
	void *ctx;
	int stop;               /* a sink failed beyond the message */
	struct ms_err first;    /* that failure */
};

/* A sink failure: message scope skips the message, anything else stops
 * sending RETRs (the replies in flight are still read and dropped). */
static void sink_failed(struct fetch_run *r, const struct ms_msg *m,
			struct ms_err *se)
{
	if (se->scope == MS_SCOPE_MESSAGE) {
		ms_log(MS_LOG_WARN, "message %u (UIDL %s): skipped: %s",
		       m->uid, m->uidl, se->msg);
		return;
	}
	if (!r->stop)
		r->first = *se;
	r->stop = 1;
}

static void size_check(const struct ms_msg *m, uint64_t got)
{
	/* got == size + 2: the message had no final newline and the server
	 * added the CRLF that must precede the terminating dot. */
	if (got != m->size && got != m->size + 2)
		ms_log(MS_LOG_WARN, "message %u (UIDL %s): received "
		       "%llu bytes, LIST said %llu", m->uid, m->uidl,
		       (unsigned long long)got, (unsigned long long)m->size);
}

static int retr_one(struct ms_source *s, const struct ms_msg *m,
		    struct fetch_run *r, struct ms_err *e)
{
	struct ms_err se;
	struct ms_pop3_ml ml;
	uint64_t got = 0;
	size_t used, on;
	char ex[512];
	int rc, began = 0;

	if ((rc = status(s, e)) < 0)
		return ms_err_prefix(e, "RETR %u (UIDL %s)", m->uid, m->uidl);
	if (rc == 0) {
		ms_log(MS_LOG_WARN, "message %u (UIDL %s): RETR "
		       "refused, skipped: %s", m->uid, m->uidl,
		       server_text(s, ex, sizeof ex));
		return 0;
	}
	ms_err_clear(&se);
	if (!r->stop) {
		if (r->sink->begin(r->ctx, m, m->size, &se) < 0)
			sink_failed(r, m, &se);
		else
			began = 1;
	}
	ms_pop3_ml_init(&ml);
	while (!ms_pop3_ml_done(&ml)) {
		if (s->roff == s->rlen && (rc = fill(s, e)) < 0) {
			if (began)
				r->sink->abort(r->ctx);
			return ms_err_prefix(e, "message %u (UIDL "
					     "%s) cut short", m->uid,
					     m->uidl);
		}
		used = ms_pop3_ml_feed(&ml, s->rbuf + s->roff,
				       s->rlen - s->roff, s->obuf, &on);
		s->roff += used;
		got += on;
		if (began && on &&
		    r->sink->data(r->ctx, s->obuf, on, &se) < 0) {
			r->sink->abort(r->ctx);
			began = 0;
			sink_failed(r, m, &se);
		}
	}
	if (!began)
		return 0;
	size_check(m, got);
	if (r->sink->end(r->ctx, m, &se) < 0)
		sink_failed(r, m, &se);
	return 0;
}

static int check_msgs(struct ms_source *s, const struct ms_msg *msgs,
		      size_t n, struct ms_err *e)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (msgs[i].uid == 0 || msgs[i].uid > s->count)
			return ms_err_set(e, MS_EINTERNAL, "no "
					  "message %u in this session",
					  msgs[i].uid);
	return alive(s, e);
}

/* Read and drop the replies to RETRs sent ahead that no fetch took. */
static int drain_ahead(struct ms_source *s, struct ms_err *e)
{
	struct fetch_run r = { .stop = 1 }; /* no sink: bytes are dropped */
	size_t i;
	int rc = 0;

	for (i = 0; i < s->nahead && rc == 0; i++)
		rc = retr_one(s, &s->ahead[i], &r, e);
	s->nahead = 0;
	return rc;
}

/* RETRs the previous fetch sent ahead: in flight for these messages when
 * msgs starts with them (*sent), else their replies are dropped. */
static int take_ahead(struct ms_source *s, const struct ms_msg *msgs,
		      size_t n, size_t *sent, struct ms_err *e)
{
	size_t i, k = s->nahead;

	*sent = 0;
	for (i = 0; i < k && i < n && msgs[i].uid == s->ahead[i].uid; i++)
		;
	if (i < k)
		return drain_ahead(s, e);
	s->nahead = 0;
	*sent = k;
	return 0;
}

static int pop3_fetch(struct ms_source *s, const struct ms_msg *msgs,
		      size_t n, const struct ms_fetch_sink *sink, void *ctx,
		      struct ms_err *e)
{
	struct fetch_run r = { .sink = sink, .ctx = ctx };
	size_t win = s->pipelining ? WINDOW : 1, sent = 0, done = 0, i;
	const struct ms_msg *next = s->next;
	size_t nnext = s->pipelining ? s->nnext : 0;
	int rc;

	s->next = NULL; /* a hint for this call only */
	s->nnext = 0;
	for (i = 0; i < nnext; i++)
		if (next[i].uid == 0 || next[i].uid > s->count)
			nnext = 0; /* not ours to judge here: no look-ahead */
	if ((rc = check_msgs(s, msgs, n, e)) < 0 ||
	    (rc = take_ahead(s, msgs, n, &sent, e)) < 0)
		return rc;
	while (done < n) {
		/* Refill the window in batches to save syscalls; once this
		 * call's RETRs are all out, go on with the next call's so the
		 * server streams on while the caller commits. */
		if (!r.stop && sent - done + s->nahead <= win / 2) {
			while (sent < n && sent - done < win)
				if ((rc = queue_cmd(s, e, "RETR %u",
						    msgs[sent++].uid)) < 0)
					return rc;
			while (sent == n && s->nahead < nnext &&
			       sent - done + s->nahead < win) {
				s->ahead[s->nahead] = next[s->nahead];
				if ((rc = queue_cmd(s, e, "RETR %u",
						    next[s->nahead++].uid)) < 0)
					return rc;
			}
			if ((rc = flush_cmds(s, e)) < 0)
				return rc;
		}
		if (done == sent)
			break;
		if ((rc = retr_one(s, &msgs[done], &r, e)) < 0)
			return rc;
		done++;
	}
	if (r.stop) {
		if (e)
			*e = r.first;
		return r.first.code ? r.first.code : MS_EINTERNAL;
	}
	return 0;
}

static void pop3_ahead(struct ms_source *s, const struct ms_msg *msgs,
		       size_t n)
{
	s->next = msgs;
	s->nnext = n;
}

static int pop3_remove(struct ms_source *s, const struct ms_msg *msgs,
		       size_t n, struct ms_err *e)
{
	size_t win = s->pipelining ? WINDOW : 1, sent = 0, done = 0;
	char ex[512];
	int rc, bad = 0;

	if ((rc = check_msgs(s, msgs, n, e)) < 0 ||
	    (rc = drain_ahead(s, e)) < 0)
		return rc;
	while (done < n) {
		if (sent - done <= win / 2) {
			while (sent < n && sent - done < win)
				if ((rc = queue_cmd(s, e, "DELE %u",
						    msgs[sent++].uid)) < 0)
					return rc;
			if ((rc = flush_cmds(s, e)) < 0)
				return rc;
		}
		if ((rc = status(s, e)) < 0)
			return rc;
		if (rc == 0 && !bad) {
			/* Keep reading the replies in flight; DELEs that
			 * were accepted still commit only at QUIT. */
			bad = ms_err_set(e, MS_EPROTO, "DELE %u "
					 "(UIDL %s) refused: %s",
					 msgs[done].uid, msgs[done].uidl,
					 server_text(s, ex, sizeof ex));
		}
		done++;
	}
	return bad;
}

static int pop3_close(struct ms_source *s, int commit, struct ms_err *e)
{
	char ex[512];
	int rc = 0;

	if (!s)
		return 0;
	if (!commit)
		goto out;
	if (s->dead) {
		rc = ms_err_set(e, MS_ETEMP, "QUIT not sent: connection "
				"unusable: deletions not committed");
		goto out;
	}
	if ((rc = drain_ahead(s, e)) < 0 ||
	    (rc = queue_cmd(s, e, "QUIT")) < 0 ||
	    (rc = flush_cmds(s, e)) < 0 || (rc = status(s, e)) < 0) {
		ms_err_prefix(e, "QUIT failed: deletions not committed");
		goto out;
	}
	if (rc == 0)
		rc = ms_err_set(e, MS_EPROTO, "QUIT failed: deletions not "
				"committed: %s", server_text(s, ex, sizeof ex));
	else
		rc = 0;
out:
	source_free(s);
	return rc;
}

const struct ms_source_ops ms_pop3_source = {
	.proto = "pop3",
	.open = pop3_open,
	.list = pop3_list,
	.select = pop3_select,
	.ids = pop3_ids,
	.meta = NULL,
	.older_than = NULL,
	.fetch = pop3_fetch,
	.ahead = pop3_ahead,
	.remove = pop3_remove,
	.flags = NULL,
	.close = pop3_close,
};
