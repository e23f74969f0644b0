/*
 * test_pop3.c: the POP3 engine against a scripted peer over a socketpair.
 *
 * The peer (a forked child) checks every byte the client sends against
 * the script, exactly and in order: "expect" must arrive in full before
 * the reply is written, so a pipelined script proves the commands were
 * sent before any response; "quiet" proves nothing more was sent before
 * the reply (no pipelining).  Replies can be dribbled one byte per write.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "net.h"
#include "pop3_parse.h"
#include "source.h"
#include "t.h"

#define END { NULL, NULL, 0, 0, 0 }

struct step {
	const char *expect; /* exact bytes the client must send */
	const char *reply;  /* then written (NULL: none) */
	int bytewise;       /* reply one byte per write */
	int quiet;          /* nothing more may arrive before the reply */
	int hangup;         /* close the connection after the reply */
};

static int peer_read(int fd, char *p, size_t want, int ms)
{
	size_t got = 0;
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	ssize_t r;

	while (got < want) {
		if (poll(&pf, 1, ms) <= 0)
			return (int)got;
		r = read(fd, p + got, want - got);
		if (r <= 0)
			return (int)got;
		got += (size_t)r;
	}
	return (int)got;
}

static void peer_write(int fd, const char *s, int bytewise)
{
	size_t n = strlen(s), i;

	/* a client that gave up early may close: checked by the client's
	 * own assertions, not here */
	if (!bytewise) {
		(void)!write(fd, s, n);
		return;
	}
	for (i = 0; i < n; i++) {
		if (write(fd, s + i, 1) != 1)
			return;
		usleep(100);
	}
}

static int peer_run(int fd, const struct step *st)
{
	char buf[8192];
	int n;

	for (; st->expect || st->reply; st++) {
		if (st->expect) {
			size_t want = strlen(st->expect);

			n = peer_read(fd, buf, want, 2000);
			if ((size_t)n != want ||
			    memcmp(buf, st->expect, want)) {
				fprintf(stderr, "# peer: want \"%s\", got "
					"\"%.*s\"\n", st->expect, n, buf);
				return 1;
			}
			if (st->quiet && peer_read(fd, buf, 1, 150) > 0) {
				fprintf(stderr, "# peer: bytes before reply "
					"to \"%s\"\n", st->expect);
				return 1;
			}
		}
		if (st->reply)
			peer_write(fd, st->reply, st->bytewise);
		if (st->hangup)
			return 0;
	}
	/* Nothing more may be sent: wait for the client's close. */
	n = peer_read(fd, buf, sizeof buf, 3000);
	if (n > 0) {
		fprintf(stderr, "# peer: unexpected \"%.*s\"\n", n, buf);
		return 1;
	}
	return 0;
}

static pid_t peer_pid;

static struct ms_net *start_peer(const struct step *script)
{
	struct ms_net *n = NULL;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	peer_pid = fork();
	if (peer_pid == 0) {
		close(sv[0]);
		alarm(20);
		_exit(peer_run(sv[1], script));
	}
	close(sv[1]);
	if (ms_net_from_fd(&n, sv[0], 3, NULL) < 0)
		abort();
	return n;
}

static int peer_status(void)
{
	int st = 0;

	waitpid(peer_pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

/* Log capture. */
static char logbuf[16384];

static void log_sink(int level, const char *line, void *ctx)
{
	size_t n = strlen(logbuf);

	(void)ctx;
	snprintf(logbuf + n, sizeof logbuf - n, "%d %s\n", level, line);
}

/* Recording sink. */
struct rec {
	int begins, ends, aborts;
	uint32_t ended[16];
	struct ms_buf got[16];  /* bytes per begin */
	int fail_begin_uid;     /* begin fails (message scope) for this uid */
};

static int r_begin(void *ctx, const struct ms_msg *m, uint64_t len,
		   struct ms_err *e)
{
	struct rec *r = ctx;

	(void)len;
	if (m->uid == (uint32_t)r->fail_begin_uid) {
		ms_err_set(e, MS_EIO, "refused by test");
		e->scope = MS_SCOPE_MESSAGE;
		return MS_EIO;
	}
	ms_buf_init(&r->got[r->begins], 0);
	r->begins++;
	return 0;
}

static int r_data(void *ctx, const char *p, size_t n, struct ms_err *e)
{
	struct rec *r = ctx;

	return ms_buf_add(&r->got[r->begins - 1], p, n, e);
}

static int r_end(void *ctx, const struct ms_msg *m, struct ms_err *e)
{
	struct rec *r = ctx;

	(void)e;
	r->ended[r->ends++] = m->uid;
	return 0;
}

static void r_abort(void *ctx)
{
	((struct rec *)ctx)->aborts++;
}

static void rec_free(struct rec *r)
{
	int i;

	for (i = 0; i < r->begins; i++)
		ms_buf_free(&r->got[i]);
}

static const struct ms_fetch_sink sink = { r_begin, r_data, r_end, r_abort };

/* ids collector */
struct idl {
	int n;
	struct ms_msg m[16];
};

static int id_cb(void *ctx, const struct ms_msg *m, struct ms_err *e)
{
	struct idl *l = ctx;

	(void)e;
	if (l->n < 16)
		l->m[l->n] = *m;
	l->n++;
	return 0;
}

static struct ms_account tacct = { .name = "acct", .proto = MS_PROTO_POP3 };

static struct ms_msg msg(uint32_t n, const char *uidl, uint64_t size)
{
	struct ms_msg m = { .uid = n, .size = size, .has_meta = 1 };

	snprintf(m.uidl, sizeof m.uidl, "%s", uidl);
	return m;
}

/* ---- pure parsers ---------------------------------------------------- */

static void test_ml(void)
{
	static const struct {
		const char *in, *out, *name;
		size_t rest; /* bytes left for the next response */
	} t[] = {
		{ "a\r\n..\r\n...x\r\n.\r\nNEXT", "a\r\n.\r\n..x\r\n",
		  "stuffed dots unstuffed once", 4 },
		{ ".first\r\nb\r\n.\r\n", ".first\r\nb\r\n",
		  "unstuffed leading dot kept (Dovecot 2.3 first line)", 0 },
		{ "a\nb\n.\n+OK", "a\nb\n", "bare LF lines and terminator", 3 },
		{ ".\r\n", "", "empty reply", 0 },
		{ "x\r\n.\rz\r\n.\r\n", "x\r\n.\rz\r\n", "dot then lone CR", 0 },
		{ "no end\r\n", "no end\r\n", "unterminated", 0 },
		{ "a.\r\n. \r\n.\r\n", "a.\r\n. \r\n", "dot mid-line kept", 0 },
	};
	size_t i, j, used, on, olen;
	char out[64], o[8];
	struct ms_pop3_ml ml;
	char name[128];

	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		size_t n = strlen(t[i].in);

		ms_pop3_ml_init(&ml);
		used = ms_pop3_ml_feed(&ml, t[i].in, n, out, &on);
		snprintf(name, sizeof name, "ml whole: %s", t[i].name);
		T_EQ_MEM(out, on, t[i].out, strlen(t[i].out), name);
		snprintf(name, sizeof name, "ml whole consumed: %s",
			 t[i].name);
		T_EQ_INT(n - used, t[i].rest, name);
		/* one byte at a time */
		ms_pop3_ml_init(&ml);
		olen = 0;
		for (j = 0; j < n && !ms_pop3_ml_done(&ml); j++) {
			ms_pop3_ml_feed(&ml, t[i].in + j, 1, o, &on);
			memcpy(out + olen, o, on);
			olen += on;
		}
		snprintf(name, sizeof name, "ml bytewise: %s", t[i].name);
		T_OK(olen == strlen(t[i].out) &&
		     !memcmp(out, t[i].out, olen) && n - j == t[i].rest,
		     name);
	}
}

/* ---- differential: the memchr reader against the bytewise one -------- */

/* The multi-line reader before the memchr rewrite, kept as reference. */
enum { R_BOL = 0, R_MID, R_DOT, R_DOTCR, R_DONE };

static size_t ref_ml_feed(int *st, const char *in, size_t n, char *out,
			  size_t *outn)
{
	size_t i, o = 0;
	char c;

	for (i = 0; i < n && *st != R_DONE; i++) {
		c = in[i];
		switch (*st) {
		case R_BOL:
			if (c == '.') {
				*st = R_DOT;
				break;
			}
			out[o++] = c;
			*st = c == '\n' ? R_BOL : R_MID;
			break;
		case R_MID:
			out[o++] = c;
			if (c == '\n')
				*st = R_BOL;
			break;
		case R_DOT:
			if (c == '\r') {
				*st = R_DOTCR;
			} else if (c == '\n') {
				*st = R_DONE;
			} else if (c == '.') {
				out[o++] = c;
				*st = R_MID;
			} else {
				out[o++] = '.';
				out[o++] = c;
				*st = c == '\n' ? R_BOL : R_MID;
			}
			break;
		case R_DOTCR:
			if (c == '\n') {
				*st = R_DONE;
				break;
			}
			out[o++] = '.';
			out[o++] = '\r';
			out[o++] = c;
			*st = R_MID;
			break;
		}
	}
	*outn = o;
	return i;
}

/* A reply body: stuffed and unstuffed dots, CRLF, bare CR and LF, the
 * terminator anywhere (or nowhere), bytes of the next reply after it. */
static size_t gen_reply(char *p, size_t cap)
{
	static const char *const piece[] = {
		".", "..", "...", ".x", "..x", "\r\n", "\r", "\n", ".\r\n",
		".\n", ".\r", "x", "ab cd", " ", "From ", ">From ", "\r\r\n",
		"a.\r\n", "+OK 5\r\n",
	};
	return t_gen_pieces(p, cap, piece, sizeof piece / sizeof *piece);
}

#define DIFF_CASES 1500

/* Every input split at every pair of points into 3 feed calls (empty
 * calls included, so 1 and 2 calls are covered).  Each call's consumed
 * and produced counts, the bytes and the end state must match. */
static void test_ml_diff(void)
{
	char in[96], a[3 * 96 + 8], b[3 * 96 + 8];
	size_t n, i, j, c, s, na, nb, ua, ub, oa, ob, cut[4];
	long bad = 0, runs = 0, ends = 0;
	struct ms_pop3_ml ml;
	int rst;

	t_rng_state = 0x2545f491u;
	for (c = 0; c < DIFF_CASES; c++) {
		n = gen_reply(in, sizeof in);
		for (i = 0; i <= n; i++) {
			for (j = i; j <= n; j++) {
				int same = 1;

				cut[0] = 0, cut[1] = i, cut[2] = j, cut[3] = n;
				runs++;
				ms_pop3_ml_init(&ml);
				rst = R_BOL;
				na = nb = 0;
				for (s = 0; s < 3; s++) {
					ua = ms_pop3_ml_feed(&ml, in + cut[s],
						cut[s + 1] - cut[s], a + na, &oa);
					ub = ref_ml_feed(&rst, in + cut[s],
						cut[s + 1] - cut[s], b + nb, &ob);
					if (ua != ub || oa != ob)
						same = 0;
					na += oa;
					nb += ob;
				}
				if (ms_pop3_ml_done(&ml) != (rst == R_DONE) ||
				    na != nb || memcmp(a, b, na))
					same = 0;
				ends += rst == R_DONE;
				if (!same && !bad++)
					printf("# ml differs: case %zu split "
					       "%zu/%zu\n", c, i, j);
			}
		}
	}
	printf("# %ld split inputs compared, %ld terminated\n", runs, ends);
	T_OK(runs > 100000 && ends > runs / 4 && ends < runs,
	     "ml diff: over 100000 split inputs, with and without terminator");
	T_EQ_INT(bad, 0, "ml diff: memchr reader matches the bytewise one");
}

static void test_parsers(void)
{
	char u[MS_UIDL_MAX + 1], l200[260], line[300];
	const char *why;
	uint32_t num, c;
	uint64_t sz;

	T_EQ_INT(ms_pop3_parse_stat("+OK 2 320", 9, &c, &sz, &why), 0,
		 "STAT ok");
	T_OK(c == 2 && sz == 320, "STAT values");
	T_EQ_INT(ms_pop3_parse_stat("+OK 1000000 5", 13, &c, &sz, &why), 0,
		 "STAT 1000000 accepted");
	T_EQ_INT(ms_pop3_parse_stat("+OK 1000001 5", 13, &c, &sz, &why), -1,
		 "STAT 1000001 refused");
	T_EQ_INT(ms_pop3_parse_stat("+OK 4294967295 0", 16, &c, &sz, &why),
		 -1, "STAT 4294967295 refused");
	T_EQ_INT(ms_pop3_parse_stat("+OK", 3, &c, &sz, &why), -1,
		 "STAT without count");
	T_EQ_INT(ms_pop3_parse_stat("+OK 3", 5, &c, &sz, &why), -1,
		 "STAT without size");
	T_EQ_INT(ms_pop3_parse_uidl("1 abc", 5, &num, u, &why), 0, "UIDL ok");
	T_OK(num == 1 && !strcmp(u, "abc"), "UIDL values");
	memset(l200, 'x', 200);
	snprintf(line, sizeof line, "3 %.70s", l200);
	T_EQ_INT(ms_pop3_parse_uidl(line, strlen(line), &num, u, &why), 0,
		 "70-char UIDL ok");
	snprintf(line, sizeof line, "3 %.71s", l200);
	T_EQ_INT(ms_pop3_parse_uidl(line, strlen(line), &num, u, &why), -1,
		 "71-char UIDL refused");
	T_EQ_INT(ms_pop3_parse_uidl("1 a\x01z", 5, &num, u, &why), -1,
		 "control char in UIDL refused");
	T_EQ_INT(ms_pop3_parse_uidl("1 a z", 5, &num, u, &why), -1,
		 "space in UIDL refused");
	T_EQ_INT(ms_pop3_parse_uidl("0 abc", 5, &num, u, &why), -1,
		 "message number 0 refused");
	T_EQ_INT(ms_pop3_parse_uidl("4294967296 a", 12, &num, u, &why), -1,
		 "message number overflow refused");
	T_EQ_INT(ms_pop3_parse_list("2 1234", 6, &num, &sz, &why), 0,
		 "LIST ok");
	T_OK(num == 2 && sz == 1234, "LIST values");
	T_EQ_INT(ms_pop3_parse_list("2 12a", 5, &num, &sz, &why), -1,
		 "LIST non-numeric size refused");
	T_EQ_INT(ms_pop3_parse_list("2 12 extra", 10, &num, &sz, &why), 0,
		 "LIST extra info after size allowed");
}

/* ---- sessions over the scripted peer --------------------------------- */

#define M1 "Subject: a\r\n\r\nhello\r\n"
#define M2W ".leading\r\n..\r\n...x\r\nFrom me\r\n"
#define M2 "..leading\r\n...\r\n....x\r\nFrom me\r\n"

static void test_pipelined(void)
{
	static const struct step script[] = {
		{ "CAPA\r\n", "+OK\r\nTOP\r\nUIDL\r\nPIPELINING\r\n.\r\n",
		  0, 0, 0 },
		{ "STAT\r\n", "+OK 3 300\r\n", 0, 0, 0 },
		{ "UIDL\r\nLIST\r\n",
		  "+OK\r\n1 u-1\r\n2 u-2\r\n3 u-3\r\n.\r\n"
		  "+OK 3 messages\r\n1 21\r\n2 29\r\n3 9\r\n.\r\n", 0, 0, 0 },
		{ "RETR 1\r\nRETR 2\r\nRETR 3\r\n",
		  "+OK 22 octets\r\n" M1 ".\r\n"
		  "+OK\r\n" M2 ".\r\n"
		  "+OK\r\n.\r\n", 1, 0, 0 },
		{ "DELE 1\r\nDELE 2\r\nDELE 3\r\n",
		  "+OK\r\n-ERR [SYS/TEMP] cannot\x01 now\r\n+OK\r\n", 0, 0, 0 },
		{ "QUIT\r\n", "+OK bye\r\n", 0, 0, 0 },
		END,
	};
	struct ms_source *s = NULL;
	struct ms_folder_status st;
	struct ms_err e;
	struct idl ids = { 0 };
	struct rec r = { 0 };
	struct ms_msg want[3];
	int rc;

	logbuf[0] = '\0';
	rc = ms_pop3_source.open(&s, start_peer(script), &tacct, &e);
	T_EQ_INT(rc, 0, "pipelined: open");
	T_EQ_INT(ms_pop3_source.select(s, "INBOX", 1, &st, &e), 0,
		 "pipelined: select");
	T_EQ_INT(st.exists, 3, "pipelined: STAT count");
	T_EQ_INT(ms_pop3_source.ids(s, id_cb, &ids, &e), 0,
		 "pipelined: ids");
	T_EQ_INT(ids.n, 3, "pipelined: 3 ids");
	T_OK(ids.m[1].uid == 2 && !strcmp(ids.m[1].uidl, "u-2") &&
	     ids.m[1].size == 29 && ids.m[1].has_meta, "pipelined: id 2");
	want[0] = ids.m[0];
	want[1] = ids.m[1];
	want[2] = ids.m[2];
	rc = ms_pop3_source.fetch(s, want, 3, &sink, &r, &e);
	T_EQ_INT(rc, 0, "pipelined: fetch of 3");
	T_OK(r.begins == 3 && r.ends == 3 && r.aborts == 0,
	     "pipelined: 3 begin/end, no abort");
	T_EQ_MEM(r.got[0].s, r.got[0].len, M1, strlen(M1),
		 "pipelined: message 1 exact bytes");
	T_EQ_MEM(r.got[1].s, r.got[1].len, M2W, strlen(M2W),
		 "pipelined: message 2 unstuffed exactly once");
	T_EQ_INT(r.got[2].len, 0, "pipelined: empty message 3");
	T_OK(strstr(logbuf, "message 3 (UIDL u-3): received 0 bytes, LIST "
			    "said 9") != NULL,
	     "pipelined: size mismatch warned");
	T_OK(!strstr(logbuf, "message 1 (UIDL u-1): received") &&
	     !strstr(logbuf, "message 2 (UIDL u-2): received"),
	     "pipelined: no warning when sizes match");
	T_OK(strstr(logbuf, "C: RETR 2") && strstr(logbuf, "S: +OK 22 octets"),
	     "pipelined: trace of commands and status lines");
	T_OK(!strstr(logbuf, "hello"), "pipelined: no body in the trace");
	rc = ms_pop3_source.remove(s, want, 3, &e);
	T_EQ_INT(rc, MS_EPROTO, "pipelined: DELE -ERR -> MS_EPROTO");
	T_OK(strstr(e.msg, "DELE 2 (UIDL u-2) refused: [SYS/TEMP] "
			   "cannot\\x01 now") != NULL,
	     "pipelined: DELE error quotes the sanitised server text");
	T_EQ_INT(ms_pop3_source.close(s, 1, &e), 0, "pipelined: QUIT +OK");
	T_EQ_INT(peer_status(), 0, "pipelined: peer saw exact bytes");
	rec_free(&r);
}

/* ahead: the next fetch's RETRs go out with this one's (one write, before
 * any reply), the next fetch sends nothing and reads them; a fetch of
 * other messages, and QUIT, first read and drop what was sent ahead. */
static void test_ahead(void)
{
	static const struct step take[] = {
		{ "CAPA\r\n", "+OK\r\nUIDL\r\nPIPELINING\r\n.\r\n", 0, 0, 0 },
		{ "STAT\r\n", "+OK 5 50\r\n", 0, 0, 0 },
		{ "RETR 1\r\nRETR 2\r\nRETR 3\r\nRETR 4\r\n",
		  "+OK\r\nA\r\n.\r\n+OK\r\nB\r\n.\r\n"
		  "+OK\r\nC\r\n.\r\n+OK\r\nD\r\n.\r\n", 1, 1, 0 },
		/* hint [5] not taken up: its reply is dropped first */
		{ "RETR 1\r\nRETR 5\r\n",
		  "+OK\r\nA1\r\n.\r\n+OK\r\nE\r\n.\r\n", 0, 1, 0 },
		{ "RETR 2\r\n", "+OK\r\nB2\r\n.\r\n", 0, 1, 0 },
		{ "QUIT\r\n", "+OK\r\n", 0, 1, 0 },
		END,
	};
	static const struct step quit[] = {
		{ "CAPA\r\n", "+OK\r\nPIPELINING\r\n.\r\n", 0, 0, 0 },
		{ "STAT\r\n", "+OK 2 20\r\n", 0, 0, 0 },
		{ "RETR 1\r\nRETR 2\r\n",
		  "+OK\r\nA\r\n.\r\n+OK\r\nB\r\n", 0, 1, 0 },
		{ NULL, "more\r\n.\r\n", 1, 0, 0 },
		{ "QUIT\r\n", "+OK\r\n", 0, 1, 0 },
		END,
	};
	struct ms_msg m[5] = { msg(1, "u1", 3), msg(2, "u2", 3),
			       msg(3, "u3", 3), msg(4, "u4", 3),
			       msg(5, "u5", 3) };
	struct ms_source *s = NULL;
	struct ms_folder_status st;
	struct rec r = { 0 };
	struct ms_err e;

	T_EQ_INT(ms_pop3_source.open(&s, start_peer(take), &tacct, &e), 0,
		 "ahead: open");
	T_EQ_INT(ms_pop3_source.select(s, "INBOX", 1, &st, &e), 0,
		 "ahead: select");
	ms_pop3_source.ahead(s, m + 2, 2);
	T_EQ_INT(ms_pop3_source.fetch(s, m, 2, &sink, &r, &e), 0,
		 "ahead: fetch 1-2 with 3-4 ahead");
	T_EQ_INT(r.ends, 2, "ahead: first fetch stored 2");
	T_EQ_INT(ms_pop3_source.fetch(s, m + 2, 2, &sink, &r, &e), 0,
		 "ahead: fetch 3-4 takes the RETRs in flight");
	T_OK(r.ends == 4 && r.ended[2] == 3 && r.ended[3] == 4,
	     "ahead: second fetch stored 3 and 4");
	T_EQ_MEM(r.got[3].s, r.got[3].len, "D\r\n", 3,
		 "ahead: message 4 exact bytes");
	ms_pop3_source.ahead(s, m + 4, 1);
	T_EQ_INT(ms_pop3_source.fetch(s, m, 1, &sink, &r, &e), 0,
		 "ahead: fetch 1 sends the hint's RETR 5 with it");
	T_EQ_INT(ms_pop3_source.fetch(s, m + 1, 1, &sink, &r, &e), 0,
		 "ahead: fetch of 2 drops RETR 5's reply first");
	T_OK(r.ends == 6 && r.ended[4] == 1 && r.ended[5] == 2 &&
	     r.got[5].len == 4 && !memcmp(r.got[5].s, "B2\r\n", 4),
	     "ahead: message 5 dropped, message 2 stored again");
	T_EQ_INT(ms_pop3_source.close(s, 1, &e), 0, "ahead: QUIT");
	T_EQ_INT(peer_status(), 0, "ahead: peer saw exact bytes");
	rec_free(&r);

	memset(&r, 0, sizeof r);
	T_EQ_INT(ms_pop3_source.open(&s, start_peer(quit), &tacct, &e), 0,
		 "ahead/quit: open");
	T_EQ_INT(ms_pop3_source.select(s, "INBOX", 1, &st, &e), 0,
		 "ahead/quit: select");
	ms_pop3_source.ahead(s, m + 1, 1);
	T_EQ_INT(ms_pop3_source.fetch(s, m, 1, &sink, &r, &e), 0,
		 "ahead/quit: fetch 1 with 2 ahead");
	T_EQ_INT(ms_pop3_source.close(s, 1, &e), 0,
		 "ahead/quit: QUIT after reading RETR 2's reply to its end");
	T_OK(r.begins == 1 && r.ends == 1, "ahead/quit: only message 1 stored");
	T_EQ_INT(peer_status(), 0, "ahead/quit: peer saw exact bytes");
	rec_free(&r);
}

static void test_serial(void)
{
	static const struct step script[] = {
		{ "CAPA\r\n", "-ERR unknown command\r\n", 0, 1, 0 },
		{ "STAT\r\n", "+OK 2 30\r\n", 0, 1, 0 },
		{ "UIDL\r\n", "+OK\r\n1 a\r\n2 b\r\n.\r\n", 0, 1, 0 },
		{ "LIST\r\n", "+OK\r\n1 10\r\n2 12\r\n.\r\n", 0, 1, 0 },
		{ "RETR 1\r\n", "-ERR gone\r\n", 0, 1, 0 },
		{ "RETR 2\r\n", "+OK\r\nabc\r\n.\r\n", 1, 1, 0 },
		{ "DELE 2\r\n", "+OK\r\n", 0, 1, 0 },
		{ "QUIT\r\n", "-ERR could not remove messages\r\n", 0, 1, 0 },
		END,
	};
	struct ms_source *s = NULL;
	struct ms_folder_status st;
	struct ms_err e;
	struct idl ids = { 0 };
	struct rec r = { 0 };
	int rc;

	logbuf[0] = '\0';
	T_EQ_INT(ms_pop3_source.open(&s, start_peer(script), &tacct, &e), 0,
		 "serial: open without CAPA");
	T_EQ_INT(ms_pop3_source.select(s, "INBOX", 1, &st, &e), 0,
		 "serial: select");
	T_EQ_INT(ms_pop3_source.ids(s, id_cb, &ids, &e), 0, "serial: ids");
	T_EQ_INT(ids.n, 2, "serial: 2 ids");
	rc = ms_pop3_source.fetch(s, ids.m, 2, &sink, &r, &e);
	T_EQ_INT(rc, 0, "serial: fetch goes on after -ERR to one RETR");
	T_OK(r.begins == 1 && r.ends == 1 && r.ended[0] == 2,
	     "serial: only message 2 delivered");
	T_EQ_MEM(r.got[0].s, r.got[0].len, "abc\r\n", 5,
		 "serial: bytes of message 2");
	T_OK(strstr(logbuf, "message 1 (UIDL a): RETR refused, skipped: gone")
	     != NULL, "serial: skipped RETR logged with server text");
	T_EQ_INT(ms_pop3_source.remove(s, &ids.m[1], 1, &e), 0,
		 "serial: DELE 2");
	rc = ms_pop3_source.close(s, 1, &e);
	T_EQ_INT(rc, MS_EPROTO, "serial: QUIT -ERR -> MS_EPROTO");
	T_OK(strstr(e.msg, "QUIT failed: deletions not committed: could not "
			   "remove messages") != NULL,
	     "serial: QUIT error text");
	T_EQ_INT(peer_status(), 0, "serial: one command at a time, exact");
	rec_free(&r);
}

/* A session that must fail at ids() with MS_EPROTO and a given text. */
static void hostile_ids(const char *name, const char *stat,
			const char *uidl, const char *want, int in_sync)
{
	char uidl_expect[] = "UIDL\r\nLIST\r\n";
	struct step script[] = {
		{ "CAPA\r\n", "+OK\r\nPIPELINING\r\n.\r\n", 0, 0, 0 },
		{ "STAT\r\n", stat, 0, 0, 0 },
		{ uidl_expect, uidl, 0, 0, 0 },
		END,
		END,
	};
	struct ms_source *s = NULL;
	struct ms_folder_status st;
	struct ms_err e;
	struct idl ids = { 0 };
	char t[160];
	int rc;

	if (in_sync) { /* the reply was complete: QUIT is still fine */
		script[3].expect = "QUIT\r\n";
		script[3].reply = "+OK\r\n";
	}
	ms_pop3_source.open(&s, start_peer(script), &tacct, &e);
	ms_pop3_source.select(s, "INBOX", 0, &st, &e);
	rc = ms_pop3_source.ids(s, id_cb, &ids, &e);
	snprintf(t, sizeof t, "%s: MS_EPROTO", name);
	T_EQ_INT(rc, MS_EPROTO, t);
	snprintf(t, sizeof t, "%s: message text", name);
	if (!T_OK(strstr(e.msg, want) != NULL, t))
		printf("#   got \"%s\"\n", e.msg);
	snprintf(t, sizeof t, "%s: no id delivered", name);
	T_EQ_INT(ids.n, 0, t);
	ms_pop3_source.close(s, 1, &e); /* dead: no QUIT may be sent */
	snprintf(t, sizeof t, "%s: peer saw exact bytes%s", name,
		 in_sync ? "" : ", no QUIT");
	T_EQ_INT(peer_status(), 0, t);
}

static void test_hostile(void)
{
	char u200[300], line[400];
	struct step script[] = {
		{ "CAPA\r\n", "+OK\r\n.\r\n", 0, 0, 0 },
		{ "STAT\r\n", "+OK 4294967295 1\r\n", 0, 0, 0 },
		END,
	};
	struct ms_source *s = NULL;
	struct ms_folder_status st;
	struct ms_err e;

	memset(u200, 'A', 200);
	u200[200] = '\0';
	snprintf(line, sizeof line, "+OK\r\n1 %s\r\n.\r\n", u200);
	hostile_ids("200-char UIDL", "+OK 1 10\r\n", line,
		    "UIDL of message 1: unique-id longer than 70", 0);
	hostile_ids("control char in UIDL", "+OK 2 10\r\n",
		    "+OK\r\n1 ok\r\n2 a\x1b[2Jb\r\n.\r\n",
		    "UIDL of message 2: unique-id has a byte outside "
		    "0x21-0x7E: \"2 a\\x1b[2Jb\"", 0);
	hostile_ids("duplicate message number", "+OK 2 10\r\n",
		    "+OK\r\n1 a\r\n1 b\r\n.\r\n",
		    "UIDL lists message 1 twice", 0);
	hostile_ids("number above STAT", "+OK 1 10\r\n",
		    "+OK\r\n1 a\r\n2 b\r\n.\r\n",
		    "UIDL lists message 2 but STAT said 1", 0);
	hostile_ids("missing from LIST", "+OK 2 10\r\n",
		    "+OK\r\n1 a\r\n2 b\r\n.\r\n+OK\r\n1 5\r\n.\r\n",
		    "message 2 is in UIDL but not in LIST", 1);
	hostile_ids("LIST size not numeric", "+OK 1 10\r\n",
		    "+OK\r\n1 a\r\n.\r\n+OK\r\n1 x5\r\n.\r\n",
		    "LIST of message 1: bad size", 0);

	ms_pop3_source.open(&s, start_peer(script), &tacct, &e);
	T_EQ_INT(ms_pop3_source.select(s, "INBOX", 0, &st, &e), MS_EPROTO,
		 "STAT 4294967295 -> MS_EPROTO");
	T_OK(strstr(e.msg, "message count over 1000000") != NULL,
	     "STAT error text");
	ms_pop3_source.close(s, 1, &e);
	T_EQ_INT(peer_status(), 0, "STAT: no QUIT after a bad reply");
}

static void test_no_uidl(void)
{
	static const struct step script[] = {
		{ "CAPA\r\n", "+OK\r\nPIPELINING\r\n.\r\n", 0, 0, 0 },
		{ "STAT\r\n", "+OK 1 10\r\n", 0, 0, 0 },
		{ "UIDL\r\nLIST\r\n",
		  "-ERR no UIDL here\r\n+OK\r\n1 10\r\n.\r\n", 0, 0, 0 },
		END,
	};
	struct ms_source *s = NULL;
	struct ms_folder_status st;
	struct ms_err e;
	struct idl ids = { 0 };

	ms_pop3_source.open(&s, start_peer(script), &tacct, &e);
	ms_pop3_source.select(s, "INBOX", 0, &st, &e);
	T_EQ_INT(ms_pop3_source.ids(s, id_cb, &ids, &e), 0,
		 "no UIDL: ids succeeds");
	T_OK(ids.n == 1 && ids.m[0].uidl[0] == '\0' && ids.m[0].size == 10,
	     "no UIDL: uidl \"\" with LIST size");
	ms_pop3_source.close(s, 0, &e);
	T_EQ_INT(peer_status(), 0, "no UIDL: exact bytes, no QUIT (commit 0)");
}

static void test_eof(void)
{
	static const struct step script[] = {
		{ "CAPA\r\n", "+OK\r\n.\r\n", 0, 0, 0 },
		{ "STAT\r\n", "+OK 2 10\r\n", 0, 0, 0 },
		{ "RETR 1\r\n", "+OK\r\npart of a mess", 0, 0, 1 },
		END,
	};
	static const struct step quit_eof[] = {
		{ "CAPA\r\n", "+OK\r\n.\r\n", 0, 0, 0 },
		{ "QUIT\r\n", NULL, 0, 0, 1 },
		END,
	};
	struct ms_source *s = NULL;
	struct ms_folder_status st;
	struct ms_err e;
	struct rec r = { 0 };
	struct ms_msg m[2] = { msg(1, "a", 5), msg(2, "b", 5) };
	int rc;

	ms_pop3_source.open(&s, start_peer(script), &tacct, &e);
	ms_pop3_source.select(s, "INBOX", 0, &st, &e);
	rc = ms_pop3_source.fetch(s, m, 2, &sink, &r, &e);
	T_EQ_INT(rc, MS_ETEMP, "EOF in body -> MS_ETEMP");
	T_EQ_INT(e.scope, MS_SCOPE_ACCOUNT, "EOF in body: scope account");
	T_OK(r.begins == 1 && r.aborts == 1 && r.ends == 0,
	     "EOF in body: sink aborted, not ended");
	T_OK(strstr(e.msg, "message 1 (UIDL a) cut short: connection closed")
	     != NULL, "EOF in body: message names the message");
	rc = ms_pop3_source.close(s, 1, &e);
	T_EQ_INT(rc, MS_ETEMP, "close after EOF: deletions not committed");
	T_EQ_INT(peer_status(), 0, "EOF: peer saw exact bytes");
	rec_free(&r);

	ms_pop3_source.open(&s, start_peer(quit_eof), &tacct, &e);
	rc = ms_pop3_source.close(s, 1, &e);
	T_EQ_INT(rc, MS_ETEMP, "EOF instead of QUIT +OK -> MS_ETEMP");
	T_OK(strstr(e.msg, "QUIT failed: deletions not committed") != NULL,
	     "EOF at QUIT: text");
	T_EQ_INT(peer_status(), 0, "EOF at QUIT: peer ok");
}

static void test_sink_skip(void)
{
	static const struct step script[] = {
		{ "CAPA\r\n", "+OK\r\n.\r\n", 0, 0, 0 },
		{ "STAT\r\n", "+OK 2 10\r\n", 0, 0, 0 },
		{ "RETR 1\r\n", "+OK\r\nskip me\r\n.\r\n", 0, 0, 0 },
		{ "RETR 2\r\n", "+OK\r\nkeep\r\n.\r\n", 0, 0, 0 },
		END,
	};
	struct ms_source *s = NULL;
	struct ms_folder_status st;
	struct ms_err e;
	struct rec r = { .fail_begin_uid = 1 };
	struct ms_msg m[2] = { msg(1, "a", 9), msg(2, "b", 6) };

	ms_pop3_source.open(&s, start_peer(script), &tacct, &e);
	ms_pop3_source.select(s, "INBOX", 0, &st, &e);
	T_EQ_INT(ms_pop3_source.fetch(s, m, 2, &sink, &r, &e), 0,
		 "sink message-scope failure: fetch goes on");
	T_OK(r.begins == 1 && r.ends == 1 && r.ended[0] == 2 &&
	     r.got[0].len == 6 && !memcmp(r.got[0].s, "keep\r\n", 6),
	     "sink skip: message 1 drained, message 2 exact");
	ms_pop3_source.close(s, 0, &e);
	T_EQ_INT(peer_status(), 0, "sink skip: peer ok");
	rec_free(&r);
}

static void test_big(void)
{
	static char capa[70000], retr[300000];
	struct step capa_script[] = {
		{ "CAPA\r\n", capa, 0, 0, 0 },
		END,
	};
	struct step retr_script[] = {
		{ "CAPA\r\n", "+OK\r\n.\r\n", 0, 0, 0 },
		{ "STAT\r\n", "+OK 1 200000\r\n", 0, 0, 0 },
		{ "RETR 1\r\n", retr, 0, 0, 0 },
		END,
	};
	struct ms_source *s = NULL;
	struct ms_folder_status st;
	struct ms_err e;
	struct rec r = { 0 };
	struct ms_msg m = msg(1, "big", 200002);
	size_t i;
	int ok = 1;

	memcpy(capa, "+OK\r\n", 5);
	memset(capa + 5, 'A', 65000);
	memcpy(capa + 65005, "\r\n.\r\n", 6);
	T_EQ_INT(ms_pop3_source.open(&s, start_peer(capa_script), &tacct, &e),
		 MS_EPROTO, "64 KiB CAPA line -> MS_EPROTO");
	T_OK(s == NULL && strstr(e.msg, "longer than 4096") != NULL,
	     "CAPA line cap message");
	T_EQ_INT(peer_status(), 0, "CAPA cap: peer ok");

	/* one 200000-byte body line: bodies have no line cap */
	memcpy(retr, "+OK\r\n", 5);
	for (i = 0; i < 200000; i++)
		retr[5 + i] = (char)('a' + i % 26);
	memcpy(retr + 200005, "\r\n.\r\n", 6);
	ms_pop3_source.open(&s, start_peer(retr_script), &tacct, &e);
	ms_pop3_source.select(s, "INBOX", 0, &st, &e);
	T_EQ_INT(ms_pop3_source.fetch(s, &m, 1, &sink, &r, &e), 0,
		 "200 KB body line streams");
	T_OK(r.ends == 1 && r.got[0].len == 200002, "200 KB line: length");
	for (i = 0; ok && i < 200000; i++)
		ok = r.got[0].s[i] == (char)('a' + i % 26);
	T_OK(ok && !memcmp(r.got[0].s + 200000, "\r\n", 2),
	     "200 KB line: exact bytes");
	ms_pop3_source.close(s, 0, &e);
	T_EQ_INT(peer_status(), 0, "200 KB line: peer ok");
	rec_free(&r);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	ms_log_setup(log_sink, NULL, MS_LOG_DEBUG);
	test_ml();
	test_ml_diff();
	test_parsers();
	test_pipelined();
	test_serial();
	test_ahead();
	test_hostile();
	test_no_uidl();
	test_eof();
	test_sink_skip();
	test_big();
	return t_done();
}
