/*
 * session.c: opening an account (secret -> net -> protocol engine), the
 * folder listing shared by `sync` and `folders`, and the small public API
 * calls that need nothing else (check, folders, status).
 *
 * The secret lives only between ms_config_secret and ms_net_connect
 * (libcurl copies it); it is wiped with explicit_bzero on every path.
 */
#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mailsync.h"
#include "names.h"
#include "net_global.h"
#include "rules.h"
#include "state.h"
#include "text.h"

int ms_global_init(struct ms_err *e)
{
	return ms_net_global_init(e);
}

void ms_global_cleanup(void)
{
	ms_net_global_cleanup();
}

const struct ms_store_ops *ms_session_store_ops(const struct ms_account *a)
{
	return a->store == MS_STORE_MBOX ? &ms_mbox_store : &ms_maildir_store;
}

int ms_session_open(struct ms_session *s, const struct ms_account *a,
		    struct ms_err *e)
{
	struct ms_net_opts o;
	struct ms_net *net = NULL;
	char *secret = NULL;
	int rc;

	memset(s, 0, sizeof *s);
	s->acct = a;
	s->ops = a->proto == MS_PROTO_POP3 ? &ms_pop3_source : &ms_imap_source;
	if ((rc = ms_config_secret(a, &secret, e)) < 0)
		return rc;
	memset(&o, 0, sizeof o);
	o.acct = a;
	o.secret = secret;
	o.trace = ms_log_enabled(MS_LOG_DEBUG);
	rc = ms_net_connect(&net, &o, e);
	explicit_bzero(secret, strlen(secret));
	free(secret);
	if (rc < 0)
		return rc;
	/* the engine owns net from here on, also when open fails */
	if ((rc = s->ops->open(&s->src, net, a, e)) < 0) {
		s->src = NULL;
		return rc;
	}
	return 0;
}

int ms_session_close(struct ms_session *s, int commit, struct ms_err *e)
{
	int rc = 0;

	if (s->src) {
		rc = s->ops->close(s->src, commit, e);
		s->src = NULL;
	}
	return rc;
}

void ms_lfolders_free(struct ms_lfolders *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->v[i].raw);
		free(f->v[i].local);
	}
	free(f->v);
	memset(f, 0, sizeof *f);
}

/* Two server names must never share a local directory. */
static void refuse_collision(struct ms_lfolders *f, struct ms_lfolder *nf)
{
	for (size_t i = 0; f->v + i != nf; i++) {
		if (f->v[i].local && strcmp(f->v[i].local, nf->local) == 0) {
			char a[100], b[100];

			/* raw names may hold CR/LF: printable excerpts */
			ms_text_excerpt(a, sizeof a, nf->raw, strlen(nf->raw));
			ms_text_excerpt(b, sizeof b, f->v[i].raw,
					strlen(f->v[i].raw));
			snprintf(nf->why, sizeof nf->why,
				 "folder %s: maps to the same local folder as "
				 "%s", a, b);
			free(nf->local);
			nf->local = NULL;
			return;
		}
	}
}

static int add_folder(void *ctx, const struct ms_folder *mf, struct ms_err *e)
{
	struct ms_lfolders *f = ctx;
	struct ms_lfolder *nf;
	struct ms_err ne;

	if (f->n == f->cap) {
		size_t ncap = f->cap ? f->cap * 2 : 32;
		void *p = realloc(f->v, ncap * sizeof *f->v);
		if (!p)
			return ms_err_set(e, MS_EINTERNAL, "out of memory");
		f->v = p;
		f->cap = ncap;
	}
	nf = &f->v[f->n];
	memset(nf, 0, sizeof *nf);
	if (!(nf->raw = strdup(mf->name)))
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	nf->delim = mf->delim;
	nf->attrs = mf->attrs;
	f->n++;
	ms_err_clear(&ne);
	if (ms_names_folder_to_local(mf->name, mf->delim, &nf->local, &ne) < 0) {
		nf->local = NULL;
		snprintf(nf->why, sizeof nf->why, "%s", ne.msg);
	} else {
		refuse_collision(f, nf);
	}
	return 0;
}

int ms_session_folders(struct ms_session *s, struct ms_lfolders *out,
		       struct ms_err *e)
{
	int rc;

	memset(out, 0, sizeof *out);
	if ((rc = s->ops->list(s->src, add_folder, out, e)) < 0)
		ms_lfolders_free(out);
	return rc;
}

int ms_check_account(const struct ms_config *c, const struct ms_account *a,
		     struct ms_err *e)
{
	struct ms_session s;
	int rc;

	(void)c;
	ms_log_scope(a->name, NULL);
	if ((rc = ms_session_open(&s, a, e)) == 0)
		rc = ms_session_close(&s, 1, e);
	ms_log_scope(NULL, NULL);
	return rc;
}

int ms_list_folders(const struct ms_config *c, const struct ms_account *a,
		    ms_folder_list_cb cb, void *ctx, struct ms_err *e)
{
	struct ms_lfolders f;
	struct ms_session s;
	struct ms_err ne;
	char *rel = NULL, *path = NULL;
	int rc;

	(void)c;
	ms_log_scope(a->name, NULL);
	if ((rc = ms_session_open(&s, a, e)) < 0)
		goto done;
	if ((rc = ms_session_folders(&s, &f, e)) < 0)
		goto out;
	for (size_t i = 0; i < f.n && rc == 0; i++) {
		struct ms_lfolder *lf = &f.v[i];
		int sel = 0;

		path = NULL;
		if (lf->local && ms_names_local_to_path(lf->local, a->layout,
							&rel, &ne) == 0) {
			size_t n = strlen(a->store_path) + strlen(rel) + 2;
			if ((path = malloc(n)))
				snprintf(path, n, "%s%s%s", a->store_path,
					 *rel ? "/" : "", rel);
			free(rel);
			sel = !(lf->attrs & MS_FOLDER_NOSELECT) &&
			      ms_rules_folder_selected(a, lf->local,
						       lf->attrs);
		} else if (lf->local) {
			snprintf(lf->why, sizeof lf->why, "%s", ne.msg);
		}
		if (cb(ctx, lf->raw, path, path ? NULL : lf->why, sel) < 0)
			rc = ms_err_set(e, MS_EINTERNAL, "listing aborted");
		free(path);
	}
	ms_lfolders_free(&f);
out:
	ms_session_close(&s, rc == 0, rc == 0 ? e : &ne);
done:
	ms_log_scope(NULL, NULL);
	return rc;
}

struct status_ctx {
	ms_status_cb cb;
	void *ctx;
};

static int status_one(void *ctx, const char *folder, const struct ms_state *st)
{
	struct status_ctx *sc = ctx;

	return sc->cb(sc->ctx, folder, ms_state_last_run(st),
		      (unsigned long)ms_state_count(st),
		      ms_state_uidvalidity(st));
}

int ms_status_account(const struct ms_config *c, const struct ms_account *a,
		      ms_status_cb cb, void *ctx, struct ms_err *e)
{
	struct status_ctx sc = { cb, ctx };

	return ms_state_folders(c->state_dir, a->name, status_one, &sc, e);
}
