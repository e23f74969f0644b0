/*
 * mailsync.c: the command line: options, subcommands, logging sink,
 * signals, parallel accounts and the exit status.
 *
 * The only place that prints or exits.  Core is reached through
 * core/mailsync.h alone.  Every line goes out in one write(2) so that
 * lines from accounts running in parallel child processes never mix.
 * The exit status is the worst account's (ms_err_worse); each failure is
 * said once, "mailsync: ACCOUNT[/FOLDER]: ...", by the core's log as it
 * happens (failed folders) or here; success is silent unless -v.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "err.h"
#include "log.h"
#include "mailsync.h"

#define EX_USAGE 64
#define MAX_JOBS 64

enum cmd { CMD_SYNC, CMD_CHECK, CMD_FOLDERS, CMD_STATUS };

struct cli {
	const char *config;
	int dry_run, verbose, quiet;
	enum cmd cmd;
	char **names;          /* account names from argv (not owned) */
	int nnames;
};

static volatile sig_atomic_t stop;
static volatile pid_t children[MAX_JOBS];
static volatile sig_atomic_t nchildren;
static int in_child; /* a parallel child: no progress line on the tty */

static const char usage_text[] =
	"usage: mailsync [-c FILE] [-n] [-v|-vv] [-q] [ACCOUNT...]\n"
	"       mailsync [options] check [ACCOUNT...]\n"
	"       mailsync [options] folders ACCOUNT\n"
	"       mailsync [options] status [ACCOUNT...]\n"
	"       mailsync --help | --version\n"
	"\n"
	"Back up POP3/IMAP mailboxes into Maildir or mbox, as the config\n"
	"file says, then exit.  Without a command, sync all accounts (or\n"
	"the ones named).\n"
	"\n"
	"commands:\n"
	"  check      check the config and log in to each account\n"
	"  folders    list the server's folders, their local paths and\n"
	"             whether the account's patterns select them\n"
	"  status     show the last successful run and stored counts\n"
	"\n"
	"options:\n"
	"  -c, --config FILE  config file (default\n"
	"                     $XDG_CONFIG_HOME/mailsync/mailsync.ini)\n"
	"  -n, --dry-run      change nothing, say what would be done\n"
	"  -v, --verbose      more output; -vv adds the protocol trace\n"
	"  -q, --quiet        errors only\n"
	"      --help         this text\n"
	"      --version      the version\n"
	"\n"
	"See mailsync(1) and mailsync.ini(5).\n";

/* One line, one write(2): parallel children never interleave. */
static void out_line(int fd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void out_line(int fd, const char *fmt, ...)
{
	char line[MS_ERR_MSG_MAX + 512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	while (write(fd, line, (size_t)n) < 0 && errno == EINTR)
		;
}

/* A progress line is on the terminal (stderr is a TTY, one account at a
 * time): log lines and the end of the account erase it first. */
static int progress_shown;
static struct timespec progress_last, progress_start;

static void progress_clear(void)
{
	if (progress_shown)
		(void)!write(2, "\r\033[K", 4);
	progress_shown = 0;
}

static double elapsed(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) +
	       (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void progress_cb(void *ctx, const struct ms_progress *p)
{
	struct timespec now;
	double secs;
	char line[512];
	int n;

	(void)ctx;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (p->done == 1)
		progress_start = now;
	if (p->done != p->total && elapsed(&progress_last, &now) < 0.2)
		return;
	progress_last = now;
	secs = elapsed(&progress_start, &now);
	n = snprintf(line, sizeof line, "\r%s: %s: %lu/%lu messages, %.1f MB, "
		     "%.1f MB/s\033[K", p->account, p->folder, p->done,
		     p->total, (double)p->bytes / 1e6,
		     secs > 0 ? (double)p->bytes / 1e6 / secs : 0.0);
	if (n > 0)
		(void)!write(2, line, (size_t)n < sizeof line ? (size_t)n
							 : sizeof line - 1);
	progress_shown = 1;
}

static void log_sink(int level, const char *line, void *ctx)
{
	(void)level;
	(void)ctx;
	progress_clear();
	out_line(2, "mailsync: %s", line);
}

/* An account's error, once: "mailsync: ACCOUNT[/FOLDER]: message";
 * nothing when the core has logged it already (failed folders). */
static void report(const char *account, const struct ms_err *e)
{
	if (e->reported)
		return;
	if (e->folder[0])
		out_line(2, "mailsync: %s/%s: %s", account, e->folder,
			 e->msg[0] ? e->msg : "failed");
	else
		out_line(2, "mailsync: %s: %s", account,
			 e->msg[0] ? e->msg : "failed");
}

static int usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	out_line(2, "mailsync: %s", msg);
	out_line(2, "Try 'mailsync --help'");
	return EX_USAGE;
}

static void on_signal(int sig)
{
	int i, saved = errno;

	stop = 1;
	for (i = 0; i < nchildren; i++)
		if (children[i] > 0)
			kill(children[i], sig);
	errno = saved;
}

/* fds 0-2 open, no SIGPIPE, no core dumps (secrets), private files. */
static void hygiene(void)
{
	struct rlimit rl = { 0, 0 };
	struct sigaction sa;
	int fd;

	do {
		fd = open("/dev/null", O_RDWR);
	} while (fd >= 0 && fd <= 2);
	if (fd < 0)
		_exit(70);
	close(fd);
	signal(SIGPIPE, SIG_IGN);
	setrlimit(RLIMIT_CORE, &rl);
	umask(077);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* A second ^C kills at once; the first lets the engine commit. */
	sa.sa_flags = SA_RESTART | SA_RESETHAND;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/* Returns -1 to go on, else the exit status. */
static int parse_args(struct cli *o, int argc, char **argv)
{
	static const struct option longs[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const cmds[] = { "check", "folders", "status" };
	int ch, i;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":c:nvq", longs, NULL)) != -1) {
		switch (ch) {
		case 'c': o->config = optarg; break;
		case 'n': o->dry_run = 1; break;
		case 'v': o->verbose++; break;
		case 'q': o->quiet = 1; break;
		case 'h':
			fputs(usage_text, stdout);
			return fflush(stdout) ? 74 : 0;
		case 'V':
			printf("mailsync %s\n", MS_VERSION);
			return fflush(stdout) ? 74 : 0;
		case ':':
			return usage_error("option %s needs an argument",
					   argv[optind - 1]);
		default:
			if (optopt)
				return usage_error("unknown option -%c",
						   optopt);
			return usage_error("unknown option %s",
					   argv[optind - 1]);
		}
	}
	if (o->quiet && o->verbose)
		return usage_error("-q and -v cannot be combined");
	o->names = argv + optind;
	o->nnames = argc - optind;
	for (i = 0; o->nnames > 0 && i < 3; i++)
		if (!strcmp(o->names[0], cmds[i])) {
			o->cmd = (enum cmd)(i + 1);
			o->names++;
			o->nnames--;
			break;
		}
	if (o->cmd == CMD_FOLDERS && o->nnames != 1)
		return usage_error("folders needs exactly one ACCOUNT");
	return -1;
}

/* The accounts to work on, in config order or as named (deduplicated). */
static int pick_accounts(const struct ms_config *c, const struct cli *o,
			 const struct ms_account ***out, size_t *n)
{
	const struct ms_account **v;
	int i, j;

	*n = 0;
	v = calloc(c->naccounts + (size_t)o->nnames + 1, sizeof *v);
	if (!v) {
		out_line(2, "mailsync: out of memory");
		return 70;
	}
	*out = v;
	if (o->nnames == 0) {
		for (*n = 0; *n < c->naccounts; (*n)++)
			v[*n] = &c->accounts[*n];
		return -1;
	}
	for (i = 0; i < o->nnames; i++) {
		for (j = 0; j < i && strcmp(o->names[i], o->names[j]); j++)
			;
		if (j < i)
			continue;
		if (!(v[*n] = ms_config_account(c, o->names[i]))) {
			out_line(2, "mailsync: no account %s in %s",
				 o->names[i], c->path);
			return EX_USAGE;
		}
		(*n)++;
	}
	return -1;
}

static void human_bytes(unsigned long long b, char *out, size_t n)
{
	if (b < 1000)
		snprintf(out, n, "%llu B", b);
	else if (b < 1000ULL * 1000)
		snprintf(out, n, "%.1f kB", b / 1e3);
	else if (b < 1000ULL * 1000 * 1000)
		snprintf(out, n, "%.1f MB", b / 1e6);
	else
		snprintf(out, n, "%.1f GB", b / 1e9);
}

static void summary(const struct ms_account *a, const struct cli *o,
		    const struct ms_stats *st)
{
	char size[32], skipped[48] = "";

	if (o->dry_run) {
		out_line(1, "mailsync: %s: would fetch %lu, would delete %lu",
			 a->name,
			 st->would_fetch, st->would_delete);
		return;
	}
	human_bytes(st->bytes, size, sizeof size);
	if (st->skipped)
		snprintf(skipped, sizeof skipped, ", %lu skipped (too large)",
			 st->skipped);
	out_line(1, "mailsync: %s: %lu fetched (%s), %lu deleted, "
		 "%lu folder%s%s",
		 a->name, st->fetched, size, st->deleted, st->folders,
		 st->folders == 1 ? "" : "s", skipped);
}

/* Sync one account in this process; prints its summary or failure. */
static int sync_one(const struct ms_config *c, const struct ms_account *a,
		    const struct cli *o)
{
	struct ms_run_opts ro = { .dry_run = o->dry_run, .stop = &stop };
	struct ms_stats st;
	struct ms_err e;
	int rc;

	memset(&st, 0, sizeof st);
	ms_err_clear(&e);
	ro.progress = !o->quiet && !in_child && isatty(2);
	if (ro.progress)
		ro.progress_cb = progress_cb;
	rc = ms_sync_account(c, a, &ro, &st, &e);
	progress_clear();
	if (rc)
		report(a->name, &e);
	else if (o->verbose || o->dry_run)
		summary(a, o, &st);
	return rc;
}

static int code_of_status(int status)
{
	int x;

	if (WIFSIGNALED(status))
		return MS_EINTERNAL;
	x = WEXITSTATUS(status);
	if (x == 0)
		return 0;
	if (x == 64 || x == 70 || (x >= 73 && x <= 78))
		return -x;
	return MS_EINTERNAL;
}

static int not_started(const struct ms_account *a)
{
	out_line(2, "mailsync: %s: not synced: interrupted", a->name);
	return MS_ETEMP;
}

/* Up to c->jobs children, one account each; the worst status wins. */
static int sync_parallel(const struct ms_config *c,
			 const struct ms_account **v, size_t n,
			 const struct cli *o)
{
	size_t slot[MAX_JOBS], next = 0;
	int worst = 0, status, i, running = 0;
	unsigned jobs = c->jobs < MAX_JOBS ? c->jobs : MAX_JOBS;
	pid_t pid;

	while (next < n || running > 0) {
		while (running < (int)jobs && next < n && !stop) {
			pid = fork();
			if (pid == 0) {
				nchildren = 0;
				in_child = 1;
				_exit(ms_err_exit_status(sync_one(c, v[next],
								  o)));
			}
			if (pid < 0) {
				out_line(2, "mailsync: %s: cannot fork: %s",
					 v[next]->name, strerror(errno));
				worst = ms_err_worse(worst, MS_EINTERNAL);
				next++;
				continue;
			}
			for (i = 0; i < MAX_JOBS && children[i] > 0; i++)
				;
			slot[i] = next++;
			children[i] = pid;
			if (i >= nchildren)
				nchildren = i + 1;
			running++;
		}
		if (running == 0)
			break;
		pid = waitpid(-1, &status, 0);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid < 0)
			break;
		for (i = 0; i < nchildren && children[i] != pid; i++)
			;
		if (i == nchildren)
			continue;
		children[i] = 0;
		running--;
		if (WIFSIGNALED(status))
			out_line(2, "mailsync: %s: killed by signal %d",
				 v[slot[i]]->name, WTERMSIG(status));
		worst = ms_err_worse(worst, code_of_status(status));
	}
	for (; next < n; next++)
		worst = ms_err_worse(worst, not_started(v[next]));
	return worst;
}

static int do_sync(const struct ms_config *c, const struct ms_account **v,
		   size_t n, const struct cli *o)
{
	int worst = 0;
	size_t i;

	if (c->jobs > 1 && n > 1)
		return sync_parallel(c, v, n, o);
	for (i = 0; i < n; i++)
		worst = ms_err_worse(worst, stop ? not_started(v[i])
						 : sync_one(c, v[i], o));
	return worst;
}

static int do_check(const struct ms_config *c, const struct ms_account **v,
		    size_t n)
{
	struct ms_err e;
	int worst = 0, rc;
	size_t i;

	for (i = 0; i < n && !stop; i++) {
		ms_err_clear(&e);
		rc = ms_check_account(c, v[i], &e);
		if (rc)
			report(v[i]->name, &e);
		else
			out_line(1, "%s: ok", v[i]->name);
		worst = ms_err_worse(worst, rc);
	}
	return stop && i < n ? ms_err_worse(worst, MS_ETEMP) : worst;
}

static int folder_cb(void *ctx, const char *server_name,
		     const char *local_path, const char *why, int selected)
{
	(void)ctx;
	if (local_path)
		out_line(1, "%s\t%s\t%s", server_name, local_path,
			 selected ? "selected" : "excluded");
	else
		out_line(1, "%s\t- (%s)\t%s", server_name,
			 why ? why : "refused", selected ? "selected"
							 : "excluded");
	return 0;
}

static int do_folders(const struct ms_config *c, const struct ms_account *a)
{
	struct ms_err e;
	int rc;

	ms_err_clear(&e);
	rc = ms_list_folders(c, a, folder_cb, NULL, &e);
	if (rc)
		report(a->name, &e);
	return rc;
}

struct status_ctx {
	const char *account;
	int lines;
};

static int status_cb(void *ctx, const char *folder, time_t last_run,
		     unsigned long count, uint32_t uidvalidity)
{
	struct status_ctx *s = ctx;
	char when[40] = "never";
	struct tm tm;
	size_t n;

	if (last_run > 0 && localtime_r(&last_run, &tm) &&
	    (n = strftime(when, sizeof when - 1, "%Y-%m-%dT%H:%M:%S%z",
			  &tm)) > 5) {
		/* +0100 -> +01:00, the extended form like the rest */
		memmove(when + n - 1, when + n - 2, 3);
		when[n - 2] = ':';
	}
	s->lines++;
	out_line(1, "%s\t%s\t%s\t%lu\t%lu", s->account, folder, when, count,
		 (unsigned long)uidvalidity);
	return 0;
}

static int do_status(const struct ms_config *c, const struct ms_account **v,
		     size_t n)
{
	struct status_ctx s;
	struct ms_err e;
	int worst = 0, rc;
	size_t i;

	for (i = 0; i < n; i++) {
		s.account = v[i]->name;
		s.lines = 0;
		ms_err_clear(&e);
		rc = ms_status_account(c, v[i], status_cb, &s, &e);
		if (rc)
			report(v[i]->name, &e);
		else if (s.lines == 0)
			out_line(1, "%s\t-\tnever\t0\t0", v[i]->name);
		worst = ms_err_worse(worst, rc);
	}
	return worst;
}

static int run(const struct cli *o, const struct ms_config *c)
{
	const struct ms_account **v = NULL;
	struct ms_err e;
	size_t n = 0;
	int rc;

	if ((rc = pick_accounts(c, o, &v, &n)) >= 0)
		goto out;
	ms_err_clear(&e);
	if ((rc = ms_global_init(&e))) {
		out_line(2, "mailsync: %s", e.msg);
		rc = ms_err_exit_status(rc);
		goto out;
	}
	switch (o->cmd) {
	case CMD_CHECK: rc = do_check(c, v, n); break;
	case CMD_FOLDERS: rc = do_folders(c, v[0]); break;
	case CMD_STATUS: rc = do_status(c, v, n); break;
	default: rc = do_sync(c, v, n, o); break;
	}
	ms_global_cleanup();
	rc = ms_err_exit_status(rc);
out:
	free(v);
	return rc;
}

int main(int argc, char **argv)
{
	struct cli o;
	struct ms_config *c = NULL;
	struct ms_err e;
	char *def = NULL;
	int rc, level;

	hygiene();
	memset(&o, 0, sizeof o);
	if ((rc = parse_args(&o, argc, argv)) >= 0)
		return rc;
	level = o.quiet ? MS_LOG_ERR : MS_LOG_WARN + o.verbose;
	if (o.dry_run && level < MS_LOG_INFO)
		level = MS_LOG_INFO;
	ms_log_setup(log_sink, NULL, level > MS_LOG_DEBUG ? MS_LOG_DEBUG
							  : level);
	if (!o.config && !(o.config = def = ms_config_default_path())) {
		out_line(2, "mailsync: cannot find the config file: set HOME "
			 "or use -c FILE");
		return 78;
	}
	ms_err_clear(&e);
	if ((rc = ms_config_load(&c, o.config, &e))) {
		out_line(2, "mailsync: %s", e.msg);
		free(def);
		return ms_err_exit_status(rc);
	}
	rc = run(&o, c);
	ms_config_free(c);
	free(def);
	return rc;
}
