/*
 * test_mbox.c: the mbox store in a mkdtemp directory.
 *
 * Messages go in through the store ops exactly as the engine sends them
 * (raw CRLF bytes in odd chunk sizes) and come back out through a small
 * independent mboxrd reader in this file; the index is checked line by
 * line (offsets, lengths, SHA-256).  Locks are held by forked children.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "log.h"
#include "mbox_quote.h"
#include "store.h"
#include "t.h"

static char dir[64];

static void log_sink(int level, const char *line, void *ctx)
{
	(void)level;
	(void)ctx;
	printf("# log: %s\n", line);
}

static char *slurp(const char *path, size_t *n)
{
	FILE *fp = fopen(path, "rb");
	char *p;
	long sz;

	*n = 0;
	if (!fp)
		return NULL;
	fseek(fp, 0, SEEK_END);
	sz = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	p = malloc((size_t)sz + 1);
	*n = fread(p, 1, (size_t)sz, fp);
	p[*n] = '\0';
	fclose(fp);
	return p;
}

static off_t fsize(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_size : -1;
}

/* ---- pure transformations ------------------------------------------- */

static size_t quote_all(const char *in, size_t n, size_t step, char *out)
{
	struct ms_mbox_quote q;
	size_t i, o = 0, k;

	ms_mbox_quote_init(&q);
	for (i = 0; i < n; i += k) {
		k = n - i < step ? n - i : step;
		o += ms_mbox_quote_feed(&q, in + i, k, out + o);
	}
	return o + ms_mbox_quote_flush(&q, out + o);
}

static void test_quote(void)
{
	static const struct {
		const char *in, *out;
	} t[] = {
		{ "From x\n", ">From x\n" },
		{ ">From x\n", ">>From x\n" },
		{ ">>From x\n", ">>>From x\n" },
		{ "From\n", "From\n" },
		{ "Fromage\n", "Fromage\n" },
		{ " From x\n", " From x\n" },
		{ "a\nFrom b\nc From d\n", "a\n>From b\nc From d\n" },
		{ ">>From", ">>From" },
		{ "From ", ">From " },
		{ ">x>From y\n", ">x>From y\n" },
		{ "\n\nFrom \n", "\n\n>From \n" },
		{ "Fro", "Fro" },
	};
	char out[128], name[96];
	size_t i, n, step;

	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		for (step = 1; step <= 64; step *= 4) {
			n = quote_all(t[i].in, strlen(t[i].in), step, out);
			snprintf(name, sizeof name, "quote case %zu step %zu",
				 i, step);
			T_EQ_MEM(out, n, t[i].out, strlen(t[i].out), name);
		}
	}
}

static void test_crlf(void)
{
	struct ms_mbox_crlf c = { 0 };
	char out[32];
	size_t n;

	n = ms_mbox_crlf_feed(&c, "a\r", 2, out);
	n += ms_mbox_crlf_feed(&c, "\nb\rc\r\r\n", 7, out + n);
	n += ms_mbox_crlf_flush(&c, out + n);
	T_EQ_MEM(out, n, "a\nb\rc\r\n", 7, "CRLF split across chunks -> LF");
	n = ms_mbox_crlf_feed(&c, "x\r", 2, out);
	n += ms_mbox_crlf_flush(&c, out + n);
	T_EQ_MEM(out, n, "x\r", 2, "final lone CR kept");
}

/* ---- differential: the memchr loops against the byte-at-a-time ones --- */

/* The implementations before the memchr rewrite, kept as the reference. */
static size_t ref_crlf_feed(struct ms_mbox_crlf *c, const char *in, size_t n,
			    char *out)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		if (c->cr) {
			c->cr = 0;
			if (in[i] == '\n') {
				out[o++] = '\n';
				continue;
			}
			out[o++] = '\r';
		}
		if (in[i] == '\r')
			c->cr = 1;
		else
			out[o++] = in[i];
	}
	return o;
}

static size_t ref_quote_feed(struct ms_mbox_quote *q, const char *in,
			     size_t n, char *out)
{
	static const char from_[] = "From ";
	size_t i, o = 0;
	char c;

	for (i = 0; i < n; i++) {
		c = in[i];
		if (q->mid) {
			out[o++] = c;
			q->mid = c != '\n';
			continue;
		}
		if (q->k == 0 && c == '>') {
			out[o++] = c;
			continue;
		}
		if (c == from_[q->k]) {
			if (++q->k < 5)
				continue;
			out[o++] = '>';
			memcpy(out + o, from_, 5);
			o += 5;
			q->k = 0;
			q->mid = 1;
			continue;
		}
		memcpy(out + o, from_, (size_t)q->k);
		o += (size_t)q->k;
		q->k = 0;
		out[o++] = c;
		q->mid = c != '\n';
	}
	return o;
}

/* A text of line starts, line ends and fillers that mbox cares about. */
static size_t gen_text(char *p, size_t cap)
{
	static const char *const piece[] = {
		"From ", ">From ", ">>From ", "From", "Fro", "F", ">", ">>",
		"\r\n", "\r", "\n", "\r\r\n", "x", "abc def", " ", ".",
		"From x\r\n", ">From y\n", "\n\n", "Fromage", ">x>From ",
	};
	return t_gen_pieces(p, cap, piece, sizeof piece / sizeof *piece);
}

#define DIFF_CASES 1500

/* Every input split at every pair of points into 3 feed calls (empty
 * calls included, so 1 and 2 calls are covered); output, per-call byte
 * counts and the final state must match the reference exactly. */
static void test_diff(void)
{
	char in[96], a[3 * 96 + 16], b[3 * 96 + 16];
	size_t n, i, j, c, na, nb, ca[3], cb[3], cut[4];
	long bad_crlf = 0, bad_quote = 0, runs = 0;
	struct ms_mbox_crlf xa, xb;
	struct ms_mbox_quote qa, qb;

	t_rng_state = 0x9e3779b9u;
	for (c = 0; c < DIFF_CASES; c++) {
		n = gen_text(in, sizeof in);
		for (i = 0; i <= n; i++) {
			for (j = i; j <= n; j++) {
				cut[0] = 0, cut[1] = i, cut[2] = j, cut[3] = n;
				runs++;
				/* CRLF -> LF */
				memset(&xa, 0, sizeof xa);
				memset(&xb, 0, sizeof xb);
				na = nb = 0;
				for (size_t s = 0; s < 3; s++) {
					ca[s] = ms_mbox_crlf_feed(&xa,
						in + cut[s], cut[s + 1] - cut[s],
						a + na);
					cb[s] = ref_crlf_feed(&xb,
						in + cut[s], cut[s + 1] - cut[s],
						b + nb);
					na += ca[s];
					nb += cb[s];
				}
				na += ms_mbox_crlf_flush(&xa, a + na);
				nb += ms_mbox_crlf_flush(&xb, b + nb);
				if (na != nb || memcmp(a, b, na) ||
				    memcmp(ca, cb, sizeof ca)) {
					if (!bad_crlf++)
						printf("# crlf differs: case %zu "
						       "split %zu/%zu\n", c, i, j);
				}
				/* mboxrd quoting */
				ms_mbox_quote_init(&qa);
				ms_mbox_quote_init(&qb);
				na = nb = 0;
				for (size_t s = 0; s < 3; s++) {
					ca[s] = ms_mbox_quote_feed(&qa,
						in + cut[s], cut[s + 1] - cut[s],
						a + na);
					cb[s] = ref_quote_feed(&qb,
						in + cut[s], cut[s + 1] - cut[s],
						b + nb);
					na += ca[s];
					nb += cb[s];
				}
				if (qa.mid != qb.mid || qa.k != qb.k)
					bad_quote++;
				na += ms_mbox_quote_flush(&qa, a + na);
				nb += ms_mbox_quote_flush(&qb, b + nb);
				if (na != nb || memcmp(a, b, na) ||
				    memcmp(ca, cb, sizeof ca)) {
					if (!bad_quote++)
						printf("# quote differs: case %zu "
						       "split %zu/%zu\n", c, i, j);
				}
			}
		}
	}
	printf("# %ld split inputs compared\n", runs);
	T_OK(runs > 100000, "diff: over 100000 split inputs generated");
	T_EQ_INT(bad_crlf, 0, "diff: crlf_feed matches the bytewise reference");
	T_EQ_INT(bad_quote, 0,
		 "diff: quote_feed matches the bytewise reference");
}

static void test_sender_date(void)
{
	static const struct {
		const char *hdr, *want;
	} t[] = {
		{ "Return-Path: <a@b.c>\nX: y\n\n", "a@b.c" },
		{ "return-path:<a b@c>\n\n", "a-b@c" },
		{ "Return-Path: <evil\n From x>\nX: 1\n\n", "evil--From-x" },
		{ "Return-Path: <>\n\n", "MAILER-DAEMON" },
		{ "Subject: x\n\nReturn-Path: <late@x>\n", "MAILER-DAEMON" },
		{ "X: 1\nReturn-Path: <t\tab@x>\n\n", "t-ab@x" },
		{ "", "MAILER-DAEMON" },
	};
	char out[256], name[96];
	size_t i;

	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		ms_mbox_sender(t[i].hdr, strlen(t[i].hdr), out, sizeof out);
		snprintf(name, sizeof name, "sender %zu -> %s", i, t[i].want);
		T_EQ_STR(out, t[i].want, name);
	}
	ms_mbox_date(1704067200, out, sizeof out);
	T_EQ_STR(out, "Mon Jan  1 00:00:00 2024", "asctime date in UTC");
	ms_mbox_date(1731974400 + 3661, out, sizeof out);
	T_EQ_STR(out, "Tue Nov 19 01:01:01 2024", "two-digit day");
}

/* ---- an independent mboxrd reader ------------------------------------ */

struct split {
	int n;
	char *msg[16];
	size_t len[16];
	char from[16][256];
	size_t off[16];
};

static void split_free(struct split *s)
{
	int i;

	for (i = 0; i < s->n; i++)
		free(s->msg[i]);
	s->n = 0;
}

/* Messages start at "From " lines; the blank line before the next one
 * is the separator; one '>' is removed from ^>+From  lines. */
static void split(const char *p, size_t n, struct split *s)
{
	size_t i = 0, eol, k, j;
	char *m = NULL;

	memset(s, 0, sizeof *s);
	while (i < n) {
		eol = i;
		while (eol < n && p[eol] != '\n')
			eol++;
		eol = eol < n ? eol + 1 : n;
		if (eol - i >= 5 && !memcmp(p + i, "From ", 5)) {
			if (m && s->len[s->n - 1] &&
			    m[s->len[s->n - 1] - 1] == '\n')
				s->len[s->n - 1]--; /* the separator */
			m = s->msg[s->n] = malloc(n + 1);
			s->len[s->n] = 0;
			s->off[s->n] = i;
			snprintf(s->from[s->n], sizeof s->from[0], "%.*s",
				 (int)(eol - i - 1), p + i);
			s->n++;
		} else if (m) {
			for (k = i; k < eol && p[k] == '>'; k++)
				;
			j = i + (k > i && eol - k >= 5 &&
				 !memcmp(p + k, "From ", 5));
			memcpy(m + s->len[s->n - 1], p + j, eol - j);
			s->len[s->n - 1] += eol - j;
		}
		i = eol;
	}
	if (m && s->len[s->n - 1] && m[s->len[s->n - 1] - 1] == '\n')
		s->len[s->n - 1]--;
}

/* ---- the store ------------------------------------------------------- */

static struct ms_account acct_pop3 = { .name = "t", .proto = MS_PROTO_POP3 };
static char mbox_path[256], lock_path[300], idx_path[300];

struct durable {
	int n;
	char uidl[16][MS_UIDL_MAX + 1];
};

static void durable_cb(void *ctx, const struct ms_msg *m)
{
	struct durable *d = ctx;

	snprintf(d->uidl[d->n++ % 16], sizeof d->uidl[0], "%s", m->uidl);
}

/* Put one raw message through begin/write(step)/finish. */
static int put(struct ms_store_folder *f, const char *raw, size_t n,
	       size_t step, const char *uidl)
{
	struct ms_store_msg *m;
	struct ms_msg meta = { .uid = 1, .size = n, .has_meta = 1 };
	struct ms_err e;
	size_t i, k;
	int rc;

	snprintf(meta.uidl, sizeof meta.uidl, "%s", uidl);
	if ((rc = ms_mbox_store.msg_begin(f, &m, &e)) < 0)
		return rc;
	for (i = 0; i < n; i += k) {
		k = n - i < step ? n - i : step;
		if ((rc = ms_mbox_store.msg_write(m, raw + i, k, &e)) < 0)
			return rc;
	}
	return ms_mbox_store.msg_finish(m, &meta, &e);
}

static const struct {
	const char *raw, *want, *uidl;
	size_t step;
} corpus[] = {
	{ "Return-Path: <a b@x\r\n From x>\r\nSubject: s\r\n\r\nFrom x\r\n"
	  ">From x\r\n>>From x\r\nFrom\r\nFromage\r\n",
	  "Return-Path: <a b@x\n From x>\nSubject: s\n\nFrom x\n"
	  ">From x\n>>From x\nFrom\nFromage\n", "u1", 1 },
	{ "Subject: t\r\n\r\nlast line", "Subject: t\n\nlast line\n", "u2",
	  7 },
	{ "", "", "u3", 5 },
	{ "From evil@x Mon Jan  1 00:00:00 2024\r\nbody\r\n\r\n",
	  "From evil@x Mon Jan  1 00:00:00 2024\nbody\n\n", "u4", 3 },
	{ "X-UID: 5\r\nStatus: RO\r\nContent-Length: 3\r\n\r\nabcdef\r\n",
	  "X-UID: 5\nStatus: RO\nContent-Length: 3\n\nabcdef\n", "u5",
	  4096 },
};
#define NCORPUS (sizeof corpus / sizeof corpus[0])

static struct ms_store *store_open(const struct ms_account *a, int dry)
{
	struct ms_store *s = NULL;
	struct ms_err e;

	if (ms_mbox_store.open(&s, a, dry, &e) < 0)
		printf("# open: %s\n", e.msg);
	return s;
}

static void sha_hex(const char *p, size_t n, char out[65])
{
	unsigned char md[32];
	unsigned len = 0;
	int i;

	EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
	for (i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
}

static void check_index(const struct split *sp, size_t mlen)
{
	char path[320], want[256], sha[65], *idx, *copy, *line, *save = NULL;
	size_t n, i, k = 0;
	int ok = 1;

	snprintf(path, sizeof path, "%s.msidx", mbox_path);
	idx = slurp(path, &n);
	copy = idx ? strdup(idx) : NULL;
	T_OK(idx && !strncmp(idx, "mailsync-mbox-index 1\nb 0 ", 26),
	     "index: magic line then the begin record");
	if (!idx)
		return;
	for (line = strtok_r(idx, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "m ", 2) != 0)
			continue;
		i = k++;
		if (i >= NCORPUS)
			break;
		n = strlen(corpus[i].want);
		/* the hash excludes the newline we add */
		sha_hex(corpus[i].want, n - (i == 1), sha);
		snprintf(want, sizeof want, "m %zu %zu 0 %d %s %zu 0 p %s a=t",
			 sp->off[i],
			 (i + 1 < NCORPUS ? sp->off[i + 1] : mlen) - sp->off[i],
			 i == 1, sha, strlen(corpus[i].raw), corpus[i].uidl);
		if (strcmp(line, want)) {
			printf("#   got  %s\n#   want %s\n", line, want);
			ok = 0;
		}
	}
	T_OK(ok && k == NCORPUS, "index: one m line per message, offsets, "
	     "lengths, SHA-256, identity");
	snprintf(want, sizeof want, "\ne %zu\n", mlen);
	T_OK(strstr(copy, want) != NULL,
	     "index: end record with the mbox size");
	free(idx);
	free(copy);
}

static int scan_cb(void *ctx, const struct ms_msg *m, const char *ref,
		   struct ms_err *e)
{
	struct split *sp = ctx;
	char want[32];

	(void)e;
	snprintf(want, sizeof want, "%zu", sp->off[sp->n]);
	if (strcmp(ref, want) || strcmp(m->uidl, corpus[sp->n].uidl))
		return -1;
	sp->n++;
	return 0;
}

static void test_roundtrip(void)
{
	struct ms_store *s;
	struct ms_store_folder *f = NULL;
	struct durable d = { 0 };
	struct split sp, sc;
	struct ms_err e;
	struct stat st;
	size_t i, n;
	char *mb;
	int rc = 0;

	acct_pop3.store_path = mbox_path;
	s = store_open(&acct_pop3, 0);
	T_OK(s != NULL, "open POP3 mbox store");
	T_EQ_INT(ms_mbox_store.folder_open(s, "INBOX", &f, &e), 0,
		 "folder_open creates the mbox");
	T_OK(stat(mbox_path, &st) == 0 && (st.st_mode & 0777) == 0600 &&
	     st.st_size == 0, "mbox created 0600, empty");
	for (i = 0; i < NCORPUS && rc == 0; i++)
		rc = put(f, corpus[i].raw, strlen(corpus[i].raw),
			 corpus[i].step, corpus[i].uidl);
	T_EQ_INT(rc, 0, "five messages written");
	T_EQ_INT(ms_mbox_store.commit(f, durable_cb, &d, &e), 0, "commit");
	T_OK(d.n == 5 && !strcmp(d.uidl[0], "u1") && !strcmp(d.uidl[4], "u5"),
	     "durable_cb for each message in order");
	T_OK(fsize(lock_path) < 0, "no dotlock left");
	mb = slurp(mbox_path, &n);
	split(mb, n, &sp);
	T_EQ_INT(sp.n, NCORPUS, "reader finds as many messages");
	for (i = 0; i < (size_t)sp.n && i < NCORPUS; i++) {
		char name[64];

		snprintf(name, sizeof name, "message %zu byte-identical", i);
		T_EQ_MEM(sp.msg[i], sp.len[i], corpus[i].want,
			 strlen(corpus[i].want), name);
	}
	T_OK(!strncmp(sp.from[0], "From a-b@x--From-x ", 19) &&
	     strlen(sp.from[0]) == 19 + 24,
	     "From_ line: sanitised Return-Path and asctime date");
	T_OK(!strncmp(sp.from[1], "From MAILER-DAEMON ", 19),
	     "From_ line: no Return-Path -> MAILER-DAEMON");
	check_index(&sp, n);
	memset(&sc, 0, sizeof sc);
	memcpy(sc.off, sp.off, sizeof sc.off);
	T_EQ_INT(ms_mbox_store.scan(f, scan_cb, &sc, &e), 0, "scan");
	T_EQ_INT(sc.n, NCORPUS, "scan: every message with offset and UIDL");
	ms_mbox_store.folder_close(f);
	ms_mbox_store.close(s);
	split_free(&sp);
	free(mb);
}

/* Commit one small message; returns the commit's code, e filled. */
static int commit_one(const char *uidl, struct ms_err *e)
{
	struct ms_store *s = store_open(&acct_pop3, 0);
	struct ms_store_folder *f = NULL;
	struct durable d = { 0 };
	int rc;

	if ((rc = ms_mbox_store.folder_open(s, "INBOX", &f, e)) == 0 &&
	    (rc = put(f, "Subject: x\r\n\r\nbody\r\n", 20, 20, uidl)) == 0)
		rc = ms_mbox_store.commit(f, durable_cb, &d, e);
	if (rc == 0 && d.n != 1)
		rc = -1000;
	ms_mbox_store.folder_close(f);
	ms_mbox_store.close(s);
	return rc;
}

static pid_t hold_fcntl(void)
{
	int p[2];
	char c;
	pid_t pid;

	if (pipe(p) < 0)
		abort();
	pid = fork();
	if (pid == 0) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		int fd = open(mbox_path, O_RDWR);

		if (fd < 0 || fcntl(fd, F_SETLK, &fl) < 0)
			_exit(1);
		if (write(p[1], "x", 1) != 1)
			_exit(1);
		alarm(30);
		pause();
		_exit(0);
	}
	close(p[1]);
	if (read(p[0], &c, 1) != 1)
		pid = -1;
	close(p[0]);
	return pid;
}

static void test_locks(void)
{
	struct ms_err e;
	off_t before = fsize(mbox_path);
	struct timespec ts[2];
	time_t t0;
	pid_t pid;
	int fd, rc;

	setenv("MAILSYNC_MBOX_LOCK_TIMEOUT", "1", 1);
	pid = hold_fcntl();
	T_OK(pid > 0, "child holds an fcntl lock on the mbox");
	t0 = time(NULL);
	rc = commit_one("lk1", &e);
	T_EQ_INT(rc, MS_ETEMP, "fcntl lock held -> MS_ETEMP");
	T_OK(time(NULL) - t0 <= 3, "gave up within the bound");
	T_OK(strstr(e.msg, "is locked by another program") != NULL,
	     "lock message");
	T_EQ_INT(fsize(mbox_path), before, "mbox unchanged");
	T_OK(fsize(lock_path) < 0, "our dotlock removed after giving up");
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);

	fd = open(lock_path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	close(fd);
	rc = commit_one("lk2", &e);
	T_EQ_INT(rc, MS_ETEMP, "fresh dotlock -> MS_ETEMP");
	T_OK(strstr(e.msg, "dotlock") != NULL, "dotlock message");
	T_EQ_INT(fsize(mbox_path), before, "mbox unchanged (dotlock)");
	T_OK(fsize(lock_path) == 0, "someone else's dotlock left alone");

	ts[0].tv_sec = ts[1].tv_sec = time(NULL) - 600;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	utimensat(AT_FDCWD, lock_path, ts, 0);
	rc = commit_one("lk3", &e);
	T_EQ_INT(rc, 0, "stale dotlock (10 min) removed, append proceeds");
	T_OK(fsize(mbox_path) > before && fsize(lock_path) < 0,
	     "appended and no dotlock left");

	/* a fresh dotlock naming a live process stays; one naming a dead
	 * process (a killed mailsync) is removed at once */
	before = fsize(mbox_path);
	fd = open(lock_path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	dprintf(fd, "%ld\n", (long)getpid());
	close(fd);
	rc = commit_one("lk4", &e);
	T_EQ_INT(rc, MS_ETEMP, "dotlock of a live process -> MS_ETEMP");
	unlink(lock_path);
	if ((pid = fork()) == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	fd = open(lock_path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	dprintf(fd, "%ld\n", (long)pid);
	close(fd);
	rc = commit_one("lk5", &e);
	T_EQ_INT(rc, 0, "dotlock of a dead process removed, append proceeds");
	T_OK(fsize(mbox_path) > before && fsize(lock_path) < 0,
	     "appended after the dead holder's dotlock");

	/* the dotlock is made by link() from a temporary file holding the
	 * pid, so it is never empty; temporary files of dead processes
	 * (a SIGKILL between create and unlink) are removed */
	{
		char t_dead[400], t_live[400];

		snprintf(t_dead, sizeof t_dead, "%s.mailsync.%ld.1", lock_path,
			 (long)pid);
		snprintf(t_live, sizeof t_live, "%s.mailsync.%ld.1", lock_path,
			 (long)getpid());
		fd = open(t_dead, O_WRONLY | O_CREAT | O_EXCL, 0600);
		close(fd);
		fd = open(t_live, O_WRONLY | O_CREAT | O_EXCL, 0600);
		close(fd);
		before = fsize(mbox_path);
		rc = commit_one("lk6", &e);
		T_EQ_INT(rc, 0, "append with temporary dotlock files around");
		T_OK(fsize(t_dead) < 0, "dead process's temporary file removed");
		T_OK(fsize(t_live) == 0, "live process's temporary file kept");
		T_OK(fsize(lock_path) < 0, "no dotlock left");
		unlink(t_live);
	}
	unsetenv("MAILSYNC_MBOX_LOCK_TIMEOUT");
}

/* A kill -9 between append and index: simulated with the records a
 * crashed commit leaves ("b PRE END" and part of the bytes). */
static void test_cut_partial(void)
{
	struct ms_store *s = store_open(&acct_pop3, 0);
	struct ms_store_folder *f = NULL;
	char rec[64], *idx;
	off_t pre = fsize(mbox_path);
	struct ms_err e;
	size_t n;
	FILE *fp;

	snprintf(rec, sizeof rec, "b %lld %lld\n", (long long)pre,
		 (long long)pre + 500);
	fp = fopen(idx_path, "a");
	fputs(rec, fp);
	fclose(fp);
	fp = fopen(mbox_path, "a");
	fputs("From MAILER-DAEMON Mon Jan  1 00:00:00 2024\nSubject: half", fp);
	fclose(fp);
	T_EQ_INT(ms_mbox_store.folder_open(s, "INBOX", &f, &e), 0,
		 "folder_open after a crash");
	T_EQ_INT(fsize(mbox_path), pre, "partial append cut back");
	idx = slurp(idx_path, &n);
	snprintf(rec, sizeof rec, "\nx %lld\n", (long long)pre);
	T_OK(idx && n > strlen(rec) && !strcmp(idx + n - strlen(rec), rec),
	     "index closed with an x record");
	free(idx);
	ms_mbox_store.folder_close(f);

	/* other mail appended after the crash is never cut */
	snprintf(rec, sizeof rec, "b %lld %lld\n", (long long)pre,
		 (long long)pre + 10);
	fp = fopen(idx_path, "a");
	fputs(rec, fp);
	fclose(fp);
	fp = fopen(mbox_path, "a");
	fputs("From x Mon Jan  1 00:00:00 2024\nSubject: foreign\n\n", fp);
	fclose(fp);
	f = NULL;
	T_EQ_INT(ms_mbox_store.folder_open(s, "INBOX", &f, &e), 0,
		 "folder_open with foreign mail after a crash");
	T_EQ_INT(fsize(mbox_path), pre + 50, "foreign mail kept");
	ms_mbox_store.folder_close(f);
	ms_mbox_store.close(s);
}

static void test_refusals(void)
{
	struct ms_account a = { .name = "t", .proto = MS_PROTO_POP3 };
	struct ms_store *s;
	struct ms_store_folder *f = NULL;
	char link[128], file[128];
	struct ms_err e;

	snprintf(file, sizeof file, "%s/real", dir);
	snprintf(link, sizeof link, "%s/linked", dir);
	close(open(file, O_WRONLY | O_CREAT, 0600));
	if (symlink(file, link) < 0)
		abort();
	a.store_path = link;
	s = store_open(&a, 0);
	T_EQ_INT(ms_mbox_store.folder_open(s, "INBOX", &f, &e), MS_ECREATE,
		 "symlinked mbox refused (MS_ECREATE)");
	T_OK(strstr(e.msg, link) != NULL, "refusal names the path");
	ms_mbox_store.close(s);

	snprintf(file, sizeof file, "%s/dry/sub/mbox", dir);
	a.store_path = file;
	s = store_open(&a, 1);
	T_OK(s != NULL, "dry run: open with a missing directory");
	f = NULL;
	T_EQ_INT(ms_mbox_store.folder_open(s, "INBOX", &f, &e), 0,
		 "dry run: folder_open");
	T_OK(fsize(file) < 0, "dry run: nothing created");
	ms_mbox_store.folder_close(f);
	ms_mbox_store.close(s);
}

static void test_imap_layout(void)
{
	struct ms_account a = { .name = "t", .proto = MS_PROTO_IMAP };
	struct ms_store_folder *f = NULL;
	struct ms_store_msg *m;
	struct ms_msg meta = { .uid = 42, .uidvalidity = 7,
			       .internaldate = 1704067200 };
	struct ms_store *s;
	char root[128], path[160], *mb;
	struct ms_err e;
	struct stat st;
	size_t n;

	snprintf(root, sizeof root, "%s/imap", dir);
	a.store_path = root;
	s = store_open(&a, 0);
	T_EQ_INT(ms_mbox_store.folder_open(s, "Work/2024", &f, &e), 0,
		 "IMAP: folder Work/2024");
	snprintf(path, sizeof path, "%s/Work/2024", root);
	T_OK(stat(path, &st) == 0 && S_ISREG(st.st_mode),
	     "IMAP: file DIR/Work/2024");
	snprintf(path, sizeof path, "%s/Work", root);
	T_OK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0700,
	     "IMAP: parent directory 0700");
	ms_mbox_store.msg_begin(f, &m, &e);
	ms_mbox_store.msg_write(m, "S: 1\r\n\r\nx\r\n", 11, &e);
	ms_mbox_store.msg_finish(m, &meta, &e);
	T_EQ_INT(ms_mbox_store.commit(f, NULL, NULL, &e), 0, "IMAP: commit");
	snprintf(path, sizeof path, "%s/Work/2024", root);
	mb = slurp(path, &n);
	T_EQ_STR(mb, "From MAILER-DAEMON Mon Jan  1 00:00:00 2024\n"
		 "S: 1\n\nx\n\n", "IMAP: INTERNALDATE in the From_ line");
	free(mb);
	snprintf(path, sizeof path, "%s/Work/2024.msidx", root);
	mb = slurp(path, &n);
	T_OK(mb && strstr(mb, " 0 1704067200 u 7 42 a=t\n"),
	     "IMAP: index identity u UIDVALIDITY UID, account");
	free(mb);
	ms_mbox_store.folder_close(f);
	ms_mbox_store.close(s);
}

/* ENOSPC in the middle of an append (tmpfs in a private mount namespace,
 * root only): the mbox is cut back to its size before the append. */
static int enospc_child(void)
{
	char mnt[128], *big;
	struct ms_account a = { .name = "t", .proto = MS_PROTO_POP3 };
	struct ms_store *s;
	struct ms_store_folder *f = NULL;
	struct ms_err e;
	off_t pre;
	int rc, bad = 0;

	snprintf(mnt, sizeof mnt, "%s/full", dir);
	if (unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mkdir(mnt, 0700) < 0 ||
	    mount("tmpfs", mnt, "tmpfs", 0, "size=256k") < 0)
		return 77;
	snprintf(mbox_path, sizeof mbox_path, "%s/mbox", mnt);
	a.store_path = mbox_path;
	big = malloc(100 * 1024);
	memset(big, 'a', 100 * 1024);
	memcpy(big, "S: 1\r\n\r\n", 8);
	big[100 * 1024 - 1] = '\n';
	s = store_open(&a, 0);
	if (ms_mbox_store.folder_open(s, "INBOX", &f, &e) < 0 ||
	    put(f, big, 100 * 1024, 65536, "big1") < 0 ||
	    ms_mbox_store.commit(f, NULL, NULL, &e) < 0)
		return 78;
	pre = fsize(mbox_path);
	if (put(f, big, 100 * 1024, 65536, "big2") < 0)
		return 79;
	rc = ms_mbox_store.commit(f, NULL, NULL, &e);
	printf("# enospc: %s\n", e.msg);
	bad |= rc != MS_EIO;
	bad |= (!strstr(e.msg, "No space left on device") ||
		!strstr(e.msg, mbox_path)) << 1;
	bad |= (fsize(mbox_path) != pre) << 2;
	snprintf(lock_path, sizeof lock_path, "%s.lock", mbox_path);
	bad |= (fsize(lock_path) >= 0) << 3;
	ms_mbox_store.folder_close(f);
	ms_mbox_store.close(s);
	return bad;
}

static void test_enospc(void)
{
	pid_t pid;
	int st = 0, rc;

	fflush(stdout);
	pid = fork();
	if (pid == 0)
		_exit(enospc_child());
	waitpid(pid, &st, 0);
	rc = WIFEXITED(st) ? WEXITSTATUS(st) : 100;
	if (rc == 77) {
		printf("ok %d - # SKIP ENOSPC: no private tmpfs (needs root "
		       "and unshare)\n", ++t_n);
		return;
	}
	T_EQ_INT(rc & ~15, 0, "ENOSPC: set-up worked");
	T_OK(!(rc & 1), "ENOSPC: commit -> MS_EIO");
	T_OK(!(rc & 2), "ENOSPC: error names the path and the errno");
	T_OK(!(rc & 4), "ENOSPC: mbox truncated back to its size");
	T_OK(!(rc & 8), "ENOSPC: no dotlock left");
}

/* ---- the index checked against the mbox ------------------------------ */

static char val_path[256];
static struct ms_account acct_val = { .name = "v", .proto = MS_PROTO_POP3 };

struct ids {
	int n;
	char uidl[16][MS_UIDL_MAX + 1];
};

static int ids_cb(void *ctx, const struct ms_msg *m, const char *ref,
		  struct ms_err *e)
{
	struct ids *d = ctx;

	(void)ref;
	(void)e;
	snprintf(d->uidl[d->n++ % 16], sizeof d->uidl[0], "%s", m->uidl);
	return 0;
}

/* Open the folder: what lost reports, then (forget_lost done) what scan
 * reports (identities in lost and kept); 0 or the failing op's code. */
static int val_open_as(struct ms_account *a, struct ids *lost,
		       struct ids *kept)
{
	struct ms_store *s = store_open(a, 0);
	struct ms_store_folder *f = NULL;
	struct ms_err e;
	int rc;

	memset(lost, 0, sizeof *lost);
	memset(kept, 0, sizeof *kept);
	if (!s)
		return -1;
	if ((rc = ms_mbox_store.folder_open(s, "INBOX", &f, &e)) == 0 &&
	    (rc = ms_mbox_store.lost(f, ids_cb, lost, &e)) == 0 &&
	    (rc = ms_mbox_store.forget_lost(f, &e)) == 0)
		rc = ms_mbox_store.scan(f, ids_cb, kept, &e);
	if (rc < 0)
		printf("# val_open: %s\n", e.msg);
	ms_mbox_store.folder_close(f);
	ms_mbox_store.close(s);
	return rc;
}

static int val_open(struct ids *lost, struct ids *kept)
{
	return val_open_as(&acct_val, lost, kept);
}

static void age(const char *path)
{
	static int k;
	struct timespec ts[2] = { { time(NULL) - 100, 5 + k },
				  { time(NULL) - 100, 5 + k } };

	k++;
	utimensat(AT_FDCWD, path, ts, 0);
}

static int count_lines(const char *path, const char *prefix)
{
	size_t n, pl = strlen(prefix);
	char *p = slurp(path, &n), *q;
	int c = 0;

	for (q = p; q && *q; q = strchr(q, '\n') ? strchr(q, '\n') + 1 : "")
		c += strncmp(q, prefix, pl) == 0;
	free(p);
	return c;
}

/* Account a stores the whole corpus in its mbox in one commit. */
static int store_corpus(struct ms_account *a)
{
	struct ms_store *s = store_open(a, 0);
	struct ms_store_folder *f = NULL;
	struct durable d = { 0 };
	struct ms_err e;
	int rc = 0;

	if (!s || ms_mbox_store.folder_open(s, "INBOX", &f, &e) < 0)
		rc = -1;
	for (size_t i = 0; i < NCORPUS && rc == 0; i++)
		rc = put(f, corpus[i].raw, strlen(corpus[i].raw),
			 corpus[i].step, corpus[i].uidl);
	if (rc == 0)
		rc = ms_mbox_store.commit(f, durable_cb, &d, &e);
	ms_mbox_store.folder_close(f);
	ms_mbox_store.close(s);
	return rc;
}

/* Cut the mbox 20 bytes into its message k (0-based). */
static int cut_inside(const char *path, int k)
{
	struct split sp;
	size_t n;
	char *mb = slurp(path, &n);
	int rc;

	split(mb, n, &sp);
	rc = truncate(path, (off_t)(sp.off[k] + 20));
	split_free(&sp);
	free(mb);
	return rc;
}

static void test_validate(void)
{
	char vidx[300], *mb;
	struct ms_store *s;
	struct ms_store_folder *f = NULL;
	struct durable d = { 0 };
	struct ids lost, kept;
	struct ms_err e;
	struct split sp;
	size_t n;
	int rc, fd;

	snprintf(val_path, sizeof val_path, "%s/mail/val", dir);
	snprintf(vidx, sizeof vidx, "%s.msidx", val_path);
	acct_val.store_path = val_path;
	T_EQ_INT(store_corpus(&acct_val), 0, "validate: five messages committed");
	T_EQ_INT(count_lines(vidx, "s "), 1, "the commit stamps size and mtime");

	T_EQ_INT(val_open(&lost, &kept), 0, "validate: open an intact mbox");
	T_OK(lost.n == 0 && kept.n == 5, "intact: nothing lost, all 5 scanned");

	/* changed mtime: every message is hashed (mboxrd unquoting, the
	 * added newline, the empty message) and still matches */
	age(val_path);
	T_EQ_INT(val_open(&lost, &kept), 0, "validate: open, mtime changed");
	T_OK(lost.n == 0 && kept.n == 5, "hashes match: nothing lost");
	T_EQ_INT(count_lines(vidx, "s "), 2, "stamped again after hashing");

	/* one byte of message 4 changed, size kept: found by its hash */
	mb = slurp(val_path, &n);
	split(mb, n, &sp);
	fd = open(val_path, O_WRONLY);
	T_OK(fd >= 0 && pwrite(fd, "X", 1, (off_t)(sp.off[4] +
	     strlen(sp.from[4]) + 2)) == 1, "one byte of message 5 changed");
	close(fd);
	split_free(&sp);
	free(mb);
	age(val_path);
	T_EQ_INT(val_open(&lost, &kept), 0, "validate: open, a message changed");
	T_OK(lost.n == 1 && !strcmp(lost.uidl[0], "u5") && kept.n == 4,
	     "the changed message is lost, the other 4 kept");
	T_EQ_INT(count_lines(vidx, "m "), 4, "its record dropped from the index");
	T_EQ_INT(val_open(&lost, &kept), 0, "validate: open again");
	T_OK(lost.n == 0 && kept.n == 4, "reported once only");

	/* cut in the middle of the (now) last indexed message */
	T_EQ_INT(cut_inside(val_path, 3), 0, "mbox cut inside message 4");
	T_EQ_INT(val_open(&lost, &kept), 0, "validate: open a cut mbox");
	T_OK(lost.n == 1 && !strcmp(lost.uidl[0], "u4") && kept.n == 3,
	     "the cut message is lost, 3 kept");
	/* the next append starts after a blank line, so a reader sees it */
	rc = 0;
	s = store_open(&acct_val, 0);
	if (ms_mbox_store.folder_open(s, "INBOX", &f, &e) < 0 ||
	    put(f, corpus[3].raw, strlen(corpus[3].raw), 7, "u4") < 0 ||
	    ms_mbox_store.commit(f, durable_cb, &d, &e) < 0)
		rc = -1;
	ms_mbox_store.folder_close(f);
	ms_mbox_store.close(s);
	T_EQ_INT(rc, 0, "message 4 appended again");
	mb = slurp(val_path, &n);
	split(mb, n, &sp);
	T_OK(sp.n == 5 && sp.len[4] == strlen(corpus[3].want) &&
	     !memcmp(sp.msg[4], corpus[3].want, sp.len[4]),
	     "after the cut one, message 4 whole on lines of its own");
	split_free(&sp);
	free(mb);
	T_EQ_INT(val_open(&lost, &kept), 0, "validate: open after the append");
	T_OK(lost.n == 0 && kept.n == 4, "4 stored, nothing lost");

	/* the mbox removed, the index kept: everything is lost */
	unlink(val_path);
	T_EQ_INT(val_open(&lost, &kept), 0, "validate: open, mbox removed");
	T_OK(lost.n == 4 && kept.n == 0, "mbox removed: all 4 lost, none kept");
	T_EQ_INT(count_lines(vidx, "m "), 0, "and dropped from the index");
}

/* Two accounts, one mbox, the same UIDLs (their servers number alike):
 * each sees only its own records (a=NAME), reports and drops only its
 * own, and leaves the other's failed records for the other to find. */
static void test_foreign(void)
{
	static struct ms_account one = { .name = "one",
					 .proto = MS_PROTO_POP3 };
	static struct ms_account two = { .name = "two",
					 .proto = MS_PROTO_POP3 };
	char path[256], idx[300], *mb, *p, *q;
	struct ids lost, kept;
	size_t n;
	int rc, fd;

	snprintf(path, sizeof path, "%s/mail/shared", dir);
	snprintf(idx, sizeof idx, "%s.msidx", path);
	one.store_path = two.store_path = path;
	T_EQ_INT(store_corpus(&one), 0,
		 "foreign: account one stores five messages");
	T_EQ_INT(count_lines(idx, "m "), 5, "foreign: five records");

	T_EQ_INT(val_open_as(&two, &lost, &kept), 0, "foreign: two opens");
	T_OK(lost.n == 0 && kept.n == 0,
	     "foreign: one's records (same UIDLs) are not two's");
	T_EQ_INT(val_open_as(&one, &lost, &kept), 0, "foreign: one opens");
	T_OK(lost.n == 0 && kept.n == 5, "foreign: one sees its five");

	/* the mbox cut inside message 4: two reports and drops nothing, and
	 * stamps nothing; one then finds its two messages lost */
	T_EQ_INT(cut_inside(path, 3), 0, "foreign: mbox cut inside message 4");
	age(path);
	rc = count_lines(idx, "s ");
	T_EQ_INT(val_open_as(&two, &lost, &kept), 0, "foreign: two opens, cut");
	T_OK(lost.n == 0 && kept.n == 0, "foreign: two reports nothing lost");
	T_EQ_INT(count_lines(idx, "m "), 5, "foreign: two dropped no record");
	T_EQ_INT(count_lines(idx, "s "), rc, "foreign: two wrote no stamp");
	T_EQ_INT(val_open_as(&one, &lost, &kept), 0, "foreign: one opens, cut");
	T_OK(lost.n == 2 && !strcmp(lost.uidl[0], "u4") &&
		 !strcmp(lost.uidl[1], "u5") && kept.n == 3,
	     "foreign: one finds messages 4 and 5 lost, keeps 3");
	T_EQ_INT(count_lines(idx, "m "), 3, "foreign: one dropped its two");

	/* records written before a= existed count for every account */
	mb = slurp(idx, &n);
	for (p = q = mb; mb && *p;) {
		if (!strncmp(p, " a=one", 6))
			p += 6;
		else
			*q++ = *p++;
	}
	if (mb)
		*q = '\0';
	fd = open(idx, O_WRONLY | O_TRUNC);
	T_OK(mb && fd >= 0 && write(fd, mb, strlen(mb)) == (ssize_t)strlen(mb),
	     "foreign: a= removed from the index");
	if (fd >= 0)
		close(fd);
	free(mb);
	T_EQ_INT(val_open_as(&two, &lost, &kept), 0, "foreign: two opens, no a=");
	T_OK(lost.n == 0 && kept.n == 3,
	     "foreign: records without a= count for two too");
}

int main(void)
{
	if (!mkdtemp(strcpy(dir, "/tmp/test_mbox.XXXXXX")))
		return 1;
	snprintf(mbox_path, sizeof mbox_path, "%s/mail/inbox", dir);
	snprintf(lock_path, sizeof lock_path, "%s.lock", mbox_path);
	snprintf(idx_path, sizeof idx_path, "%s.msidx", mbox_path);
	ms_log_setup(log_sink, NULL, MS_LOG_WARN);
	test_quote();
	test_crlf();
	test_diff();
	test_sender_date();
	test_roundtrip();
	test_locks();
	test_cut_partial();
	test_refusals();
	test_imap_layout();
	test_validate();
	test_foreign();
	test_enospc();
	if (!getenv("KEEP")) {
		char cmd[128];

		snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
		(void)!system(cmd);
	}
	return t_done();
}
