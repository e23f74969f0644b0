/*
 * sync_pop3.c: the plan for a POP3 maildrop.
 *
 * Identity is the UIDL plus the LIST size; message numbers are used only
 * within this session.  A UIDL the state knows with another size is taken
 * as a reused UIDL for a different message and fetched again (a duplicate
 * is preferred to a loss).  DELE is sent only for messages in the durable
 * state, and the state forgets them only after QUIT's +OK, the POP3
 * commit: a run that dies between DELE and QUIT leaves the messages on the
 * server and recorded, so the next run skips and deletes them.
 *
 * A server that renumbers every UIDL (Dovecot's %08Xu%08Xv after a
 * UIDVALIDITY change, F18c) would make keep mode store the whole maildrop
 * again.  When more than half of the known UIDLs are gone and at least as
 * many unknown ones appeared, the stored copies of the vanished UIDLs are
 * hashed and every fetched message whose content matches one of them is
 * recorded under its new UIDL instead of being stored a second time;
 * nothing is deleted on the server that run.
 */
#include "sync_int.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "rules.h"

/* One listed message in 16 bytes; its UIDL lives in the plan's pool.  A
 * maildrop of 100,000 messages costs about 3.5 MB here, not the 11 MB of
 * struct ms_msg copies (which hold room for a 70-byte UIDL each). */
struct pop_ent {
	uint64_t size;          /* LIST size */
	uint32_t num;           /* message number (this session) */
	uint32_t uoff;          /* UIDL at pool.s + uoff; 0: none ("") */
};

struct pop3_plan {
	struct ms_folder_run *fr;
	struct pop_ent *all;    /* in message number order */
	size_t nall, capall;
	struct ms_buf pool;     /* the UIDLs, each NUL-ended; byte 0 is "" */
	uint32_t *byuidl;       /* indices into all, by UIDL (with UIDLs) */
	uint32_t *todo;         /* to fetch: indices into all, ascending */
	size_t ntodo;
	uint32_t *del;          /* to delete: indices into all */
	size_t ndel;
	int no_uidl;
	int mass;             /* UIDL mass change: no deletions this run */
};

/* A stored copy whose UIDL vanished from the server (mass change). */
struct gone_ent {
	unsigned char sha[32];
	char uidl[MS_UIDL_MAX + 1];
	time_t first_seen;
	int used;
};

struct mass_ctx {
	struct pop3_plan *p;
	unsigned long known, gone, fresh, matched;
	struct gone_ent *v;
	size_t n, cap;
};

static const char *uidl_of(const struct pop3_plan *p, uint32_t i)
{
	return p->pool.s + p->all[i].uoff;
}

/* all[i] as the sources and stores see a message. */
static void ent_msg(const struct pop3_plan *p, uint32_t i, struct ms_msg *m)
{
	const char *u = uidl_of(p, i);

	memset(m, 0, sizeof *m);
	m->uid = p->all[i].num;
	memcpy(m->uidl, u, strnlen(u, MS_UIDL_MAX));
	m->size = p->all[i].size;
	m->has_meta = 1;
}

static void todo_at(const void *ctx, size_t i, struct ms_msg *out)
{
	const struct pop3_plan *p = ctx;

	ent_msg(p, p->todo[i], out);
}

static void del_at(const void *ctx, size_t i, struct ms_msg *out)
{
	const struct pop3_plan *p = ctx;

	ent_msg(p, p->del[i], out);
}

static int list_cb(void *ctx, const struct ms_msg *m, struct ms_err *e)
{
	struct pop3_plan *p = ctx;
	size_t n = strnlen(m->uidl, MS_UIDL_MAX);
	struct pop_ent *x;
	int rc;

	if ((rc = ms_sync_grow((void **)&p->all, &p->capall, p->nall,
			       sizeof *p->all, e)) < 0)
		return rc;
	if (!p->pool.len && (rc = ms_buf_addc(&p->pool, '\0', e)) < 0)
		return rc;
	x = &p->all[p->nall];
	x->size = m->size;
	x->num = m->uid;
	x->uoff = 0;
	if (!n) {
		p->no_uidl = 1;
	} else {
		if (p->pool.len > UINT32_MAX - MS_UIDL_MAX - 1)
			return ms_err_set(e, MS_EINTERNAL, "out of memory");
		x->uoff = (uint32_t)p->pool.len;
		if ((rc = ms_buf_add(&p->pool, m->uidl, n, e)) < 0 ||
		    (rc = ms_buf_addc(&p->pool, '\0', e)) < 0)
			return rc;
	}
	p->nall++;
	return 0;
}

static int cmp_byuidl(const void *a, const void *b, void *ctx)
{
	const struct pop3_plan *p = ctx;

	return strcmp(uidl_of(p, *(const uint32_t *)a),
		      uidl_of(p, *(const uint32_t *)b));
}

/* First position in byuidl whose UIDL is >= u. */
static size_t uidl_lower(const struct pop3_plan *p, const char *u)
{
	size_t lo = 0, hi = p->byuidl ? p->nall : 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(uidl_of(p, p->byuidl[mid]), u) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int on_server(const struct pop3_plan *p, const char *u)
{
	size_t i = uidl_lower(p, u);

	return i < p->nall && p->byuidl &&
	       strcmp(uidl_of(p, p->byuidl[i]), u) == 0;
}

/* Order the listing by UIDL once (for the duplicate check, the
 * reconciliation and the mass-change count); then RFC 1939 allows two
 * messages with one UIDL, but in keep mode we could not tell them apart
 * next time, so refuse loudly instead of skipping one. */
static int sort_uidls(struct pop3_plan *p, struct ms_err *e)
{
	if (p->no_uidl || !p->nall)
		return 0;
	if (!(p->byuidl = malloc(p->nall * sizeof *p->byuidl)))
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	for (size_t i = 0; i < p->nall; i++)
		p->byuidl[i] = (uint32_t)i;
	qsort_r(p->byuidl, p->nall, sizeof *p->byuidl, cmp_byuidl, p);
	if (p->fr->ar->a->policy == MS_POLICY_DELETE)
		return 0;
	for (size_t i = 1; i < p->nall; i++) {
		uint32_t a = p->byuidl[i - 1], b = p->byuidl[i];

		if (strcmp(uidl_of(p, a), uidl_of(p, b)) != 0)
			continue;
		if (p->all[a].num > p->all[b].num) {
			uint32_t t = a;

			a = b;
			b = t;
		}
		return ms_err_set(e, MS_EPROTO, "messages %u and %u share "
				  "UIDL %s; they cannot be told apart "
				  "(use policy = delete)", p->all[a].num,
				  p->all[b].num, uidl_of(p, a));
	}
	return 0;
}

/* What to fetch: unknown UIDLs, and known ones whose size changed. */
static int plan_fetch(struct pop3_plan *p, struct ms_err *e)
{
	struct ms_folder_run *fr = p->fr;
	struct ms_msg m;
	uint64_t size;

	if (!(p->todo = malloc((p->nall + 1) * sizeof *p->todo)) ||
	    !(p->del = malloc((p->nall + 1) * sizeof *p->del)))
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	for (size_t i = 0; i < p->nall; i++) {
		const struct pop_ent *x = &p->all[i];
		const char *u = uidl_of(p, (uint32_t)i);

		if (u[0] && ms_state_has_uidl(fr->state, u, &size, NULL)) {
			if (size == x->size)
				continue;
			ms_log(MS_LOG_WARN, "message %u: UIDL %s "
			       "was %llu bytes, now %llu: fetching it again",
			       x->num, u, (unsigned long long)size,
			       (unsigned long long)x->size);
		}
		if (!ms_rules_size_ok(fr->ar->a, x->size)) {
			fr->ar->st->skipped++;
			ent_msg(p, (uint32_t)i, &m);
			ms_log(MS_LOG_WARN, "%s: skipped: %llu bytes "
			       "exceed max_message_size",
			       ms_sync_msg_name(fr, &m),
			       (unsigned long long)x->size);
			continue;
		}
		p->todo[p->ntodo++] = (uint32_t)i;
		fr->would_fetch++;
		fr->would_bytes += x->size;
	}
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Is the stored copy m one of the messages to fetch (UIDL and size)? */
static int is_todo(void *ctx, const struct ms_msg *m)
{
	struct pop3_plan *p = ctx;

	for (size_t i = uidl_lower(p, m->uidl); i < p->nall; i++) {
		uint32_t k = p->byuidl[i];

		if (strcmp(uidl_of(p, k), m->uidl) != 0)
			break;
		if (p->all[k].size == m->size &&
		    bsearch(&k, p->todo, p->ntodo, sizeof *p->todo, cmp_u32))
			return 1;
	}
	return 0;
}

/* Stored-but-unrecorded copies (an interrupted run) are recorded, not
 * fetched again; a copy counts only with the same UIDL and size. */
static int reconcile(struct pop3_plan *p, struct ms_err *e)
{
	struct ms_folder_run *fr = p->fr;
	size_t k = 0;
	uint64_t size;
	int rc;

	if ((rc = ms_sync_reconcile(fr, is_todo, p, e)) < 0 || !fr->rebuilt)
		return rc;
	for (size_t i = 0; i < p->ntodo; i++) {
		uint32_t j = p->todo[i];

		if (!ms_state_has_uidl(fr->state, uidl_of(p, j), &size, NULL) ||
		    size != p->all[j].size)
			p->todo[k++] = j;
	}
	fr->would_fetch -= p->ntodo - k;
	p->ntodo = k;
	return 0;
}

static int cmp_num(const void *k, const void *b)
{
	uint32_t num = *(const uint32_t *)k;
	const struct pop_ent *x = b;

	return num < x->num ? -1 : num > x->num;
}

/* Without UIDL (delete policy only) a message is deleted because it was
 * stored in this very session, identified by its number. */
static void on_durable_no_uidl(struct ms_folder_run *fr, const struct ms_msg *m)
{
	struct pop3_plan *p = fr->hook_ctx;
	const struct pop_ent *x = bsearch(&m->uid, p->all, p->nall,
					  sizeof *p->all, cmp_num);

	if (x)
		p->del[p->ndel++] = (uint32_t)(x - p->all);
}

static void plan_deletes(struct pop3_plan *p)
{
	struct ms_folder_run *fr = p->fr;
	const struct ms_account *a = fr->ar->a;
	uint64_t size;
	time_t first;

	if (a->policy == MS_POLICY_KEEP || p->no_uidl || p->mass ||
	    fr->no_delete)
		return;
	if (a->policy == MS_POLICY_DELETE_AFTER && fr->ar->clock_back)
		return; /* ages from a clock that went backwards: none */
	for (size_t i = 0; i < p->nall; i++) {
		if (!ms_state_has_uidl(fr->state, uidl_of(p, (uint32_t)i),
				       &size, &first) ||
		    size != p->all[i].size)
			continue;
		if (ms_rules_delete_due(a, first, fr->ar->now))
			p->del[p->ndel++] = (uint32_t)i;
	}
}

static int cmp_sha(const void *a, const void *b)
{
	return memcmp(a, b, 32);
}

/* Hash the stored copies of the vanished UIDLs. */
static int add_gone(void *ctx, const struct ms_msg *m, const char *ref,
		    struct ms_err *e)
{
	struct mass_ctx *c = ctx;
	struct ms_folder_run *fr = c->p->fr;
	struct gone_ent *g;
	uint64_t size;
	time_t first;
	int rc;

	if (!m->uidl[0] || on_server(c->p, m->uidl) ||
	    !ms_state_has_uidl(fr->state, m->uidl, &size, &first))
		return 0;
	if ((rc = ms_sync_grow((void **)&c->v, &c->cap, c->n, sizeof *c->v,
			       e)) < 0)
		return rc;
	g = &c->v[c->n];
	memset(g, 0, sizeof *g);
	if ((rc = fr->ar->sops->digest(fr->sf, ref, g->sha, e)) < 0)
		return rc;
	memcpy(g->uidl, m->uidl, sizeof g->uidl);
	g->first_seen = first;
	c->n++;
	return 0;
}

/* The sink's question: is this content one of the vanished copies? */
static int match_gone(struct ms_folder_run *fr, const unsigned char sha[32],
		      const struct ms_msg *meta, struct ms_err *e)
{
	struct mass_ctx *c = fr->match_ctx;
	struct gone_ent *g = bsearch(sha, c->v, c->n, sizeof *c->v, cmp_sha);
	struct ms_msg old;
	int rc;

	if (!g)
		return 0;
	while (g > c->v && !memcmp(g[-1].sha, sha, 32))
		g--;
	for (; g < c->v + c->n && !memcmp(g->sha, sha, 32); g++) {
		if (g->used)
			continue;
		/* the new UIDL keeps the old first-seen time (delete-after) */
		g->used = 1;
		memset(&old, 0, sizeof old);
		memcpy(old.uidl, g->uidl, sizeof old.uidl);
		if ((rc = ms_state_add(fr->state, meta, g->first_seen, e)) < 0 ||
		    (rc = ms_state_del(fr->state, &old, e)) < 0)
			return rc;
		c->matched++;
		return 1;
	}
	return 0;
}

/* F18c: more than half of the known UIDLs gone and at least as many new
 * ones: match by content instead of storing everything again.  Counted
 * in one pass over the listing by UIDL: the known UIDLs still on the
 * server, and the listed messages the state does not know. */
static int mass_detect(struct pop3_plan *p, struct mass_ctx *c,
		       struct ms_err *e)
{
	struct ms_folder_run *fr = p->fr;
	unsigned long still = 0;
	int rc, known = 0;

	memset(c, 0, sizeof *c);
	c->p = p;
	/* a state rebuilt from the store this run counts too: its records
	 * are the stored copies, which is what a match needs */
	if (p->no_uidl || !p->nall || !ms_state_count(fr->state))
		return 0;
	for (size_t i = 0; i < p->nall; i++) {
		const char *u = uidl_of(p, p->byuidl[i]);

		if (!i || strcmp(uidl_of(p, p->byuidl[i - 1]), u) != 0) {
			known = ms_state_has_uidl(fr->state, u, NULL, NULL);
			still += known;
		}
		c->fresh += !known;
	}
	c->known = ms_state_count(fr->state);
	c->gone = c->known - still;
	if (c->gone * 2 <= c->known || c->fresh < c->gone)
		return 0;
	p->mass = 1;
	if (fr->ar->o->dry_run || !fr->ar->sops->digest || !p->ntodo)
		return 0;
	if ((rc = fr->ar->sops->scan(fr->sf, add_gone, c, e)) < 0)
		return rc;
	qsort(c->v, c->n, sizeof *c->v, cmp_sha);
	fr->match = match_gone;
	fr->match_ctx = c;
	return 0;
}

static void mass_report(struct pop3_plan *p, struct mass_ctx *c)
{
	struct ms_folder_run *fr = p->fr;

	if (!p->mass)
		return;
	if (fr->match)
		ms_log(MS_LOG_WARN, "%lu of %lu UIDLs changed since the "
		       "last run; matched by content, %lu new",
		       c->gone, c->known, fr->fetched);
	else if (fr->ar->o->dry_run)
		ms_log(MS_LOG_WARN, "%lu of %lu UIDLs changed since the "
		       "last run (dry run)", c->gone, c->known);
	else
		ms_log(MS_LOG_WARN, "%lu of %lu UIDLs changed since the "
		       "last run; this store cannot match by content, %lu "
		       "stored again", c->gone, c->known, fr->fetched);
	fr->match = NULL;
	fr->match_ctx = NULL;
}

/* The UIDLs of the DELEs sent: forgotten after QUIT's +OK. */
static int keep_pending(struct pop3_plan *p, struct ms_err *e)
{
	struct ms_buf b;
	int rc = 0;

	ms_buf_init(&b, 0);
	for (size_t i = 0; i < p->ndel && rc == 0; i++)
		rc = ms_buf_add(&b, uidl_of(p, p->del[i]),
				strlen(uidl_of(p, p->del[i])) + 1, e);
	if (rc < 0) {
		ms_buf_free(&b);
		return rc;
	}
	p->fr->pending = ms_buf_detach(&b, NULL);
	p->fr->npending = p->ndel;
	return 0;
}

static int pop3_plan_run(struct pop3_plan *p, struct ms_err *e)
{
	struct ms_folder_run *fr = p->fr;
	const struct ms_account *a = fr->ar->a;
	struct mass_ctx mc;
	int rc;

	memset(&mc, 0, sizeof mc);
	if ((rc = fr->ar->sess.ops->ids(fr->ar->sess.src, list_cb, p, e)) < 0)
		return rc;
	if (p->no_uidl && a->policy != MS_POLICY_DELETE)
		return ms_err_set(e, MS_EPROTO, "server does not support UIDL; "
				  "only policy = delete can be used");
	if ((rc = sort_uidls(p, e)) < 0 || (rc = plan_fetch(p, e)) < 0)
		return rc;
	if (p->ntodo && !p->no_uidl && fr->state_status == MS_STATE_OK &&
	    (rc = reconcile(p, e)) < 0)
		return rc;
	if (p->no_uidl) {
		fr->hook_ctx = p;
		fr->on_durable = on_durable_no_uidl;
	}
	if ((rc = mass_detect(p, &mc, e)) < 0)
		goto out;
	fr->total = p->ntodo;
	if (!fr->ar->o->dry_run &&
	    (rc = ms_sync_fetch_at(fr, todo_at, p, p->ntodo, e)) < 0)
		goto out;
	fr->on_durable = NULL;
	mass_report(p, &mc);
	plan_deletes(p);
	if (fr->ar->o->dry_run) {
		fr->would_delete = p->ndel;
	}
	if ((rc = ms_sync_remove_at(fr, del_at, p, p->ndel, e)) < 0)
		goto out;
	if (!fr->ar->o->dry_run && p->ndel)
		rc = keep_pending(p, e);
out:
	fr->match = NULL;     /* mc lives on this stack frame */
	fr->match_ctx = NULL;
	free(mc.v);
	return rc;
}

int ms_sync_pop3_folder(struct ms_folder_run *fr, struct ms_err *e)
{
	struct pop3_plan p;
	int rw = fr->ar->a->policy != MS_POLICY_KEEP && !fr->ar->o->dry_run;
	int rc;

	memset(&p, 0, sizeof p);
	p.fr = fr;
	ms_buf_init(&p.pool, 0);
	if ((rc = fr->ar->sess.ops->select(fr->ar->sess.src, "INBOX", rw,
					   &fr->fs, e)) < 0)
		return rc;
	if (fr->state_status != MS_STATE_OK && (rc = ms_sync_rebuild(fr, e)) < 0)
		return rc;
	if ((rc = ms_sync_check_present(fr, e)) < 0)
		return rc;
	rc = pop3_plan_run(&p, e);
	free(p.all);
	ms_buf_free(&p.pool);
	free(p.byuidl);
	free(p.todo);
	free(p.del);
	return rc;
}

int ms_sync_pop3_finish(struct ms_folder_run *fr, int quit_ok,
			struct ms_err *e)
{
	int rc = 0;

	if (quit_ok) {
		const char *u = fr->pending;
		struct ms_msg m;

		for (size_t i = 0; i < fr->npending && rc == 0; i++) {
			size_t n = strlen(u);

			memset(&m, 0, sizeof m);
			memcpy(m.uidl, u, n < MS_UIDL_MAX ? n : MS_UIDL_MAX);
			if (n)
				rc = ms_state_del(fr->state, &m, e);
			u += n + 1;
		}
		if (rc == 0) {
			fr->deleted += fr->npending;
			fr->ar->st->deleted += fr->npending;
		}
	}
	free(fr->pending);
	fr->pending = NULL;
	fr->npending = 0;
	if (rc == 0)
		rc = ms_sync_folder_finish(fr, e);
	return rc;
}
