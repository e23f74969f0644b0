/*
 * config_secret.c: obtain an account's password from its configured source.
 *
 * Split from config.c because it spawns processes: password_command runs as
 * /bin/sh -c CMD in its own process group, stdin /dev/null, stdout a pipe,
 * stderr inherited, bounded in time and output; only the first line is
 * used.  The secret never reaches argv, the environment, a log line or an
 * error message, and every buffer that held it is wiped.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SECRET_MAX (64 * 1024)
#define CMD_TIMEOUT 30 /* seconds */

extern char **environ;

/* The first line of p[0..n): without "\n", one trailing "\r" removed. */
static int first_line(const char *p, size_t n, char **out)
{
	const char *nl = memchr(p, '\n', n);
	size_t len = nl ? (size_t)(nl - p) : n;

	if (len && p[len - 1] == '\r')
		len--;
	if (len == 0 || memchr(p, '\0', len))
		return -1;
	if (!(*out = malloc(len + 1)))
		return -2;
	memcpy(*out, p, len);
	(*out)[len] = '\0';
	return 0;
}

static int from_first_line(const char *what, const char *p, size_t n,
			   char **out, struct ms_err *e)
{
	switch (first_line(p, n, out)) {
	case 0:
		return 0;
	case -2:
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	default:
		return ms_err_set(e, MS_ECONFIG, "%s gave no "
				  "password (empty first line or NUL byte)",
				  what);
	}
}

static int read_capped(int fd, char *buf, size_t *n)
{
	ssize_t r;

	*n = 0;
	while (*n <= SECRET_MAX) {
		r = read(fd, buf + *n, SECRET_MAX + 1 - *n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		*n += (size_t)r;
	}
	return 0;
}

static int from_file(const struct ms_account *a, char *buf, char **out,
		     struct ms_err *e)
{
	const char *f = a->password_file;
	struct stat st;
	size_t n = 0;
	int fd, rc;

	fd = open(f, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = ms_err_sys(e, MS_ECONFIG, errno,
				"password_file %s: cannot open", f);
	} else if (!S_ISREG(st.st_mode)) {
		rc = ms_err_set(e, MS_ECONFIG, "password_file %s: "
				"not a regular file", f);
	} else if (st.st_uid != geteuid()) {
		rc = ms_err_set(e, MS_ECONFIG, "password_file %s: "
				"owned by uid %u, not %u, must be yours because"
				" it contains a password", f,
				(unsigned)st.st_uid, (unsigned)geteuid());
	} else if (st.st_mode & 077) {
		rc = ms_err_set(e, MS_ECONFIG, "password_file %s: "
				"mode %04o, must be 0600 or stricter because it"
				" contains a password", f,
				(unsigned)(st.st_mode & 07777));
	} else if (read_capped(fd, buf, &n) < 0) {
		rc = ms_err_sys(e, MS_ECONFIG, errno,
				"password_file %s: cannot read", f);
	} else if (n > SECRET_MAX) {
		rc = ms_err_set(e, MS_ECONFIG, "password_file %s: "
				"larger than 64 KiB", f);
	} else {
		rc = from_first_line("password_file", buf, n, out, e);
	}
	if (fd >= 0)
		close(fd);
	explicit_bzero(buf, n);
	return rc;
}

/* Test-only: MAILSYNC_TEST_CMD_TIMEOUT=N (1..30) shortens the 30 s limit so
 * the unit test of a hanging command runs in a second.  It cannot raise it. */
static long cmd_timeout_ms(void)
{
	const char *s = getenv("MAILSYNC_TEST_CMD_TIMEOUT");
	long v = s ? strtol(s, NULL, 10) : 0;

	return (v >= 1 && v <= CMD_TIMEOUT ? v : CMD_TIMEOUT) * 1000L;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void child(const char *cmd, int in, int outfd)
{
	char *argv[] = { "sh", "-c", (char *)cmd, NULL };
	sigset_t none;

	setpgid(0, 0);
	signal(SIGPIPE, SIG_DFL); /* ignored by the CLI, not by the command */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (dup2(in, 0) < 0 || dup2(outfd, 1) < 0)
		_exit(127);
	closefrom(3);
	execve("/bin/sh", argv, environ);
	_exit(127);
}

/* Read the child's stdout until EOF, the cap or the deadline.
 * 0 ok, 1 timeout, 2 too large, -1 read error (errno). */
static int collect(int fd, char *buf, size_t *n, long deadline)
{
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	ssize_t r;
	long left;

	*n = 0;
	for (;;) {
		if ((left = deadline - now_ms()) <= 0)
			return 1;
		r = poll(&pf, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			return 1;
		r = read(fd, buf + *n, SECRET_MAX + 1 - *n);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			return 0;
		*n += (size_t)r;
		if (*n > SECRET_MAX)
			return 2;
	}
}

/* Wait for the child until the deadline; kill its group after that. */
static int reap(pid_t pid, long deadline, int kill_now, int *status)
{
	struct timespec tick = { 0, 10 * 1000 * 1000 };
	pid_t r;

	while (!kill_now) {
		r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
		if (now_ms() >= deadline)
			break;
		nanosleep(&tick, NULL);
	}
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	while (waitpid(pid, status, 0) < 0 && errno == EINTR)
		;
	return 1;
}

static int cmd_result(int got, int status, long limit, struct ms_err *e)
{
	if (got == 1)
		return ms_err_set(e, MS_ECONFIG, "password_command "
				  "timed out after %ld s", limit / 1000);
	if (got == 2)
		return ms_err_set(e, MS_ECONFIG, "password_command "
				  "printed more than 64 KiB");
	if (got < 0)
		return ms_err_sys(e, MS_ECONFIG, errno,
				  "password_command: cannot read its output");
	if (WIFSIGNALED(status))
		return ms_err_set(e, MS_ECONFIG, "password_command "
				  "killed by signal %d", WTERMSIG(status));
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return ms_err_set(e, MS_ECONFIG, "password_command "
				  "exited with status %d", WEXITSTATUS(status));
	return 0;
}

static int from_command(const struct ms_account *a, char *buf, char **out,
			struct ms_err *e)
{
	int pfd[2] = { -1, -1 }, in = -1, status = 0, got, rc;
	long limit = cmd_timeout_ms(), deadline = now_ms() + limit;
	size_t n = 0;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0 ||
	    (in = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0 ||
	    (pid = fork()) < 0) {
		rc = ms_err_sys(e, MS_EINTERNAL, errno, "cannot "
				"run password_command");
		goto out;
	}
	if (pid == 0)
		child(a->password_command, in, pfd[1]);
	setpgid(pid, pid);
	close(pfd[1]);
	pfd[1] = -1;
	got = collect(pfd[0], buf, &n, deadline);
	if (reap(pid, deadline, got != 0, &status) > 0 && got == 0)
		got = 1;
	rc = cmd_result(got, status, limit, e);
	if (rc == 0)
		rc = from_first_line("password_command", buf, n, out, e);
out:
	explicit_bzero(buf, n);
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	if (in >= 0)
		close(in);
	return rc;
}

int ms_config_secret(const struct ms_account *a, char **out,
		     struct ms_err *e)
{
	char *buf;
	int rc;

	*out = NULL;
	if (a->password) {
		if (!(*out = strdup(a->password)))
			return ms_err_set(e, MS_EINTERNAL, "out of memory");
		return 0;
	}
	if (!a->password_file && !a->password_command)
		return ms_err_set(e, MS_ECONFIG, "no password "
				  "source");
	if (!(buf = malloc(SECRET_MAX + 1)))
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	if (a->password_file)
		rc = from_file(a, buf, out, e);
	else
		rc = from_command(a, buf, out, e);
	free(buf);
	return rc;
}
