/*
 * test_imap.c: the IMAP engine over a socketpair with a scripted peer.
 *
 * The peer (a thread) expects the exact commands of a script, in order,
 * answers each with canned bytes ("%T" becomes the command's tag, a
 * trailing "%E" closes the connection), records every byte it received,
 * and can hold its answer until several commands have arrived, which
 * proves pipelining (a non-pipelining client would stall there).
 */
#include "imap_int.h"

#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "net.h"
#include "t.h"

struct step {
	const char *cmd;   /* expected command without the tag */
	const char *reply; /* %T = tag; ends with %E: close afterwards */
	int batch;         /* wait until this many commands are queued */
};

struct peer {
	int fd;
	const struct step *steps;
	size_t nsteps;
	char *rx;          /* everything received */
	size_t rxlen, rxcap;
	char err[512];
	int pipelined;     /* every batch wait was satisfied */
	pthread_t th;
};

static size_t count_lines(const char *p, size_t n)
{
	size_t i, k = 0;

	for (i = 0; i + 1 < n; i++)
		if (p[i] == '\r' && p[i + 1] == '\n')
			k++;
	return k;
}

/* Read more; 0 on data, -1 on EOF/timeout. */
static int peer_read(struct peer *p, int ms)
{
	struct pollfd pfd = { .fd = p->fd, .events = POLLIN };
	ssize_t n;

	if (poll(&pfd, 1, ms) <= 0)
		return -1;
	if (p->rxlen + 65536 > p->rxcap) {
		p->rxcap = (p->rxcap + 65536) * 2;
		p->rx = realloc(p->rx, p->rxcap);
	}
	n = read(p->fd, p->rx + p->rxlen, 65536);
	if (n <= 0)
		return -1;
	p->rxlen += (size_t)n;
	return 0;
}

static void peer_reply(struct peer *p, const char *reply, const char *tag)
{
	size_t n = strlen(reply), i, o = 0, tl = strlen(tag);
	char *buf = malloc(n * 2 + 64 + tl * 8);
	int eof = 0;

	for (i = 0; i < n; i++) {
		if (reply[i] == '%' && reply[i + 1] == 'T') {
			memcpy(buf + o, tag, tl);
			o += tl;
			i++;
		} else if (reply[i] == '%' && reply[i + 1] == 'E') {
			eof = 1;
			break;
		} else {
			buf[o++] = reply[i];
		}
	}
	for (i = 0; i < o;) {
		ssize_t w = write(p->fd, buf + i, o - i);
		if (w <= 0)
			break;
		i += (size_t)w;
	}
	free(buf);
	if (eof)
		shutdown(p->fd, SHUT_RDWR);
}

static void *peer_main(void *arg)
{
	struct peer *p = arg;
	size_t k, pos = 0;

	p->pipelined = 1;
	for (k = 0; k < p->nsteps; k++) {
		const struct step *st = &p->steps[k];
		size_t want = st->batch > 1 ? (size_t)st->batch : 1;
		char line[4096], *sp, *end;

		while (count_lines(p->rx + pos, p->rxlen - pos) < want)
			if (peer_read(p, want > 1 ? 2000 : 5000) < 0)
				break;
		if (count_lines(p->rx + pos, p->rxlen - pos) < want)
			p->pipelined = 0;
		if (!count_lines(p->rx + pos, p->rxlen - pos)) {
			snprintf(p->err, sizeof p->err,
				 "step %zu: no command (want %s)", k, st->cmd);
			break;
		}
		end = memmem(p->rx + pos, p->rxlen - pos, "\r\n", 2);
		snprintf(line, sizeof line, "%.*s", (int)(end - p->rx - pos),
			 p->rx + pos);
		pos = (size_t)(end - p->rx) + 2;
		sp = strchr(line, ' ');
		if (!sp || strcmp(sp + 1, st->cmd)) {
			snprintf(p->err, sizeof p->err,
				 "step %zu: got \"%.200s\" want \"%.200s\"", k,
				 line, st->cmd);
			break;
		}
		*sp = '\0';
		peer_reply(p, st->reply, line);
	}
	while (!p->err[0] && peer_read(p, 3000) == 0)
		;
	if (!p->err[0] && count_lines(p->rx + pos, p->rxlen - pos))
		snprintf(p->err, sizeof p->err, "unexpected extra: %.200s",
			 p->rx + pos);
	close(p->fd);
	return NULL;
}

static unsigned net_timeout = 5;

/* Start a peer and open the engine over it (script starts with the
 * CAPABILITY step). */
static struct ms_source *start(struct peer *p, const struct step *steps,
			       size_t n, struct ms_err *e)
{
	struct ms_account a;
	static struct ms_account acct;
	struct ms_source *s = NULL;
	struct ms_net *net;
	int sv[2];

	(void)a;
	memset(p, 0, sizeof *p);
	acct.name = "test";
	p->steps = steps;
	p->nsteps = n;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		abort();
	p->fd = sv[1];
	pthread_create(&p->th, NULL, peer_main, p);
	if (ms_net_from_fd(&net, sv[0], net_timeout, e))
		return NULL;
	if (ms_imap_source.open(&s, net, &acct, e))
		return NULL;
	return s;
}

static void finish(struct peer *p, struct ms_source *s, int commit)
{
	struct ms_err e;

	if (s)
		ms_imap_source.close(s, commit, &e);
	pthread_join(p->th, NULL);
	p->rx = realloc(p->rx, p->rxlen + 1);
	p->rx[p->rxlen] = '\0';
}

static void peer_free(struct peer *p)
{
	free(p->rx);
}

#define CAPA_STEP(caps) \
	{ "CAPABILITY", "* CAPABILITY " caps "\r\n%T OK done\r\n", 0 }
#define NSTEPS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- collectors ---- */

struct log {
	char s[1 << 16];
	size_t n;
};

static void logf_(struct log *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void logf_(struct log *l, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	l->n += (size_t)vsnprintf(l->s + l->n, sizeof l->s - l->n, fmt, ap);
	va_end(ap);
	if (l->n >= sizeof l->s)
		l->n = sizeof l->s - 1;
}

static int folder_cb(void *ctx, const struct ms_folder *f, struct ms_err *e)
{
	(void)e;
	logf_(ctx, "%s|%c|%u;", f->name, f->delim ? f->delim : '0', f->attrs);
	return 0;
}

static int msg_cb(void *ctx, const struct ms_msg *m, struct ms_err *e)
{
	(void)e;
	if (m->has_meta)
		logf_(ctx, "%u/%u s=%llu f=%u d=%lld;", m->uid, m->uidvalidity,
		      (unsigned long long)m->size, m->flags,
		      (long long)m->internaldate);
	else
		logf_(ctx, "%u/%u f=%u;", m->uid, m->uidvalidity, m->flags);
	return 0;
}

static int gm_cb(void *ctx, uint32_t uid, uint64_t msgid, const char *labels,
		 struct ms_err *e)
{
	(void)e;
	logf_(ctx, "%u %llu [%s];", uid, (unsigned long long)msgid, labels);
	return 0;
}

struct tsink {
	struct log l;
	unsigned fail_uid;  /* begin fails with scope MESSAGE for this UID */
	unsigned count;
};

static int s_begin(void *ctx, const struct ms_msg *m, uint64_t len,
		   struct ms_err *e)
{
	struct tsink *t = ctx;

	logf_(&t->l, "B%u:%llu <", m->uid, (unsigned long long)len);
	if (t->fail_uid && m->uid == t->fail_uid) {
		logf_(&t->l, "refused>\n");
		ms_err_set(e, MS_EIO, "too big");
		e->scope = MS_SCOPE_MESSAGE;
		return MS_EIO;
	}
	return 0;
}

static int s_data(void *ctx, const char *p, size_t n, struct ms_err *e)
{
	struct tsink *t = ctx;

	(void)e;
	if (t->l.n + n < sizeof t->l.s) {
		memcpy(t->l.s + t->l.n, p, n);
		t->l.n += n;
		t->l.s[t->l.n] = '\0';
	}
	return 0;
}

static int s_end(void *ctx, const struct ms_msg *m, struct ms_err *e)
{
	struct tsink *t = ctx;

	(void)e;
	t->count++;
	logf_(&t->l, "> E%u/%u s=%llu f=%u d=%lld\n", m->uid, m->uidvalidity,
	      (unsigned long long)m->size, m->flags,
	      (long long)m->internaldate);
	return 0;
}

static void s_abort(void *ctx)
{
	struct tsink *t = ctx;

	logf_(&t->l, "> ABORT\n");
}

static const struct ms_fetch_sink tsink_ops = {
	.begin = s_begin, .data = s_data, .end = s_end, .abort = s_abort,
};

#define EXAMINE_STEP \
	{ "EXAMINE \"INBOX\"", "* 9 EXISTS\r\n* OK [UIDVALIDITY 42] v\r\n" \
	  "%T OK [READ-ONLY] done\r\n", 0 }

static struct ms_source *start_examined(struct peer *p,
					const struct step *steps, size_t n,
					struct ms_err *e)
{
	struct ms_folder_status st;
	struct ms_source *s = start(p, steps, n, e);

	if (s && ms_imap_source.select(s, "INBOX", 0, &st, e)) {
		printf("# select failed: %s\n", e->msg);
		return s;
	}
	return s;
}

static struct log trace;

static void trace_sink(int level, const char *line, void *ctx)
{
	(void)ctx;
	if (level == MS_LOG_DEBUG)
		logf_(&trace, "%s\n", line);
}

/* ---- tests ---- */

static void test_caps_list(void)
{
	static const struct step sc[] = {
		CAPA_STEP("IMAP4rev1 LITERAL+ ESEARCH X-GM-EXT-1"),
		{ "LIST \"\" \"*\"",
		  "* LIST (\\HasNoChildren) \"/\" INBOX\r\n"
		  "* LIST (\\Noselect \\HasChildren) \"/\" \"a \\\"b\\\"\"\r\n"
		  "* 3 EXISTS\r\n"
		  "* LIST () NIL {9}\r\nx\r\ny/z{1}\r\n"
		  "* LIST (\\NonExistent) \".\" 2024\r\n"
		  "* LIST (\\Marked) \"/\" \"Sent\" (\"CHILDINFO\" (\"X\"))\r\n"
		  "%T OK LIST done\r\n", 0 },
	};
	struct peer p;
	struct ms_err e;
	struct log l = { .n = 0 };
	struct ms_source *s = start(&p, sc, NSTEPS(sc), &e);
	int rc;

	T_OK(s != NULL, "open: CAPABILITY parsed");
	T_EQ_INT(s ? s->caps : 0, IMAP_CAP_IMAP4REV1 | IMAP_CAP_LITERALPLUS |
		 IMAP_CAP_ESEARCH | IMAP_CAP_XGMEXT1, "open: capability bits");
	rc = ms_imap_source.list(s, folder_cb, &l, &e);
	T_EQ_INT(rc, 0, "list: rc");
	T_EQ_STR(l.s, "INBOX|/|0;a \"b\"|/|1;x\r\ny/z{1}|0|0;2024|.|1;"
		 "Sent|/|0;",
		 "list: names, delimiters, attributes");
	finish(&p, s, 0);
	T_EQ_STR(p.err, "", "list: peer saw the expected commands");
	peer_free(&p);
}

static void test_select(void)
{
	static const struct step sc[] = {
		CAPA_STEP("IMAP4rev1 CONDSTORE UIDPLUS"),
		{ "EXAMINE \"Sent \\\"x\\\\\" (CONDSTORE)",
		  "* FLAGS (\\Seen)\r\n* 172 EXISTS\r\n* 1 RECENT\r\n"
		  "* OK [UIDVALIDITY 3857529045] UIDs valid\r\n"
		  "* OK [UIDNEXT 4392] next\r\n"
		  "* OK [PERMANENTFLAGS ()] none\r\n"
		  "* OK [HIGHESTMODSEQ 715194045007] Highest\r\n"
		  "%T OK [READ-ONLY] EXAMINE completed\r\n", 0 },
		{ "SELECT \"INBOX\" (CONDSTORE)",
		  "* 0 EXISTS\r\n%T OK [READ-WRITE] done\r\n", 0 },
		{ "SELECT \"Nope\" (CONDSTORE)",
		  "%T NO [NONEXISTENT] no such mailbox\r\n", 0 },
		{ "SELECT \"Bad\" (CONDSTORE)",
		  "* OK [UIDVALIDITY 4294967296] v\r\n%T OK done\r\n", 0 },
	};
	struct ms_folder_status st;
	struct peer p;
	struct ms_err e;
	struct ms_source *s = start(&p, sc, NSTEPS(sc), &e);
	int rc;

	rc = ms_imap_source.select(s, "Sent \"x\\", 0, &st, &e);
	T_EQ_INT(rc, 0, "examine: rc");
	T_EQ_INT(st.exists, 172, "examine: EXISTS");
	T_EQ_INT(st.uidvalidity, 3857529045u, "examine: UIDVALIDITY");
	T_EQ_INT(st.uidnext, 4392, "examine: UIDNEXT");
	T_EQ_INT(st.highestmodseq, 715194045007ull, "examine: HIGHESTMODSEQ");
	T_EQ_INT(st.readwrite, 0, "examine: read-only");
	rc = ms_imap_source.select(s, "INBOX", 1, &st, &e);
	T_OK(rc == 0 && st.readwrite == 1 && st.exists == 0,
	     "select: read-write");
	rc = ms_imap_source.select(s, "Nope", 1, &st, &e);
	T_EQ_INT(rc, MS_EPROTO, "select NO: MS_EPROTO");
	T_EQ_INT(e.scope, MS_SCOPE_FOLDER, "select NO: folder scope");
	T_OK(strstr(e.msg, "no such mailbox") != NULL,
	     "select NO: quotes the server");
	rc = ms_imap_source.select(s, "a\r\nb", 0, &st, &e);
	T_EQ_INT(rc, MS_EPROTO, "select: CR/LF in the name refused");
	rc = ms_imap_source.select(s, "Bad", 1, &st, &e);
	T_EQ_INT(rc, MS_EPROTO, "select: UIDVALIDITY > 2^32-1 refused");
	finish(&p, s, 0);
	T_EQ_STR(p.err, "", "select: peer saw the expected commands");
	peer_free(&p);
}

#define EX_STEP(name, uv) \
	{ "EXAMINE \"" name "\"", "* 3 EXISTS\r\n* OK [UIDVALIDITY " uv \
	  "] v\r\n%T OK [READ-ONLY] done\r\n", 2 }
#define ES_STEP(set) \
	{ "UID SEARCH RETURN (ALL) ALL", \
	  "* ESEARCH (TAG \"%T\") UID ALL " set "\r\n%T OK\r\n", 0 }

/* EXAMINE + UID SEARCH in one round trip; the next folder's sent ahead
 * (preselect) and read by its select, or dropped when another comes. */
static void test_select_ids(void)
{
	static const struct step sc[] = {
		CAPA_STEP("IMAP4rev1 ESEARCH"),
		EX_STEP("A", "7"), ES_STEP("1:3"),
		EX_STEP("B", "8"), ES_STEP("5"),
		EX_STEP("C", "9"), ES_STEP("6"),
		EX_STEP("D", "10"), ES_STEP("11,12"),
		{ "EXAMINE \"Nope\"", "%T NO [NONEXISTENT] no\r\n", 2 },
		{ "UID SEARCH RETURN (ALL) ALL", "%T BAD no mailbox\r\n", 0 },
		{ "EXAMINE \"E\"", "* OK [UIDVALIDITY 5] v\r\n%T OK\r\n", 0 },
		ES_STEP("4"),
		{ "LOGOUT", "* BYE bye\r\n%T OK bye\r\n", 0 },
	};
	struct ms_folder_status st;
	struct peer p;
	struct ms_err e;
	struct log l = { .n = 0 };
	struct ms_source *s = start(&p, sc, NSTEPS(sc), &e);
	int rc;

	rc = ms_imap_source.select(s, "A", MS_SELECT_IDS, &st, &e);
	T_OK(rc == 0 && st.uidvalidity == 7 && st.exists == 3,
	     "select+ids: EXAMINE answer");
	rc = ms_imap_source.ids(s, msg_cb, &l, &e);
	T_EQ_STR(l.s, "1/7 f=0;2/7 f=0;3/7 f=0;", "select+ids: the SEARCH's UIDs");
	l.n = 0;
	l.s[0] = '\0';
	rc = ms_imap_source.preselect(s, "B", 0, &e);
	T_OK(rc == 0 && !s->selected, "preselect: sent, nothing selected");
	rc = ms_imap_source.select(s, "B", MS_SELECT_IDS, &st, &e);
	T_OK(rc == 0 && st.uidvalidity == 8, "preselect: select reads it");
	rc = ms_imap_source.ids(s, msg_cb, &l, &e);
	T_EQ_STR(l.s, "5/8 f=0;", "preselect: ids reads its SEARCH");
	l.n = 0;
	l.s[0] = '\0';
	rc = ms_imap_source.preselect(s, "C", 0, &e);
	T_EQ_INT(rc, 0, "preselect C: rc");
	rc = ms_imap_source.select(s, "D", MS_SELECT_IDS, &st, &e);
	T_OK(rc == 0 && st.uidvalidity == 10,
	     "another folder: C's answers dropped, D selected");
	rc = ms_imap_source.ids(s, msg_cb, &l, &e);
	T_EQ_STR(l.s, "11/10 f=0;12/10 f=0;", "another folder: D's UIDs");
	l.n = 0;
	l.s[0] = '\0';
	rc = ms_imap_source.select(s, "Nope", MS_SELECT_IDS, &st, &e);
	T_OK(rc == MS_EPROTO && e.scope == MS_SCOPE_FOLDER && !s->dead,
	     "EXAMINE NO: folder error, connection fine");
	rc = ms_imap_source.select(s, "E", 0, &st, &e);
	T_OK(rc == 0 && st.uidvalidity == 5, "after NO: the SEARCH's BAD "
	     "was read, next EXAMINE works");
	rc = ms_imap_source.ids(s, msg_cb, &l, &e);
	T_EQ_STR(l.s, "4/5 f=0;", "plain select: ids sends its own SEARCH");
	finish(&p, s, 1);
	T_EQ_STR(p.err, "", "select+ids: peer saw the expected commands");
	T_OK(p.pipelined, "select+ids: EXAMINE and SEARCH in one batch");
	peer_free(&p);
}

static void test_search(void)
{
	char before[80];
	time_t t = time(NULL) - 30 * 86400;
	struct tm tm;
	static const char mon[12][4] = { "Jan", "Feb", "Mar", "Apr", "May",
		"Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct step sc[] = {
		CAPA_STEP("IMAP4rev1 ESEARCH"),
		EXAMINE_STEP,
		{ "UID SEARCH RETURN (ALL) ALL",
		  "* ESEARCH (TAG \"x1\") UID ALL 100\r\n"
		  "* ESEARCH (TAG \"%T\") UID ALL 1:3,7,10:9\r\n"
		  "%T OK done\r\n", 0 },
		{ before, "* ESEARCH (TAG \"%T\") UID\r\n%T OK\r\n", 0 },
		{ "UID SEARCH RETURN (ALL) ALL",
		  "* ESEARCH (TAG \"%T\") UID ALL 1:4294967296\r\n"
		  "%T OK\r\n%E", 0 },
	};
	static const struct step sc2[] = {
		CAPA_STEP("IMAP4rev1"),
		EXAMINE_STEP,
		{ "UID SEARCH ALL", "* SEARCH 4 2 99\r\n%T OK\r\n", 0 },
		{ "UID SEARCH ALL", "* SEARCH 4 0\r\n%T OK\r\n", 0 },
	};
	struct peer p;
	struct ms_err e;
	struct log l = { .n = 0 };
	struct ms_source *s;
	int rc;

	gmtime_r(&t, &tm);
	snprintf(before, sizeof before, "UID SEARCH RETURN (ALL) BEFORE "
		 "%d-%s-%d", tm.tm_mday, mon[tm.tm_mon], tm.tm_year + 1900);
	s = start_examined(&p, sc, NSTEPS(sc), &e);
	rc = ms_imap_source.ids(s, msg_cb, &l, &e);
	T_EQ_INT(rc, 0, "esearch: rc");
	T_EQ_STR(l.s, "1/42 f=0;2/42 f=0;3/42 f=0;7/42 f=0;9/42 f=0;"
		 "10/42 f=0;", "esearch: UIDs (other tag ignored)");
	l.n = 0;
	l.s[0] = '\0';
	rc = ms_imap_source.older_than(s, 30, msg_cb, &l, &e);
	T_OK(rc == 0 && l.n == 0, "older_than: BEFORE date, empty result");
	rc = ms_imap_source.ids(s, msg_cb, &l, &e);
	T_EQ_INT(rc, MS_EPROTO, "esearch: UID 4294967296 refused");
	finish(&p, s, 0);
	T_EQ_STR(p.err, "", "esearch: peer saw the expected commands");
	peer_free(&p);

	l.n = 0;
	l.s[0] = '\0';
	s = start_examined(&p, sc2, NSTEPS(sc2), &e);
	rc = ms_imap_source.ids(s, msg_cb, &l, &e);
	T_EQ_INT(rc, 0, "search: rc");
	T_EQ_STR(l.s, "4/42 f=0;2/42 f=0;99/42 f=0;", "search: UIDs");
	rc = ms_imap_source.ids(s, msg_cb, &l, &e);
	T_EQ_INT(rc, MS_EPROTO, "search: UID 0 refused");
	finish(&p, s, 0);
	T_EQ_STR(p.err, "", "search: peer saw the expected commands");
	peer_free(&p);
}

#define FETCH_CMD(set) \
	"UID FETCH " set " (UID RFC822.SIZE FLAGS INTERNALDATE BODY.PEEK[])"

static struct ms_msg mk(uint32_t uid, uint64_t size)
{
	struct ms_msg m = { .uid = uid, .uidvalidity = 42, .size = size };
	return m;
}

static void test_fetch(void)
{
	static const struct step sc[] = {
		CAPA_STEP("IMAP4rev1"),
		EXAMINE_STEP,
		{ FETCH_CMD("3,5,7"),
		  "* 1 FETCH (UID 3 RFC822.SIZE 19189 FLAGS (\\Seen \\Flagged "
		  "$Junk) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" "
		  "BODY[] {24}\r\nm3 OK done\r\n* 3 FETCH \r\n)\r\n"
		  "* 10 EXISTS\r\n* 2 FETCH (FLAGS (\\Deleted))\r\n"
		  "* 2 FETCH (MODSEQ (12) BODY[] {5}\r\nhello UID 5 "
		  "RFC822.SIZE 1 X-GM-LABELS (\"a\" {1}\r\nb))\r\n"
		  "* 1 EXPUNGE\r\n* OK [ALERT] careful\r\n"
		  "%T OK done\r\n", 0 },
	};
	struct peer p;
	struct ms_err e;
	struct tsink t = { .fail_uid = 0 };
	struct ms_msg m[3] = { mk(5, 10), mk(3, 10), mk(7, 10) };
	struct ms_source *s;
	int rc;

	ms_log_setup(trace_sink, NULL, MS_LOG_DEBUG);
	s = start_examined(&p, sc, NSTEPS(sc), &e);
	rc = ms_imap_source.fetch(s, m, 3, &tsink_ops, &t, &e);
	ms_log_setup(NULL, NULL, MS_LOG_WARN);
	T_OK(strstr(trace.s, "C: m3 UID FETCH 3,5,7 (UID RFC822.SIZE FLAGS "
		    "INTERNALDATE BODY.PEEK[])\n") != NULL, "trace: command");
	T_OK(strstr(trace.s, "S: * 1 FETCH (UID 3 RFC822.SIZE 19189 FLAGS "
		    "(\\Seen \\Flagged $Junk) INTERNALDATE \"17-Jul-1996 "
		    "02:44:25 -0700\" BODY[] {24})\n") != NULL,
	     "trace: response without literal bytes");
	T_OK(strstr(trace.s, "S: m3 OK done\n") != NULL &&
	     !strstr(trace.s, "hello"), "trace: tagged line, no body bytes");
	T_EQ_INT(rc, 0, "fetch: rc");
	T_EQ_STR(t.l.s,
		 "B3:24 <m3 OK done\r\n* 3 FETCH \r\n> E3/42 s=24 f=5 "
		 "d=837596665\n"
		 "B0:5 <hello> E5/42 s=5 f=0 d=0\n",
		 "fetch: exact bytes, odd item order, literal size wins");
	T_EQ_INT(s->exists, 9, "fetch: EXISTS/EXPUNGE tracked as data");
	finish(&p, s, 0);
	T_EQ_STR(p.err, "", "fetch: peer saw the expected commands");
	peer_free(&p);
}

struct bad_case {
	const char *name;
	const char *reply;
	int rc, scope;
	const char *log;
	const char *msg;
};

static void test_fetch_bad(void)
{
	static const struct bad_case bc[] = {
		{ "UID not requested (before literal)",
		  "* 1 FETCH (UID 4 BODY[] {3}\r\nabc)\r\n%T OK\r\n",
		  MS_EPROTO, MS_SCOPE_ACCOUNT, "", "UID mismatch" },
		{ "UID not requested (after literal)",
		  "* 1 FETCH (BODY[] {3}\r\nabc UID 4)\r\n%T OK\r\n",
		  MS_EPROTO, MS_SCOPE_ACCOUNT, "B0:3 <abc> ABORT\n",
		  "UID mismatch" },
		{ "UID delivered twice",
		  "* 1 FETCH (UID 3 BODY[] {1}\r\na)\r\n"
		  "* 1 FETCH (BODY[] {1}\r\nb UID 3)\r\n%T OK\r\n",
		  MS_EPROTO, MS_SCOPE_ACCOUNT,
		  "B3:1 <a> E3/42 s=1 f=0 d=0\nB0:1 <b> ABORT\n",
		  "UID mismatch" },
		{ "EOF mid-literal",
		  "* 1 FETCH (UID 3 BODY[] {100}\r\nabc%E",
		  MS_ETEMP, MS_SCOPE_ACCOUNT, "B3:100 <abc> ABORT\n",
		  "closed" },
		{ "BYE", "* BYE [UNAVAILABLE] shutting down\r\n%E",
		  MS_ETEMP, MS_SCOPE_ACCOUNT, "", "shutting down" },
		{ "tagged NO", "%T NO [CANNOT] bad stuff\r\n",
		  MS_EPROTO, MS_SCOPE_FOLDER, "", "bad stuff" },
		{ "tagged NO SERVERBUG", "%T NO [SERVERBUG] oops\r\n",
		  MS_ETEMP, MS_SCOPE_FOLDER, "", "oops" },
		{ "tagged BAD after a good message",
		  "* 1 FETCH (UID 3 BODY[] {1}\r\na)\r\n%T BAD what\r\n",
		  MS_EPROTO, MS_SCOPE_FOLDER, "B3:1 <a> E3/42 s=1 f=0 d=0\n",
		  "what" },
		{ "BODY[] NIL", "* 1 FETCH (UID 3 BODY[] NIL)\r\n%T OK\r\n",
		  MS_EPROTO, MS_SCOPE_ACCOUNT, "", "malformed" },
		{ "BODY[] without UID",
		  "* 1 FETCH (BODY[] {1}\r\na)\r\n%T OK\r\n",
		  MS_EPROTO, MS_SCOPE_ACCOUNT, "B0:1 <a> ABORT\n", "no UID" },
		{ "timeout mid-literal",
		  "* 1 FETCH (UID 3 BODY[] {100}\r\nabc",
		  MS_ETEMP, MS_SCOPE_ACCOUNT, "B3:100 <abc> ABORT\n",
		  "timeout" },
		{ "hostile literal", "* 1 FETCH (UID 3 BODY[] {-1}\r\n",
		  MS_EPROTO, MS_SCOPE_ACCOUNT, "", "malformed literal" },
		{ "expunged meanwhile",
		  "%T NO [EXPUNGEISSUED] some went away\r\n", 0, 0, "", "" },
	};
	size_t i;

	for (i = 0; i < NSTEPS(bc); i++) {
		struct step sc[] = {
			CAPA_STEP("IMAP4rev1"),
			EXAMINE_STEP,
			{ FETCH_CMD("3,5"), bc[i].reply, 0 },
		};
		struct peer p;
		struct ms_err e;
		struct tsink t = { .fail_uid = 0 };
		struct ms_msg m[2] = { mk(3, 1), mk(5, 1) };
		struct ms_source *s;
		char name[200];
		int rc;

		net_timeout = strstr(bc[i].name, "timeout") ? 1 : 5;
		s = start_examined(&p, sc, NSTEPS(sc), &e);
		net_timeout = 5;
		ms_err_clear(&e);
		rc = ms_imap_source.fetch(s, m, 2, &tsink_ops, &t, &e);
		snprintf(name, sizeof name, "fetch %s: rc", bc[i].name);
		T_EQ_INT(rc, bc[i].rc, name);
		snprintf(name, sizeof name, "fetch %s: scope", bc[i].name);
		T_EQ_INT(e.scope, bc[i].scope, name);
		snprintf(name, sizeof name, "fetch %s: sink calls", bc[i].name);
		T_EQ_STR(t.l.s, bc[i].log, name);
		snprintf(name, sizeof name, "fetch %s: message", bc[i].name);
		if (!T_OK(strstr(e.msg, bc[i].msg) != NULL, name))
			printf("#   msg: %s\n", e.msg);
		finish(&p, s, 0);
		peer_free(&p);
	}
}

static void test_fetch_skip(void)
{
	static const struct step sc[] = {
		CAPA_STEP("IMAP4rev1"),
		EXAMINE_STEP,
		{ FETCH_CMD("3,5"),
		  "* 1 FETCH (UID 3 BODY[] {4}\r\nxxxx)\r\n"
		  "* 2 FETCH (UID 5 BODY[] {2}\r\nok)\r\n%T OK\r\n", 0 },
	};
	struct peer p;
	struct ms_err e;
	struct tsink t = { .fail_uid = 3 };
	struct ms_msg m[2] = { mk(3, 1), mk(5, 1) };
	struct ms_source *s = start_examined(&p, sc, NSTEPS(sc), &e);
	int rc;

	rc = ms_imap_source.fetch(s, m, 2, &tsink_ops, &t, &e);
	T_EQ_INT(rc, 0, "fetch sink skip: rc");
	T_EQ_STR(t.l.s, "B3:4 <refused>\nB5:2 <ok> E5/42 s=2 f=0 d=0\n",
		 "fetch sink skip: message scope skips just that one");
	finish(&p, s, 0);
	T_EQ_STR(p.err, "", "fetch sink skip: peer");
	peer_free(&p);
}

/* 250 messages: three commands (100, 100, 50) all in flight at once. */
static void test_pipeline(void)
{
	static char r1[40000], r2[40000], r3[40000];
	char *rs[3] = { r1, r2, r3 };
	struct step sc[] = {
		CAPA_STEP("IMAP4rev1"),
		EXAMINE_STEP,
		{ FETCH_CMD("1:100"), r1, 3 },
		{ FETCH_CMD("101:200"), r2, 0 },
		{ FETCH_CMD("201:250"), r3, 0 },
		{ "LOGOUT", "* BYE bye\r\n%T OK bye\r\n", 0 },
	};
	struct ms_msg *m = calloc(250, sizeof *m);
	struct tsink *t = calloc(1, sizeof *t);
	struct peer p;
	struct ms_err e;
	struct ms_source *s;
	size_t i, k, o;
	int rc;

	for (k = 0; k < 3; k++) {
		o = 0;
		for (i = k * 100 + 1; i <= k * 100 + 100 && i <= 250; i++)
			o += (size_t)sprintf(rs[k] + o, "* %zu FETCH (UID %zu "
					     "BODY[] {6}\r\nmsg%03zu)\r\n",
					     i, i, i % 1000);
		sprintf(rs[k] + o, "%%T OK done\r\n");
	}
	for (i = 0; i < 250; i++)
		m[i] = mk((uint32_t)(250 - i), 6);
	s = start_examined(&p, sc, NSTEPS(sc), &e);
	rc = ms_imap_source.fetch(s, m, 250, &tsink_ops, t, &e);
	T_EQ_INT(rc, 0, "pipeline: rc");
	T_EQ_INT(t->count, 250, "pipeline: 250 delivered");
	T_OK(strstr(t->l.s, "B250:6 <msg250> E250/42 s=6") != NULL,
	     "pipeline: last message bytes");
	rc = ms_imap_source.close(s, 1, &e);
	T_EQ_INT(rc, 0, "close: LOGOUT");
	finish(&p, NULL, 1);
	T_OK(p.pipelined, "pipeline: 3 commands in flight before any answer");
	T_EQ_STR(p.err, "", "pipeline: peer saw the expected commands");
	peer_free(&p);
	free(m);
	free(t);
}

static void test_remove(void)
{
	static const struct step sc1[] = {
		CAPA_STEP("IMAP4rev1"),
		{ "SELECT \"INBOX\"", "%T OK [READ-WRITE] done\r\n", 0 },
	};
	static const struct step sc2[] = {
		CAPA_STEP("IMAP4rev1 UIDPLUS"),
		{ "SELECT \"INBOX\"", "%T OK [READ-WRITE] done\r\n", 0 },
		{ "UID STORE 3,5 +FLAGS.SILENT (\\Deleted)",
		  "* 2 FETCH (FLAGS (\\Deleted \\Seen))\r\n"
		  "%T OK stored\r\n", 2 },
		{ "UID EXPUNGE 3,5", "* 2 EXPUNGE\r\n* 1 EXPUNGE\r\n%T OK\r\n",
		  0 },
		{ "UID STORE 7 +FLAGS.SILENT (\\Deleted)",
		  "%T NO [NOPERM] not allowed\r\n", 2 },
		{ "UID EXPUNGE 7", "%T OK\r\n", 0 },
	};
	struct ms_msg m[3] = { mk(5, 1), mk(3, 1), mk(5, 1) }, m7 = mk(7, 1);
	struct ms_folder_status st;
	struct peer p;
	struct ms_err e;
	struct ms_source *s;
	int rc;

	s = start(&p, sc1, NSTEPS(sc1), &e);
	ms_imap_source.select(s, "INBOX", 1, &st, &e);
	rc = ms_imap_source.remove(s, m, 2, &e);
	T_EQ_INT(rc, MS_EPROTO, "remove without UIDPLUS: refused");
	T_OK(strstr(e.msg, "lacks UIDPLUS") != NULL,
	     "remove without UIDPLUS: message");
	finish(&p, s, 0);
	T_EQ_STR(p.err, "", "remove without UIDPLUS: nothing sent");
	peer_free(&p);

	s = start(&p, sc2, NSTEPS(sc2), &e);
	ms_imap_source.select(s, "INBOX", 1, &st, &e);
	rc = ms_imap_source.remove(s, m, 3, &e);
	T_EQ_INT(rc, 0, "remove: rc");
	rc = ms_imap_source.remove(s, &m7, 1, &e);
	T_EQ_INT(rc, MS_EPROTO, "remove: STORE NO is an error");
	T_OK(strstr(e.msg, "not allowed") != NULL, "remove: quotes server");
	finish(&p, s, 0);
	T_EQ_STR(p.err, "", "remove: peer saw the expected commands");
	T_OK(strstr(p.rx, "m3 UID STORE 3,5 +FLAGS.SILENT (\\Deleted)\r\n"
			  "m4 UID EXPUNGE 3,5\r\n") != NULL,
	     "remove: exact bytes, pipelined");
	peer_free(&p);
}

static void test_meta_flags(void)
{
	static const struct step sc[] = {
		CAPA_STEP("IMAP4rev1 CONDSTORE"),
		{ "EXAMINE \"INBOX\" (CONDSTORE)",
		  "* 3 EXISTS\r\n* OK [UIDVALIDITY 42] v\r\n%T OK done\r\n",
		  0 },
		{ "UID FETCH 2:3,9 (UID RFC822.SIZE FLAGS INTERNALDATE)",
		  "* 1 FETCH (RFC822.SIZE 100 UID 2 FLAGS (\\Answered \\Draft) "
		  "INTERNALDATE \" 1-Jan-2020 10:00:00 +0100\")\r\n"
		  "* 2 FETCH (FLAGS (\\Seen))\r\n"
		  "* 3 FETCH (UID 9 INTERNALDATE "
		  "\"31-Dec-1969 23:00:00 +0000\" "
		  "RFC822.SIZE 7 FLAGS ())\r\n%T OK\r\n", 0 },
		{ "UID FETCH 1:* (UID FLAGS) (CHANGEDSINCE 5)",
		  "* 1 FETCH (UID 2 MODSEQ (7) FLAGS (\\Deleted \\Seen kw))\r\n"
		  "* 2 FETCH (MODSEQ (8))\r\n%T OK\r\n", 0 },
		{ "UID FETCH 1:* (UID FLAGS)", "%T OK\r\n", 0 },
	};
	struct ms_msg m[3] = { mk(9, 0), mk(2, 0), mk(3, 0) };
	struct ms_folder_status st;
	struct log l = { .n = 0 };
	struct peer p;
	struct ms_err e;
	struct ms_source *s;
	int rc;

	s = start(&p, sc, NSTEPS(sc), &e);
	ms_imap_source.select(s, "INBOX", 0, &st, &e);
	rc = ms_imap_source.meta(s, m, 3, msg_cb, &l, &e);
	T_EQ_INT(rc, 0, "meta: rc");
	T_EQ_STR(l.s, "2/42 s=100 f=18 d=1577869200;9/42 s=7 f=0 d=-3600;",
		 "meta: size, flags, internaldate (UTC)");
	l.n = 0;
	l.s[0] = 0;
	rc = ms_imap_source.flags(s, 5, msg_cb, &l, &e);
	T_EQ_INT(rc, 0, "flags: rc");
	T_EQ_STR(l.s, "2/42 f=9;", "flags: CHANGEDSINCE, keywords ignored");
	rc = ms_imap_source.flags(s, 0, msg_cb, &l, &e);
	T_EQ_INT(rc, 0, "flags: full");
	finish(&p, s, 0);
	T_EQ_STR(p.err, "", "meta/flags: peer saw the expected commands");
	peer_free(&p);
}

/* F25: with SPECIAL-USE, LIST asks for the attributes and \All, \Trash...
 * (any case) become MS_FOLDER_* bits; \Noselect still wins. */
static void test_special_use(void)
{
	static const struct step sc[] = {
		CAPA_STEP("IMAP4rev1 SPECIAL-USE LIST-EXTENDED X-GM-EXT-1"),
		{ "LIST \"\" \"*\" RETURN (SPECIAL-USE)",
		  "* LIST (\\HasNoChildren) \"/\" INBOX\r\n"
		  "* LIST (\\Noselect \\HasChildren) \"/\" \"[Gmail]\"\r\n"
		  "* LIST (\\All \\HasNoChildren) \"/\" "
		  "\"[Gmail]/Alle Nachrichten\"\r\n"
		  "* LIST (\\HasNoChildren \\trash) \"/\" \"[Gmail]/Papierkorb\"\r\n"
		  "* LIST (\\Junk \\Flagged) \"/\" X\r\n"
		  "* LIST (\\Sent \\Drafts \\Archive) \"/\" Y\r\n"
		  "%T OK LIST done\r\n", 0 },
		EXAMINE_STEP,
		{ "UID FETCH 1:* (UID X-GM-MSGID X-GM-LABELS)",
		  "* 1 FETCH (UID 5 X-GM-MSGID 1278455344230334865 "
		  "X-GM-LABELS (\\Inbox Work \"Mein Label\" 2024))\r\n"
		  "* 2 FETCH (FLAGS (\\Seen))\r\n"
		  "* 3 FETCH (X-GM-LABELS () FLAGS () UID 7 X-GM-MSGID 9)\r\n"
		  "* 4 FETCH (UID 8 X-GM-MSGID 10 X-GM-LABELS "
		  "({5}\r\na\tb%c NIL))\r\n"
		  "%T OK\r\n", 0 },
	};
	struct peer p;
	struct ms_err e;
	struct log l = { .n = 0 };
	struct ms_folder_status st;
	struct ms_source *s = start(&p, sc, NSTEPS(sc), &e);
	char want[128];
	int rc;

	rc = ms_imap_source.list(s, folder_cb, &l, &e);
	T_EQ_INT(rc, 0, "special-use list: rc");
	snprintf(want, sizeof want, "INBOX|/|0;[Gmail]|/|%u;"
		 "[Gmail]/Alle Nachrichten|/|%u;[Gmail]/Papierkorb|/|%u;"
		 "X|/|%u;Y|/|%u;", MS_FOLDER_NOSELECT, MS_FOLDER_ALL,
		 MS_FOLDER_TRASH, MS_FOLDER_JUNK | MS_FOLDER_FLAGGED,
		 MS_FOLDER_SENT | MS_FOLDER_DRAFTS | MS_FOLDER_ARCHIVE);
	T_EQ_STR(l.s, want, "special-use list: attributes as bits");
	ms_imap_source.select(s, "INBOX", 0, &st, &e);
	l.n = 0;
	l.s[0] = 0;
	rc = ms_imap_source.gm_labels(s, gm_cb, &l, &e);
	T_EQ_INT(rc, 0, "gm_labels: rc");
	T_EQ_STR(l.s, "5 1278455344230334865 [\\Inbox\tWork\tMein Label\t2024];"
		 "7 9 [];8 10 [a%09b%25c];",
		 "gm_labels: ids and labels, unsolicited FETCH ignored, "
		 "literal escaped");
	finish(&p, s, 0);
	T_EQ_STR(p.err, "", "special-use: peer saw the expected commands");
	peer_free(&p);
}

/* Without X-GM-EXT-1, gm_labels refuses before sending anything; with
 * SPECIAL-USE but no LIST-EXTENDED, a plain LIST (attributes still read). */
static void test_gm_nocap(void)
{
	static const struct step sc[] = {
		CAPA_STEP("IMAP4rev1 SPECIAL-USE"),
		{ "LIST \"\" \"*\"",
		  "* LIST (\\Trash) \"/\" Bin\r\n%T OK LIST done\r\n", 0 },
		EXAMINE_STEP,
	};
	struct peer p;
	struct ms_err e;
	struct log l = { .n = 0 };
	struct ms_folder_status st;
	struct ms_source *s = start(&p, sc, NSTEPS(sc), &e);
	char want[64];
	int rc;

	rc = ms_imap_source.list(s, folder_cb, &l, &e);
	snprintf(want, sizeof want, "Bin|/|%u;", MS_FOLDER_TRASH);
	T_EQ_STR(l.s, want, "SPECIAL-USE without LIST-EXTENDED: plain LIST");
	ms_imap_source.select(s, "INBOX", 0, &st, &e);
	rc = ms_imap_source.gm_labels(s, gm_cb, &l, &e);
	T_EQ_INT(rc, MS_EPROTO, "gm_labels without X-GM-EXT-1: MS_EPROTO");
	T_OK(strstr(e.msg, "X-GM-EXT-1") != NULL, "gm_labels: names it");
	finish(&p, s, 0);
	T_EQ_STR(p.err, "", "gm_labels without cap: nothing sent");
	peer_free(&p);
}

/* F15: hard caps on folders, SEARCH results and endless untagged data. */
static void test_caps_hostile(void)
{
	size_t i, o = 0, cap = 100002 * 40;
	char *list = malloc(cap), *oks = malloc(cap);
	struct step sc[] = {
		CAPA_STEP("IMAP4rev1 ESEARCH"),
		{ "LIST \"\" \"*\"", list, 0 },
		{ "EXAMINE \"INBOX\"", oks, 0 },
	};
	static const struct step sc2[] = {
		CAPA_STEP("IMAP4rev1 ESEARCH"),
		EXAMINE_STEP,
		{ "UID SEARCH RETURN (ALL) ALL",
		  "* ESEARCH (TAG \"%T\") UID ALL 1:10000001\r\n%T OK\r\n", 0 },
	};
	struct ms_folder_status st;
	struct log *l = calloc(1, sizeof *l);
	struct peer p;
	struct ms_err e;
	struct ms_source *s;
	int rc;

	for (i = 0; i <= 100000; i++)
		o += (size_t)snprintf(list + o, cap - o,
				      "* LIST () \"/\" f%zu\r\n", i);
	snprintf(list + o, cap - o, "%%T OK\r\n");
	for (i = 0, o = 0; i <= 100000; i++)
		o += (size_t)snprintf(oks + o, cap - o, "* OK x\r\n");
	snprintf(oks + o, cap - o, "%%T OK\r\n");
	s = start(&p, sc, NSTEPS(sc), &e);
	rc = ms_imap_source.list(s, folder_cb, l, &e);
	T_EQ_INT(rc, MS_EPROTO, "100,001 folders: MS_EPROTO");
	T_OK(strstr(e.msg, "100000 folders") != NULL, "100,001 folders: msg");
	finish(&p, s, 0);
	peer_free(&p);

	sc[1] = sc[2];
	s = start(&p, sc, 2, &e);
	rc = ms_imap_source.select(s, "INBOX", 0, &st, &e);
	T_EQ_INT(rc, MS_EPROTO, "100,001 untagged OK lines: MS_EPROTO");
	finish(&p, s, 0);
	peer_free(&p);

	s = start_examined(&p, sc2, NSTEPS(sc2), &e);
	l->n = 0;
	rc = ms_imap_source.ids(s, msg_cb, l, &e);
	T_EQ_INT(rc, MS_EPROTO, "10,000,001 UIDs: MS_EPROTO");
	T_EQ_INT(l->n, 0, "10,000,001 UIDs: refused before any callback");
	finish(&p, s, 0);
	peer_free(&p);
	free(list);
	free(oks);
	free(l);
}

static void test_dates(void)
{
	static const struct { const char *in; int ok; int64_t want; } d[] = {
		{ "17-Jul-1996 02:44:25 -0700", 1, 837596665 },
		{ " 1-Jan-2020 10:00:00 +0100", 1, 1577869200 },
		{ "1-Jan-2020 10:00:00 +0100", 1, 1577869200 },
		{ "29-feb-2000 00:00:00 +0000", 1, 951782400 },
		{ "31-Dec-1969 23:00:00 +0000", 1, -3600 },
		{ "32-Jan-2020 10:00:00 +0100", 0, 0 },
		{ "01-Foo-2020 10:00:00 +0100", 0, 0 },
		{ "01-Jan-2020 10:00:00 0100", 0, 0 },
		{ "01-Jan-2020", 0, 0 },
	};
	size_t i;

	for (i = 0; i < NSTEPS(d); i++) {
		int64_t v = 0;
		int r = imap_parse_date(d[i].in, strlen(d[i].in), &v);
		T_OK(d[i].ok ? r == 0 && v == d[i].want : r != 0, d[i].in);
	}
}

static int status_cb(void *ctx, size_t i, const struct ms_folder_status *st)
{
	struct ms_folder_status *v = ctx;

	v[i] = *st;
	return 0;
}

static void test_status(void)
{
	static const struct step sc[] = {
		CAPA_STEP("IMAP4rev1 CONDSTORE"),
		{ "STATUS \"INBOX\" (UIDVALIDITY UIDNEXT MESSAGES "
		  "HIGHESTMODSEQ)",
		  "* STATUS INBOX (MESSAGES 4 UIDNEXT 9 UIDVALIDITY 77 "
		  "HIGHESTMODSEQ 123)\r\n%T OK done\r\n", 3 },
		{ "STATUS \"Gone\" (UIDVALIDITY UIDNEXT MESSAGES "
		  "HIGHESTMODSEQ)", "%T NO [NONEXISTENT] no\r\n", 0 },
		{ "STATUS \"Lists/dev\" (UIDVALIDITY UIDNEXT MESSAGES "
		  "HIGHESTMODSEQ)",
		  "* 3 EXISTS\r\n* STATUS \"Other\" (MESSAGES 1)\r\n"
		  "* STATUS {9}\r\nLists/dev (UIDNEXT 5 UIDVALIDITY 8 "
		  "MESSAGES 2)\r\n%T OK done\r\n", 0 },
	};
	static const char *const names[] = { "INBOX", "Gone", "Lists/dev" };
	struct ms_folder_status v[3];
	struct peer p;
	struct ms_err e;
	struct ms_source *s = start(&p, sc, NSTEPS(sc), &e);
	int rc;

	memset(v, 0xff, sizeof v);
	rc = ms_imap_source.status(s, names, 3, status_cb, v, &e);
	T_EQ_INT(rc, 0, "status: rc");
	T_OK(v[0].uidvalidity == 77 && v[0].uidnext == 9 && v[0].exists == 4 &&
	     v[0].highestmodseq == 123, "status: INBOX values");
	T_EQ_INT(v[1].uidvalidity, 0, "status: NO gives an unknown status");
	T_OK(v[2].uidvalidity == 8 && v[2].uidnext == 5 && v[2].exists == 2,
	     "status: literal name; a STATUS for another name is ignored");
	finish(&p, s, 0);
	T_OK(p.pipelined, "status: all three sent before any answer");
	T_EQ_STR(p.err, "", "status: peer saw the expected commands");
	peer_free(&p);
}

/* LIST-STATUS: the STATUS answers that came with LIST are used; only the
 * folder without one is asked. */
static void test_list_status(void)
{
	static const struct step sc[] = {
		CAPA_STEP("IMAP4rev1 CONDSTORE LIST-STATUS"),
		{ "LIST \"\" \"*\" RETURN (STATUS (UIDVALIDITY UIDNEXT "
		  "MESSAGES HIGHESTMODSEQ))",
		  "* LIST () \"/\" INBOX\r\n"
		  "* STATUS INBOX (MESSAGES 4 UIDNEXT 9 UIDVALIDITY 77 "
		  "HIGHESTMODSEQ 123)\r\n"
		  "* LIST () \"/\" \"Sent\"\r\n"
		  "* STATUS \"Sent\" (MESSAGES 2 UIDNEXT 3 UIDVALIDITY 5 "
		  "HIGHESTMODSEQ 6)\r\n"
		  "* LIST (\\Noselect) \"/\" Other\r\n%T OK done\r\n", 0 },
		{ "STATUS \"Other\" (UIDVALIDITY UIDNEXT MESSAGES "
		  "HIGHESTMODSEQ)", "%T NO [NONEXISTENT] no\r\n", 0 },
	};
	static const char *const names[] = { "Sent", "Other", "INBOX" };
	struct ms_folder_status v[3];
	struct log l = { .n = 0 };
	struct peer p;
	struct ms_err e;
	struct ms_source *s = start(&p, sc, NSTEPS(sc), &e);
	int rc;

	rc = ms_imap_source.list(s, folder_cb, &l, &e);
	T_EQ_STR(l.s, "INBOX|/|0;Sent|/|0;Other|/|1;",
		 "list-status: the folders");
	memset(v, 0xff, sizeof v);
	rc = ms_imap_source.status(s, names, 3, status_cb, v, &e);
	T_EQ_INT(rc, 0, "list-status: rc");
	T_OK(v[0].uidvalidity == 5 && v[0].uidnext == 3 && v[0].exists == 2 &&
	     v[0].highestmodseq == 6, "list-status: Sent from the LIST");
	T_OK(v[2].uidvalidity == 77 && v[2].uidnext == 9 &&
	     v[2].highestmodseq == 123, "list-status: INBOX from the LIST");
	T_EQ_INT(v[1].uidvalidity, 0, "list-status: Other asked, NO");
	finish(&p, s, 0);
	T_EQ_STR(p.err, "", "list-status: only Other's STATUS sent");
	peer_free(&p);
}

int main(void)
{
	/* close() sends LOGOUT without waiting: the peer's answer may meet
	 * a closed socket */
	signal(SIGPIPE, SIG_IGN);
	test_caps_list();
	test_select();
	test_select_ids();
	test_status();
	test_list_status();
	test_search();
	test_fetch();
	test_fetch_bad();
	test_fetch_skip();
	test_pipeline();
	test_remove();
	test_meta_flags();
	test_caps_hostile();
	test_special_use();
	test_gm_nocap();
	test_dates();
	return t_done();
}
