/*
 * test_state.c: per-folder state files, journal replay, corruption and
 * foreign-state detection, the account lock, modes and dry-run.  Each
 * test works in its own mkdtemp directory.
 */
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "t.h"

static char top[] = "/tmp/test_state.XXXXXX";
static int ntmp;

static struct ms_account mk_acct(int proto)
{
	struct ms_account a;

	memset(&a, 0, sizeof a);
	a.name = "acct";
	a.proto = proto;
	a.host = "imap.example.org";
	a.user = "me@example.org";
	return a;
}

/* A fresh state dir (not yet created) below top. */
static char *fresh(void)
{
	static char buf[8][256];
	char *p = buf[ntmp % 8];

	snprintf(p, sizeof buf[0], "%s/s%d", top, ntmp++);
	return p;
}

static char *slurp(const char *dir, const char *name, size_t *len)
{
	char path[512], *buf = NULL;
	struct stat st;
	int fd;

	snprintf(path, sizeof path, "%s/acct/%s", dir, name);
	if ((fd = open(path, O_RDONLY)) < 0)
		return NULL;
	if (fstat(fd, &st) == 0 && (buf = malloc((size_t)st.st_size + 1))) {
		*len = (size_t)read(fd, buf, (size_t)st.st_size);
		buf[*len] = '\0';
	}
	close(fd);
	return buf;
}

static void spit(const char *dir, const char *name, const char *p, size_t n)
{
	char path[512];
	int fd;

	snprintf(path, sizeof path, "%s/acct/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, p, n) != (ssize_t)n)
		printf("# cannot write %s\n", path);
	close(fd);
}

static int exists(const char *dir, const char *name)
{
	char path[512];

	snprintf(path, sizeof path, "%s/acct/%s", dir, name);
	return access(path, F_OK) == 0;
}

static int mode_of(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
}

static struct ms_state *open_st(const char *dir, const struct ms_account *a,
				const char *folder, int dry)
{
	struct ms_state *s = NULL;
	struct ms_err e;

	ms_err_clear(&e);
	if (ms_state_open(&s, dir, a, folder, dry, &e) < 0)
		printf("# open: %s\n", e.msg);
	return s;
}

static int add_uid(struct ms_state *s, uint32_t uid, uint32_t uv)
{
	struct ms_msg m;
	struct ms_err e;

	memset(&m, 0, sizeof m);
	m.uid = uid;
	m.uidvalidity = uv;
	return ms_state_add(s, &m, 1000, &e);
}

static int del_uid(struct ms_state *s, uint32_t uid)
{
	struct ms_msg m;
	struct ms_err e;

	memset(&m, 0, sizeof m);
	m.uid = uid;
	return ms_state_del(s, &m, &e);
}

/* A folder with UIDs 1..n, synced, compacted, closed. */
static void make_imap(const char *dir, const struct ms_account *a,
		      const char *folder, uint32_t n)
{
	struct ms_state *s = open_st(dir, a, folder, 0);
	struct ms_err e;

	ms_state_reset(s, 7);
	for (uint32_t u = 1; u <= n; u++)
		add_uid(s, u, 7);
	ms_state_set_header(s, 7, n + 1, 42);
	ms_state_sync(s, &e);
	ms_state_compact(s, 1700000000, &e);
	ms_state_close(s);
}

static int status_of(const char *dir, const struct ms_account *a,
		     const char *folder)
{
	struct ms_state *s = open_st(dir, a, folder, 1);
	int st = s ? ms_state_status(s) : -1;

	ms_state_close(s);
	return st;
}

static void test_new_and_roundtrip(void)
{
	struct ms_account a = mk_acct(MS_PROTO_IMAP);
	char *dir = fresh();
	struct ms_state *s;
	struct ms_err e;
	int ok = 1;

	s = open_st(dir, &a, "INBOX", 0);
	T_EQ_INT(ms_state_status(s), MS_STATE_NEW, "new folder: NEW");
	T_EQ_INT(ms_state_count(s), 0, "new folder: empty");
	ms_state_reset(s, 7);
	for (uint32_t u = 1; u <= 1000; u++)
		ok &= add_uid(s, u, 7) == 0;
	T_OK(ok, "add 1..1000");
	T_EQ_INT(ms_state_sync(s, &e), 0, "sync");
	T_OK(exists(dir, "INBOX.state"), "first sync of a new state "
					 "writes the snapshot");
	T_OK(!exists(dir, "INBOX.journal"), "... and no journal");
	for (uint32_t u = 1001; u <= 1010; u++)
		add_uid(s, u, 7);
	T_EQ_INT(ms_state_sync(s, &e), 0, "second sync");
	T_OK(exists(dir, "INBOX.journal"), "second sync appends a journal");
	ms_state_close(s);

	s = open_st(dir, &a, "INBOX", 0);
	T_EQ_INT(ms_state_status(s), MS_STATE_OK, "reopen: OK");
	T_EQ_INT(ms_state_count(s), 1010, "reopen: count 1010");
	T_EQ_INT(ms_state_uidvalidity(s), 7, "reopen: uidvalidity");
	T_OK(ms_state_has_uid(s, 1) && ms_state_has_uid(s, 1010) &&
		 !ms_state_has_uid(s, 1011) && !ms_state_has_uid(s, 0),
	     "reopen: has_uid");
	T_EQ_INT(ms_state_compact(s, 1700000000, &e), 0, "compact");
	T_OK(!exists(dir, "INBOX.journal"), "compact drops the journal");
	ms_state_close(s);

	s = open_st(dir, &a, "INBOX", 0);
	T_EQ_INT(ms_state_status(s), MS_STATE_OK, "after compact: OK");
	T_EQ_INT(ms_state_count(s), 1010, "after compact: count");
	T_EQ_INT(ms_state_last_run(s), 1700000000, "after compact: lastrun");
	T_OK(ms_state_has_uid(s, 500), "after compact: has_uid");
	ms_state_close(s);
}

static const char want_snap[] = "mailsync-state 1\n"
				"proto imap\n"
				"account acct\n"
				"host imap.example.org\n"
				"user me@example.org\n"
				"folder Lists/a%20b%25\n"
				"uidvalidity 7\n"
				"uidnext 11\n"
				"modseq 42\n"
				"lastrun 1700000000\n"
				"count 7\n"
				"u 1-3,5,8-10\n";

static uint64_t fnv(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	while (n--) {
		h ^= (unsigned char)*p++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static void test_exact_bytes(void)
{
	struct ms_account a = mk_acct(MS_PROTO_IMAP);
	char *dir = fresh(), *got, want[1024];
	static const uint32_t uids[] = {1, 2, 3, 5, 8, 9, 10, 4, 6};
	struct ms_state *s;
	struct ms_err e;
	size_t len = 0;

	s = open_st(dir, &a, "Lists/a b%", 0);
	ms_state_reset(s, 7);
	for (size_t i = 0; i < sizeof uids / sizeof uids[0]; i++)
		add_uid(s, uids[i], 7);
	del_uid(s, 4);
	del_uid(s, 6);
	ms_state_set_header(s, 7, 11, 42);
	ms_state_compact(s, 1700000000, &e);
	ms_state_close(s);
	snprintf(want, sizeof want, "%send 7 %016" PRIx64 "\n", want_snap,
		 fnv(want_snap, strlen(want_snap)));
	got = slurp(dir, "Lists%2Fa%20b%25.state", &len);
	T_EQ_STR(got, want, "snapshot bytes exactly");
	free(got);
}

static void test_journal_torn_and_bad(void)
{
	struct ms_account a = mk_acct(MS_PROTO_IMAP);
	char *dir = fresh(), *j, *snap, buf[4096];
	size_t jl = 0, sl = 0;
	struct ms_state *s;
	struct ms_err e;

	make_imap(dir, &a, "INBOX", 10);
	s = open_st(dir, &a, "INBOX", 0);
	add_uid(s, 11, 7);
	del_uid(s, 3);
	ms_state_sync(s, &e);
	ms_state_close(s);
	j = slurp(dir, "INBOX.journal", &jl);
	T_OK(j && !strncmp(j, "mailsync-journal 1 ", 19) &&
		 !strcmp(j + 36, "+u 11\n-u 3\n"),
	     "journal lines");
	snap = slurp(dir, "INBOX.state", &sl);

	snprintf(buf, sizeof buf, "%s+u 12", j ? j : "");
	spit(dir, "INBOX.journal", buf, strlen(buf));
	s = open_st(dir, &a, "INBOX", 1);
	T_EQ_INT(ms_state_status(s), MS_STATE_OK, "torn last line: OK");
	T_OK(ms_state_has_uid(s, 11) && !ms_state_has_uid(s, 3) &&
		 !ms_state_has_uid(s, 12),
	     "torn last line ignored, rest kept");
	T_EQ_INT(ms_state_count(s), 10, "torn last line: count");
	ms_state_close(s);

	snprintf(buf, sizeof buf, "%s+u 12x\n+u 13\n", j ? j : "");
	spit(dir, "INBOX.journal", buf, strlen(buf));
	T_EQ_INT(status_of(dir, &a, "INBOX"), MS_STATE_BAD,
		 "malformed journal line: BAD");
	snprintf(buf, sizeof buf, "%s+u 012\n", j ? j : "");
	spit(dir, "INBOX.journal", buf, strlen(buf));
	T_EQ_INT(status_of(dir, &a, "INBOX"), MS_STATE_BAD,
		 "journal number with leading zero: BAD");
	spit(dir, "INBOX.journal", "mailsync-jour", 13);
	T_EQ_INT(status_of(dir, &a, "INBOX"), MS_STATE_OK,
		 "journal torn inside its first line: OK (empty)");

	/* a journal left at open (crash): first sync writes a snapshot */
	spit(dir, "INBOX.journal", j ? j : "", jl);
	s = open_st(dir, &a, "INBOX", 0);
	add_uid(s, 20, 7);
	T_EQ_INT(ms_state_sync(s, &e), 0, "sync after a leftover journal");
	T_OK(!exists(dir, "INBOX.journal"), "... compacts instead of "
					    "appending to it");
	ms_state_close(s);
	s = open_st(dir, &a, "INBOX", 1);
	T_OK(ms_state_count(s) == 11 && ms_state_has_uid(s, 20) &&
		 ms_state_has_uid(s, 11),
	     "... nothing lost");
	ms_state_close(s);

	/* crash between snapshot rename and journal unlink: replay again */
	spit(dir, "INBOX.journal", j ? j : "", jl);
	s = open_st(dir, &a, "INBOX", 1);
	T_OK(ms_state_status(s) == MS_STATE_OK && ms_state_count(s) == 11,
	     "old journal replayed on the newer snapshot: idempotent");
	ms_state_close(s);

	unlink(strcat(strcpy(buf, dir), "/acct/INBOX.state"));
	T_EQ_INT(status_of(dir, &a, "INBOX"), MS_STATE_BAD,
		 "journal without its snapshot: BAD");
	free(j);
	free(snap);
}

static void test_corrupt_snapshot(void)
{
	struct ms_account a = mk_acct(MS_PROTO_IMAP);
	char *dir = fresh(), *snap;
	size_t len = 0, i;
	struct ms_state *s;

	make_imap(dir, &a, "INBOX", 1000);
	snap = slurp(dir, "INBOX.state", &len);
	T_OK(snap && len > 10, "snapshot read");
	if (!snap)
		return;
	spit(dir, "INBOX.state", snap, len - 1);
	s = open_st(dir, &a, "INBOX", 1);
	T_EQ_INT(ms_state_status(s), MS_STATE_BAD, "truncated by 1 byte: BAD");
	T_EQ_INT(ms_state_count(s), 0, "BAD state holds no records");
	ms_state_close(s);
	spit(dir, "INBOX.state", snap, len / 2);
	T_EQ_INT(status_of(dir, &a, "INBOX"), MS_STATE_BAD,
		 "truncated by half: BAD");
	spit(dir, "INBOX.state", "", 0);
	T_EQ_INT(status_of(dir, &a, "INBOX"), MS_STATE_BAD, "empty: BAD");
	for (i = 0; i < len; i++) {
		snap[i] ^= 0x01;
		spit(dir, "INBOX.state", snap, len);
		snap[i] ^= 0x01;
		if (status_of(dir, &a, "INBOX") != MS_STATE_BAD)
			break;
	}
	T_EQ_INT(i, len, "every single flipped bit: BAD");
	spit(dir, "INBOX.state", snap, len);
	T_EQ_INT(status_of(dir, &a, "INBOX"), MS_STATE_OK, "restored: OK");
	free(snap);
}

static void test_foreign(void)
{
	struct ms_account a = mk_acct(MS_PROTO_IMAP), b;
	char *dir = fresh(), *snap, path[512];
	size_t len = 0;

	make_imap(dir, &a, "INBOX", 5);
	b = a;
	b.host = "IMAP.Example.ORG";
	T_EQ_INT(status_of(dir, &b, "INBOX"), MS_STATE_OK,
		 "host differs only in case: OK");
	b.host = "imap.other.org";
	T_EQ_INT(status_of(dir, &b, "INBOX"), MS_STATE_BAD, "foreign host");
	b = a;
	b.user = "you@example.org";
	T_EQ_INT(status_of(dir, &b, "INBOX"), MS_STATE_BAD, "foreign user");
	b = a;
	b.proto = MS_PROTO_POP3;
	T_EQ_INT(status_of(dir, &b, "INBOX"), MS_STATE_BAD, "foreign proto");
	snap = slurp(dir, "INBOX.state", &len);
	spit(dir, "Sent.state", snap, len);
	T_EQ_INT(status_of(dir, &a, "Sent"), MS_STATE_BAD,
		 "foreign folder (file copied)");
	snprintf(path, sizeof path, "%s/other", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof path, "%s/other/INBOX.state", dir);
	{
		int fd = open(path, O_WRONLY | O_CREAT, 0600);

		if (write(fd, snap, len) != (ssize_t)len)
			printf("# short write\n");
		close(fd);
	}
	b = a;
	b.name = "other";
	T_EQ_INT(status_of(dir, &b, "INBOX"), MS_STATE_BAD,
		 "foreign account (directory copied)");
	free(snap);
}

static void test_foreign_journal(void)
{
	struct ms_account a = mk_acct(MS_PROTO_IMAP);
	char *dir = fresh(), *j;
	struct ms_state *s;
	struct ms_err e;
	size_t len = 0;

	make_imap(dir, &a, "INBOX", 5);
	make_imap(dir, &a, "Sent", 5);
	s = open_st(dir, &a, "INBOX", 0);
	add_uid(s, 6, 7);
	ms_state_sync(s, &e);
	ms_state_close(s);
	j = slurp(dir, "INBOX.journal", &len);
	spit(dir, "Sent.journal", j, len);
	T_EQ_INT(status_of(dir, &a, "Sent"), MS_STATE_BAD,
		 "journal of another folder: BAD");
	free(j);
}

static void test_reset_del(void)
{
	struct ms_account a = mk_acct(MS_PROTO_IMAP);
	char *dir = fresh(), *snap;
	struct ms_state *s;
	struct ms_err e;
	size_t len = 0;

	make_imap(dir, &a, "INBOX", 1000);
	s = open_st(dir, &a, "INBOX", 0);
	T_EQ_INT(del_uid(s, 500), 0, "del 500");
	del_uid(s, 1000);
	del_uid(s, 1);
	del_uid(s, 5000);
	T_OK(!ms_state_has_uid(s, 500) && ms_state_has_uid(s, 499) &&
		 ms_state_has_uid(s, 501) && ms_state_count(s) == 997,
	     "del: middle, ends, absent");
	ms_state_sync(s, &e);
	ms_state_close(s);
	s = open_st(dir, &a, "INBOX", 0);
	T_OK(ms_state_count(s) == 997 && !ms_state_has_uid(s, 500),
	     "del: journaled");
	ms_state_compact(s, 5, &e);
	ms_state_close(s);
	snap = slurp(dir, "INBOX.state", &len);
	T_OK(snap && strstr(snap, "\nu 2-499,501-999\n"), "del: snapshot");
	free(snap);

	s = open_st(dir, &a, "INBOX", 0);
	T_EQ_INT(add_uid(s, 1, 8), MS_EINTERNAL,
		 "add with another UIDVALIDITY is refused");
	ms_state_reset(s, 8);
	T_OK(ms_state_count(s) == 0 && ms_state_uidvalidity(s) == 8 &&
		 ms_state_modseq(s) == 0,
	     "reset: empty, new uidvalidity");
	add_uid(s, 3, 8);
	ms_state_sync(s, &e);
	T_OK(!exists(dir, "INBOX.journal"), "sync after a reset writes a "
					    "snapshot, not a journal");
	ms_state_close(s);
	s = open_st(dir, &a, "INBOX", 0);
	T_OK(ms_state_count(s) == 1 && ms_state_has_uid(s, 3) &&
		 ms_state_uidvalidity(s) == 8,
	     "reset: durable");
	ms_state_set_header(s, 9, 100, 5);
	T_OK(ms_state_count(s) == 0 && ms_state_uidvalidity(s) == 9 &&
		 ms_state_modseq(s) == 5,
	     "set_header with a new uidvalidity "
	     "forgets the old records");
	ms_state_sync(s, &e);
	ms_state_close(s);
	s = open_st(dir, &a, "INBOX", 1);
	T_OK(ms_state_count(s) == 0 && ms_state_uidvalidity(s) == 9 &&
		 ms_state_modseq(s) == 5,
	     "set_header: journaled");
	ms_state_close(s);
}

static int count_cb(void *ctx, const struct ms_msg *m, time_t first_seen)
{
	uint64_t *sum = ctx;

	sum[0]++;
	sum[1] += m->uid + (uint64_t)first_seen + m->size;
	return 0;
}

static void test_big_range(void)
{
	struct ms_account a = mk_acct(MS_PROTO_IMAP);
	char *dir = fresh(), *snap;
	uint64_t sum[2] = {0, 0};
	struct ms_state *s;
	size_t len = 0;

	make_imap(dir, &a, "INBOX", 100000);
	snap = slurp(dir, "INBOX.state", &len);
	T_OK(snap && len < 1024, "100,000 UIDs: snapshot under 1 KB");
	free(snap);
	s = open_st(dir, &a, "INBOX", 1);
	T_EQ_INT(ms_state_count(s), 100000, "100,000 UIDs: count");
	ms_state_foreach(s, count_cb, sum);
	T_OK(sum[0] == 100000 && sum[1] == 5000050000ULL,
	     "foreach visits each UID once");
	ms_state_close(s);

	dir = fresh();
	s = open_st(dir, &a, "INBOX", 0);
	ms_state_reset(s, 1);
	add_uid(s, 4294967295u, 1);
	add_uid(s, 4294967294u, 1);
	sum[0] = sum[1] = 0;
	ms_state_foreach(s, count_cb, sum);
	T_OK(sum[0] == 2, "foreach up to UID 4294967295 ends");
	for (uint32_t u = 1; u <= 2000; u += 2)
		add_uid(s, u, 1);
	for (uint32_t u = 2; u <= 2000; u += 2)
		add_uid(s, u, 1);
	ms_state_compact(s, 1, &(struct ms_err){0});
	ms_state_close(s);
	snap = slurp(dir, "INBOX.state", &len);
	T_OK(snap && strstr(snap, "\nu 1-2000,4294967294-4294967295\n"),
	     "odd then even UIDs merge into one range");
	free(snap);
}

/* Random adds, dels and lookups against a plain bitmap (the oracle). */
static void test_random_ops(void)
{
	struct ms_account a = mk_acct(MS_PROTO_IMAP);
	static unsigned char want[2002];
	struct ms_state *s = open_st(fresh(), &a, "INBOX", 1);
	uint64_t sum[2];
	size_t n = 0;
	int ok = 1;

	srand(12345);
	for (int i = 0; i < 200000 && ok; i++) {
		uint32_t u = 1 + (uint32_t)(rand() % 2000);
		int op = rand() % 10;

		if (op < 6) {
			ok &= add_uid(s, u, 0) == 0;
			n += !want[u];
			want[u] = 1;
		} else if (op < 8) {
			ok &= del_uid(s, u) == 0;
			n -= want[u];
			want[u] = 0;
		} else if (op == 8) {
			ok &= ms_state_has_uid(s, u) == want[u];
		} else if (rand() % 100 == 0) {
			ok &= ms_state_count(s) == n;
		}
	}
	T_OK(ok, "200,000 random add/del/has against a bitmap");
	for (uint32_t u = 1; u <= 2001; u++)
		ok &= ms_state_has_uid(s, u) == want[u];
	sum[0] = sum[1] = 0;
	ms_state_foreach(s, count_cb, sum);
	T_OK(ok && ms_state_count(s) == n && sum[0] == n,
	     "random ops: final set and count");
	ms_state_close(s);
}

static void test_unordered_adds(void)
{
	struct ms_account a = mk_acct(MS_PROTO_IMAP);
	static const uint32_t uids[] = {50,  10, 11, 9,	 50, 30, 12,
					100, 31, 1,  99, 13, 29, 8};
	char *dir = fresh(), *snap;
	struct ms_state *s;
	struct ms_err e;
	size_t len = 0;

	s = open_st(dir, &a, "INBOX", 0);
	ms_state_reset(s, 1);
	for (size_t i = 0; i < sizeof uids / sizeof uids[0]; i++)
		add_uid(s, uids[i], 1);
	T_EQ_INT(ms_state_count(s), 13, "unordered adds with a duplicate");
	add_uid(s, 7, 1);
	del_uid(s, 11);
	ms_state_compact(s, 1, &e);
	ms_state_close(s);
	snap = slurp(dir, "INBOX.state", &len);
	T_OK(snap && strstr(snap, "\nu 1,7-10,12-13,29-31,50,99-100\n"),
	     "unordered adds: merged ranges in the snapshot");
	free(snap);
}

static int add_uidl(struct ms_state *s, const char *u, uint64_t size,
		    time_t now)
{
	struct ms_msg m;
	struct ms_err e;

	memset(&m, 0, sizeof m);
	snprintf(m.uidl, sizeof m.uidl, "%s", u);
	m.size = size;
	return ms_state_add(s, &m, now, &e);
}

static void test_pop3(void)
{
	struct ms_account a = mk_acct(MS_PROTO_POP3);
	char *dir = fresh(), uidl[MS_UIDL_MAX + 1];
	uint64_t size = 0, sum[2] = {0, 0};
	struct ms_state *s;
	time_t first = 0;
	struct ms_err e;
	struct ms_msg m;
	int ok = 1;

	s = open_st(dir, &a, "INBOX", 0);
	T_EQ_INT(add_uidl(s, "abc", 123, 1000), 0, "pop3 add");
	add_uidl(s, "!~x", 5, 2000);
	T_EQ_INT(add_uidl(s, "has space", 1, 1), MS_EPROTO,
		 "UIDL with a space refused");
	memset(&m, 0, sizeof m);
	memset(m.uidl, 'a', sizeof m.uidl); /* 71 bytes, no NUL */
	T_EQ_INT(ms_state_add(s, &m, 1, &e), MS_EPROTO, "71-byte UIDL refused");
	for (int i = 0; i < 5000; i++) {
		snprintf(uidl, sizeof uidl, "u%05d", i);
		ok &= add_uidl(s, uidl, (uint64_t)i, 3000 + i) == 0;
	}
	T_OK(ok, "5000 more UIDLs");
	ms_state_sync(s, &e);
	add_uidl(s, "abc", 124, 9999);
	ms_state_sync(s, &e);
	ms_state_close(s);

	s = open_st(dir, &a, "INBOX", 0);
	T_EQ_INT(ms_state_status(s), MS_STATE_OK, "pop3 reopen OK");
	T_EQ_INT(ms_state_count(s), 5002, "pop3 count");
	T_OK(ms_state_has_uidl(s, "abc", &size, &first) && size == 124 &&
		 first == 1000,
	     "re-added UIDL: new size, first_seen kept");
	T_OK(ms_state_has_uidl(s, "u04999", &size, &first) && size == 4999 &&
		 first == 7999,
	     "has_uidl fills size and first_seen");
	T_OK(!ms_state_has_uidl(s, "u05000", NULL, NULL) &&
		 ms_state_has_uidl(s, "!~x", NULL, NULL),
	     "has_uidl");
	T_OK(!ms_state_has_uid(s, 1), "has_uid on POP3: 0");
	memset(&m, 0, sizeof m);
	ok = 1;
	for (int i = 0; i < 5000; i += 2) {
		snprintf(m.uidl, sizeof m.uidl, "u%05d", i);
		ok &= ms_state_del(s, &m, &e) == 0;
	}
	T_OK(ok && ms_state_count(s) == 2502, "pop3 del");
	ms_state_compact(s, 77, &e);
	ms_state_close(s);

	s = open_st(dir, &a, "INBOX", 1);
	ok = ms_state_count(s) == 2502;
	for (int i = 0; i < 5000; i++) {
		snprintf(uidl, sizeof uidl, "u%05d", i);
		ok &= ms_state_has_uidl(s, uidl, &size, &first) == (i & 1) &&
		      (!(i & 1) || (size == (uint64_t)i && first == 3000 + i));
	}
	T_OK(ok, "pop3 after compact: exactly the odd ones, with metadata");
	ms_state_foreach(s, count_cb, sum);
	T_EQ_INT(sum[0], 2502, "pop3 foreach count");
	ms_state_close(s);
}

/* Random adds, dels and lookups of POP3 UIDLs against plain arrays (the
 * oracle): the hash index, its backward-shift deletion and the record
 * moved into each hole; then the snapshot written and read back. */
static void test_pop3_random(void)
{
	struct ms_account a = mk_acct(MS_PROTO_POP3);
	enum { N = 3000 };
	static uint64_t want_size[N];
	static time_t want_first[N];
	static unsigned char have[N];
	char *dir = fresh(), uidl[16];
	struct ms_state *s = open_st(dir, &a, "INBOX", 0);
	uint64_t size, sum[2] = {0, 0}, wsum = 0;
	struct ms_msg m;
	struct ms_err e;
	time_t first;
	size_t n = 0;
	int ok = 1;

	srand(777);
	for (int i = 0; i < 200000 && ok; i++) {
		int k = rand() % N, op = rand() % 10;

		snprintf(uidl, sizeof uidl, "r%04d", k);
		if (op < 5) {
			uint64_t sz = (uint64_t)(rand() % 100000);

			ok &= add_uidl(s, uidl, sz, 1000 + i) == 0;
			if (!have[k])
				want_first[k] = 1000 + i;
			n += !have[k];
			have[k] = 1;
			want_size[k] = sz;
		} else if (op < 8) {
			memset(&m, 0, sizeof m);
			snprintf(m.uidl, sizeof m.uidl, "%s", uidl);
			ok &= ms_state_del(s, &m, &e) == 0;
			n -= have[k];
			have[k] = 0;
		} else {
			int h = ms_state_has_uidl(s, uidl, &size, &first);

			ok &= h == have[k] && (!h || (size == want_size[k] &&
						      first == want_first[k]));
		}
		if (i % 1000 == 0)
			ok &= ms_state_count(s) == n;
	}
	T_OK(ok, "pop3: 200,000 random add/del/has against the oracle");
	ms_state_compact(s, 5, &e);
	ms_state_close(s);
	s = open_st(dir, &a, "INBOX", 1);
	ok = ms_state_status(s) == MS_STATE_OK && ms_state_count(s) == n;
	for (int k = 0; k < N; k++) {
		snprintf(uidl, sizeof uidl, "r%04d", k);
		ok &= ms_state_has_uidl(s, uidl, &size, &first) == have[k] &&
		      (!have[k] || (size == want_size[k] &&
				    first == want_first[k]));
		if (have[k])
			wsum += want_size[k] + (uint64_t)want_first[k];
	}
	ms_state_foreach(s, count_cb, sum);
	T_OK(ok && sum[0] == n && sum[1] == wsum,
	     "pop3 random ops: the snapshot read back holds the same records");
	ms_state_close(s);
}

static long file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* Held by a process that is not mailsync and wrote no pid (flock(1)):
 * the holder is still named, from /proc/locks. */
static void test_lock_other(const char *dir, const char *path)
{
	int p[2], fd = -1, rc;
	struct ms_err e;
	char want[64], c;
	pid_t child;

	if (pipe(p) < 0)
		return;
	child = fork();
	if (child == 0) {
		int lfd = open(path, O_RDWR);

		if (lfd >= 0 && flock(lfd, LOCK_EX) == 0 &&
		    write(p[1], "x", 1) == 1)
			sleep(10);
		_exit(0);
	}
	close(p[1]);
	if (read(p[0], &c, 1) != 1)
		printf("# child did not lock\n");
	ms_err_clear(&e);
	rc = ms_state_lock(dir, "acct", &fd, &e);
	snprintf(want, sizeof want, "locked by pid %ld",
		 (long)child);
	T_EQ_INT(rc, MS_ETEMP, "held by another program: MS_ETEMP");
	T_EQ_STR(e.msg, want, "... naming that program's pid");
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	close(p[0]);
	T_EQ_INT(ms_state_lock(dir, "acct", &fd, &e), 0,
		 "holder killed: the kernel released the lock");
	ms_state_unlock(fd);
}

static void test_lock(void)
{
	char *dir = fresh(), want[64], path[512];
	int fd1 = -1, fd2 = -1, rc;
	struct ms_err e;

	ms_err_clear(&e);
	T_EQ_INT(ms_state_lock(dir, "acct", &fd1, &e), 0, "lock");
	rc = ms_state_lock(dir, "acct", &fd2, &e);
	T_EQ_INT(rc, MS_ETEMP, "second lock: MS_ETEMP");
	T_EQ_INT(fd2, -1, "second lock: no fd");
	T_EQ_INT(e.scope, MS_SCOPE_ACCOUNT, "second lock: account scope");
	snprintf(want, sizeof want, "locked by pid %ld",
		 (long)getpid());
	T_EQ_STR(e.msg, want, "second lock: message names our pid");
	T_EQ_INT(ms_state_lock(dir, "other", &fd2, &e), 0,
		 "another account locks independently");
	ms_state_unlock(fd2);
	ms_state_unlock(fd1);
	T_EQ_INT(ms_state_lock(dir, "acct", &fd1, &e), 0,
		 "lock again after unlock");
	ms_state_unlock(fd1);
	T_EQ_INT(ms_state_lock(dir, "..", &fd1, &e), MS_ECONFIG,
		 "account \"..\" refused");
	snprintf(path, sizeof path, "%s/acct/lock", dir);
	T_EQ_INT(mode_of(path), 0600, "lock file 0600");
	T_EQ_INT(file_size(path), 0, "unlock clears the pid");
	test_lock_other(dir, path);
}

/* A journal write that fails half way (file size limit, like ENOSPC):
 * the error is reported, the journal abandoned, and the next sync writes
 * a whole snapshot with everything. */
static void test_write_failure(void)
{
	struct ms_account a = mk_acct(MS_PROTO_IMAP);
	char *dir = fresh(), *j;
	struct rlimit old, lim;
	struct ms_state *s;
	struct ms_err e;
	size_t len = 0;
	int rc;

	make_imap(dir, &a, "INBOX", 10);
	s = open_st(dir, &a, "INBOX", 0);
	add_uid(s, 11, 7);
	ms_state_sync(s, &e);
	for (uint32_t u = 20; u < 400; u += 2)
		add_uid(s, u, 7);
	signal(SIGXFSZ, SIG_IGN);
	getrlimit(RLIMIT_FSIZE, &old);
	lim = old;
	lim.rlim_cur = 100;
	setrlimit(RLIMIT_FSIZE, &lim);
	ms_err_clear(&e);
	rc = ms_state_sync(s, &e);
	setrlimit(RLIMIT_FSIZE, &old);
	T_EQ_INT(rc, MS_EIO, "journal write fails: MS_EIO");
	/* the account and folder are the caller's prefix, not the message's */
	printf("# %s\n", e.msg);
	T_OK(strstr(e.msg, "/acct/INBOX.journal") != NULL &&
		 strncmp(e.msg, "account", 7) != 0 &&
		 strstr(e.msg, "INBOX.journal") != NULL,
	     "... message names the file (account and folder only in "
	     "its path)");
	j = slurp(dir, "INBOX.journal", &len);
	T_OK(j && len == 100 && j[99] != '\n', "... leaving a torn journal");
	free(j);
	T_EQ_INT(status_of(dir, &a, "INBOX"), MS_STATE_OK,
		 "a crash now: OK, torn tail ignored");
	add_uid(s, 500, 7);
	T_EQ_INT(ms_state_sync(s, &e), 0, "next sync succeeds");
	T_OK(!exists(dir, "INBOX.journal"), "... by writing a snapshot");
	ms_state_close(s);
	s = open_st(dir, &a, "INBOX", 1);
	T_OK(ms_state_count(s) == 10 + 1 + 190 + 1 &&
		 ms_state_has_uid(s, 398) && ms_state_has_uid(s, 500),
	     "... with every record");
	ms_state_close(s);
}

static void test_long_name(void)
{
	struct ms_account a = mk_acct(MS_PROTO_IMAP);
	char *name = malloc(5000), *dir;
	struct ms_state *s = NULL;
	struct ms_err e;

	memset(name, 'x', 4999);
	name[4999] = '\0';
	for (int i = 100; i < 4999; i += 100)
		name[i] = '/';
	T_EQ_INT(ms_state_open(&s, fresh(), &a, name, 0, &e), MS_EPROTO,
		 "folder name over 4096 bytes refused");
	T_OK(s == NULL, "... no handle");
	name[4000] = '\0';
	dir = fresh();
	T_EQ_INT(ms_state_open(&s, dir, &a, name, 0, &e), 0,
		 "4000-byte folder name");
	add_uid(s, 1, 0);
	T_OK(ms_state_sync(s, &e) == 0 && ms_state_compact(s, 1, &e) == 0,
	     "... state written");
	ms_state_close(s);
	s = open_st(dir, &a, name, 1);
	T_OK(s && ms_state_status(s) == MS_STATE_OK && ms_state_count(s) == 1,
	     "... and read back");
	ms_state_close(s);
	free(name);
}

static void test_modes(void)
{
	struct ms_account a = mk_acct(MS_PROTO_IMAP);
	char *dir = fresh(), path[512];
	struct ms_state *s;
	struct ms_err e;
	mode_t old = umask(0);

	s = open_st(dir, &a, "INBOX", 0);
	add_uid(s, 1, 0);
	ms_state_sync(s, &e);
	add_uid(s, 2, 0);
	ms_state_sync(s, &e);
	T_EQ_INT(mode_of(dir), 0700, "umask 0: state dir 0700");
	snprintf(path, sizeof path, "%s/acct", dir);
	T_EQ_INT(mode_of(path), 0700, "umask 0: account dir 0700");
	snprintf(path, sizeof path, "%s/acct/INBOX.state", dir);
	T_EQ_INT(mode_of(path), 0600, "umask 0: snapshot 0600");
	snprintf(path, sizeof path, "%s/acct/INBOX.journal", dir);
	T_EQ_INT(mode_of(path), 0600, "umask 0: journal 0600");
	ms_state_close(s);
	umask(old);
}

static void test_dry_run(void)
{
	struct ms_account a = mk_acct(MS_PROTO_IMAP);
	char *dir = fresh(), *before, *after;
	size_t bl = 0, al = 0;
	struct ms_state *s;
	struct ms_err e;

	s = open_st(dir, &a, "INBOX", 1);
	T_EQ_INT(ms_state_status(s), MS_STATE_NEW, "dry-run: NEW");
	add_uid(s, 1, 0);
	T_OK(ms_state_has_uid(s, 1), "dry-run: in memory");
	T_OK(ms_state_sync(s, &e) == 0 && ms_state_compact(s, 1, &e) == 0,
	     "dry-run: sync and compact succeed");
	ms_state_close(s);
	T_OK(access(dir, F_OK) != 0 && errno == ENOENT,
	     "dry-run: nothing created");

	make_imap(dir, &a, "INBOX", 3);
	before = slurp(dir, "INBOX.state", &bl);
	s = open_st(dir, &a, "INBOX", 1);
	T_EQ_INT(ms_state_count(s), 3, "dry-run reads existing state");
	add_uid(s, 4, 7);
	ms_state_reset(s, 9);
	ms_state_sync(s, &e);
	ms_state_compact(s, 2, &e);
	ms_state_close(s);
	after = slurp(dir, "INBOX.state", &al);
	T_OK(before && after && bl == al && !memcmp(before, after, bl) &&
		 !exists(dir, "INBOX.journal"),
	     "dry-run: files untouched");
	free(before);
	free(after);
}

struct seen {
	char names[4][64];
	size_t counts[4];
	int n;
};

static int folder_cb(void *ctx, const char *folder, const struct ms_state *s)
{
	struct seen *sn = ctx;

	if (sn->n < 4) {
		snprintf(sn->names[sn->n], sizeof sn->names[0], "%s", folder);
		sn->counts[sn->n++] =
		    ms_state_count(s) +
		    (ms_state_status(s) == MS_STATE_BAD ? 1000 : 0);
	}
	return 0;
}

static void test_folders(void)
{
	struct ms_account a = mk_acct(MS_PROTO_IMAP);
	char *dir = fresh();
	struct seen sn;
	struct ms_err e;

	memset(&sn, 0, sizeof sn);
	T_EQ_INT(ms_state_folders(dir, "acct", folder_cb, &sn, &e), 0,
		 "folders of an account without state");
	T_EQ_INT(sn.n, 0, "... none");
	make_imap(dir, &a, "INBOX", 3);
	make_imap(dir, &a, "Lists/a b", 5);
	spit(dir, "Junk.state", "garbage\n", 8);
	T_EQ_INT(ms_state_folders(dir, "acct", folder_cb, &sn, &e), 0,
		 "folders");
	T_EQ_INT(sn.n, 3, "folders: three state files");
	T_OK(!strcmp(sn.names[0], "INBOX") && sn.counts[0] == 3,
	     "folders: INBOX, 3");
	T_OK(!strcmp(sn.names[1], "Junk") && sn.counts[1] == 1000,
	     "folders: a damaged one is listed BAD under its file name");
	T_OK(!strcmp(sn.names[2], "Lists/a b") && sn.counts[2] == 5,
	     "folders: name decoded from the header");
}

/* Snapshot text + a correct trailer, parsed from memory. */
static int parse_status(const char *body, const char *jnl)
{
	struct ms_account a = mk_acct(MS_PROTO_IMAP);
	char buf[2048];
	struct ms_state *s;
	struct ms_err e;
	int st;

	snprintf(buf, sizeof buf, "%s", body);
	if (strstr(body, "\ncount ")) {
		unsigned long long c =
		    strtoull(strstr(body, "\ncount ") + 7, NULL, 10);

		snprintf(buf + strlen(buf), sizeof buf - strlen(buf),
			 "end %llu %016" PRIx64 "\n", c,
			 fnv(body, strlen(body)));
	}
	if (ms_state_parse_mem(&s, strstr(body, "proto pop3") ? NULL : &a,
			       "INBOX", buf, strlen(buf), jnl,
			       jnl ? strlen(jnl) : 0, &e) < 0)
		return -1;
	st = ms_state_status(s);
	ms_state_close(s);
	return st;
}

#define HDR(proto, count)                                                      \
	"mailsync-state 1\nproto " proto "\naccount acct\n"                    \
	"host imap.example.org\nuser me@example.org\nfolder INBOX\n"           \
	"uidvalidity 7\nuidnext 0\nmodseq 0\nlastrun 0\ncount " count "\n"

static const struct {
	const char *body, *name;
	int want;
} parse_cases[] = {
    {HDR("imap", "3") "u 1-3\n", "well-formed", MS_STATE_OK},
    {HDR("imap", "0"), "no records", MS_STATE_OK},
    {HDR("imap", "4") "u 1-3\n", "count mismatch", MS_STATE_BAD},
    {HDR("imap", "3") "u 3-1\n", "reversed range", MS_STATE_BAD},
    {HDR("imap", "2") "u 0-1\n", "UID 0", MS_STATE_BAD},
    {HDR("imap", "1") "u 4294967296\n", "UID overflow", MS_STATE_BAD},
    {HDR("imap", "1") "u 4294967295\n", "UID max", MS_STATE_OK},
    {HDR("imap", "3") "u 5,1-2\n", "ranges out of order", MS_STATE_BAD},
    {HDR("imap", "3") "u 1-2,2\n", "overlapping ranges", MS_STATE_BAD},
    {HDR("imap", "3") "u 1-2\nu 3\n", "adjacent ranges on two lines",
     MS_STATE_OK},
    {HDR("imap", "3") "u 1-2,\n", "trailing comma", MS_STATE_BAD},
    {HDR("imap", "3") "u  1-3\n", "double space", MS_STATE_BAD},
    {HDR("imap", "3") "u 1-3\nz\n", "unknown record", MS_STATE_BAD},
    {HDR("imap", "1") "p a 1 1\n", "UIDL in an IMAP state", MS_STATE_BAD},
    {HDR("pop3", "2") "p a 1 1\np b 2 2\n", "pop3 records", MS_STATE_OK},
    {HDR("pop3", "2") "p a 1 1\np a 2 2\n", "duplicate UIDL", MS_STATE_BAD},
    {HDR("pop3", "1") "p a 1\n", "UIDL record short", MS_STATE_BAD},
    {HDR("pop3", "1") "p a 1 9223372036854775808\n",
     "first_seen "
     "overflow",
     MS_STATE_BAD},
    {HDR("pop3", "1") "p a 18446744073709551616 1\n", "size overflow",
     MS_STATE_BAD},
    {HDR("pop3", "1") "u 1\n", "UID in a POP3 state", MS_STATE_BAD},
    {"mailsync-state 2\n", "unknown version", MS_STATE_BAD},
    {"mailsync-state 1\nproto imap\n", "header cut", MS_STATE_BAD},
    {"mailsync-state 1\nproto imap\naccount acct\nuser x\n",
     "header out of order", MS_STATE_BAD},
    {HDR("imap", "01") "u 1\n", "count with a leading zero", MS_STATE_BAD},
};

static void test_parse_table(void)
{
	static const char jh[] = "mailsync-journal 1 0000000000000000\n";
	char big[20000];

	for (size_t i = 0; i < sizeof parse_cases / sizeof parse_cases[0]; i++)
		T_EQ_INT(parse_status(parse_cases[i].body, NULL),
			 parse_cases[i].want, parse_cases[i].name);
	/* the journal id is checked against the account: all-zero fails */
	T_EQ_INT(parse_status(HDR("imap", "0"), jh), MS_STATE_BAD,
		 "journal id mismatch");
	T_EQ_INT(parse_status(HDR("pop3", "0"),
			      "mailsync-journal 1 000000000000000g\n"),
		 MS_STATE_BAD, "journal id not hex");
	memset(big, 'u', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	T_EQ_INT(parse_status(big, NULL), MS_STATE_BAD, "20 KB line");
	T_EQ_INT(parse_status("", NULL), MS_STATE_BAD, "empty snapshot");
}

static void sink(int level, const char *line, void *ctx)
{
	(void)level;
	(void)ctx;
	printf("# log: %s\n", line);
}

/* STATE_DIR/ACCOUNT/last-run (F39 b): absent (state from before it, or no
 * state at all) is "unknown", a damaged one too; set replaces it. */
static void test_last_run(void)
{
	char *dir = fresh(), *p;
	struct ms_err e;
	size_t len = 0;
	time_t t = 5;
	int fd = -1;

	ms_err_clear(&e);
	T_EQ_INT(ms_state_account_last_run(dir, "acct", &t, &e), 0,
		 "last run, no state dir: OK");
	T_EQ_INT((int)t, 0, "... unknown");
	T_EQ_INT(ms_state_lock(dir, "acct", &fd, &e), 0, "lock creates the dir");
	ms_state_unlock(fd);
	t = 5;
	T_EQ_INT(ms_state_account_last_run(dir, "acct", &t, &e), 0,
		 "last run, old state without the file: OK");
	T_EQ_INT((int)t, 0, "... unknown");
	T_EQ_INT(ms_state_account_set_last_run(dir, "acct", 1700000000, &e), 0,
		 "set last run");
	p = slurp(dir, "last-run", &len);
	T_EQ_STR(p ? p : "", "mailsync-last-run 1\n1700000000\n",
		 "last-run file bytes");
	free(p);
	T_EQ_INT(ms_state_account_last_run(dir, "acct", &t, &e), 0, "read");
	T_EQ_INT((int)(t == 1700000000), 1, "... the time set");
	T_EQ_INT(ms_state_account_set_last_run(dir, "acct", 1800000000, &e), 0,
		 "set again (replace)");
	ms_state_account_last_run(dir, "acct", &t, &e);
	T_EQ_INT((int)(t == 1800000000), 1, "... the new time");
	spit(dir, "last-run", "mailsync-last-run 1\n12x\n", 24);
	T_EQ_INT(ms_state_account_last_run(dir, "acct", &t, &e), 0,
		 "damaged file: OK");
	T_EQ_INT((int)t, 0, "... unknown");
	spit(dir, "last-run", "mailsync-last-run 9\n12\n", 23);
	ms_state_account_last_run(dir, "acct", &t, &e);
	T_EQ_INT((int)t, 0, "unknown version: unknown");
}

int main(void)
{
	ms_log_setup(sink, NULL, MS_LOG_INFO);
	if (!mkdtemp(top)) {
		perror("mkdtemp");
		return 1;
	}
	test_new_and_roundtrip();
	test_exact_bytes();
	test_journal_torn_and_bad();
	test_corrupt_snapshot();
	test_foreign();
	test_foreign_journal();
	test_reset_del();
	test_big_range();
	test_random_ops();
	test_unordered_adds();
	test_pop3();
	test_pop3_random();
	test_lock();
	test_write_failure();
	test_long_name();
	test_modes();
	test_dry_run();
	test_folders();
	test_parse_table();
	test_last_run();
	if (!getenv("KEEP_TMP")) {
		char cmd[300];

		snprintf(cmd, sizeof cmd, "rm -rf '%s'", top);
		if (system(cmd) != 0)
			printf("# cleanup failed\n");
	}
	return t_done();
}
