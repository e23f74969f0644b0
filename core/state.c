/*
 * state.c: the state files on disk, the journal writes and the lock.
 *
 * Durability order: ms_state_sync appends the queued lines to F.journal
 * with one write and one fsync (the directory is fsynced once, when the
 * journal is created); ms_state_compact writes F.state through
 * ms_fs_replace (tmp, fsync, rename, fsync dir) and only then unlinks
 * F.journal.  Only the handle that created a journal appends to it: a
 * journal found at open (a crashed run), a new or a bad state make the
 * first sync write a whole snapshot instead, so a torn tail is never
 * glued to new lines and a journal never exists without its snapshot.
 * The lock is flock() on STATE_DIR/ACCOUNT/lock: the kernel drops it if
 * we die, so there is no stale lock to clean up.
 */
#include "state_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fsutil.h"
#include "names.h"

#define FILE_MAX ((size_t)1 << 30)

/* config.c allows only [A-Za-z0-9._-]; checking again here keeps "..",
 * "/" and "" out of our paths whoever calls us. */
static int name_ok(const char *n)
{
	size_t i;

	if (!n || !*n || !strcmp(n, ".") || !strcmp(n, ".."))
		return 0;
	for (i = 0; n[i]; i++) {
		char c = n[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return 0;
	}
	return 1;
}

static int bad_name(const char *n, struct ms_err *e)
{
	return ms_err_set(e, MS_ECONFIG,
			  "account name \"%s\" cannot name a "
			  "state directory",
			  n ? n : "");
}

static char *cat3(const char *a, const char *b, const char *c)
{
	size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s%s%s", a, b, c);
	return p;
}

/* STATE_DIR/ACCOUNT without creating anything; *fd -1 if missing. */
static int open_ro(const char *state_dir, const char *account, int *fd,
		   struct ms_err *e)
{
	int root, err;

	*fd = -1;
	root = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return errno == ENOENT
			   ? 0
			   : ms_err_sys(e, MS_EIO, errno, "state directory %s",
					state_dir);
	*fd = openat(root, account,
		     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	err = errno;
	close(root);
	if (*fd < 0)
		return err == ENOENT
			   ? 0
			   : ms_err_sys(e, MS_EIO, err, "state directory %s/%s",
					state_dir, account);
	return 0;
}

/* STATE_DIR/ACCOUNT, creating both 0700 as needed. */
static int open_rw(const char *state_dir, const char *account, int *fd,
		   struct ms_err *e)
{
	int root = -1, rc;

	*fd = -1;
	if ((rc = ms_fs_open_dir(state_dir, 1, &root, e)) < 0)
		return rc;
	rc = ms_fs_open_subdir(root, account, 1, fd, e);
	close(root);
	return rc;
}

/* The whole file; *p NULL when it does not exist.  O_NONBLOCK so that a
 * FIFO planted in its place cannot hang us before the S_ISREG check. */
static int slurp(int dfd, const char *name, const char *path, char **p,
		 size_t *n, struct ms_err *e)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0, size;
	ssize_t k;
	int fd, rc = 0;

	*p = NULL;
	*n = 0;
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT
			   ? 0
			   : ms_err_sys(e, MS_EIO, errno, "open %s", path);
	if (fstat(fd, &st) < 0) {
		rc = ms_err_sys(e, MS_EIO, errno, "stat %s", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > FILE_MAX) {
		rc = ms_err_set(e, MS_EIO,
				"%s: not a regular file of at most "
				"1 GiB",
				path);
		goto out;
	}
	size = (size_t)st.st_size;
	if (!(buf = malloc(size + 1))) {
		rc = ms_err_set(e, MS_EINTERNAL, "%s: out of memory", path);
		goto out;
	}
	while (got < size) {
		k = read(fd, buf + got, size - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			rc = ms_err_sys(e, MS_EIO, errno, "read %s", path);
			goto out;
		}
		if (k == 0)
			break;
		got += (size_t)k;
	}
	*p = buf;
	*n = got;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return rc;
}

static int set_names(struct ms_state *s, const char *state_dir,
		     const char *account, const char *base, struct ms_err *e)
{
	s->snap_name = cat3(base, ".state", "");
	s->jnl_name = cat3(base, ".journal", "");
	s->dir_path = cat3(state_dir, "/", account);
	if (s->snap_name && s->jnl_name && s->dir_path) {
		s->snap_path = cat3(s->dir_path, "/", s->snap_name);
		s->jnl_path = cat3(s->dir_path, "/", s->jnl_name);
	}
	if (!s->snap_name || !s->jnl_name || !s->dir_path || !s->snap_path ||
	    !s->jnl_path)
		return ms_err_set(e, MS_EINTERNAL, "state: out of memory");
	return 0;
}

/* Both files of one folder (absent ones stay NULL), then parse. */
static int read_load(struct ms_state *s, struct ms_err *e)
{
	char *snap = NULL, *jnl = NULL;
	size_t sn = 0, jn = 0;
	int rc = 0;

	if (s->dirfd >= 0)
		rc = slurp(s->dirfd, s->snap_name, s->snap_path, &snap, &sn, e);
	if (rc == 0 && s->dirfd >= 0)
		rc = slurp(s->dirfd, s->jnl_name, s->jnl_path, &jnl, &jn, e);
	if (rc == 0)
		rc = ms_state_load(s, snap, sn, jnl, jn, e);
	free(snap);
	free(jnl);
	return rc;
}

int ms_state_open(struct ms_state **out, const char *state_dir,
		  const struct ms_account *a, const char *folder, int dry_run,
		  struct ms_err *e)
{
	struct ms_state *s = NULL;
	char *base = NULL;
	int rc;

	*out = NULL;
	if (!name_ok(a->name))
		return bad_name(a->name, e);
	if (strlen(folder) > MS_STATE_VALUE_MAX ||
	    (a->host && strlen(a->host) > MS_STATE_VALUE_MAX) ||
	    (a->user && strlen(a->user) > MS_STATE_VALUE_MAX))
		return ms_err_set(e, MS_EPROTO,
				  "name longer than %d bytes, no state can be "
				  "kept",
				  MS_STATE_VALUE_MAX);
	rc = ms_state_alloc(&s, a->proto, a->name, a->host ? a->host : "",
			    a->user ? a->user : "", folder, e);
	if (rc < 0)
		return rc;
	s->dry_run = dry_run;
	if ((rc = ms_names_state_file(folder, &base, e)) < 0 ||
	    (rc = set_names(s, state_dir, a->name, base, e)) < 0)
		goto out;
	if (dry_run)
		rc = open_ro(state_dir, a->name, &s->dirfd, e);
	else
		rc = open_rw(state_dir, a->name, &s->dirfd, e);
	if (rc == 0)
		rc = read_load(s, e);
out:
	free(base);
	if (rc < 0) {
		ms_state_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

void ms_state_close(struct ms_state *s)
{
	if (!s)
		return;
	if (s->jfd >= 0)
		close(s->jfd);
	if (s->dirfd >= 0)
		close(s->dirfd);
	ms_state_free_mem(s);
}

/* Snapshot, then drop the journal.  A crash in between leaves the new
 * snapshot and the old journal, whose replay changes nothing. */
static int compact(struct ms_state *s, int64_t lastrun, struct ms_err *e)
{
	struct ms_buf b;
	int rc;

	ms_buf_init(&b, 0);
	if ((rc = ms_state_snapshot(s, lastrun, &b, e)) < 0 ||
	    (rc = ms_fs_replace(s->dirfd, s->snap_name, b.s, b.len,
				s->snap_path, e)) < 0)
		goto out;
	s->lastrun = lastrun;
	if (s->jfd >= 0)
		close(s->jfd);
	s->jfd = -1;
	if (unlinkat(s->dirfd, s->jnl_name, 0) == 0)
		rc = ms_fs_fsync(s->dirfd, s->dir_path, e);
	else if (errno != ENOENT)
		rc = ms_err_sys(e, ms_err_code_for_errno(errno), errno,
				"unlink %s", s->jnl_path);
	if (rc < 0)
		goto out;
	ms_buf_reset(&s->pend);
	s->dirty = 0;
	s->need_compact = 0;
out:
	if (rc < 0) {
		s->need_compact = 1;
	}
	ms_buf_free(&b);
	return rc;
}

/* Append the queued lines: one write, one fsync.  On any failure the
 * journal is abandoned (its tail may be torn) and the next sync writes a
 * whole snapshot. */
static int journal_write(struct ms_state *s, struct ms_err *e)
{
	struct ms_buf head;
	const struct ms_buf *w = &s->pend;
	int rc = 0, created = 0;

	ms_buf_init(&head, 0);
	if (s->jfd < 0) {
		if ((rc = ms_fs_create(s->dirfd, s->jnl_name, &s->jfd, e)) < 0)
			goto out;
		created = 1;
		if ((rc = ms_state_journal_head(s, &head, e)) < 0 ||
		    (rc = ms_buf_add(&head, s->pend.s, s->pend.len, e)) < 0)
			goto out;
		w = &head;
	}
	if ((rc = ms_fs_write_all(s->jfd, w->s, w->len, s->jnl_path, e)) < 0 ||
	    (rc = ms_fs_fsync(s->jfd, s->jnl_path, e)) < 0)
		goto out;
	/* the new name must be durable too, or the lines are lost with it */
	if (created && (rc = ms_fs_fsync(s->dirfd, s->dir_path, e)) < 0)
		goto out;
	ms_buf_reset(&s->pend);
	s->dirty = 0;
out:
	if (rc < 0) {
		if (s->jfd >= 0)
			close(s->jfd);
		s->jfd = -1;
		s->need_compact = 1;
		ms_buf_reset(&s->pend);
	}
	ms_buf_free(&head);
	return rc;
}

int ms_state_sync(struct ms_state *s, struct ms_err *e)
{
	if (s->dry_run || !s->dirty)
		return 0;
	if (s->need_compact)
		return compact(s, s->lastrun, e);
	return journal_write(s, e);
}

int ms_state_is_clean(const struct ms_state *s)
{
	/* jfd: a journal written this run is a change since open */
	return !s->dirty && !s->need_compact && s->jfd < 0;
}

int ms_state_compact(struct ms_state *s, time_t now, struct ms_err *e)
{
	if (s->dry_run)
		return 0;
	return compact(s, (int64_t)now, e);
}

/* ---- listing (mailsync status) ---- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of the *.state files below dfd. */
static int list_states(int dfd, const char *path, char ***names, size_t *n,
		       struct ms_err *e)
{
	struct dirent *de;
	size_t cap = 0;
	int fd = dup(dfd), rc = 0;
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;

	if (!d) {
		rc = ms_err_sys(e, MS_EIO, errno, "read %s", path);
		if (fd >= 0)
			close(fd);
		return rc;
	}
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		char **v;

		if (len <= 6 || strcmp(de->d_name + len - 6, ".state"))
			continue;
		if (*n == cap) {
			cap = cap ? 2 * cap : 16;
			if (!(v = realloc(*names, cap * sizeof *v)))
				break;
			*names = v;
		}
		if (!((*names)[*n] = strdup(de->d_name)))
			break;
		(*n)++;
	}
	if (de)
		rc = ms_err_set(e, MS_EINTERNAL, "%s: out of memory", path);
	closedir(d);
	qsort(*names, *n, sizeof **names, cmp_str);
	return rc;
}

static int folder_one(int dfd, const char *state_dir, const char *account,
		      const char *name,
		      int (*cb)(void *, const char *, const struct ms_state *),
		      void *ctx, struct ms_err *e)
{
	struct ms_state *s;
	char *stem = strdup(name);
	int rc;

	if (!stem)
		return ms_err_set(e, MS_EINTERNAL, "state: out of memory");
	stem[strlen(stem) - 6] = '\0';
	rc = ms_state_alloc(&s, 0, account, NULL, NULL, NULL, e);
	if (rc == 0) {
		s->dry_run = 1;
		s->dirfd = dfd;
		if ((rc = set_names(s, state_dir, account, stem, e)) == 0)
			rc = read_load(s, e);
		s->dirfd = -1;
		/* a header too damaged to name its folder: the file name */
		if (rc == 0)
			rc = cb(ctx, s->folder ? s->folder : stem, s);
		ms_state_close(s);
	}
	free(stem);
	return rc;
}

int ms_state_folders(const char *state_dir, const char *account,
		     int (*cb)(void *ctx, const char *folder,
			       const struct ms_state *s),
		     void *ctx, struct ms_err *e)
{
	char **names = NULL, *path = NULL;
	size_t i, n = 0;
	int dfd = -1, rc;

	if (!name_ok(account))
		return bad_name(account, e);
	if ((rc = open_ro(state_dir, account, &dfd, e)) < 0 || dfd < 0)
		return rc;
	if (!(path = cat3(state_dir, "/", account))) {
		rc = ms_err_set(e, MS_EINTERNAL, "state: out of memory");
		goto out;
	}
	rc = list_states(dfd, path, &names, &n, e);
	for (i = 0; i < n && rc == 0; i++)
		rc = folder_one(dfd, state_dir, account, names[i], cb, ctx, e);
out:
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(path);
	close(dfd);
	return rc;
}

/* ---- the account lock ---- */

/* The holder of the flock on fd according to /proc/locks (Linux), which
 * also names holders that are not mailsync (flock(1), a backup tool);
 * 0 when unknown. */
static long lock_holder(int fd)
{
	unsigned maj, min;
	unsigned long ino;
	char line[256], type[16];
	struct stat st;
	long pid, found = 0;
	FILE *f;

	if (fstat(fd, &st) < 0 || !(f = fopen("/proc/locks", "re")))
		return 0;
	while (!found && fgets(line, sizeof line, f)) {
		if (sscanf(line, "%*d: %15s %*s %*s %ld %x:%x:%lu", type, &pid,
			   &maj, &min, &ino) == 5 &&
		    !strcmp(type, "FLOCK") && maj == major(st.st_dev) &&
		    min == minor(st.st_dev) &&
		    ino == (unsigned long)st.st_ino && pid > 0)
			found = pid;
	}
	fclose(f);
	return found;
}

static int held(int fd, struct ms_err *e)
{
	char buf[32];
	long pid = lock_holder(fd);
	ssize_t k;
	int rc;

	if (pid <= 0 && (k = pread(fd, buf, sizeof buf - 1, 0)) > 0) {
		buf[k] = '\0';
		pid = strtol(buf, NULL, 10);
	}
	if (pid > 0)
		rc = ms_err_set(e, MS_ETEMP, "locked by pid %ld", pid);
	else
		rc = ms_err_set(e, MS_ETEMP, "locked by another process");
	if (e)
		e->scope = MS_SCOPE_ACCOUNT;
	return rc;
}

int ms_state_lock(const char *state_dir, const char *account, int *fd,
		  struct ms_err *e)
{
	struct stat st;
	char pid[32];
	int dir = -1, lfd = -1, rc, n;

	*fd = -1;
	if (!name_ok(account))
		return bad_name(account, e);
	if ((rc = open_rw(state_dir, account, &dir, e)) < 0)
		return rc;
	/* 0600 by open() itself: no chmod window, whatever the umask */
	lfd = openat(dir, "lock",
		     O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
		     0600);
	if (lfd < 0 || fstat(lfd, &st) < 0) {
		rc = ms_err_sys(e, ms_err_code_for_errno(errno), errno,
				"lock %s/%s/lock", state_dir, account);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = ms_err_set(e, MS_EIO,
				"lock %s/%s/lock: not a regular "
				"file",
				state_dir, account);
		goto out;
	}
	if (flock(lfd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			rc = held(lfd, e);
		else
			rc = ms_err_sys(e, MS_EIO, errno, "flock %s/%s/lock",
					state_dir, account);
		goto out;
	}
	n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (ftruncate(lfd, 0) < 0 || pwrite(lfd, pid, (size_t)n, 0) != n) {
		rc = ms_err_sys(e, MS_EIO, errno, "write %s/%s/lock", state_dir,
				account);
		goto out;
	}
	*fd = lfd;
	lfd = -1;
out:
	if (lfd >= 0)
		close(lfd);
	close(dir);
	return rc;
}

/*
 * STATE_DIR/ACCOUNT/last-run: when the account last synced without error,
 * "mailsync-last-run 1\nEPOCH\n".  Account-wide so that a clock that
 * went backwards is noticed once, before any folder is touched.  State
 * directories from before this file simply lack it (unknown, 0); the
 * folder snapshots' own last_run still stands in for it.
 */
#define LAST_RUN_FILE "last-run"
#define LAST_RUN_MAGIC "mailsync-last-run 1\n"

int ms_state_account_last_run(const char *state_dir, const char *account,
			      time_t *t, struct ms_err *e)
{
	char *p = NULL, *end, path[4096];
	size_t n = 0, ml = sizeof LAST_RUN_MAGIC - 1;
	long long v;
	int dfd = -1, rc;

	*t = 0;
	if (!name_ok(account))
		return bad_name(account, e);
	if ((rc = open_ro(state_dir, account, &dfd, e)) < 0 || dfd < 0)
		return rc;
	snprintf(path, sizeof path, "%s/%s/%s", state_dir, account,
		 LAST_RUN_FILE);
	rc = slurp(dfd, LAST_RUN_FILE, path, &p, &n, e);
	close(dfd);
	if (rc < 0 || !p)
		return rc;
	p[n] = '\0';
	/* a damaged file only loses the check, never the run */
	if (n > ml && !memcmp(p, LAST_RUN_MAGIC, ml) && p[ml] >= '0' &&
	    p[ml] <= '9') {
		errno = 0;
		v = strtoll(p + ml, &end, 10);
		if (!errno && *end == '\n' && v > 0)
			*t = (time_t)v;
	}
	free(p);
	return 0;
}

int ms_state_account_set_last_run(const char *state_dir, const char *account,
				  time_t t, struct ms_err *e)
{
	char buf[64], path[4096];
	int dfd = -1, rc, n;

	if (!name_ok(account))
		return bad_name(account, e);
	if ((rc = open_rw(state_dir, account, &dfd, e)) < 0)
		return rc;
	snprintf(path, sizeof path, "%s/%s/%s", state_dir, account,
		 LAST_RUN_FILE);
	n = snprintf(buf, sizeof buf, LAST_RUN_MAGIC "%lld\n", (long long)t);
	rc = ms_fs_replace(dfd, LAST_RUN_FILE, buf, (size_t)n, path, e);
	close(dfd);
	return rc;
}

/* Clear our pid first, so that it cannot be blamed for a later holder;
 * closing drops the lock. */
void ms_state_unlock(int fd)
{
	if (fd < 0)
		return;
	if (ftruncate(fd, 0) < 0) {
		/* only the pid hint is stale; the lock goes with close */
	}
	close(fd);
}
