/*
 * sync_account.c: ms_sync_account, the driver for one account: lock,
 * open the store, log in, sync every selected folder in turn over the one
 * connection, log out, unlock.
 *
 * A folder's failure is logged ("ACCOUNT: FOLDER: what: why") and the
 * other folders still run, unless the error's scope is the account (the
 * connection is gone) or the run.  The account's result is the worst
 * folder's code.
 */
#include "sync_int.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rules.h"

static int report_folder(struct acct_run *ar, const char *folder, int rc,
			 struct ms_err *fe)
{
	ms_log(MS_LOG_ERR, "%s: %s: %s", ar->a->name, folder, fe->msg);
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
	if ((rc = ms_sync_state_open(&fr, fe)) < 0)
		goto out;
	if (ar->a->proto == MS_PROTO_IMAP &&
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
	if (rc == 0)
		ar->st->folders++;
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
			ms_log(MS_LOG_WARN, "%s: skipped %s", ar->a->name,
			       f->why);
			continue;
		}
		if (!ms_rules_folder_selected(ar->a, f->local))
			continue;
		sel->idx[sel->n] = i;
		sel->names[sel->n++] = f->raw;
	}
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
			*e = fe;
			ms_err_prefix(e, "%s", f->local);
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
	if (worst && e->scope < MS_SCOPE_ACCOUNT)
		ms_err_set(e, worst, "%lu folder%s failed", failed,
			   failed == 1 ? "" : "s");
	return worst;
}

int ms_sync_account(const struct ms_config *c, const struct ms_account *a,
		    const struct ms_run_opts *o, struct ms_stats *st,
		    struct ms_err *e)
{
	struct acct_run ar;
	struct ms_err ce;
	int lockfd = -1, rc;

	memset(&ar, 0, sizeof ar);
	ar.c = c;
	ar.a = a;
	ar.o = o;
	ar.st = st;
	ar.now = time(NULL);
	ar.sops = ms_session_store_ops(a);
	if ((rc = ms_state_lock(c->state_dir, a->name, &lockfd, e)) < 0)
		return rc;
	if ((rc = ar.sops->open(&ar.store, a, o->dry_run, e)) < 0)
		goto out;
	if ((rc = ms_session_open(&ar.sess, a, e)) < 0)
		goto out;
	rc = run_folders(&ar, e);
	ms_err_clear(&ce);
	/* LOGOUT; a failure here loses nothing, so it is only a warning */
	if (ms_session_close(&ar.sess, rc == 0 || e->scope < MS_SCOPE_ACCOUNT,
			     &ce) < 0 && rc == 0)
		ms_log(MS_LOG_WARN, "%s: logout: %s", a->name, ce.msg);
out:
	ms_session_close(&ar.sess, 0, &ce);
	if (ar.store)
		ar.sops->close(ar.store);
	ms_state_unlock(lockfd);
	return rc;
}
