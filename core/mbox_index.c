/*
 * mbox_index.c: the index beside each mbox (PATH.msidx) and crash recovery.
 *
 * The index makes state rebuildable without rewriting messages (no
 * X-Mailsync-Id header is added): it records each message's identity,
 * offset, length and SHA-256.  Its "b"/"e"/"x" records bracket every
 * append, so an append cut by a crash is recognised and cut back at the
 * next open, while mail that other programs appended later is never cut.
 * It is never trusted over the mbox: ms_mbox_validate checks every record
 * against the file (and its hash when the file changed since the last "s"
 * stamp), and records that fail count as not stored.  Only an mbox whose
 * size, mtime, ctime and inode are all still those of the stamp is known
 * unchanged without reading it: no write(2), truncate(2) or utimensat(2)
 * leaves ctime as it was, and nothing but the kernel sets it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

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
 *   s SIZE SEC NSEC [CSEC CNSEC INO]
 *                   the mbox's size and mtime (and ctime and inode) after
 *                   an append or a validation that hashed every message;
 *                   older readers ignore it, or read the first three
 *                   fields only, so the version stays 1
 * OFF/LEN: the From_ line's offset and the length through the blank line;
 * FLAGS: MS_F_* in hex; NL: 1 when a final newline was added; SHA256 of
 * the message as stored before quoting (LF line ends, without the added
 * newline); SIZE: the server's size; DATE: INTERNALDATE or 0; ID: "u
 * UIDVALIDITY UID", "p UIDL" or "n" (POP3 without UIDL), then " a=NAME",
 * the account that stored it: accounts sharing an mbox never take each
 * other's records for their own (their servers may number alike).
 * Records without a= (older writers) count for every account; older
 * readers ignore the field.  Only "m" lines
 * inside a b..e group count; a torn last line is ignored.  Records the
 * mbox lost are dropped by rewriting the whole index (temporary file,
 * fsync, rename) as one "b S S" .. "e S" group, under the mbox locks.
 */

/* One whole line l (n bytes, no newline) that starts at byte at. */
typedef int (*idx_fn)(struct ms_store_folder *f, void *ctx, const char *l,
		      size_t n, off_t at, struct ms_err *e);

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
		    (rc = fn(f, ctx, r->l.s, r->l.len - 1,
			     r->done - (off_t)r->part, e)) < 0)
			return rc;
		ms_buf_reset(&r->l);
		r->part = 0;
	}
	return 0;
}

/* Parse the index from byte from; *done: end of the last whole line.
 * track (the incremental refresh): an index replaced since the last call
 * (another inode, or shorter) is parsed again from the start. */
static int idx_read(struct ms_store_folder *f, off_t from, int track,
		    idx_fn fn, void *ctx, off_t *done, int *torn,
		    struct ms_err *e)
{
	struct idx_rd r = { .done = from };
	char *buf = f->wbuf;
	struct stat st;
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
	if (track && fstat(fd, &st) == 0) {
		if (st.st_size < from ||
		    (f->idx_ino && (uint64_t)st.st_ino != f->idx_ino)) {
			from = off = r.done = *done = 0;
			f->open_b = 0;
		}
		f->idx_ino = (uint64_t)st.st_ino;
	}
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
			size_t n, off_t at, struct ms_err *e)
{
	unsigned long long a = 0, b = 0;
	char line[128];

	(void)ctx;
	(void)at;
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
	off_t done;
	int torn, rc;

	rc = idx_read(f, f->idx_off, 1, refresh_line, NULL, &done, &torn, e);
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
		      uint64_t len, const char *acct, struct ms_err *e)
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
			   " %" PRId64 " %s%s%s\n", (long long)off, len,
			   m->flags, d->nl_added, sha, m->size,
			   m->internaldate, id, acct && *acct ? " a=" : "",
			   acct ? acct : "");
}

/* ---- validation: does the mbox still hold what the index lists? ------ */

struct val_ctx {
	struct idx_ent *grp;     /* "m" records of the open b..e group */
	size_t n, cap;
	size_t pool_at;          /* upool's length when the group began */
	int in_group;
	int have_stamp;          /* 1: size and mtime; 2: also ctime, inode */
	unsigned long long s_size, s_sec, s_nsec, s_csec, s_cnsec, s_ino;
};

static int unhex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* After the ID's skip words: " a=NAME" or nothing.  1 when it names an
 * account other than acct, -1 when malformed. */
static int parse_acct(const char *p, int skip, const char *acct)
{
	size_t n;

	for (; skip > 0; skip--) {
		p += strspn(p, " ");
		p += strcspn(p, " ");
	}
	p += strspn(p, " ");
	if (!*p)
		return 0; /* written before a= existed: anybody's */
	if (strncmp(p, "a=", 2) != 0)
		return 0; /* a later field: ignored */
	p += 2;
	n = strcspn(p, " ");
	if (!n)
		return -1;
	return strlen(acct) != n || memcmp(p, acct, n) != 0;
}

/* Parse an "m" record into x; its UIDL goes to f->upool. */
static int parse_m(struct ms_store_folder *f, const char *l,
		   const char *acct, struct idx_ent *x, struct ms_err *e)
{
	unsigned long long o, len, size, uv, uid;
	long long date;
	unsigned flags;
	int nl, pos = 0, i, rc;
	char sha[65], kind, uidl[MS_UIDL_MAX + 2];
	size_t un = 0;

	memset(x, 0, sizeof *x);
	if (sscanf(l, "m %llu %llu %x %d %64s %llu %lld %c %n", &o, &len,
		   &flags, &nl, sha, &size, &date, &kind, &pos) < 8 || !pos ||
	    strlen(sha) != 64)
		return 1;
	for (i = 0; i < 64; i++)
		if (unhex(sha[i]) < 0)
			return 1;
	if (kind == 'u' && sscanf(l + pos, "%llu %llu", &uv, &uid) == 2 &&
	    uv <= UINT32_MAX && uid <= UINT32_MAX && uid > 0) {
		x->uidvalidity = (uint32_t)uv;
		x->uid = (uint32_t)uid;
	} else if (kind == 'p' && sscanf(l + pos, "%71s", uidl) == 1 &&
		   (un = strlen(uidl)) <= MS_UIDL_MAX) {
		/* stored below, once the rest of the record is known good */
	} else if (kind != 'n') {
		return 1;
	}
	i = parse_acct(l + pos, kind == 'u' ? 2 : kind == 'p', acct);
	if (i < 0)
		return 1;
	x->foreign = (uint8_t)i;
	x->size = size;
	x->flags = flags;
	x->internaldate = date;
	x->off = o;
	x->len = len;
	x->nl = nl != 0;
	if (un) {
		if (!f->upool.len && (rc = ms_buf_addc(&f->upool, '\0', e)) < 0)
			return rc;
		if (f->upool.len > UINT32_MAX - MS_UIDL_MAX - 1)
			return ms_err_set(e, MS_EINTERNAL, "%s.msidx: too many "
					  "records", f->path);
		x->uoff = (uint32_t)f->upool.len;
		if ((rc = ms_buf_add(&f->upool, uidl, un + 1, e)) < 0)
			return rc;
	}
	return 0;
}

/* The message an index entry names, as the engine sees it. */
static void ent_meta(const struct ms_store_folder *f, const struct idx_ent *x,
		     struct ms_msg *m)
{
	memset(m, 0, sizeof *m);
	m->uid = x->uid;
	m->uidvalidity = x->uidvalidity;
	if (x->uoff)
		memcpy(m->uidl, f->upool.s + x->uoff,
		       strnlen(f->upool.s + x->uoff, MS_UIDL_MAX));
	m->size = x->size;
	m->flags = x->flags;
	m->internaldate = x->internaldate;
	m->has_meta = 1;
}

/* An unfinished or failed group counts for nothing: its UIDLs go too. */
static void grp_drop(struct ms_store_folder *f, struct val_ctx *c)
{
	c->n = 0;
	if (f->upool.len > c->pool_at) {
		f->upool.len = c->pool_at;
		f->upool.s[f->upool.len] = '\0';
	}
}

void ms_mbox_ents_free(struct ms_store_folder *f)
{
	f->nents = 0;
	ms_buf_reset(&f->upool);
}

static int val_flush(struct ms_store_folder *f, struct val_ctx *c,
		     struct ms_err *e)
{
	size_t cap;
	void *p;

	if (c->n == 0)
		return 0;
	if (f->nents + c->n > f->capents) {
		cap = f->capents ? f->capents : 64;
		while (cap < f->nents + c->n)
			cap *= 2;
		if (!(p = realloc(f->ents, cap * sizeof *f->ents))) {
			grp_drop(f, c);
			return ms_err_set(e, MS_EINTERNAL, "out of memory");
		}
		f->ents = p;
		f->capents = cap;
	}
	memcpy(f->ents + f->nents, c->grp, c->n * sizeof *c->grp);
	f->nents += c->n;
	c->n = 0;
	c->pool_at = f->upool.len;
	return 0;
}

static int val_line(struct ms_store_folder *f, void *ctx, const char *l,
		    size_t n, off_t at, struct ms_err *e)
{
	struct val_ctx *c = ctx;
	char line[IDX_LINE_MAX + 1];
	struct idx_ent x;
	void *p;
	int rc;

	memcpy(line, l, n);
	line[n] = '\0';
	switch (line[0]) {
	case 'b':
	case 'x':
		grp_drop(f, c);
		c->in_group = line[0] == 'b';
		return 0;
	case 'e':
		c->in_group = 0;
		return val_flush(f, c, e);
	case 's':
		rc = sscanf(line, "s %llu %llu %llu %llu %llu %llu",
			    &c->s_size, &c->s_sec, &c->s_nsec, &c->s_csec,
			    &c->s_cnsec, &c->s_ino);
		c->have_stamp = rc == 6 ? 2 : rc >= 3;
		return 0;
	case 'm':
		break;
	default:
		return 0;
	}
	if (!c->in_group)
		return 0;
	if ((rc = parse_m(f, line, f->s->a->name, &x, e)) != 0)
		return rc < 0 ? rc : 0;
	x.loff = (uint64_t)at;
	x.llen = (uint16_t)n;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		if (!(p = realloc(c->grp, c->cap * sizeof *c->grp)))
			return ms_err_set(e, MS_EINTERNAL, "out of memory");
		c->grp = p;
	}
	c->grp[c->n++] = x;
	return 0;
}

static int read_exact(int fd, char *p, size_t n, uint64_t off)
{
	ssize_t r;

	while (n > 0) {
		r = pread(fd, p, n, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

/* The record of x as validated, read again from the index (fd): it must
 * still be an "m" line for the same offset (the index only grows between
 * validations; a rewrite makes the next one read it afresh).  line holds
 * llen + 1 bytes, newline included; 0 or -1. */
static int rec_read(int fd, const struct idx_ent *x, char *line)
{
	char head[48];
	size_t n = x->llen, h;

	h = (size_t)snprintf(head, sizeof head, "m %llu ",
			     (unsigned long long)x->off);
	if (fd < 0 || read_exact(fd, line, n + 1, x->loff) < 0 ||
	    line[n] != '\n' || n < h || memcmp(line, head, h) != 0)
		return -1;
	return 0;
}

/* The SHA-256 the record of x holds (its sixth field); 0 or -1. */
static int rec_sha(int fd, const struct idx_ent *x, unsigned char sha[32])
{
	char line[IDX_LINE_MAX + 2], *p = line;

	if (rec_read(fd, x, line) < 0)
		return -1;
	line[x->llen] = '\0';
	for (int k = 0; k < 5; k++) {
		if (!(p = strchr(p, ' ')))
			return -1;
		p++;
	}
	for (int i = 0; i < 32; i++) {
		int hi = unhex(p[2 * i]), lo = hi < 0 ? -1 : unhex(p[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		sha[i] = (unsigned char)(hi << 4 | lo);
	}
	return p[64] == ' ' ? 0 : -1;
}

static int idx_open_rd(struct ms_store_folder *f)
{
	if (f->dirfd < 0)
		return -1;
	return openat(f->dirfd, f->idxname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
}

/* mboxrd unquoting into the digest: ^>+From  loses one '>'. */
struct unq {
	EVP_MD_CTX *md;
	int st;                  /* 0 line start, 1 in '>' run, 2 mid-line */
	uint64_t gt;             /* '>' held back */
	int k;                   /* bytes of "From " matched after them */
};

static void unq_gt(struct unq *u, uint64_t n)
{
	static const char g[64] = ">>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>"
				  ">>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>";

	while (n > 0) {
		size_t k = n < sizeof g ? (size_t)n : sizeof g;

		EVP_DigestUpdate(u->md, g, k);
		n -= k;
	}
}

static void unq_release(struct unq *u)
{
	unq_gt(u, u->gt);
	EVP_DigestUpdate(u->md, "From ", (size_t)u->k);
	u->gt = 0;
	u->k = 0;
}

static void unq_feed(struct unq *u, const char *p, size_t n)
{
	size_t i, run = 0;

	for (i = 0; i < n; i++) {
		char ch = p[i];

		if (u->st == 2) {
			if (ch == '\n')
				u->st = 0;
			run++;
			continue;
		}
		EVP_DigestUpdate(u->md, p + i - run, run);
		run = 0;
		if (u->st == 0 && ch != '>') {
			if (ch != '\n')
				u->st = 2;
			EVP_DigestUpdate(u->md, &ch, 1);
			continue;
		}
		if (ch == '>' && u->k == 0) {
			u->st = 1;
			u->gt++;
			continue;
		}
		if (ch == "From "[u->k]) {
			if (++u->k == 5) {
				unq_gt(u, u->gt - 1);
				EVP_DigestUpdate(u->md, "From ", 5);
				u->gt = 0;
				u->k = 0;
				u->st = 2;
			}
			continue;
		}
		unq_release(u);
		EVP_DigestUpdate(u->md, &ch, 1);
		u->st = ch == '\n' ? 0 : 2;
	}
	EVP_DigestUpdate(u->md, p + i - run, run);
}

/* Hash the message stored at x (From_ line skipped, unquoted, without the
 * blank separator nor an added newline): 1 if it matches, 0 if not. */
static int hash_ok(struct ms_store_folder *f, int idxfd,
		   const struct idx_ent *x)
{
	unsigned char sha[32], want[32];
	struct unq u = { 0 };
	uint64_t off = x->off, end = x->off + x->len - 1;
	char *buf = f->wbuf, *nl;
	int skipping = 1, ok = 0;
	size_t k;

	if (rec_sha(idxfd, x, want) < 0)
		return 0;
	if (x->nl) {
		if (end == off)
			return 0;
		end--; /* the newline mailsync added */
	}
	if (!(u.md = EVP_MD_CTX_new()) ||
	    !EVP_DigestInit_ex(u.md, EVP_sha256(), NULL))
		goto out;
	while (off < end) {
		k = end - off < COPY_BUF ? (size_t)(end - off) : COPY_BUF;
		if (read_exact(f->fd, buf, k, off) < 0)
			goto out;
		off += k;
		if (skipping) {
			if (!(nl = memchr(buf, '\n', k)))
				continue;
			skipping = 0;
			unq_feed(&u, nl + 1, k - (size_t)(nl + 1 - buf));
			continue;
		}
		unq_feed(&u, buf, k);
	}
	if (skipping)
		goto out;
	unq_release(&u);
	EVP_DigestFinal_ex(u.md, sha, NULL);
	ok = memcmp(sha, want, sizeof sha) == 0;
out:
	EVP_MD_CTX_free(u.md);
	return ok;
}

/* Where the record says: inside the file, "From " after a line end, the
 * blank separator line at its end.  When the next record starts right
 * after this one (the usual case) one read covers this one's end and the
 * next one's From_ line: *carry says how that went (-1: not read). */
static int shape_ok(struct ms_store_folder *f, const struct idx_ent *x,
		    const struct idx_ent *next, uint64_t size, int *carry)
{
	int from_ok = *carry;
	char b[8];

	*carry = -1;
	if (x->len < 7 || x->off > size || x->len > size - x->off)
		return 0;
	if (from_ok < 0 && x->off > 0)
		from_ok = read_exact(f->fd, b, 6, x->off - 1) == 0 &&
			  b[0] == '\n' && memcmp(b + 1, "From ", 5) == 0;
	else if (from_ok < 0)
		from_ok = read_exact(f->fd, b, 5, 0) == 0 &&
			  memcmp(b, "From ", 5) == 0;
	if (!from_ok)
		return 0;
	if (next && next->off == x->off + x->len && next->off + 5 <= size) {
		if (read_exact(f->fd, b, 7, x->off + x->len - 2) < 0)
			return 0;
		*carry = memcmp(b + 2, "From ", 5) == 0;
	} else if (read_exact(f->fd, b, 2, x->off + x->len - 2) < 0) {
		return 0;
	}
	return b[0] == '\n' && b[1] == '\n';
}

int ms_mbox_validate(struct ms_store_folder *f, struct ms_err *e)
{
	struct val_ctx c = { 0 };
	unsigned long long key[6];
	struct stat st;
	uint64_t size = 0;
	int carry = -1, same = 0;
	off_t done;
	int torn, rc, idxfd = -1;

	/* nothing changed since the last validation: its result stands */
	memset(key, 0, sizeof key);
	if (f->fd >= 0 && fstat(f->fd, &st) == 0) {
		key[0] = (unsigned long long)st.st_size + 1;
		key[1] = (unsigned long long)st.st_mtim.tv_sec;
		key[2] = (unsigned long long)st.st_mtim.tv_nsec;
	}
	if (f->dirfd >= 0 &&
	    fstatat(f->dirfd, f->idxname, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		key[3] = (unsigned long long)st.st_size + 1;
		key[4] = (unsigned long long)st.st_mtim.tv_sec;
		key[5] = (unsigned long long)st.st_mtim.tv_nsec;
	}
	if (f->val_cached && memcmp(key, f->val_key, sizeof key) == 0)
		return 0;
	f->val_cached = 0;
	ms_mbox_ents_free(f);
	f->stamp_ok = 0;
	f->nforeign_bad = 0;
	rc = idx_read(f, 0, 0, val_line, &c, &done, &torn, e);
	grp_drop(f, &c);
	free(c.grp);
	if (rc < 0)
		return rc;
	if (f->fd >= 0) {
		if (fstat(f->fd, &st) < 0)
			return ms_err_sys(e, MS_EIO, errno, "%s: fstat",
					  f->path);
		size = (uint64_t)st.st_size;
		f->stamp_ok = c.have_stamp && c.s_size == size &&
			      c.s_sec == (unsigned long long)st.st_mtim.tv_sec &&
			      c.s_nsec == (unsigned long long)st.st_mtim.tv_nsec;
		/* not written since the stamp: no record needs a read */
		same = f->stamp_ok && c.have_stamp == 2 &&
		       c.s_csec == (unsigned long long)st.st_ctim.tv_sec &&
		       c.s_cnsec == (unsigned long long)st.st_ctim.tv_nsec &&
		       c.s_ino == (unsigned long long)st.st_ino;
	}
	if (!f->stamp_ok && f->nents)
		idxfd = idx_open_rd(f); /* -1: no hash can be checked */
	for (size_t i = 0; i < f->nents; i++) {
		struct idx_ent *x = &f->ents[i];
		const struct idx_ent *next = i + 1 < f->nents ? x + 1 : NULL;

		if (same)
			x->valid = 1;
		else if (f->fd < 0 || !shape_ok(f, x, next, size, &carry))
			x->valid = 0;
		else
			x->valid = f->stamp_ok || hash_ok(f, idxfd, x);
		f->nforeign_bad += !x->valid && x->foreign;
	}
	if (idxfd >= 0)
		close(idxfd);
	memcpy(f->val_key, key, sizeof key);
	f->val_cached = 1;
	return 0;
}

int ms_mbox_stamp_line(struct ms_store_folder *f, char *out, size_t cap,
		       struct ms_err *e)
{
	struct stat st;

	if (fstat(f->fd, &st) < 0)
		return ms_err_sys(e, MS_EIO, errno, "%s: fstat", f->path);
	snprintf(out, cap, "s %llu %llu %llu %llu %llu %llu\n",
		 (unsigned long long)st.st_size,
		 (unsigned long long)st.st_mtim.tv_sec,
		 (unsigned long long)st.st_mtim.tv_nsec,
		 (unsigned long long)st.st_ctim.tv_sec,
		 (unsigned long long)st.st_ctim.tv_nsec,
		 (unsigned long long)st.st_ino);
	return 0;
}

/* Identity as text: "u V U", "p UIDL" or "" (none). */
static void ent_key(const struct ms_store_folder *f, const struct idx_ent *x,
		    char *out, size_t cap)
{
	if (x->uoff)
		snprintf(out, cap, "p %s", f->upool.s + x->uoff);
	else if (x->uid)
		snprintf(out, cap, "u %" PRIu32 " %" PRIu32, x->uidvalidity,
			 x->uid);
	else
		out[0] = '\0';
}

struct keyed {
	char key[MS_UIDL_MAX + 32];
	size_t i;
};

static int cmp_keyed(const void *a, const void *b)
{
	const struct keyed *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c ? c : (x->i > y->i) - (x->i < y->i);
}

int ms_mbox_lost_ids(struct ms_store_folder *f, ms_stored_cb cb, void *ctx,
		     size_t *n, struct ms_err *e)
{
	struct keyed *k = NULL;
	size_t i, j, nk = 0, nbad = 0;
	struct ms_msg m;
	int rc = 0, any;

	*n = 0;
	for (i = 0; i < f->nents; i++)
		nbad += !f->ents[i].valid && !f->ents[i].foreign;
	if (nbad == 0)
		return 0;
	if (!(k = calloc(f->nents, sizeof *k)))
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	for (i = 0; i < f->nents; i++) {
		if (f->ents[i].foreign)
			continue; /* another account's, with its own numbers */
		ent_key(f, &f->ents[i], k[nk].key, sizeof k[nk].key);
		k[nk].i = i;
		if (k[nk].key[0])
			nk++;
	}
	qsort(k, nk, sizeof *k, cmp_keyed);
	for (i = 0; i < nk && rc == 0; i = j) {
		any = 0;
		for (j = i; j < nk && strcmp(k[j].key, k[i].key) == 0; j++)
			any |= f->ents[k[j].i].valid;
		if (any)
			continue;
		(*n)++;
		if (cb) {
			ent_meta(f, &f->ents[k[i].i], &m);
			rc = cb(ctx, &m, NULL, e);
		}
	}
	free(k);
	return rc;
}

/* The kept records, copied from the index as validated: each must still
 * be an "m" line at its offset (the index only grows between
 * validations; a rewrite invalidates the cache). */
static int copy_records(struct ms_store_folder *f, const unsigned char *drop,
			struct ms_buf *b, struct ms_err *e)
{
	char line[IDX_LINE_MAX + 2];
	int fd = idx_open_rd(f), rc = 0;

	if (fd < 0)
		return idx_fail(f, errno, "cannot open", e);
	for (size_t i = 0; i < f->nents && rc == 0; i++) {
		if (drop[i])
			continue;
		if (rec_read(fd, &f->ents[i], line) < 0) {
			rc = ms_err_set(e, MS_EIO, "%s.msidx: changed while "
					"being rewritten (record %zu)",
					f->path, i + 1);
			break;
		}
		rc = ms_buf_add(b, line, f->ents[i].llen + 1u, e);
	}
	close(fd);
	return rc;
}

int ms_mbox_idx_rewrite(struct ms_store_folder *f, const unsigned char *drop,
			struct ms_err *e)
{
	char tmp[300], stamp[160], path[4096], rec[64];
	struct ms_buf b;
	struct stat st;
	size_t i, ndrop = 0;
	int fd = -1, rc;

	if ((rc = ms_mbox_stamp_line(f, stamp, sizeof stamp, e)) < 0)
		return rc;
	for (i = 0; i < f->nents; i++)
		ndrop += drop && drop[i];
	if (f->nforeign_bad)
		stamp[0] = '\0'; /* another account's records failed */
	if (ndrop == 0)
		return stamp[0] ? ms_mbox_idx_append(f, stamp, strlen(stamp), e)
				: 0;
	if (fstat(f->fd, &st) < 0)
		return ms_err_sys(e, MS_EIO, errno, "%s: fstat", f->path);
	ms_buf_init(&b, 0);
	snprintf(rec, sizeof rec, "b %llu %llu\n",
		 (unsigned long long)st.st_size,
		 (unsigned long long)st.st_size);
	if ((rc = ms_buf_add(&b, IDX_MAGIC, strlen(IDX_MAGIC), e)) < 0 ||
	    (rc = ms_buf_add(&b, rec, strlen(rec), e)) < 0)
		goto out;
	if ((rc = copy_records(f, drop, &b, e)) < 0 ||
	    (rc = ms_buf_addf(&b, e, "e %llu\n%s",
			      (unsigned long long)st.st_size, stamp)) < 0)
		goto out;
	snprintf(tmp, sizeof tmp, ".%.200s.mailsync-tmp", f->idxname);
	snprintf(path, sizeof path, "%s.msidx", f->path);
	(void)unlinkat(f->dirfd, tmp, 0);
	if ((rc = ms_fs_create(f->dirfd, tmp, &fd, e)) < 0 ||
	    (rc = ms_fs_write_all(fd, b.s, b.len, path, e)) < 0 ||
	    (rc = ms_fs_fsync(fd, path, e)) < 0)
		goto out;
	if (renameat(f->dirfd, tmp, f->dirfd, f->idxname) < 0) {
		rc = idx_fail(f, errno, "cannot replace", e);
		goto out;
	}
	if (fsync(f->dirfd) < 0) {
		rc = idx_fail(f, errno, "cannot fsync the directory", e);
		goto out;
	}
	f->idx_off = 0;
	f->open_b = 0;
	f->idx_torn = 0;
	rc = ms_mbox_idx_refresh(f, e);
out:
	if (fd >= 0)
		close(fd);
	if (rc < 0)
		(void)unlinkat(f->dirfd, tmp, 0);
	ms_buf_free(&b);
	return rc;
}

/* ---- digest: the recorded hash of one valid entry ------------------- */

int ms_mbox_digest(struct ms_store_folder *f, const char *ref,
		   unsigned char sha[32], struct ms_err *e)
{
	unsigned long long off;
	char *end;
	size_t lo = 0, hi, mid;
	int rc;

	errno = 0;
	off = strtoull(ref, &end, 10);
	if (!*ref || *end || errno)
		return ms_err_set(e, MS_EINTERNAL, "%s: bad message reference "
				  "%s", f->path, ref);
	if ((rc = ms_mbox_validate(f, e)) < 0) /* cached when unchanged */
		return rc;
	/* entries are in file order: appends only grow the offsets */
	hi = f->nents;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (f->ents[mid].off < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < f->nents && f->ents[lo].off == off && f->ents[lo].valid) {
		int fd = idx_open_rd(f);

		rc = rec_sha(fd, &f->ents[lo], sha);
		if (fd >= 0)
			close(fd);
		if (rc == 0)
			return 0;
		return ms_err_set(e, MS_EIO, "%s.msidx: record at offset %s "
				  "cannot be read again", f->path, ref);
	}
	return ms_err_set(e, MS_EINTERNAL, "%s: no valid index record at "
			  "offset %s", f->path, ref);
}

/* ---- scan: the committed messages the mbox still holds -------------- */

int ms_mbox_scan(struct ms_store_folder *f, ms_stored_cb cb, void *ctx,
		 struct ms_err *e)
{
	struct ms_msg m;
	char ref[32];
	int rc;

	/* Without an index nothing is known: the engine re-downloads
	 * (a duplicate rather than a loss); messages are never rewritten
	 * to carry our identity.  Records the mbox no longer matches
	 * (removed, truncated, replaced) count for nothing either, nor do
	 * another account's (a=NAME). */
	if ((rc = ms_mbox_validate(f, e)) < 0)
		return rc;
	for (size_t i = 0; i < f->nents && rc == 0; i++) {
		if (!f->ents[i].valid || f->ents[i].foreign)
			continue;
		snprintf(ref, sizeof ref, "%llu",
			 (unsigned long long)f->ents[i].off);
		ent_meta(f, &f->ents[i], &m);
		rc = cb(ctx, &m, ref, e);
	}
	return rc;
}
