/*
 * mbox_index.c: the index beside each mbox (PATH.msidx) and crash recovery.
 *
 * The index makes state rebuildable without rewriting messages (no
 * X-Mailsync-Id header is added): it records each message's identity,
 * offset, length and SHA-256.  Its "b"/"e"/"x" records bracket every
 * append, so an append cut by a crash is recognised and cut back at the
 * next open, while mail that other programs appended later is never cut.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "mbox_int.h"

/* ---- the index -------------------------------------------------------
 *
 * PATH.msidx, append-only text, fsynced after the mbox:
 *   mailsync-mbox-index 1                      (first line)
 *   b PRE END       an append of PRE..END bytes begins (written first)
 *   m OFF LEN FLAGS NL SHA256 SIZE DATE ID     one stored message
 *   e END           the append is complete and durable
 *   x PRE           an append failed or was cut back to PRE
 * OFF/LEN: the From_ line's offset and the length through the blank line;
 * FLAGS: MS_F_* in hex; NL: 1 when a final newline was added; SHA256 of
 * the message as stored before quoting (LF line ends, without the added
 * newline); SIZE: the server's size; DATE: INTERNALDATE or 0; ID: "u
 * UIDVALIDITY UID", "p UIDL" or "n" (POP3 without UIDL).  Only "m" lines
 * inside a b..e group count; a torn last line is ignored.
 */

typedef int (*idx_fn)(struct ms_store_folder *f, void *ctx, const char *l,
		      size_t n, struct ms_err *e);

static int idx_fail(struct ms_store_folder *f, int err, const char *what,
		    struct ms_err *e)
{
	return ms_err_sys(e, ms_err_code_for_errno(err), err, "%s.msidx: %s",
			  f->path, what);
}

#define IDX_LINE_MAX 4096

struct idx_rd {
	struct ms_buf l;        /* the current line (while <= IDX_LINE_MAX) */
	size_t part;            /* its length so far, stored or not */
	off_t done;             /* end of the last whole line */
	int line_no;            /* lines seen, counting from the read start */
};

static int idx_lines(struct ms_store_folder *f, const char *p, size_t n,
		     struct idx_rd *r, idx_fn fn, void *ctx, struct ms_err *e)
{
	const char *nl;
	size_t take;
	int rc;

	while (n > 0) {
		nl = memchr(p, '\n', n);
		take = nl ? (size_t)(nl - p) + 1 : n;
		r->part += take;
		if (r->part <= IDX_LINE_MAX &&
		    (rc = ms_buf_add(&r->l, p, take, e)) < 0)
			return rc;
		p += take;
		n -= take;
		if (!nl)
			break;
		r->done += (off_t)r->part;
		r->line_no++;
		/* over-long lines are garbage: skipped */
		if (r->part <= IDX_LINE_MAX &&
		    (rc = fn(f, ctx, r->l.s, r->l.len - 1, e)) < 0)
			return rc;
		ms_buf_reset(&r->l);
		r->part = 0;
	}
	return 0;
}

/* Parse the index from byte from; *done: end of the last whole line. */
static int idx_read(struct ms_store_folder *f, off_t from, idx_fn fn,
		    void *ctx, off_t *done, int *torn, struct ms_err *e)
{
	struct idx_rd r = { .done = from };
	char *buf = f->wbuf;
	off_t off = from;
	ssize_t n;
	int fd, rc = 0;

	*done = from;
	*torn = 0;
	if (f->dirfd < 0)
		return 0;
	fd = openat(f->dirfd, f->idxname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0
				       : idx_fail(f, errno, "cannot open", e);
	ms_buf_init(&r.l, 0);
	for (;;) {
		n = pread(fd, buf, COPY_BUF, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = idx_fail(f, errno, "cannot read", e);
			goto out;
		}
		if (n == 0)
			break;
		if (from == 0 && off == 0 &&
		    ((size_t)n < strlen(IDX_MAGIC) ||
		     memcmp(buf, IDX_MAGIC, strlen(IDX_MAGIC)) != 0)) {
			rc = ms_err_set(e, MS_EIO, "%s.msidx: not a mailsync "
					"mbox index (move it away to start a "
					"new one)", f->path);
			goto out;
		}
		off += n;
		if ((rc = idx_lines(f, buf, (size_t)n, &r, fn, ctx, e)) < 0)
			goto out;
	}
	*done = r.done;
	*torn = r.done != off;
out:
	ms_buf_free(&r.l);
	close(fd);
	return rc;
}

static int refresh_line(struct ms_store_folder *f, void *ctx, const char *l,
			size_t n, struct ms_err *e)
{
	unsigned long long a = 0, b = 0;
	char line[128];

	(void)ctx;
	(void)e;
	if (n >= sizeof line || n < 1)
		return 0;
	memcpy(line, l, n);
	line[n] = '\0';
	if (sscanf(line, "b %llu %llu", &a, &b) == 2) {
		f->open_b = 1;
		f->b_pre = a;
		f->b_end = b;
	} else if (line[0] == 'e' || line[0] == 'x') {
		f->open_b = 0;
	}
	return 0;
}

/* Bring open_b/idx_off up to date with what is on disk. */
int ms_mbox_idx_refresh(struct ms_store_folder *f, struct ms_err *e)
{
	struct stat st;
	off_t done;
	int torn, rc;

	if (f->dirfd >= 0 &&
	    fstatat(f->dirfd, f->idxname, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    st.st_size < f->idx_off) {
		f->idx_off = 0; /* replaced under us: start again */
		f->open_b = 0;
	}
	rc = idx_read(f, f->idx_off, refresh_line, NULL, &done, &torn, e);
	if (rc < 0)
		return rc;
	f->idx_off = done;
	f->idx_torn = torn;
	return 0;
}

/* Append text to the index and fsync it (creating it with its header). */
int ms_mbox_idx_append(struct ms_store_folder *f, const char *p, size_t n,
		      struct ms_err *e)
{
	char path[4096];
	int fd, rc, created = 0;

	snprintf(path, sizeof path, "%s.msidx", f->path);
	fd = openat(f->dirfd, f->idxname,
		    O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		if ((rc = ms_fs_create(f->dirfd, f->idxname, &fd, e)) < 0)
			return rc;
		created = 1;
		f->idx_torn = 0;
		f->idx_off = 0;
	}
	if (fd < 0)
		return idx_fail(f, errno, "cannot open for append", e);
	if (!created && lseek(fd, 0, SEEK_END) == 0)
		created = 1; /* empty (crash right after creation) */
	if ((created &&
	     (rc = ms_fs_write_all(fd, IDX_MAGIC, strlen(IDX_MAGIC), path,
				   e)) < 0) ||
	    (f->idx_torn && (rc = ms_fs_write_all(fd, "\n", 1, path, e)) < 0) ||
	    (rc = ms_fs_write_all(fd, p, n, path, e)) < 0 ||
	    (rc = ms_fs_fsync(fd, path, e)) < 0)
		goto out;
	if (created && fsync(f->dirfd) < 0)
		rc = idx_fail(f, errno, "cannot fsync the directory", e);
out:
	close(fd);
	if (rc == 0)
		rc = ms_mbox_idx_refresh(f, e);
	return rc;
}

/* With the locks held: cut an append that a crash left unfinished. */
int ms_mbox_recover(struct ms_store_folder *f, struct ms_err *e)
{
	char rec[64];
	struct stat st;
	int rc;

	if ((rc = ms_mbox_idx_refresh(f, e)) < 0 || !f->open_b || f->fd < 0)
		return rc;
	if (fstat(f->fd, &st) < 0)
		return ms_err_sys(e, MS_EIO, errno, "%s: fstat", f->path);
	if ((uint64_t)st.st_size > f->b_pre &&
	    (uint64_t)st.st_size <= f->b_end) {
		if (ftruncate(f->fd, (off_t)f->b_pre) < 0 || fsync(f->fd) < 0)
			return ms_err_sys(e, MS_EIO, errno, "%s: cannot cut "
					  "an unfinished append", f->path);
		ms_log(MS_LOG_WARN, "%s: cut %llu bytes of an unfinished "
		       "append (interrupted run)", f->path,
		       (unsigned long long)st.st_size -
		       (unsigned long long)f->b_pre);
	} else if ((uint64_t)st.st_size > f->b_end) {
		/* someone appended after our crash: never cut their mail */
		ms_log(MS_LOG_WARN, "%s: bytes %llu-%llu are an unfinished "
		       "append followed by other mail; left in place",
		       f->path, (unsigned long long)f->b_pre,
		       (unsigned long long)f->b_end);
	}
	snprintf(rec, sizeof rec, "x %llu\n", (unsigned long long)f->b_pre);
	return ms_mbox_idx_append(f, rec, strlen(rec), e);
}

static void hex(const unsigned char *p, size_t n, char *out)
{
	static const char x[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = x[p[i] >> 4];
		out[2 * i + 1] = x[p[i] & 15];
	}
	out[2 * n] = '\0';
}

int ms_mbox_index_line(struct ms_buf *b, const struct done_msg *d, off_t off,
		      uint64_t len, struct ms_err *e)
{
	char sha[65], id[MS_UIDL_MAX + 32];
	const struct ms_msg *m = &d->meta;

	hex(d->sha, sizeof d->sha, sha);
	if (m->uidl[0])
		snprintf(id, sizeof id, "p %s", m->uidl);
	else if (m->uid)
		snprintf(id, sizeof id, "u %" PRIu32 " %" PRIu32,
			 m->uidvalidity, m->uid);
	else
		snprintf(id, sizeof id, "n");
	return ms_buf_addf(b, e, "m %lld %" PRIu64 " %x %d %s %" PRIu64
			   " %" PRId64 " %s\n", (long long)off, len, m->flags,
			   d->nl_added, sha, m->size, m->internaldate, id);
}

/* ---- scan: the committed messages listed in the index --------------- */

struct scan_ctx {
	ms_stored_cb cb;
	void *ctx;
	struct ms_msg *grp;      /* "m" records of the open b..e group */
	uint64_t *off;
	unsigned char (*sha)[32];
	size_t n, cap;
	int in_group;
	struct ms_store_folder *dig; /* collect f->dig instead of cb */
	size_t capdig;
};

static int unhex(const char *h, unsigned char out[32])
{
	for (size_t i = 0; i < 32; i++) {
		unsigned v = 0;

		for (int k = 0; k < 2; k++) {
			char c = h[2 * i + (size_t)k];

			v <<= 4;
			if (c >= '0' && c <= '9')
				v |= (unsigned)(c - '0');
			else if (c >= 'a' && c <= 'f')
				v |= (unsigned)(c - 'a' + 10);
			else
				return -1;
		}
		out[i] = (unsigned char)v;
	}
	return h[64] == '\0' ? 0 : -1;
}

static int parse_m(const char *l, struct ms_msg *m, uint64_t *off,
		   unsigned char shab[32])
{
	unsigned long long o, len, size, uv, uid;
	long long date;
	unsigned flags;
	int nl, pos = 0;
	char sha[65], kind, uidl[MS_UIDL_MAX + 2];

	memset(m, 0, sizeof *m);
	if (sscanf(l, "m %llu %llu %x %d %64s %llu %lld %c %n", &o, &len,
		   &flags, &nl, sha, &size, &date, &kind, &pos) < 8 || !pos)
		return -1;
	if (kind == 'u' && sscanf(l + pos, "%llu %llu", &uv, &uid) == 2 &&
	    uv <= UINT32_MAX && uid <= UINT32_MAX && uid > 0) {
		m->uidvalidity = (uint32_t)uv;
		m->uid = (uint32_t)uid;
	} else if (kind == 'p' && sscanf(l + pos, "%71s", uidl) == 1 &&
		   strlen(uidl) <= MS_UIDL_MAX) {
		memcpy(m->uidl, uidl, strlen(uidl) + 1);
	} else if (kind != 'n') {
		return -1;
	}
	m->size = size;
	m->flags = flags;
	m->internaldate = date;
	m->has_meta = 1;
	*off = o;
	if (unhex(sha, shab) < 0)
		memset(shab, 0, 32); /* matches nothing real */
	return 0;
}

static int scan_flush(struct scan_ctx *c, struct ms_err *e)
{
	char ref[32];
	size_t i;
	int rc;

	for (i = 0; i < c->n && c->dig; i++) {
		struct ms_store_folder *f = c->dig;
		void *p;

		if (f->ndig == c->capdig) {
			c->capdig = c->capdig ? 2 * c->capdig : 256;
			if (!(p = realloc(f->dig, c->capdig * sizeof *f->dig)))
				return ms_err_set(e, MS_EINTERNAL,
						  "out of memory");
			f->dig = p;
		}
		f->dig[f->ndig].off = c->off[i];
		memcpy(f->dig[f->ndig++].sha, c->sha[i], 32);
	}
	for (i = 0; i < c->n && !c->dig; i++) {
		snprintf(ref, sizeof ref, "%llu",
			 (unsigned long long)c->off[i]);
		if ((rc = c->cb(c->ctx, &c->grp[i], ref, e)) < 0)
			return rc;
	}
	c->n = 0;
	return 0;
}

static int scan_line(struct ms_store_folder *f, void *ctx, const char *l,
		     size_t n, struct ms_err *e)
{
	struct scan_ctx *c = ctx;
	char line[IDX_LINE_MAX + 1];
	void *p, *q, *r;

	(void)f;
	memcpy(line, l, n);
	line[n] = '\0';
	switch (line[0]) {
	case 'b':
	case 'x':
		c->in_group = line[0] == 'b';
		c->n = 0; /* an unfinished or failed group counts for nothing */
		return 0;
	case 'e':
		c->in_group = 0;
		return scan_flush(c, e);
	case 'm':
		break;
	default:
		return 0;
	}
	if (!c->in_group)
		return 0;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		p = realloc(c->grp, c->cap * sizeof *c->grp);
		if (p)
			c->grp = p;
		q = realloc(c->off, c->cap * sizeof *c->off);
		if (q)
			c->off = q;
		r = realloc(c->sha, c->cap * sizeof *c->sha);
		if (r)
			c->sha = r;
		if (!p || !q || !r)
			return ms_err_set(e, MS_EINTERNAL, "out of memory");
	}
	if (parse_m(line, &c->grp[c->n], &c->off[c->n], c->sha[c->n]) == 0)
		c->n++;
	return 0;
}

int ms_mbox_scan(struct ms_store_folder *f, ms_stored_cb cb, void *ctx,
		     struct ms_err *e)
{
	struct scan_ctx c = { .cb = cb, .ctx = ctx };
	off_t done;
	int torn, rc;

	/* Without an index nothing is known: the engine re-downloads
	 * (a duplicate rather than a loss); messages are never rewritten
	 * to carry our identity. */
	rc = idx_read(f, 0, scan_line, &c, &done, &torn, e);
	free(c.grp);
	free(c.off);
	free(c.sha);
	return rc;
}

static int cmp_dig(const void *a, const void *b)
{
	uint64_t x = ((const struct mbox_dig *)a)->off;
	uint64_t y = ((const struct mbox_dig *)b)->off;

	return x < y ? -1 : x > y;
}

/* One pass over the index builds offset -> hash for all digest calls
 * that follow (a mass change asks for every message). */
int ms_mbox_digest(struct ms_store_folder *f, const char *ref,
		   unsigned char sha[32], struct ms_err *e)
{
	struct scan_ctx c = { .dig = f };
	struct mbox_dig key = { 0 }, *d;
	off_t done;
	int torn, rc = 0;
	char *end;

	if (!f->dig_valid) {
		free(f->dig);
		f->dig = NULL;
		f->ndig = 0;
		rc = idx_read(f, 0, scan_line, &c, &done, &torn, e);
		free(c.grp);
		free(c.off);
		free(c.sha);
		if (rc < 0)
			return rc;
		qsort(f->dig, f->ndig, sizeof *f->dig, cmp_dig);
		f->dig_valid = 1;
	}
	key.off = strtoull(ref, &end, 10);
	d = *ref && !*end ? bsearch(&key, f->dig, f->ndig, sizeof *f->dig,
				    cmp_dig) : NULL;
	if (!d)
		return ms_err_set(e, MS_EINTERNAL, "%s: no index record at "
				  "offset %s", f->path, ref);
	memcpy(sha, d->sha, 32);
	return 0;
}
