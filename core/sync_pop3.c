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

#include "log.h"
#include "rules.h"

struct pop3_plan {
	struct ms_folder_run *fr;
	struct ms_msg *all;
	size_t nall, capall;
	struct ms_msg *todo;  /* to fetch */
	size_t ntodo;
	struct ms_msg *sorted; /* todo sorted by UIDL, while reconciling */
	struct ms_msg *del;
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
	const struct ms_msg **srv;  /* the server's messages by UIDL */
	unsigned long known, gone, fresh, matched;
	struct gone_ent *v;
	size_t n, cap;
};

static int list_cb(void *ctx, const struct ms_msg *m, struct ms_err *e)
{
	struct pop3_plan *p = ctx;
	int rc;

	if ((rc = ms_sync_grow((void **)&p->all, &p->capall, p->nall,
			       sizeof *p->all, e)) < 0)
		return rc;
	p->all[p->nall++] = *m;
	if (!m->uidl[0])
		p->no_uidl = 1;
	return 0;
}

static int cmp_uidl(const void *a, const void *b)
{
	const struct ms_msg *x = *(const struct ms_msg *const *)a;
	const struct ms_msg *y = *(const struct ms_msg *const *)b;

	return strcmp(x->uidl, y->uidl);
}

/* RFC 1939 allows two messages with one UIDL; in keep mode we could not
 * tell them apart next time, so refuse loudly instead of skipping one. */
static int check_duplicates(struct pop3_plan *p, struct ms_err *e)
{
	const struct ms_msg **v;
	int rc = 0;

	if (p->nall < 2 || p->no_uidl)
		return 0;
	if (!(v = malloc(p->nall * sizeof *v)))
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	for (size_t i = 0; i < p->nall; i++)
		v[i] = &p->all[i];
	qsort(v, p->nall, sizeof *v, cmp_uidl);
	for (size_t i = 1; i < p->nall && rc == 0; i++) {
		if (strcmp(v[i - 1]->uidl, v[i]->uidl) != 0)
			continue;
		if (p->fr->ar->a->policy != MS_POLICY_DELETE)
			rc = ms_err_set(e, MS_EPROTO, "messages %u and %u share "
					"UIDL %s; they cannot be told apart "
					"(use policy = delete)", v[i - 1]->uid,
					v[i]->uid, v[i]->uidl);
	}
	free(v);
	return rc;
}

/* What to fetch: unknown UIDLs, and known ones whose size changed. */
static int plan_fetch(struct pop3_plan *p, struct ms_err *e)
{
	struct ms_folder_run *fr = p->fr;
	uint64_t size;

	if (!(p->todo = calloc(p->nall + 1, sizeof *p->todo)) ||
	    !(p->del = calloc(p->nall + 1, sizeof *p->del)))
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	for (size_t i = 0; i < p->nall; i++) {
		struct ms_msg *m = &p->all[i];

		if (m->uidl[0] && ms_state_has_uidl(fr->state, m->uidl, &size,
						    NULL)) {
			if (size == m->size)
				continue;
			ms_log(MS_LOG_WARN, "message %u: UIDL %s "
			       "was %llu bytes, now %llu: fetching it again",
			       m->uid, m->uidl,
			       (unsigned long long)size,
			       (unsigned long long)m->size);
		}
		if (!ms_rules_size_ok(fr->ar->a, m->size)) {
			fr->ar->st->skipped++;
			ms_log(MS_LOG_WARN, "%s: skipped: %llu bytes "
			       "exceed max_message_size",
			       ms_sync_msg_name(fr, m),
			       (unsigned long long)m->size);
			continue;
		}
		p->todo[p->ntodo++] = *m;
		fr->would_fetch++;
		fr->would_bytes += m->size;
	}
	return 0;
}

static int cmp_todo(const void *a, const void *b)
{
	return strcmp(((const struct ms_msg *)a)->uidl,
		      ((const struct ms_msg *)b)->uidl);
}

static int is_todo(void *ctx, const struct ms_msg *m)
{
	struct pop3_plan *p = ctx;
	const struct ms_msg *t = bsearch(m, p->sorted, p->ntodo,
					 sizeof *p->sorted, cmp_todo);

	return t && t->size == m->size;
}

/* Stored-but-unrecorded copies (an interrupted run) are recorded, not
 * fetched again; a copy counts only with the same UIDL and size. */
static int reconcile(struct pop3_plan *p, struct ms_err *e)
{
	struct ms_folder_run *fr = p->fr;
	size_t k = 0;
	uint64_t size;
	int rc;

	if (!(p->sorted = malloc(p->ntodo * sizeof *p->sorted)))
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	memcpy(p->sorted, p->todo, p->ntodo * sizeof *p->sorted);
	qsort(p->sorted, p->ntodo, sizeof *p->sorted, cmp_todo);
	rc = ms_sync_reconcile(fr, is_todo, p, e);
	free(p->sorted);
	p->sorted = NULL;
	if (rc < 0 || !fr->rebuilt)
		return rc;
	for (size_t i = 0; i < p->ntodo; i++)
		if (!ms_state_has_uidl(fr->state, p->todo[i].uidl, &size,
				       NULL) || size != p->todo[i].size)
			p->todo[k++] = p->todo[i];
	fr->would_fetch -= p->ntodo - k;
	p->ntodo = k;
	return 0;
}

/* Without UIDL (delete policy only) a message is deleted because it was
 * stored in this very session, identified by its number. */
static void on_durable_no_uidl(struct ms_folder_run *fr, const struct ms_msg *m)
{
	struct pop3_plan *p = fr->hook_ctx;

	p->del[p->ndel++] = *m;
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
		struct ms_msg *m = &p->all[i];

		if (!ms_state_has_uidl(fr->state, m->uidl, &size, &first) ||
		    size != m->size)
			continue;
		if (ms_rules_delete_due(a, first, fr->ar->now))
			p->del[p->ndel++] = *m;
	}
}

static int cmp_key_uidl(const void *k, const void *b)
{
	return strcmp(k, (*(const struct ms_msg *const *)b)->uidl);
}

static int on_server(const struct mass_ctx *c, const char *uidl)
{
	return bsearch(uidl, c->srv, c->p->nall, sizeof *c->srv,
		       cmp_key_uidl) != NULL;
}

static int count_gone(void *ctx, const struct ms_msg *m, time_t first_seen)
{
	struct mass_ctx *c = ctx;

	(void)first_seen;
	c->known++;
	if (m->uidl[0] && !on_server(c, m->uidl))
		c->gone++;
	return 0;
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

	if (!m->uidl[0] || on_server(c, m->uidl) ||
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
 * ones: match by content instead of storing everything again. */
static int mass_detect(struct pop3_plan *p, struct mass_ctx *c,
		       struct ms_err *e)
{
	struct ms_folder_run *fr = p->fr;
	int rc;

	memset(c, 0, sizeof *c);
	c->p = p;
	/* a state rebuilt from the store this run counts too: its records
	 * are the stored copies, which is what a match needs */
	if (p->no_uidl || !p->nall || !ms_state_count(fr->state))
		return 0;
	if (!(c->srv = malloc(p->nall * sizeof *c->srv)))
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	for (size_t i = 0; i < p->nall; i++) {
		c->srv[i] = &p->all[i];
		if (!ms_state_has_uidl(fr->state, p->all[i].uidl, NULL, NULL))
			c->fresh++;
	}
	qsort(c->srv, p->nall, sizeof *c->srv, cmp_uidl);
	ms_state_foreach(fr->state, count_gone, c);
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
	if ((rc = check_duplicates(p, e)) < 0 || (rc = plan_fetch(p, e)) < 0)
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
	    (rc = ms_sync_fetch(fr, p->todo, p->ntodo, e)) < 0)
		goto out;
	fr->on_durable = NULL;
	mass_report(p, &mc);
	plan_deletes(p);
	if (fr->ar->o->dry_run) {
		fr->would_delete = p->ndel;
	}
	if ((rc = ms_sync_remove(fr, p->del, p->ndel, e)) < 0)
		goto out;
	if (!fr->ar->o->dry_run && p->ndel) {
		fr->pending = p->del; /* forgotten after QUIT's +OK */
		fr->npending = p->ndel;
		p->del = NULL;
	}
out:
	fr->match = NULL;     /* mc lives on this stack frame */
	fr->match_ctx = NULL;
	free(mc.srv);
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
	if ((rc = fr->ar->sess.ops->select(fr->ar->sess.src, "INBOX", rw,
					   &fr->fs, e)) < 0)
		return rc;
	if (fr->state_status != MS_STATE_OK && (rc = ms_sync_rebuild(fr, e)) < 0)
		return rc;
	if ((rc = ms_sync_check_present(fr, e)) < 0)
		return rc;
	rc = pop3_plan_run(&p, e);
	free(p.all);
	free(p.todo);
	free(p.del);
	return rc;
}

int ms_sync_pop3_finish(struct ms_folder_run *fr, int quit_ok,
			struct ms_err *e)
{
	int rc = 0;

	if (quit_ok) {
		for (size_t i = 0; i < fr->npending && rc == 0; i++)
			if (fr->pending[i].uidl[0])
				rc = ms_state_del(fr->state, &fr->pending[i], e);
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
