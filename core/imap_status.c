/*
 * imap_status.c: STATUS for every folder in one round trip.
 *
 * A run with nothing new should cost a few round trips per account, not
 * two per folder: all STATUS commands are queued and sent in one write,
 * and the answers come back in order.  The engine compares UIDVALIDITY,
 * UIDNEXT, MESSAGES and HIGHESTMODSEQ with its state and selects only the
 * folders that changed.  The untagged "* STATUS" for command k arrives
 * before k's tagged answer, so it belongs to the oldest unanswered one.
 */
#include "imap_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

#define STATUS_BATCH 200

struct status_run {
	struct ms_folder_status *st; /* one per folder, zeroed */
	struct ms_buf name;
	size_t next;                 /* oldest unanswered command */
	size_t n;
	const char *const *names;
};

/* "(UIDVALIDITY 1 UIDNEXT 5 MESSAGES 4 HIGHESTMODSEQ 7)" */
static int status_items(struct ms_source *s, struct ms_folder_status *st,
			struct ms_err *e)
{
	struct ms_imap_tok t, v;
	char key[16];
	int rc;

	if ((rc = imap_tok(s, &t, e)))
		return rc;
	if (t.type != MS_IMAP_T_LPAREN)
		return -1;
	for (;;) {
		if ((rc = imap_tok(s, &t, e)))
			return rc;
		if (t.type == MS_IMAP_T_RPAREN)
			return 0;
		if (t.type != MS_IMAP_T_ATOM || t.n >= sizeof key)
			return -1;
		/* t.s is only valid until the next token */
		memcpy(key, t.s, t.n);
		key[t.n] = '\0';
		if ((rc = imap_tok(s, &v, e)))
			return rc;
		if (v.type != MS_IMAP_T_NUMBER)
			return -1;
		if (!strcasecmp(key, "UIDVALIDITY") && v.num <= 0xffffffffu)
			st->uidvalidity = (uint32_t)v.num;
		else if (!strcasecmp(key, "UIDNEXT") && v.num <= 0xffffffffu)
			st->uidnext = (uint32_t)v.num;
		else if (!strcasecmp(key, "MESSAGES") && v.num <= 0xffffffffu)
			st->exists = (uint32_t)v.num;
		else if (!strcasecmp(key, "HIGHESTMODSEQ"))
			st->highestmodseq = v.num;
	}
}

static int status_fn(struct ms_source *s, struct imap_resp *r,
		     struct status_run *sr, struct ms_err *e)
{
	struct ms_folder_status tmp;
	int rc;

	if (r->has_num || strcmp(r->name, "STATUS"))
		return 0;
	memset(&tmp, 0, sizeof tmp);
	if ((rc = imap_astring(s, &sr->name, e)) ||
	    (rc = status_items(s, &tmp, e)) || (rc = imap_skip(s, r, e))) {
		if (rc == -1)
			rc = imap_fatal(s, ms_err_set(e, MS_EPROTO,
				"IMAP: malformed STATUS response \"%s\"",
				s->p.ex), e);
		return rc;
	}
	/* a name that is not the one asked for is not trusted */
	if (sr->next < sr->n && !strcmp(sr->name.s, sr->names[sr->next]))
		sr->st[sr->next] = tmp;
	return 1;
}

const char *imap_status_items(const struct ms_source *s)
{
	return (s->caps & IMAP_CAP_CONDSTORE)
		? " (UIDVALIDITY UIDNEXT MESSAGES HIGHESTMODSEQ)"
		: " (UIDVALIDITY UIDNEXT MESSAGES)";
}

/* ---- LIST-STATUS: answers that came with LIST ---- */

void imap_lstatus_clear(struct ms_source *s)
{
	for (size_t i = 0; i < s->nlst; i++)
		free(s->lst[i].name);
	free(s->lst);
	s->lst = NULL;
	s->nlst = s->caplst = 0;
	s->lst_valid = 0;
}

int imap_lstatus_fn(struct ms_source *s, struct imap_resp *r,
		    struct ms_buf *name, struct ms_err *e)
{
	struct ms_folder_status tmp;
	struct imap_lstatus *v;
	int rc;

	memset(&tmp, 0, sizeof tmp);
	if ((rc = imap_astring(s, name, e)) ||
	    (rc = status_items(s, &tmp, e)) || (rc = imap_skip(s, r, e))) {
		if (rc == -1)
			rc = imap_fatal(s, ms_err_set(e, MS_EPROTO,
				"IMAP: malformed STATUS response \"%s\"",
				s->p.ex), e);
		return rc;
	}
	if (memchr(name->s, '\0', name->len))
		return 1;
	if (s->nlst == s->caplst) {
		size_t nc = s->caplst ? s->caplst * 2 : 32;
		if (!(v = realloc(s->lst, nc * sizeof *v)))
			return ms_err_set(e, MS_EINTERNAL, "out of memory");
		s->lst = v;
		s->caplst = nc;
	}
	if (!(s->lst[s->nlst].name = strdup(name->s)))
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	s->lst[s->nlst++].st = tmp;
	return 1;
}

static int lst_cmp(const void *a, const void *b)
{
	return strcmp(((const struct imap_lstatus *)a)->name,
		      ((const struct imap_lstatus *)b)->name);
}

void imap_lstatus_done(struct ms_source *s)
{
	if (s->nlst)
		qsort(s->lst, s->nlst, sizeof *s->lst, lst_cmp);
	s->lst_valid = 1;
}

static const struct imap_lstatus *lst_find(const struct ms_source *s,
					   const char *name)
{
	struct imap_lstatus key = { .name = (char *)name };

	if (!s->lst_valid || !s->nlst)
		return NULL;
	return bsearch(&key, s->lst, s->nlst, sizeof *s->lst, lst_cmp);
}

static int queue_all(struct ms_source *s, const char *const *names, size_t n,
		     unsigned *first, struct ms_err *e)
{
	const char *items = imap_status_items(s);
	struct ms_buf cmd;
	unsigned tag;
	int rc = 0;

	ms_buf_init(&cmd, 64 * 1024);
	for (size_t i = 0; i < n && !rc; i++) {
		ms_buf_reset(&cmd);
		if (!(rc = ms_buf_adds(&cmd, "STATUS ", e)) &&
		    !(rc = imap_add_quoted(&cmd, names[i], e)) &&
		    !(rc = ms_buf_adds(&cmd, items, e)) &&
		    !(rc = imap_queue(s, cmd.s, &tag, e)) && i == 0)
			*first = tag;
	}
	ms_buf_free(&cmd);
	return rc ? rc : imap_flush(s, e);
}

static int read_all(struct ms_source *s, struct status_run *sr,
		    unsigned first, struct ms_err *e)
{
	struct imap_resp r;
	unsigned long seen = 0;
	int rc;

	while (sr->next < sr->n) {
		if ((rc = imap_resp(s, &r, e)))
			return rc;
		if (r.kind == MS_IMAP_TAGGED) {
			if (r.tag != first + sr->next)
				return imap_fatal(s, ms_err_set(e, MS_EPROTO,
					"IMAP: unexpected tagged response "
					"\"%s\" to STATUS", s->p.ex), e);
			if (r.status != IMAP_OK)
				memset(&sr->st[sr->next], 0, sizeof *sr->st);
			sr->next++;
			continue;
		}
		if (r.kind == MS_IMAP_CONTINUE || ++seen > IMAP_MAX_UNTAGGED)
			return imap_fatal(s, ms_err_set(e, MS_EPROTO,
				"IMAP: unexpected responses to STATUS"), e);
		if ((rc = status_fn(s, &r, sr, e)) < 0)
			return rc;
		if (!rc && (rc = imap_untagged(s, &r, e)))
			return rc;
	}
	return 0;
}

int imap_status_many(struct ms_source *s, const char *const *names, size_t n,
		     ms_status_fn cb, void *ctx, struct ms_err *e)
{
	struct status_run sr;
	struct ms_folder_status *all, *ask_st = NULL;
	const char **ask = NULL;
	size_t *ask_i = NULL, nask = 0;
	unsigned first = 0;
	int rc = 0;

	if (!n)
		return 0;
	if ((rc = imap_usable(s, 0, e)))
		return rc;
	memset(&sr, 0, sizeof sr);
	if (!(all = calloc(n, sizeof *all)) ||
	    !(ask = calloc(n, sizeof *ask)) ||
	    !(ask_i = calloc(n, sizeof *ask_i)) ||
	    !(ask_st = calloc(n, sizeof *ask_st))) {
		rc = ms_err_set(e, MS_EINTERNAL, "out of memory");
		goto out;
	}
	/* what LIST-STATUS answered already is not asked again */
	for (size_t i = 0; i < n; i++) {
		const struct imap_lstatus *l = lst_find(s, names[i]);
		if (l) {
			all[i] = l->st;
		} else {
			ask_i[nask] = i;
			ask[nask++] = names[i];
		}
	}
	ms_buf_init(&sr.name, 64 * 1024);
	/* batches keep what the server must buffer for us small: a server
	 * blocked on a full send buffer stops reading our commands */
	for (size_t i = 0; i < nask && !rc; i += STATUS_BATCH) {
		sr.n = nask - i < STATUS_BATCH ? nask - i : STATUS_BATCH;
		sr.names = ask + i;
		sr.st = ask_st + i;
		sr.next = 0;
		if (!(rc = queue_all(s, sr.names, sr.n, &first, e)))
			rc = read_all(s, &sr, first, e);
	}
	for (size_t i = 0; i < nask && !rc; i++)
		all[ask_i[i]] = ask_st[i];
	for (size_t i = 0; i < n && !rc; i++)
		rc = cb(ctx, i, &all[i]);
	ms_buf_free(&sr.name);
out:
	free(all);
	free(ask);
	free(ask_i);
	free(ask_st);
	return rc;
}
