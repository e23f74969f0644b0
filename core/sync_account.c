/*
 * sync_account.c: ms_sync_account, the driver for one account: lock,
 * open the store, log in, sync every selected folder in turn over the one
 * connection, log out, unlock.
 *
 * A folder's failure is logged once ("ACCOUNT/FOLDER: what: why") and the
 * other folders still run, unless the error's scope is the account (the
 * connection is gone) or the run.  The account's result is the worst
 * folder's code, marked as reported so that cmd/ adds no second line.
 * The log scope (log.h) names the account and the folder for every line
 * logged meanwhile, whatever module logs it.
 */
#include "sync_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rules.h"
#include "text.h"

static void iso_utc(time_t t, char *buf, size_t n)
{
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, n, "@%lld", (long long)t);
}

/* The last run was at last (STATE/ACCOUNT/last-run): when that is more
 * than an hour after now, warn once and set ar->clock_back.  Only the
 * account file counts, not the folders' snapshots: removing it is how a
 * user accepts the current clock (when the last run's was the wrong one). */
#define CLOCK_MARGIN 3600
/* last-run is rewritten when older than this: a run with nothing new
 * every few minutes then writes nothing, and the clock check, with its
 * hour of margin, loses nothing */
#define LAST_RUN_REFRESH 600

static void clock_check(struct acct_run *ar, time_t last)
{
	char then[40], now[40];

	if (ar->clock_back || last <= 0 || last - ar->now <= CLOCK_MARGIN)
		return;
	ar->clock_back = 1;
	ar->stamp = last;
	iso_utc(last, then, sizeof then);
	iso_utc(ar->now, now, sizeof now);
	ms_log(MS_LOG_WARN, "clock moved backwards since the last run "
	       "(last run %s, now %s): no time-based deletions this run",
	       then, now);
}

static int report_folder(struct acct_run *ar, const char *folder, int rc,
			 struct ms_err *fe)
{
	ms_log_scope(ar->a->name, folder);
	ms_log(MS_LOG_ERR, "%s", fe->msg);
	ms_log_scope(ar->a->name, NULL);
	ar->st->failed_folders++;
	return rc;
}

static int sync_one(struct acct_run *ar, const char *raw, const char *local,
		    const struct ms_folder_status *pre, struct ms_err *fe)
{
	struct ms_folder_run fr;
	struct ms_err ce;
	int rc, qrc;

	memset(&fr, 0, sizeof fr);
	fr.ar = ar;
	fr.raw = raw;
	fr.local = local;
	ms_log_scope(ar->a->name, local);
	if ((rc = ms_sync_state_open(&fr, fe)) < 0)
		goto out;
	/* a store that can lose records (an mbox replaced behind our back)
	 * is checked before "unchanged on the server" can skip the folder */
	if (ar->sops->lost && (rc = ms_sync_store_open(&fr, fe)) < 0)
		goto out;
	if (ar->a->proto == MS_PROTO_IMAP && !fr.lost &&
	    ms_sync_imap_unchanged(&fr, pre)) {
		/* nothing to do: not even a SELECT, nor a write */
		rc = ms_sync_folder_idle(&fr, pre, fe);
		goto out;
	}
	if ((rc = ms_sync_store_open(&fr, fe)) < 0)
		goto out;
	if (ar->a->proto == MS_PROTO_IMAP) {
		rc = ms_sync_imap_folder(&fr, fe);
		goto out;
	}
	rc = ms_sync_pop3_folder(&fr, fe);
	/* POP3: QUIT commits the DELEs; only its +OK lets state forget */
	ms_err_clear(&ce);
	qrc = ms_session_close(&ar->sess, rc == 0 || fe->scope !=
			       MS_SCOPE_ACCOUNT, &ce);
	if (qrc < 0 && rc == 0) {
		rc = qrc;
		*fe = ce;
	}
	if (rc == 0)
		rc = ms_sync_pop3_finish(&fr, qrc == 0, fe);
	else
		ms_sync_pop3_finish(&fr, qrc == 0 && fr.npending, &ce);
out:
	ms_sync_folder_close(&fr);
	ms_log_scope(ar->a->name, NULL);
	if (rc == 0)
		ar->st->folders++;
	else
		ms_err_folder(fe, local);
	return rc;
}

/* The folders to sync, in server order, and (IMAP with STATUS) their
 * status from one pipelined round trip. */
struct selection {
	size_t *idx;                 /* into the folder list */
	const char **names;          /* raw server names */
	struct ms_folder_status *st; /* filled when have */
	size_t n;
	int have;
};

static int keep_status(void *ctx, size_t i, const struct ms_folder_status *st)
{
	struct selection *sel = ctx;

	sel->st[i] = *st;
	return 0;
}

static int select_folders(struct acct_run *ar, struct ms_lfolders *lf,
			  struct selection *sel, struct ms_err *e)
{
	const struct ms_source_ops *ops = ar->sess.ops;

	sel->idx = calloc(lf->n + 1, sizeof *sel->idx);
	sel->names = calloc(lf->n + 1, sizeof *sel->names);
	sel->st = calloc(lf->n + 1, sizeof *sel->st);
	if (!sel->idx || !sel->names || !sel->st)
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	for (size_t i = 0; i < lf->n; i++) {
		struct ms_lfolder *f = &lf->v[i];

		if (f->attrs & MS_FOLDER_NOSELECT)
			continue;
		if (!f->local) {
			/* f->why names the folder escaped and cut short;
			 * the raw name may hold CR/LF or be kilobytes */
			ms_log(MS_LOG_WARN, "skipped %s", f->why);
			continue;
		}
		if (!ms_rules_folder_selected(ar->a, f->local, f->attrs))
			continue;
		sel->idx[sel->n] = i;
		sel->names[sel->n++] = f->raw;
		if (ms_text_width(f->local) > ar->colw)
			ar->colw = ms_text_width(f->local);
	}
	if (!sel->n && ar->a->gmail == MS_GMAIL_ALL_MAIL)
		return ms_err_set(e, MS_EPROTO, "no folder carries the \\All "
				  "attribute, needed by gmail = all-mail");
	if (!ops->status || !sel->n)
		return 0;
	sel->have = 1;
	return ops->status(ar->sess.src, sel->names, sel->n, keep_status, sel,
			   e);
}

struct next_ctx {
	struct ms_lfolders *lf;
	struct selection *sel;
	size_t k;                    /* the folder being synced */
};

/* The next folder that will be selected: the first after the current
 * one that its STATUS and state do not show unchanged (a few looked at,
 * at most).  Reads states only; writes nothing. */
static const char *next_select(struct acct_run *ar)
{
	struct next_ctx *nx = ar->next_ctx;
	struct ms_folder_run t;
	struct ms_err e;
	int same;

	for (size_t j = nx->k + 1; j < nx->sel->n && j < nx->k + 9; j++) {
		struct ms_lfolder *f = &nx->lf->v[nx->sel->idx[j]];

		if (!nx->sel->have)
			return f->raw;
		memset(&t, 0, sizeof t);
		t.ar = ar;
		t.raw = f->raw;
		t.local = f->local;
		ms_err_clear(&e);
		if (ms_sync_state_open(&t, &e) < 0)
			return f->raw; /* its own run will report it */
		same = ms_sync_imap_unchanged(&t, &nx->sel->st[j]);
		ms_state_close(t.state);
		if (!same)
			return f->raw;
	}
	return NULL;
}

static int run_folders(struct acct_run *ar, struct ms_err *e)
{
	struct ms_lfolders lf;
	struct selection sel;
	struct next_ctx nx;
	struct ms_err fe;
	int worst = 0, rc;
	unsigned long failed = 0;

	memset(&sel, 0, sizeof sel);
	nx.lf = &lf;
	nx.sel = &sel;
	if (ar->a->proto == MS_PROTO_POP3) {
		ms_err_clear(&fe);
		if ((rc = sync_one(ar, "INBOX", "INBOX", NULL, &fe)) < 0) {
			*e = fe;
			return rc;
		}
		return 0;
	}
	if ((rc = ms_session_folders(&ar->sess, &lf, e)) < 0)
		return rc;
	if ((rc = select_folders(ar, &lf, &sel, e)) < 0)
		goto out;
	ar->next_select = next_select;
	ar->next_ctx = &nx;
	for (size_t k = 0; k < sel.n; k++) {
		struct ms_lfolder *f = &lf.v[sel.idx[k]];

		ms_err_clear(&fe);
		nx.k = k;
		rc = sync_one(ar, f->raw, f->local,
			      sel.have ? &sel.st[k] : NULL, &fe);
		if (rc == 0)
			continue;
		failed++;
		worst = ms_err_worse(worst, rc);
		if (fe.scope >= MS_SCOPE_ACCOUNT) {
			*e = fe; /* names the folder: printed by the caller */
			break;
		}
		report_folder(ar, f->local, rc, &fe);
		if (failed == 1)
			*e = fe;
	}
	rc = 0;
out:
	ar->next_select = NULL;
	ar->next_ctx = NULL;
	free(sel.idx);
	free(sel.names);
	free(sel.st);
	ms_lfolders_free(&lf);
	if (rc < 0)
		return rc;
	/* each failed folder has said so already; the code is the worst */
	if (worst && e->scope < MS_SCOPE_ACCOUNT) {
		e->code = worst;
		e->reported = 1;
	}
	return worst;
}

int ms_sync_account(const struct ms_config *c, const struct ms_account *a,
		    const struct ms_run_opts *o, struct ms_stats *st,
		    struct ms_err *e)
{
	struct acct_run ar;
	struct ms_err ce;
	time_t last = 0;
	int lockfd = -1, rc;

	memset(&ar, 0, sizeof ar);
	ar.c = c;
	ar.a = a;
	ar.o = o;
	ar.st = st;
	ar.now = ar.stamp = time(NULL);
	ar.sops = ms_session_store_ops(a);
	ms_log_scope(a->name, NULL);
	if ((rc = ms_state_lock(c->state_dir, a->name, &lockfd, e)) < 0)
		goto out;
	if ((rc = ms_state_account_last_run(c->state_dir, a->name, &last,
					    e)) < 0)
		goto out;
	clock_check(&ar, last);
	if ((rc = ar.sops->open(&ar.store, a, o->dry_run, e)) < 0)
		goto out;
	if ((rc = ms_session_open(&ar.sess, a, e)) < 0)
		goto out;
	rc = run_folders(&ar, e);
	ms_err_clear(&ce);
	/* LOGOUT; a failure here loses nothing, so it is only a warning */
	if (ms_session_close(&ar.sess, rc == 0 || e->scope < MS_SCOPE_ACCOUNT,
			     &ce) < 0 && rc == 0)
		ms_log(MS_LOG_WARN, "logout: %s", ce.msg);
	/* never with the earlier clock: it must keep being reported */
	if (rc == 0 && !o->dry_run && !ar.clock_back &&
	    (last <= 0 || ar.now < last || ar.now - last >= LAST_RUN_REFRESH))
		rc = ms_state_account_set_last_run(c->state_dir, a->name,
						   ar.now, e);
out:
	ms_session_close(&ar.sess, 0, &ce);
	if (ar.store)
		ar.sops->close(ar.store);
	ms_state_unlock(lockfd);
	ms_log_scope(NULL, NULL);
	return rc;
}
