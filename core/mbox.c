/*
 * mbox.c: the mbox store (mboxrd), one file per folder, plus an index.
 *
 * Messages stream (CRLF -> LF, quoted by mbox_quote.c) into one anonymous
 * spool file per folder; commit takes a dotlock then an fcntl lock (the
 * order Dovecot and mutt use), appends every finished message with its
 * From_ line and one blank line, fsyncs, then appends their records to
 * the index PATH.msidx and fsyncs that; only then are the locks released
 * and the messages reported durable.  Any write error truncates the mbox
 * back to its size before the append.  A crash mid-append is cut at the
 * next open: the index holds a "b PRE END" record written before the
 * append and closed by "e" (done) or "x" (cut); see mbox_index.c for the
 * format.  Incoming headers (Status, X-UID, Content-Length...) are stored
 * unchanged: mboxrd readers do not trust Content-Length.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "mbox_int.h"
#include "names.h"
#include "store.h"

#define LOCK_WAIT_DEFAULT 10      /* seconds, for dotlock + fcntl */
#define DOTLOCK_STALE 300         /* seconds (liblockfile's 5 minutes) */

static int write_at(struct ms_store_folder *f, off_t off, const char *p,
		    size_t n, struct ms_err *e)
{
	ssize_t w;

	while (n > 0) {
		w = pwrite(f->spool, p, n, off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return ms_err_sys(e, ms_err_code_for_errno(errno),
					  w < 0 ? errno : EIO,
					  "%s: temporary file", f->path);
		p += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

static unsigned lock_wait(void)
{
	const char *v = getenv("MAILSYNC_MBOX_LOCK_TIMEOUT");
	char *end;
	unsigned long x;

	if (!v || !*v)
		return LOCK_WAIT_DEFAULT;
	x = strtoul(v, &end, 10);
	return *end || x > 600 ? LOCK_WAIT_DEFAULT : (unsigned)x;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap(void)
{
	struct timespec ts = { 0, 100 * 1000 * 1000 };

	nanosleep(&ts, NULL);
}

/* ---- locking: dotlock then fcntl, both bounded ---------------------- */

/* The dotlock names a process (its pid, as mailsync and liblockfile
 * write it) that no longer exists: its holder was killed. */
static int holder_dead(struct ms_store_folder *f)
{
	char buf[32];
	ssize_t n;
	long pid;
	char *end;
	int fd;

	fd = openat(f->dirfd, f->lockname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	pid = strtol(buf, &end, 10);
	if (end == buf || (*end && *end != '\n') || pid <= 0 ||
	    pid > 4194304)
		return 0;
	return kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

/* Temporary files of the dotlock protocol: LOCKNAME.mailsync.PID.RAND. */
static int tmp_name(struct ms_store_folder *f, char *out, size_t cap)
{
	static unsigned seq;
	int n;

	n = snprintf(out, cap, "%s.mailsync.%ld.%llx%x", f->lockname,
		     (long)getpid(), (unsigned long long)now_ms(), ++seq);
	return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* Remove the temporary files a killed mailsync left (their pid is dead). */
static void sweep_tmp(struct ms_store_folder *f)
{
	size_t plen = strlen(f->lockname);
	struct dirent *de;
	DIR *d;
	long pid;
	char *end;
	int fd;

	if ((fd = openat(f->dirfd, ".", O_RDONLY | O_DIRECTORY |
			 O_CLOEXEC)) < 0)
		return;
	if (!(d = fdopendir(fd))) {
		close(fd);
		return;
	}
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, f->lockname, plen) != 0 ||
		    strncmp(de->d_name + plen, ".mailsync.", 10) != 0)
			continue;
		pid = strtol(de->d_name + plen + 10, &end, 10);
		if (end == de->d_name + plen + 10 || *end != '.' ||
		    pid <= 0 || pid > 4194304)
			continue;
		if (kill((pid_t)pid, 0) < 0 && errno == ESRCH &&
		    unlinkat(f->dirfd, de->d_name, 0) == 0)
			ms_log(MS_LOG_DEBUG, "%s: removed %s of a dead process",
			       f->path, de->d_name);
	}
	closedir(d);
}

/* One attempt: the pid goes into a unique temporary file first, which is
 * then hard-linked to LOCKNAME, so the dotlock is never seen without its
 * pid (a SIGKILL leaves a whole lock or none).  NFS: link() may report an
 * error although it worked; the link count of the temporary file tells
 * (liblockfile).  1: taken; 0: held by someone; < 0: error. */
static int dotlock_try(struct ms_store_folder *f, struct ms_err *e)
{
	char tmp[4096], pid[32];
	struct stat st;
	int fd, n, rc, err = 0, nolink = 0;

	if (tmp_name(f, tmp, sizeof tmp) < 0)
		return ms_err_set(e, MS_ECREATE, "%s.lock: name too long",
				  f->path);
	fd = openat(f->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
	if (fd < 0)
		return ms_err_sys(e, ms_err_code_for_errno(errno), errno,
				  "%s.lock: cannot create dotlock", f->path);
	n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (write(fd, pid, (size_t)n) != n) {
		err = errno ? errno : EIO;
		close(fd);
		unlinkat(f->dirfd, tmp, 0);
		return ms_err_sys(e, ms_err_code_for_errno(err), err,
				  "%s.lock: cannot write dotlock", f->path);
	}
	close(fd);
	if (linkat(f->dirfd, tmp, f->dirfd, f->lockname, 0) == 0)
		rc = 1;
	else if ((err = errno),
		 fstatat(f->dirfd, tmp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		 st.st_nlink == 2)
		rc = 1;
	else if (err == EEXIST)
		rc = 0;
	else if (err == EPERM || err == ENOTSUP || err == EOPNOTSUPP ||
		 err == ENOSYS)
		rc = 0, nolink = 1; /* no hard links here */
	else
		rc = ms_err_sys(e, ms_err_code_for_errno(err), err,
				"%s.lock: cannot create dotlock", f->path);
	unlinkat(f->dirfd, tmp, 0);
	if (nolink) {
		/* filesystems without hard links (vfat, some FUSE): create
		 * it directly, with the pid written right after */
		fd = openat(f->dirfd, f->lockname, O_WRONLY | O_CREAT |
			    O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0 && errno == EEXIST)
			return 0;
		if (fd < 0)
			return ms_err_sys(e, ms_err_code_for_errno(errno),
					  errno, "%s.lock: cannot create "
					  "dotlock", f->path);
		if (write(fd, pid, (size_t)n) != n)
			ms_log(MS_LOG_DEBUG, "%s.lock: short write", f->path);
		close(fd);
		rc = 1;
	}
	return rc;
}

static int dotlock_take(struct ms_store_folder *f, long long deadline,
			struct ms_err *e)
{
	struct stat st;
	int rc;

	for (;;) {
		if ((rc = dotlock_try(f, e)) < 0)
			return rc;
		if (rc == 1)
			break;
		/* A dotlock is stale when its holder is gone, or after
		 * 5 minutes (liblockfile) when it names no process. */
		if (holder_dead(f) &&
		    unlinkat(f->dirfd, f->lockname, 0) == 0) {
			ms_log(MS_LOG_WARN, "%s.lock: removed the dotlock of a "
			       "process that no longer exists", f->path);
			continue;
		}
		if (fstatat(f->dirfd, f->lockname, &st,
			    AT_SYMLINK_NOFOLLOW) == 0 &&
		    time(NULL) - st.st_mtime > DOTLOCK_STALE &&
		    unlinkat(f->dirfd, f->lockname, 0) == 0) {
			ms_log(MS_LOG_WARN, "%s.lock: removed a stale dotlock "
			       "(older than %d s)", f->path, DOTLOCK_STALE);
			continue;
		}
		if (now_ms() >= deadline)
			return ms_err_set(e, MS_ETEMP, "mbox %s is locked by "
					  "another program (dotlock %s.lock)",
					  f->path, f->path);
		nap();
	}
	f->dotlocked = 1;
	f->touched = time(NULL);
	if (!f->swept) {
		f->swept = 1;
		sweep_tmp(f);
	}
	return 0;
}

static int fcntl_take(struct ms_store_folder *f, long long deadline,
		      struct ms_err *e)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

	while (fcntl(f->fd, F_SETLK, &fl) < 0) {
		if (errno != EAGAIN && errno != EACCES && errno != EINTR)
			return ms_err_sys(e, MS_EIO, errno, "%s: fcntl lock",
					  f->path);
		if (now_ms() >= deadline)
			return ms_err_set(e, MS_ETEMP, "mbox %s is locked by "
					  "another program (fcntl)", f->path);
		nap();
	}
	f->fcntl_locked = 1;
	return 0;
}

static void unlock_all(struct ms_store_folder *f)
{
	struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET };

	if (f->fcntl_locked)
		fcntl(f->fd, F_SETLK, &fl);
	if (f->dotlocked)
		unlinkat(f->dirfd, f->lockname, 0);
	f->fcntl_locked = f->dotlocked = 0;
}

static int lock_all(struct ms_store_folder *f, struct ms_err *e)
{
	long long deadline = now_ms() + (long long)lock_wait() * 1000;
	int rc;

	if ((rc = dotlock_take(f, deadline, e)) < 0)
		return rc;
	if ((rc = fcntl_take(f, deadline, e)) < 0)
		unlock_all(f);
	return rc;
}

/* ---- messages: stream into the spool -------------------------------- */

static int spool_open(struct ms_store_folder *f, struct ms_err *e)
{
	char name[64];
	int dfd = f->dirfd >= 0 ? f->dirfd : AT_FDCWD;
	const char *dir = f->dirfd >= 0 ? "." : "/tmp";

	if (f->spool >= 0)
		return 0;
	f->spool = openat(dfd, dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (f->spool >= 0)
		return 0;
	/* no O_TMPFILE here: a named file, unlinked at once */
	snprintf(name, sizeof name, "%s/.mailsync-spool.%ld.%lx", dir,
		 (long)getpid(), (unsigned long)now_ms());
	f->spool = openat(dfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
			  O_CLOEXEC, 0600);
	if (f->spool < 0)
		return ms_err_sys(e, ms_err_code_for_errno(errno), errno,
				  "%s: cannot create a temporary file",
				  f->path);
	unlinkat(dfd, name, 0);
	return 0;
}

static int mbox_msg_begin(struct ms_store_folder *f, struct ms_store_msg **out,
			  struct ms_err *e)
{
	struct ms_store_msg *m;
	int rc;

	*out = NULL;
	if (f->cur)
		return ms_err_set(e, MS_EINTERNAL, "%s: message already open",
				  f->path);
	if ((rc = spool_open(f, e)) < 0)
		return rc;
	if (!(m = calloc(1, sizeof *m)) || !(m->hdr = malloc(HDR_KEEP)) ||
	    !(m->md = EVP_MD_CTX_new()) ||
	    !EVP_DigestInit_ex(m->md, EVP_sha256(), NULL)) {
		if (m) {
			EVP_MD_CTX_free(m->md);
			free(m->hdr);
			free(m);
		}
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	}
	m->f = f;
	m->start = m->pos = f->spool_end;
	m->last = '\n';
	ms_mbox_quote_init(&m->quote);
	f->cur = m;
	*out = m;
	return 0;
}

/* Keep the header block (up to the first empty line) for Return-Path. */
static void keep_header(struct ms_store_msg *m, const char *p, size_t n)
{
	size_t room = HDR_KEEP - m->hlen, i, from;

	if (m->hdr_done)
		return;
	if (n > room)
		n = room;
	from = m->hlen;
	memcpy(m->hdr + m->hlen, p, n);
	m->hlen += n;
	for (i = from ? from - 1 : 0; i < m->hlen; i++) {
		if (m->hdr[i] == '\n' && (i == 0 || m->hdr[i - 1] == '\n')) {
			m->hlen = i + 1;
			m->hdr_done = 1;
			return;
		}
	}
	if (m->hlen == HDR_KEEP)
		m->hdr_done = 1;
}

/* LF bytes: hash, keep header, quote, append to the spool. */
static int put_lf(struct ms_store_msg *m, const char *p, size_t n, int hash,
		  struct ms_err *e)
{
	struct ms_store_folder *f = m->f;
	size_t qn;
	int rc;

	if (n == 0)
		return 0;
	if (hash) {
		EVP_DigestUpdate(m->md, p, n);
		keep_header(m, p, n);
		m->raw += n;
		m->last = p[n - 1];
	}
	qn = ms_mbox_quote_feed(&m->quote, p, n, f->q);
	if ((rc = write_at(f, m->pos, f->q, qn, e)) < 0)
		return rc;
	m->pos += (off_t)qn;
	return 0;
}

static int mbox_msg_write(struct ms_store_msg *m, const char *p, size_t n,
			  struct ms_err *e)
{
	size_t k, ln;
	int rc;

	while (n > 0) {
		k = n < CHUNK ? n : CHUNK;
		ln = ms_mbox_crlf_feed(&m->crlf, p, k, m->f->lf);
		if ((rc = put_lf(m, m->f->lf, ln, 1, e)) < 0)
			return rc;
		p += k;
		n -= k;
	}
	return 0;
}

static void msg_free(struct ms_store_msg *m)
{
	if (m->f->cur == m)
		m->f->cur = NULL;
	EVP_MD_CTX_free(m->md);
	free(m->hdr);
	free(m);
}

static void mbox_msg_abort(struct ms_store_msg *m)
{
	struct ms_store_folder *f = m->f;

	if (ftruncate(f->spool, m->start) < 0)
		ms_log(MS_LOG_DEBUG, "%s: spool truncate failed", f->path);
	f->spool_end = m->start;
	msg_free(m);
}

static int add_done(struct ms_store_folder *f, struct ms_err *e)
{
	struct done_msg *p;
	size_t cap;

	if (f->n < f->cap)
		return 0;
	cap = f->cap ? f->cap * 2 : 64;
	if (!(p = realloc(f->msgs, cap * sizeof *p)))
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	f->msgs = p;
	f->cap = cap;
	return 0;
}

static int mbox_msg_finish(struct ms_store_msg *m, const struct ms_msg *meta,
			   struct ms_err *e)
{
	struct ms_store_folder *f = m->f;
	char tail[8], sender[256], date[32];
	struct done_msg *d;
	size_t tn;
	int rc, nl = 0;

	tn = ms_mbox_crlf_flush(&m->crlf, tail);
	if ((rc = put_lf(m, tail, tn, 1, e)) < 0)
		goto fail;
	/* a partial last line gets its newline (not hashed, recorded) */
	if (m->raw > 0 && m->last != '\n') {
		nl = 1;
		if ((rc = put_lf(m, "\n", 1, 0, e)) < 0)
			goto fail;
	}
	tn = ms_mbox_quote_flush(&m->quote, tail);
	if ((rc = write_at(f, m->pos, tail, tn, e)) < 0 ||
	    (rc = add_done(f, e)) < 0)
		goto fail;
	m->pos += (off_t)tn;
	d = &f->msgs[f->n];
	memset(d, 0, sizeof *d);
	d->start = m->start;
	d->len = m->pos - m->start;
	d->meta = *meta;
	d->nl_added = nl;
	EVP_DigestFinal_ex(m->md, d->sha, NULL);
	ms_mbox_sender(m->hdr, m->hlen, sender, sizeof sender);
	ms_mbox_date(meta->internaldate > 0 ? meta->internaldate
		     : (int64_t)time(NULL), date, sizeof date);
	snprintf(d->from, sizeof d->from, "From %s %s\n", sender, date);
	f->n++;
	f->spool_end = m->pos;
	msg_free(m);
	return 0;
fail:
	mbox_msg_abort(m);
	return rc;
}

/* ---- commit: lock, append, fsync, index, unlock, report ------------- */

/* A long append keeps its dotlock fresh so nobody takes it for stale. */
static void keep_fresh(struct ms_store_folder *f)
{
	time_t now = time(NULL);

	if (f->dotlocked && now - f->touched >= 60) {
		utimensat(f->dirfd, f->lockname, NULL, AT_SYMLINK_NOFOLLOW);
		f->touched = now;
	}
}

#define WB_STEP (1024 * 1024) /* start writeback every this many bytes */

/* Append the buffered bytes (O_APPEND, the locks held), and every WB_STEP
 * bytes start their writeback, so that the commit's fsync finds most of
 * the append already on its way to disk.  A hint only; the fsync is what
 * makes it durable. */
static int flush_out(struct ms_store_folder *f, size_t *wl, struct ms_err *e)
{
	int rc;

	if ((rc = ms_fs_write_all(f->fd, f->wbuf, *wl, f->path, e)) < 0)
		return rc;
	f->woff += *wl;
	*wl = 0;
	keep_fresh(f);
	if (f->woff - f->wsync >= WB_STEP) {
		(void)sync_file_range(f->fd, (off_t)f->wsync,
				      (off_t)(f->woff - f->wsync),
				      SYNC_FILE_RANGE_WRITE);
		f->wsync = f->woff;
	}
	return 0;
}

static int copy_out(struct ms_store_folder *f, size_t *wl, const char *p,
		    size_t n, struct ms_err *e)
{
	size_t k;
	int rc;

	while (n > 0) {
		if (*wl == COPY_BUF && (rc = flush_out(f, wl, e)) < 0)
			return rc;
		k = COPY_BUF - *wl < n ? COPY_BUF - *wl : n;
		memcpy(f->wbuf + *wl, p, k);
		*wl += k;
		p += k;
		n -= k;
	}
	return 0;
}

/* From_ line, the quoted message from the spool, one blank line. */
static int append_one(struct ms_store_folder *f, const struct done_msg *d,
		      size_t *wl, struct ms_err *e)
{
	off_t off = d->start, end = d->start + d->len;
	ssize_t r;
	size_t k;
	int rc;

	if ((rc = copy_out(f, wl, d->from, strlen(d->from), e)) < 0)
		return rc;
	while (off < end) {
		if (*wl == COPY_BUF && (rc = flush_out(f, wl, e)) < 0)
			return rc;
		k = COPY_BUF - *wl;
		if ((off_t)k > end - off)
			k = (size_t)(end - off);
		r = pread(f->spool, f->wbuf + *wl, k, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return ms_err_sys(e, MS_EIO, r < 0 ? errno : EIO,
					  "%s: temporary file", f->path);
		*wl += (size_t)r;
		off += r;
	}
	return copy_out(f, wl, "\n", 1, e);
}

static uint64_t msg_total(const struct done_msg *d)
{
	return strlen(d->from) + (uint64_t)d->len + 1;
}

/* Newlines needed before a From_ line at the end of the mbox: it must
 * start a line after a blank one, even when the file was cut mid-message
 * or written by a program that did not end it so. */
static size_t tail_pad(struct ms_store_folder *f, uint64_t size)
{
	char b[2];

	if (size == 0)
		return 0;
	if (size == 1)
		return pread(f->fd, b, 1, 0) == 1 && b[0] == '\n' ? 0 : 2;
	if (pread(f->fd, b, 2, (off_t)size - 2) != 2)
		return 2;
	return b[1] != '\n' ? 2 : b[0] != '\n';
}

/* Append every finished message (after pad newlines); on error cut back
 * to pre. */
static int append_all(struct ms_store_folder *f, uint64_t pre, size_t pad,
		      struct ms_buf *idx, struct ms_err *e)
{
	uint64_t off = pre + pad;
	char stamp[160];
	size_t i, wl = 0;
	int rc = 0;

	f->woff = f->wsync = pre;
	if (pad)
		rc = copy_out(f, &wl, "\n\n", pad, e);

	for (i = 0; i < f->n && rc == 0; i++) {
		rc = append_one(f, &f->msgs[i], &wl, e);
		if (rc == 0)
			rc = ms_mbox_index_line(idx, &f->msgs[i], (off_t)off,
					msg_total(&f->msgs[i]), f->s->a->name,
					e);
		off += msg_total(&f->msgs[i]);
	}
	if (rc == 0 && wl)
		rc = flush_out(f, &wl, e);
	if (rc == 0)
		rc = ms_fs_fsync(f->fd, f->path, e);
	if (rc == 0)
		ms_fs_drop_cache(f->fd, pre);
	if (rc == 0)
		rc = ms_buf_addf(idx, e, "e %" PRIu64 "\n", off);
	/* the mbox as it is now, for a cheap check at the next open; not
	 * while another account's records fail (they must be hashed again
	 * until that account has seen and dropped them) */
	if (rc == 0 && !f->nforeign_bad &&
	    (rc = ms_mbox_stamp_line(f, stamp, sizeof stamp, e)) == 0)
		rc = ms_buf_add(idx, stamp, strlen(stamp), e);
	return rc;
}

static void cut_back(struct ms_store_folder *f, uint64_t pre)
{
	char rec[64];
	struct ms_err e2;

	if (ftruncate(f->fd, (off_t)pre) < 0 || fsync(f->fd) < 0)
		ms_log(MS_LOG_ERR, "%s: cannot truncate back to %llu bytes: "
		       "%s (the next run will)", f->path,
		       (unsigned long long)pre, strerror(errno));
	snprintf(rec, sizeof rec, "x %llu\n", (unsigned long long)pre);
	ms_err_clear(&e2);
	if (ms_mbox_idx_append(f, rec, strlen(rec), &e2) < 0)
		ms_log(MS_LOG_WARN, "%s", e2.msg);
}

static void drop_batch(struct ms_store_folder *f)
{
	f->n = 0;
	f->spool_end = 0;
	if (f->spool >= 0 && ftruncate(f->spool, 0) < 0)
		ms_log(MS_LOG_DEBUG, "%s: spool truncate failed", f->path);
}

static int mbox_commit(struct ms_store_folder *f, ms_durable_cb cb, void *ctx,
		       struct ms_err *e)
{
	struct ms_buf idx;
	char rec[64];
	uint64_t pre, total = 0;
	struct stat st;
	size_t i, pad;
	int rc;

	ms_buf_init(&idx, 0);
	if (f->n == 0 || f->s->dry_run) {
		drop_batch(f);
		return 0;
	}
	if (f->cur)
		return ms_err_set(e, MS_EINTERNAL, "%s: commit with a message "
				  "open", f->path);
	if ((rc = lock_all(f, e)) < 0)
		goto out;
	if ((rc = ms_mbox_recover(f, e)) < 0)
		goto out;
	if (fstat(f->fd, &st) < 0) {
		rc = ms_err_sys(e, MS_EIO, errno, "%s: fstat", f->path);
		goto out;
	}
	pre = (uint64_t)st.st_size;
	pad = tail_pad(f, pre);
	total = pad;
	for (i = 0; i < f->n; i++)
		total += msg_total(&f->msgs[i]);
	snprintf(rec, sizeof rec, "b %" PRIu64 " %" PRIu64 "\n", pre,
		 pre + total);
	if ((rc = ms_mbox_idx_append(f, rec, strlen(rec), e)) < 0)
		goto out;
	if ((rc = append_all(f, pre, pad, &idx, e)) < 0 ||
	    (rc = ms_mbox_idx_append(f, idx.s, idx.len, e)) < 0) {
		cut_back(f, pre);
		goto out;
	}
	unlock_all(f);
	for (i = 0; i < f->n; i++)
		if (cb)
			cb(ctx, &f->msgs[i].meta);
out:
	unlock_all(f);
	drop_batch(f);
	ms_buf_free(&idx);
	return rc;
}

/* ---- folders -------------------------------------------------------- */

static int open_mbox(struct ms_store_folder *f, struct ms_err *e)
{
	const int fl = O_RDWR | O_APPEND | O_NOFOLLOW | O_CLOEXEC;
	struct stat st;
	int fd, rc;

	if (f->dirfd < 0)
		return 0; /* dry run, directory missing */
	f->fd = openat(f->dirfd, f->name, fl);
	if (f->fd < 0 && errno == ENOENT && !f->s->dry_run) {
		if ((rc = ms_fs_create(f->dirfd, f->name, &fd, e)) < 0)
			return rc;
		close(fd);
		if (fsync(f->dirfd) < 0)
			return ms_err_sys(e, MS_EIO, errno, "%s: fsync of the "
					  "directory", f->path);
		f->fd = openat(f->dirfd, f->name, fl);
	}
	if (f->fd < 0 && errno == ENOENT && f->s->dry_run)
		return 0;
	if (f->fd < 0 && errno == ELOOP)
		return ms_err_set(e, MS_ECREATE, "%s: is a symbolic link; "
				  "refusing to write through it", f->path);
	if (f->fd < 0)
		return ms_err_sys(e, MS_ECREATE, errno, "%s: cannot open for "
				  "appending", f->path);
	if (fstat(f->fd, &st) < 0 || !S_ISREG(st.st_mode))
		return ms_err_set(e, MS_ECREATE, "%s: not a regular file",
				  f->path);
	return 0;
}

/* Directory fd and file name of a folder's mbox. */
static int locate(struct ms_store *s, const char *folder,
		  struct ms_store_folder *f, struct ms_err *e)
{
	char *rel = NULL, *slash;
	int rc = 0;

	if (s->pop3) {
		f->name = strdup(s->base);
		f->path = malloc(strlen(s->root) + strlen(s->base) + 2);
		if (f->path)
			sprintf(f->path, "%s/%s", s->root, s->base);
		f->dirfd = s->dirfd >= 0 ? dup(s->dirfd) : -1;
		goto done;
	}
	if ((rc = ms_names_local_to_path(folder, MS_LAYOUT_VERBATIM, &rel,
					 e)) < 0)
		return rc;
	f->path = malloc(strlen(s->root) + strlen(rel) + 2);
	if (f->path)
		sprintf(f->path, "%s/%s", s->root, rel);
	slash = strrchr(rel, '/');
	f->name = strdup(slash ? slash + 1 : rel);
	if (slash && s->dirfd >= 0) {
		*slash = '\0';
		rc = ms_fs_open_subdir(s->dirfd, rel, !s->dry_run, &f->dirfd,
				       e);
		if (rc < 0 && s->dry_run) {
			f->dirfd = -1;
			rc = 0;
		}
	} else {
		f->dirfd = s->dirfd >= 0 ? dup(s->dirfd) : -1;
	}
	free(rel);
done:
	if (rc == 0 && (!f->name || !f->path))
		rc = ms_err_set(e, MS_EINTERNAL, "out of memory");
	return rc;
}

/* MBOX.labels beside the mbox and its index. */
static int mbox_put_labels(struct ms_store_folder *f, const char *data,
			   size_t n, struct ms_err *e)
{
	char *name;
	int rc;

	if (f->s->dry_run || f->dirfd < 0)
		return 0;
	if (!(name = malloc(strlen(f->name) + 8)))
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	sprintf(name, "%s.labels", f->name);
	rc = ms_fs_replace(f->dirfd, name, data, n, f->path, e);
	free(name);
	return rc;
}

/* At open: check the index against the mbox and remember which of this
 * account's records no longer match (by position and offset) for
 * lost/forget_lost.  Another account's records are its own to report and
 * drop: they stay. */
static int remember_invalid(struct ms_store_folder *f, struct ms_err *e)
{
	size_t i;
	int rc;

	if ((rc = ms_mbox_validate(f, e)) < 0)
		return rc;
	f->nbad1 = 0;
	for (i = 0; i < f->nents; i++)
		f->nbad1 += !f->ents[i].valid && !f->ents[i].foreign;
	if (f->nbad1 == 0)
		return 0;
	f->bad1 = calloc(f->nents, 1);
	f->bad1_off = calloc(f->nents, sizeof *f->bad1_off);
	if (!f->bad1 || !f->bad1_off)
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	for (i = 0; i < f->nents; i++) {
		f->bad1[i] = !f->ents[i].valid && !f->ents[i].foreign;
		f->bad1_off[i] = f->ents[i].off;
	}
	f->nbad1 = f->nents;
	return 0;
}

static int mbox_lost(struct ms_store_folder *f, ms_stored_cb cb, void *ctx,
		     struct ms_err *e)
{
	size_t n;
	int rc;

	if (!f->bad1)
		return 0;
	rc = ms_mbox_lost_ids(f, cb, ctx, &n, e);
	if (rc == 0 && n)
		ms_log(MS_LOG_WARN, "mbox %s no longer matches its index: %zu "
		       "message%s will be fetched again", f->path, n,
		       n == 1 ? "" : "s");
	return rc;
}

/* Under the locks, validate again and drop the records that were invalid
 * at open and still are (a record that became invalid since was not
 * reported as lost: it stays, for the next run to report); or, when the
 * index only lacked a current "s" record, append one. */
static int mbox_forget_lost(struct ms_store_folder *f, struct ms_err *e)
{
	unsigned char *drop = NULL;
	size_t i;
	int rc;

	if (f->s->dry_run || f->fd < 0 || f->dirfd < 0)
		return 0;
	if (!f->bad1 && (f->stamp_ok || f->nents == 0))
		return 0;
	if ((rc = lock_all(f, e)) < 0)
		return rc;
	if ((rc = ms_mbox_recover(f, e)) < 0 ||
	    (rc = ms_mbox_validate(f, e)) < 0)
		goto out;
	if (f->nents && !(drop = calloc(f->nents, 1))) {
		rc = ms_err_set(e, MS_EINTERNAL, "out of memory");
		goto out;
	}
	for (i = 0; f->bad1 && i < f->nents && i < f->nbad1; i++)
		drop[i] = f->bad1[i] && !f->ents[i].valid &&
			  f->ents[i].off == f->bad1_off[i];
	if (f->bad1 || !f->stamp_ok)
		rc = ms_mbox_idx_rewrite(f, drop, e);
	if (rc == 0) {
		free(f->bad1);
		free(f->bad1_off);
		f->bad1 = NULL;
		f->bad1_off = NULL;
		f->nbad1 = 0;
	}
out:
	free(drop);
	unlock_all(f);
	if (rc < 0 && !f->bad1) {
		/* only the stamp was stale: the next run hashes again */
		ms_log(MS_LOG_DEBUG, "%s", e->msg);
		ms_err_clear(e);
		rc = 0;
	}
	return rc;
}

static void mbox_folder_close(struct ms_store_folder *f)
{
	if (!f)
		return;
	if (f->cur)
		mbox_msg_abort(f->cur);
	unlock_all(f);
	if (f->fd >= 0)
		close(f->fd);
	if (f->spool >= 0)
		close(f->spool);
	if (f->dirfd >= 0)
		close(f->dirfd);
	free(f->name);
	free(f->path);
	free(f->lockname);
	free(f->idxname);
	free(f->msgs);
	ms_mbox_ents_free(f);
	ms_buf_free(&f->upool);
	free(f->ents);
	free(f->bad1);
	free(f->bad1_off);
	free(f->lf);
	free(f->q);
	free(f->wbuf);
	free(f);
}

static int mbox_folder_open(struct ms_store *s, const char *folder,
			    struct ms_store_folder **out, struct ms_err *e)
{
	struct ms_store_folder *f = calloc(1, sizeof *f);
	int rc;

	*out = NULL;
	if (!f)
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	f->s = s;
	f->fd = f->spool = f->dirfd = -1;
	ms_buf_init(&f->upool, 0);
	if ((rc = locate(s, folder, f, e)) < 0)
		goto out;
	f->lockname = malloc(strlen(f->name) + 8);
	f->idxname = malloc(strlen(f->name) + 8);
	f->lf = malloc(CHUNK + 8);
	f->q = malloc(2 * CHUNK + 16);
	f->wbuf = malloc(COPY_BUF);
	if (!f->lockname || !f->idxname || !f->lf || !f->q || !f->wbuf) {
		rc = ms_err_set(e, MS_EINTERNAL, "out of memory");
		goto out;
	}
	sprintf(f->lockname, "%s.lock", f->name);
	sprintf(f->idxname, "%s.msidx", f->name);
	if ((rc = open_mbox(f, e)) < 0 || (rc = ms_mbox_idx_refresh(f, e)) < 0)
		goto out;
	/* An append cut short by a crash is cut back now, under the
	 * locks, so the mbox ends with a whole message again. */
	if (f->open_b && f->fd >= 0 && !s->dry_run) {
		if ((rc = lock_all(f, e)) == 0)
			rc = ms_mbox_recover(f, e);
		unlock_all(f);
		if (rc < 0)
			goto out;
	}
	if ((rc = remember_invalid(f, e)) < 0)
		goto out;
	*out = f;
	f = NULL;
out:
	mbox_folder_close(f);
	return rc;
}

/* ---- the store ------------------------------------------------------ */

static void mbox_close(struct ms_store *s)
{
	if (!s)
		return;
	if (s->dirfd >= 0)
		close(s->dirfd);
	free(s->root);
	free(s->base);
	free(s);
}

static int mbox_open(struct ms_store **out, const struct ms_account *a,
		     int dry_run, struct ms_err *e)
{
	struct ms_store *s = calloc(1, sizeof *s);
	char *slash;
	int rc;

	*out = NULL;
	if (!s)
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	s->a = a;
	s->dry_run = dry_run;
	s->dirfd = -1;
	s->pop3 = a->proto == MS_PROTO_POP3;
	if (!(s->root = strdup(a->store_path))) {
		rc = ms_err_set(e, MS_EINTERNAL, "out of memory");
		goto out;
	}
	if (s->pop3) {
		/* store = mbox:FILE for POP3; its directory is the root */
		slash = strrchr(s->root, '/');
		if (!slash || !slash[1]) {
			rc = ms_err_set(e, MS_ECONFIG, "%s: mbox path must "
					"name a file", a->store_path);
			goto out;
		}
		s->base = strdup(slash + 1);
		*slash = '\0';
		if (slash == s->root)
			strcpy(s->root, "/");
		if (!s->base) {
			rc = ms_err_set(e, MS_EINTERNAL, "out of memory");
			goto out;
		}
	}
	rc = ms_fs_open_dir(s->root, !dry_run, &s->dirfd, e);
	if (rc < 0 && dry_run) {
		s->dirfd = -1; /* nothing there yet: nothing to read */
		rc = 0;
	}
	if (rc < 0)
		goto out;
	*out = s;
	s = NULL;
out:
	mbox_close(s);
	return rc;
}

const struct ms_store_ops ms_mbox_store = {
	.kind = "mbox",
	.open = mbox_open,
	.folder_open = mbox_folder_open,
	.msg_begin = mbox_msg_begin,
	.msg_write = mbox_msg_write,
	.msg_finish = mbox_msg_finish,
	.msg_abort = mbox_msg_abort,
	.commit = mbox_commit,
	.scan = ms_mbox_scan,
	.lost = mbox_lost,
	.forget_lost = mbox_forget_lost,
	.set_flags = NULL,
	.remove = NULL,
	.put_labels = mbox_put_labels,
	.digest = ms_mbox_digest,
	.folder_close = mbox_folder_close,
	.close = mbox_close,
};
