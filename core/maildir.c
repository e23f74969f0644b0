/*
 * maildir.c: the Maildir destination (ms_maildir_store).
 *
 * A message is written to tmp/ through a 64 KiB buffer with CRLF -> LF,
 * and stays there, fd open, until commit.  Commit is batched (DESIGN.md
 * "Durability in batches"): fsync every file, rename each into new/ or
 * cur/ (never replacing), fsync new/ and cur/ once, and only then report
 * the messages durable, in order.  A failure keeps the durable prefix and
 * removes the rest, so the engine records nothing that could be lost.
 *
 * The identity is in the file name so state can be rebuilt from the
 * store: UNIQUE,S=<bytes>,W=<CRLF size>,U=<uid>,V=<uidvalidity>:2,FS
 * (POP3: ,P=<UIDL percent-encoded>).  Removed copies go to a quarantine,
 * ROOT/.mailsync-removed/<folder path>/, never straight to unlink.
 */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "fsutil.h"
#include "log.h"
#include "maildir_int.h"
#include "names.h"

#define WBUF_SIZE (64 * 1024)
#define MAX_OPEN_FINISHED 256 /* fsync early beyond this many open fds */
#define STALE_TMP_SECS (36 * 3600)
#define QUARANTINE ".mailsync-removed"

enum { SUB_TMP, SUB_NEW, SUB_CUR, NSUB };
static const char *const subname[NSUB] = {"tmp", "new", "cur"};

struct ms_store {
	const struct ms_account *a;
	int dry_run;
	int rootfd; /* -1: dry run and the root does not exist */
	char host[80];
};

struct idx_ent {
	uint32_t uid, uidv;
	int sub;
	char *name;
};

struct ms_store_folder {
	struct ms_store *s;
	char *rel;  /* below the root; "" is the root itself */
	char *path; /* ROOT/rel, for messages */
	int dirfd;
	int sub[NSUB];			    /* -1 when missing (dry run) */
	struct ms_store_msg **open, **pend; /* begun; finished in order */
	size_t nopen, capopen, npend, cappend, nfdpend;
	struct idx_ent *idx; /* uid -> file, built by one scan */
	size_t nidx, capidx;
	int idx_valid;
};

struct ms_store_msg {
	struct ms_store_folder *f;
	int fd;
	int cr;	    /* a CR ended the previous chunk */
	int lastcr; /* the last byte written was a CR */
	char *buf;
	size_t blen;
	uint64_t bytes, vsize; /* file size; size with CRLF line ends */
	size_t hostpos;	       /* where ".host" starts in name */
	int dest, renamed;
	int counted;		  /* finished with its fd open: in f->nfdpend */
	char name[NAME_MAX + 1];  /* unique part: the tmp/ name */
	char final[NAME_MAX + 1]; /* name in new/ or cur/ */
	char tmppath[PATH_MAX];
	struct ms_msg meta;
};

/* ---- store ---- */

/* Copies moved to the quarantine by mirror = full are kept for
 * removed_keep_days, counted from the move (the rename sets ctime; mtime
 * is the message's INTERNALDATE).  FTW_PHYS: links are never followed. */
static time_t purge_cutoff;

static int purge_one(const char *path, const struct stat *st, int type,
		     struct FTW *ftw)
{
	(void)ftw;
	if (type == FTW_F && S_ISREG(st->st_mode) &&
	    st->st_ctime < purge_cutoff && unlink(path) == 0)
		ms_log(MS_LOG_DEBUG, "quarantine: removed %s", path);
	return 0;
}

static void purge_quarantine(const struct ms_account *a)
{
	char q[PATH_MAX];

	if (a->mirror != MS_MIRROR_FULL ||
	    snprintf(q, sizeof q, "%s/%s", a->store_path, QUARANTINE) >=
		    (int)sizeof q)
		return;
	purge_cutoff = time(NULL) - (time_t)a->removed_keep_days * 86400;
	nftw(q, purge_one, 16, FTW_PHYS | FTW_MOUNT);
}

static int md_open(struct ms_store **out, const struct ms_account *a,
		   int dry_run, struct ms_err *e)
{
	struct ms_store *s;
	struct stat st;
	int rc = 0;

	*out = NULL;
	if (!a->store_path || a->store_path[0] != '/')
		return ms_err_set(e, MS_ECONFIG,
				  "store path %s must be absolute",
				  a->store_path ? a->store_path : "(none)");
	if (!(s = calloc(1, sizeof *s)))
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	s->a = a;
	s->dry_run = dry_run;
	s->rootfd = -1;
	ms_maildir_host(s->host, sizeof s->host);
	if (!dry_run || stat(a->store_path, &st) == 0 || errno != ENOENT)
		rc = ms_fs_open_dir(a->store_path, !dry_run, &s->rootfd, e);
	if (rc < 0) {
		free(s);
		return rc;
	}
	if (!dry_run)
		purge_quarantine(a);
	*out = s;
	return 0;
}

static void md_close(struct ms_store *s)
{
	if (!s)
		return;
	if (s->rootfd >= 0)
		close(s->rootfd);
	free(s);
}

/* ---- folders ---- */

static char *join(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s%s%s", a, *a && *b ? "/" : "", b);
	return p;
}

/* Open dirfd/rel; missing (dry run) gives -1 and no error. */
static int open_existing(int dirfd, const char *rel, int *fd, struct ms_err *e)
{
	struct stat st;

	*fd = -1;
	if (*rel && fstatat(dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0 &&
	    errno == ENOENT)
		return 0;
	return ms_fs_open_subdir(dirfd, rel, 0, fd, e);
}

/* F04: refuse an unwritable folder before anything is fetched. */
static int preflight(struct ms_store_folder *f, struct ms_err *e)
{
	char name[NAME_MAX + 1];
	int fd, rc;

	ms_maildir_unique(f->s->host, name, sizeof name);
	if ((rc = ms_fs_create(f->sub[SUB_TMP], name, &fd, e)) < 0)
		return rc;
	close(fd);
	if (unlinkat(f->sub[SUB_TMP], name, 0) < 0)
		return ms_err_sys(e, ms_err_code_for_errno(errno), errno,
				  "cannot remove %s/tmp/%s", f->path, name);
	/* rename into new/ and cur/ needs write access there too */
	for (int d = SUB_NEW; d <= SUB_CUR; d++)
		if (faccessat(f->sub[d], ".", W_OK | X_OK, AT_EACCESS) < 0)
			return ms_err_sys(e, ms_err_code_for_errno(errno),
					  errno, "cannot write to %s/%s",
					  f->path, subname[d]);
	return 0;
}

/* Our own tmp/ leftovers from a crash, 36 hours old (maildir(5)). */
static void clean_stale(struct ms_store_folder *f)
{
	time_t now = time(NULL);
	struct dirent *de;
	struct stat st;
	DIR *d;
	int fd =
	    openat(f->sub[SUB_TMP], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d))) {
		if (!ms_maildir_is_ours(de->d_name) ||
		    fstatat(f->sub[SUB_TMP], de->d_name, &st,
			    AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode) || now - st.st_mtime < STALE_TMP_SECS)
			continue;
		if (unlinkat(f->sub[SUB_TMP], de->d_name, 0) == 0)
			ms_log(MS_LOG_INFO, "%s/tmp/%s: removed stale file",
			       f->path, de->d_name);
	}
	closedir(d);
}

static int open_subs(struct ms_store_folder *f, struct ms_err *e)
{
	int dry = f->s->dry_run, rc = 0;

	if (dry)
		rc = open_existing(f->s->rootfd, f->rel, &f->dirfd, e);
	else
		rc = ms_fs_open_subdir(f->s->rootfd, f->rel, 1, &f->dirfd, e);
	for (int d = 0; rc == 0 && f->dirfd >= 0 && d < NSUB; d++) {
		if (dry)
			rc = open_existing(f->dirfd, subname[d], &f->sub[d], e);
		else
			rc = ms_fs_open_subdir(f->dirfd, subname[d], 1,
					       &f->sub[d], e);
	}
	if (rc == 0 && !dry) {
		rc = preflight(f, e);
		if (rc == 0)
			clean_stale(f);
	}
	return rc;
}

static void idx_clear(struct ms_store_folder *f)
{
	for (size_t i = 0; i < f->nidx; i++)
		free(f->idx[i].name);
	free(f->idx);
	f->idx = NULL;
	f->nidx = f->capidx = 0;
	f->idx_valid = 0;
}

static void folder_free(struct ms_store_folder *f)
{
	for (int d = 0; d < NSUB; d++)
		if (f->sub[d] >= 0)
			close(f->sub[d]);
	if (f->dirfd >= 0)
		close(f->dirfd);
	idx_clear(f);
	free(f->open);
	free(f->pend);
	free(f->rel);
	free(f->path);
	free(f);
}

static int md_folder_open(struct ms_store *s, const char *folder,
			  struct ms_store_folder **out, struct ms_err *e)
{
	struct ms_store_folder *f;
	int rc;

	*out = NULL;
	if (!(f = calloc(1, sizeof *f)))
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	f->s = s;
	f->dirfd = f->sub[0] = f->sub[1] = f->sub[2] = -1;
	if ((rc = ms_names_local_to_path(folder, s->a->layout, &f->rel, e)) < 0)
		goto out;
	if (!(f->path = join(s->a->store_path, f->rel))) {
		rc = ms_err_set(e, MS_EINTERNAL, "out of memory");
		goto out;
	}
	if (s->rootfd >= 0)
		rc = open_subs(f, e);
out:
	if (rc < 0) {
		folder_free(f);
		return rc;
	}
	*out = f;
	return 0;
}

/* ---- writing ---- */

static int push(struct ms_store_msg ***v, size_t *n, size_t *cap,
		struct ms_store_msg *m)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		void *p = realloc(*v, nc * sizeof **v);
		if (!p)
			return -1;
		*v = p;
		*cap = nc;
	}
	(*v)[(*n)++] = m;
	return 0;
}

static void drop(struct ms_store_msg **v, size_t *n, struct ms_store_msg *m)
{
	for (size_t i = 0; i < *n; i++)
		if (v[i] == m) {
			memmove(v + i, v + i + 1, (*n - i - 1) * sizeof *v);
			(*n)--;
			return;
		}
}

static void msg_free(struct ms_store_msg *m)
{
	if (m->fd >= 0)
		close(m->fd);
	free(m->buf);
	free(m);
}

static int md_msg_begin(struct ms_store_folder *f, struct ms_store_msg **out,
			struct ms_err *e)
{
	struct ms_store_msg *m = NULL;
	int rc;

	*out = NULL;
	if (f->s->dry_run || f->sub[SUB_TMP] < 0)
		return ms_err_set(e, MS_EINTERNAL,
				  "%s: dry run: nothing may be stored",
				  f->path);
	if (!(m = calloc(1, sizeof *m)) || !(m->buf = malloc(WBUF_SIZE)) ||
	    push(&f->open, &f->nopen, &f->capopen, m) < 0) {
		if (m)
			free(m->buf);
		free(m);
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	}
	m->f = f;
	m->hostpos = ms_maildir_unique(f->s->host, m->name, sizeof m->name);
	snprintf(m->tmppath, sizeof m->tmppath, "%s/tmp/%s", f->path, m->name);
	if ((rc = ms_fs_create(f->sub[SUB_TMP], m->name, &m->fd, e)) < 0) {
		drop(f->open, &f->nopen, m);
		m->fd = -1;
		msg_free(m);
		return rc;
	}
	*out = m;
	return 0;
}

static int flush(struct ms_store_msg *m, struct ms_err *e)
{
	int rc = 0;

	if (m->blen)
		rc = ms_fs_write_all(m->fd, m->buf, m->blen, m->tmppath, e);
	m->blen = 0;
	return rc;
}

/* Buffer bytes holding no LF; they go to the file as they are. */
static int put(struct ms_store_msg *m, const char *p, size_t n,
	       struct ms_err *e)
{
	int rc;

	if (!n)
		return 0;
	m->bytes += n;
	m->vsize += n;
	m->lastcr = p[n - 1] == '\r';
	while (n) {
		size_t k = WBUF_SIZE - m->blen < n ? WBUF_SIZE - m->blen : n;
		memcpy(m->buf + m->blen, p, k);
		m->blen += k;
		p += k;
		n -= k;
		if (m->blen == WBUF_SIZE && (rc = flush(m, e)) < 0)
			return rc;
	}
	return 0;
}

/* n bytes without LF, then LF.  vsize (Dovecot's W=) counts each LF not
 * preceded by a CR in the file twice. */
static int put_line(struct ms_store_msg *m, const char *p, size_t n,
		    struct ms_err *e)
{
	int rc;

	if (m->blen + n + 1 > WBUF_SIZE) {
		if ((rc = put(m, p, n, e)) < 0 || (rc = flush(m, e)) < 0)
			return rc;
	} else if (n) {
		memcpy(m->buf + m->blen, p, n);
		m->blen += n;
		m->bytes += n;
		m->vsize += n;
		m->lastcr = p[n - 1] == '\r';
	}
	m->buf[m->blen++] = '\n';
	m->bytes++;
	m->vsize += 1 + !m->lastcr;
	m->lastcr = 0;
	return 0;
}

/* CRLF -> LF, also across chunk boundaries; a lone CR is kept.  Works a
 * line at a time (one memchr per line): this is the hot path. */
static int md_msg_write(struct ms_store_msg *m, const char *p, size_t n,
			struct ms_err *e)
{
	const char *lf;
	size_t k;
	int rc = 0;

	if (n && m->cr) { /* the previous chunk ended in CR */
		m->cr = 0;
		if (*p == '\n') {
			rc = put_line(m, p, 0, e);
			p++;
			n--;
		} else {
			rc = put(m, "\r", 1, e);
		}
	}
	while (n && rc == 0) {
		if (!(lf = memchr(p, '\n', n))) {
			k = n;
			if (p[k - 1] == '\r') /* maybe half a CRLF */
				m->cr = 1, k--;
			rc = put(m, p, k, e);
			break;
		}
		k = (size_t)(lf - p);
		rc = put_line(m, p, k && p[k - 1] == '\r' ? k - 1 : k, e);
		p = lf + 1;
		n -= k + 1;
	}
	return rc;
}

static int md_msg_finish(struct ms_store_msg *m, const struct ms_msg *meta,
			 struct ms_err *e)
{
	struct ms_store_folder *f = m->f;
	int rc = 0, cur;

	if (m->cr) { /* a lone CR at the very end */
		m->cr = 0;
		rc = put(m, "\r", 1, e);
	}
	if (rc < 0 || (rc = flush(m, e)) < 0)
		return rc;
	free(m->buf);
	m->buf = NULL;
	m->meta = *meta;
	if (ms_maildir_final(m->final, sizeof m->final, m->name, m->hostpos,
			     f->s->a->proto, f->s->a->name, meta, m->bytes,
			     m->vsize, &cur))
		ms_log(MS_LOG_WARN,
		       "%s: name too long for the identity; "
		       "stored without it",
		       m->tmppath);
	m->dest = cur ? SUB_CUR : SUB_NEW;
	if (meta->internaldate > 0) {
		/* Dovecot reads INTERNALDATE from the mtime; scan does too */
		struct timespec t[2] = {{0, UTIME_OMIT},
					{(time_t)meta->internaldate, 0}};
		if (futimens(m->fd, t) < 0)
			ms_log(MS_LOG_DEBUG, "%s: cannot set mtime",
			       m->tmppath);
	}
	/* start writing the data back now, while the next messages arrive:
	 * the commit's fsync then has little left to wait for.  A hint
	 * only; the fsync is what makes it durable. */
	(void)sync_file_range(m->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	if (f->nfdpend >= MAX_OPEN_FINISHED) { /* stay below the fd limit */
		if ((rc = ms_fs_fsync(m->fd, m->tmppath, e)) < 0)
			return rc;
		ms_fs_drop_cache(m->fd, 0);
		close(m->fd);
		m->fd = -1;
	}
	if (push(&f->pend, &f->npend, &f->cappend, m) < 0)
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	drop(f->open, &f->nopen, m);
	m->counted = m->fd >= 0;
	f->nfdpend += m->counted;
	return 0;
}

/* Remove a message's bytes wherever they are (tmp/ or renamed). */
static void discard(struct ms_store_folder *f, struct ms_store_msg *m)
{
	int d = m->renamed ? m->dest : SUB_TMP;
	const char *name = m->renamed ? m->final : m->name;

	if (m->fd >= 0) {
		close(m->fd);
		m->fd = -1;
	}
	if (unlinkat(f->sub[d], name, 0) < 0 && errno != ENOENT)
		ms_log(MS_LOG_WARN, "%s/%s/%s: cannot remove: %s", f->path,
		       subname[d], name, strerror(errno));
}

static void md_msg_abort(struct ms_store_msg *m)
{
	struct ms_store_folder *f;

	if (!m)
		return;
	f = m->f;
	drop(f->open, &f->nopen, m);
	if (m->counted && m->fd >= 0)
		f->nfdpend--; /* a finished one, fd still open */
	drop(f->pend, &f->npend, m);
	discard(f, m);
	msg_free(m);
}

/* Step 1: file data.  Returns how many leading messages are synced. */
static size_t sync_files(struct ms_store_folder *f, int *rc, struct ms_err *e)
{
	for (size_t i = 0; i < f->npend; i++) {
		struct ms_store_msg *m = f->pend[i];
		if (m->fd < 0)
			continue;
		*rc = ms_fs_fsync(m->fd, m->tmppath, e);
		if (*rc == 0)
			ms_fs_drop_cache(m->fd, 0);
		if (*rc == 0 && close(m->fd) < 0)
			*rc = ms_err_sys(e, MS_EIO, errno, "cannot close %s",
					 m->tmppath);
		else if (*rc < 0)
			close(m->fd);
		m->fd = -1;
		if (*rc < 0)
			return i;
	}
	return f->npend;
}

/*
 * fsync all files, rename all, fsync new/ and cur/ once, report.  A
 * rename counts only once its directory is fsynced, so on any failure the
 * prefix before the first message not covered is reported and the rest
 * is removed: the engine never records what a crash could take back.
 */
static int md_commit(struct ms_store_folder *f, ms_durable_cb cb, void *ctx,
		     struct ms_err *e)
{
	char path[PATH_MAX + NAME_MAX + 8];
	int rc = 0, r, used[NSUB] = {0};
	struct ms_err e2;
	size_t n = f->npend, ok;

	if (!n)
		return 0;
	ok = sync_files(f, &rc, e);
	for (size_t i = 0; i < ok; i++) {
		struct ms_store_msg *m = f->pend[i];
		snprintf(path, sizeof path, "%s/%s/%s", f->path,
			 subname[m->dest], m->final);
		r = ms_fs_rename(f->sub[SUB_TMP], m->name, f->sub[m->dest],
				 m->final, path, rc ? &e2 : e);
		if (r < 0) {
			rc = rc ? rc : r;
			ok = i;
			break;
		}
		m->renamed = 1;
		used[m->dest] = 1;
	}
	for (int d = SUB_NEW; d <= SUB_CUR; d++) {
		if (!used[d])
			continue;
		snprintf(path, sizeof path, "%s/%s", f->path, subname[d]);
		if ((r = ms_fs_fsync(f->sub[d], path, rc ? &e2 : e)) == 0)
			continue;
		rc = rc ? rc : r;
		for (size_t i = 0; i < ok; i++)
			if (f->pend[i]->dest == d)
				ok = i;
	}
	for (size_t i = 0; i < ok; i++)
		cb(ctx, &f->pend[i]->meta);
	for (size_t i = 0; i < n; i++) {
		if (i >= ok)
			discard(f, f->pend[i]);
		msg_free(f->pend[i]);
	}
	f->npend = f->nfdpend = 0;
	idx_clear(f);
	return rc;
}

static int scan_dir(struct ms_store_folder *f, int d, int with_stat,
		    ms_stored_cb cb, void *ctx, struct ms_err *e)
{
	char ref[NAME_MAX + 8];
	struct dirent *de;
	struct ms_msg m;
	struct stat st;
	int fd, rc = 0;
	DIR *dir;

	fd = openat(f->sub[d], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(dir = fdopendir(fd))) {
		rc = ms_err_sys(e, MS_EIO, errno, "cannot read %s/%s", f->path,
				subname[d]);
		if (fd >= 0)
			close(fd);
		return rc;
	}
	while (rc == 0 && (errno = 0, de = readdir(dir))) {
		if (de->d_name[0] == '.' || de->d_type == DT_DIR ||
		    ms_maildir_parse(de->d_name, f->s->a->name, &m) < 0)
			continue;
		if (with_stat) {
			if (fstatat(f->sub[d], de->d_name, &st,
				    AT_SYMLINK_NOFOLLOW) < 0)
				continue; /* gone meanwhile */
			m.internaldate = st.st_mtime;
		}
		if (d == SUB_NEW)
			m.flags = 0;
		snprintf(ref, sizeof ref, "%s/%s", subname[d], de->d_name);
		rc = cb(ctx, &m, ref, e);
	}
	if (rc == 0 && errno)
		rc = ms_err_sys(e, MS_EIO, errno, "cannot read %s/%s", f->path,
				subname[d]);
	closedir(dir);
	return rc;
}

static int scan_all(struct ms_store_folder *f, int with_stat, ms_stored_cb cb,
		    void *ctx, struct ms_err *e)
{
	int rc = 0;

	for (int d = SUB_NEW; d <= SUB_CUR && rc == 0; d++)
		if (f->sub[d] >= 0)
			rc = scan_dir(f, d, with_stat, cb, ctx, e);
	return rc;
}

static int md_scan(struct ms_store_folder *f, ms_stored_cb cb, void *ctx,
		   struct ms_err *e)
{
	return scan_all(f, 1, cb, ctx, e);
}

/* Identities only: names from readdir, no stat. */
static int md_ids(struct ms_store_folder *f, ms_stored_cb cb, void *ctx,
		  struct ms_err *e)
{
	return scan_all(f, 0, cb, ctx, e);
}

/* ---- changing stored copies (mirror, re-match) ---- */

static int idx_add(void *ctx, const struct ms_msg *m, const char *ref,
		   struct ms_err *e)
{
	struct ms_store_folder *f = ctx;
	struct idx_ent *x;

	if (!m->uid)
		return 0; /* POP3 copies have no UID to look up */
	if (f->nidx == f->capidx) {
		size_t nc = f->capidx ? 2 * f->capidx : 64;
		void *p = realloc(f->idx, nc * sizeof *x);
		if (!p)
			return ms_err_set(e, MS_EINTERNAL, "out of memory");
		f->idx = p;
		f->capidx = nc;
	}
	x = &f->idx[f->nidx];
	x->uid = m->uid;
	x->uidv = m->uidvalidity;
	x->sub = ref[0] == 'c' ? SUB_CUR : SUB_NEW;
	if (!(x->name = strdup(ref + 4)))
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	f->nidx++;
	return 0;
}

/* by UID, then the newest UIDVALIDITY first */
static int idx_cmp(const void *a, const void *b)
{
	const struct idx_ent *x = a, *y = b;

	if (x->uid != y->uid)
		return x->uid < y->uid ? -1 : 1;
	return x->uidv > y->uidv ? -1 : x->uidv < y->uidv;
}

/*
 * The copy of uid, NULL when there is none.  After a UIDVALIDITY change
 * two copies may share a UID; the higher UIDVALIDITY (the usual direction
 * of a change) wins.
 */
static struct idx_ent *idx_find(struct ms_store_folder *f, uint32_t uid,
				int *rc, struct ms_err *e)
{
	size_t lo = 0, hi;

	*rc = 0;
	if (!f->idx_valid) {
		idx_clear(f);
		if ((*rc = scan_all(f, 0, idx_add, f, e)) < 0) {
			idx_clear(f);
			return NULL;
		}
		if (f->nidx)
			qsort(f->idx, f->nidx, sizeof *f->idx, idx_cmp);
		f->idx_valid = 1;
	}
	hi = f->nidx;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (f->idx[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < f->nidx && f->idx[lo].uid == uid ? &f->idx[lo] : NULL;
}

/* As idx_find, rebuilding once if a mail reader renamed the copy since
 * (e.g. moved it from new/ to cur/). */
static struct idx_ent *find_copy(struct ms_store_folder *f, uint32_t uid,
				 int *rc, struct ms_err *e)
{
	struct idx_ent *x = idx_find(f, uid, rc, e);
	struct stat st;

	if (x &&
	    fstatat(f->sub[x->sub], x->name, &st, AT_SYMLINK_NOFOLLOW) < 0 &&
	    errno == ENOENT) {
		idx_clear(f);
		x = idx_find(f, uid, rc, e);
	}
	if (!x && *rc == 0)
		ms_log(MS_LOG_DEBUG, "%s: UID %lu: no local copy", f->path,
		       (unsigned long)uid);
	return x;
}

/* Rename a stored copy from sub/name to dest/to and make it durable. */
static int move_copy(struct ms_store_folder *f, int sub, const char *name,
		     int destfd, const char *destpath, const char *to,
		     struct ms_err *e)
{
	char path[PATH_MAX + NAME_MAX + 8];
	int rc;

	snprintf(path, sizeof path, "%s/%s", destpath, to);
	if ((rc = ms_fs_rename(f->sub[sub], name, destfd, to, path, e)) < 0 ||
	    (rc = ms_fs_fsync(destfd, destpath, e)) < 0)
		return rc;
	if (destfd != f->sub[sub]) {
		snprintf(path, sizeof path, "%s/%s", f->path, subname[sub]);
		rc = ms_fs_fsync(f->sub[sub], path, e);
	}
	return rc;
}

static int md_set_flags(struct ms_store_folder *f, uint32_t uid, unsigned flags,
			struct ms_err *e)
{
	char to[NAME_MAX + 1], dpath[PATH_MAX];
	struct idx_ent *x;
	int rc, cur;
	char *nn;

	if (f->s->dry_run || f->sub[SUB_CUR] < 0)
		return 0;
	if (!(x = find_copy(f, uid, &rc, e)))
		return rc;
	if (ms_maildir_with_flags(to, sizeof to, x->name, flags,
				  x->sub == SUB_CUR, &cur) < 0)
		return ms_err_set(e, MS_ECREATE, "%s/%s/%s: name too long",
				  f->path, subname[x->sub], x->name);
	if ((cur ? SUB_CUR : SUB_NEW) == x->sub && strcmp(to, x->name) == 0)
		return 0;
	if (!(nn = strdup(to)))
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	snprintf(dpath, sizeof dpath, "%s/%s", f->path, cur ? "cur" : "new");
	rc = move_copy(f, x->sub, x->name, f->sub[cur ? SUB_CUR : SUB_NEW],
		       dpath, to, e);
	if (rc < 0) {
		free(nn);
		return rc;
	}
	free(x->name);
	x->name = nn;
	x->sub = cur ? SUB_CUR : SUB_NEW;
	return 0;
}

/* Quarantine: ROOT/.mailsync-removed/<folder path>/<name>. */
static int md_remove(struct ms_store_folder *f, uint32_t uid, struct ms_err *e)
{
	size_t n = strlen(f->path) + sizeof QUARANTINE + strlen(f->rel) + 2;
	char *qrel = malloc(n), *qpath = malloc(n);
	struct idx_ent *x;
	int rc = 0, qfd = -1;

	if (!qrel || !qpath) {
		rc = ms_err_set(e, MS_EINTERNAL, "out of memory");
		goto out;
	}
	if (f->s->dry_run || f->sub[SUB_CUR] < 0 ||
	    !(x = find_copy(f, uid, &rc, e)))
		goto out;
	snprintf(qrel, n, "%s%s%s", QUARANTINE, *f->rel ? "/" : "", f->rel);
	snprintf(qpath, n, "%s/%s", f->s->a->store_path, qrel);
	if ((rc = ms_fs_open_subdir(f->s->rootfd, qrel, 1, &qfd, e)) < 0 ||
	    (rc = move_copy(f, x->sub, x->name, qfd, qpath, x->name, e)) < 0)
		goto out;
	free(x->name);
	memmove(x, x + 1, (size_t)(f->idx + f->nidx - x - 1) * sizeof *x);
	f->nidx--;
out:
	if (qfd >= 0)
		close(qfd);
	free(qrel);
	free(qpath);
	return rc;
}

/* ref: "cur/NAME" or "new/NAME" as scan gave it. */
static int md_relabel(struct ms_store_folder *f, const char *ref,
		      const struct ms_msg *m, struct ms_err *e)
{
	char to[NAME_MAX + 1], dpath[PATH_MAX];
	int sub = strncmp(ref, "cur/", 4) == 0	 ? SUB_CUR
		  : strncmp(ref, "new/", 4) == 0 ? SUB_NEW
						 : -1;

	if (sub < 0 || ref[4] == '.' || !ref[4] || strchr(ref + 4, '/'))
		return ms_err_set(e, MS_EINTERNAL, "%s: bad reference %s",
				  f->path, ref);
	if (f->s->dry_run || f->sub[sub] < 0)
		return 0;
	if (ms_maildir_relabel(to, sizeof to, ref + 4, m) < 0)
		return ms_err_set(e, MS_ECREATE, "%s/%s: name too long",
				  f->path, ref);
	if (strcmp(to, ref + 4) == 0)
		return 0;
	idx_clear(f);
	snprintf(dpath, sizeof dpath, "%s/%s", f->path, subname[sub]);
	return move_copy(f, sub, ref + 4, f->sub[sub], dpath, to, e);
}

/* ref: "cur/NAME" or "new/NAME" as scan gave it. */
static int md_digest(struct ms_store_folder *f, const char *ref,
		     unsigned char sha[32], struct ms_err *e)
{
	int sub = strncmp(ref, "cur/", 4) == 0	 ? SUB_CUR
		  : strncmp(ref, "new/", 4) == 0 ? SUB_NEW
						 : -1;
	EVP_MD_CTX *md = NULL;
	char *buf = NULL;
	ssize_t n = 0;
	int fd = -1, rc = 0;

	if (sub < 0 || ref[4] == '.' || !ref[4] || strchr(ref + 4, '/') ||
	    f->sub[sub] < 0)
		return ms_err_set(e, MS_EINTERNAL, "%s: bad reference %s",
				  f->path, ref);
	if (!(buf = malloc(WBUF_SIZE)) || !(md = EVP_MD_CTX_new()) ||
	    !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		rc = ms_err_set(e, MS_EINTERNAL, "out of memory");
		goto out;
	}
	fd = openat(f->sub[sub], ref + 4, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	while (fd >= 0 && (n = read(fd, buf, WBUF_SIZE)) > 0)
		EVP_DigestUpdate(md, buf, (size_t)n);
	if (fd < 0 || n < 0) {
		rc = ms_err_sys(e, MS_EIO, errno, "cannot read %s/%s",
				f->path, ref);
		goto out;
	}
	EVP_DigestFinal_ex(md, sha, NULL);
out:
	if (fd >= 0)
		close(fd);
	EVP_MD_CTX_free(md);
	free(buf);
	return rc;
}

static int md_put_labels(struct ms_store_folder *f, const char *data,
			 size_t n, struct ms_err *e)
{
	if (f->s->dry_run || f->dirfd < 0)
		return 0;
	return ms_fs_replace(f->dirfd, "mailsync-labels", data, n, f->path, e);
}

static void md_folder_close(struct ms_store_folder *f)
{
	if (!f)
		return;
	while (f->nopen)
		md_msg_abort(f->open[f->nopen - 1]);
	while (f->npend)
		md_msg_abort(f->pend[f->npend - 1]);
	folder_free(f);
}

const struct ms_store_ops ms_maildir_store = {
    .kind = "maildir",
    .open = md_open,
    .folder_open = md_folder_open,
    .msg_begin = md_msg_begin,
    .msg_write = md_msg_write,
    .msg_finish = md_msg_finish,
    .msg_abort = md_msg_abort,
    .commit = md_commit,
    .scan = md_scan,
    .ids = md_ids,
    .relabel = md_relabel,
    .digest = md_digest,
    .put_labels = md_put_labels,
    .set_flags = md_set_flags,
    .remove = md_remove,
    .folder_close = md_folder_close,
    .close = md_close,
};
