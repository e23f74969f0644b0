/*
 * test_net.c: net.c over a socketpair (always) and against the private
 * Dovecot when tests/integration/net_login.sh runs it with DV_* set.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "net.h"
#include "net_global.h"
#include "t.h"

static char trace[65536];
static size_t trace_len;

static void sink(int level, const char *line, void *ctx)
{
	size_t n = strlen(line);

	(void)level;
	(void)ctx;
	if (trace_len + n + 2 < sizeof trace) {
		memcpy(trace + trace_len, line, n);
		trace_len += n;
		trace[trace_len++] = '\n';
		trace[trace_len] = '\0';
	}
}

static void test_fd_basic(void)
{
	struct ms_err e;
	struct ms_net *n = NULL;
	int sv[2];
	char buf[64];
	size_t got = 0;

	ms_err_clear(&e);
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	T_EQ_INT(ms_net_from_fd(&n, sv[0], 1, &e), 0, "from_fd");
	T_EQ_INT(ms_net_send(n, "A1 NOOP\r\n", 9, &e), 0, "send");
	T_EQ_INT(read(sv[1], buf, sizeof buf), 9, "peer reads 9 bytes");
	T_EQ_INT(write(sv[1], "* OK hi\r\n", 9), 9, "peer writes");
	T_EQ_INT(ms_net_recv(n, buf, sizeof buf, &got, &e), 0, "recv");
	T_EQ_MEM(buf, got, "* OK hi\r\n", 9, "recv bytes");
	T_EQ_INT(ms_net_recv(n, buf, sizeof buf, &got, &e), MS_ETEMP,
		 "recv timeout");
	T_EQ_STR(e.msg, "timeout after 1 s", "timeout message");
	close(sv[1]);
	T_EQ_INT(ms_net_recv(n, buf, sizeof buf, &got, &e), MS_ETEMP, "eof");
	T_EQ_STR(e.msg, "connection closed by server", "eof message");
	T_EQ_INT(e.scope, MS_SCOPE_ACCOUNT, "eof scope");
	T_EQ_INT(ms_net_send(n, "x", 1, &e), MS_ETEMP, "send to closed peer");
	T_OK(!strncmp(ms_net_peer(n), "fd ", 3), "peer of a wrapped fd");
	ms_net_close(n);
}

/* 8 MiB each way at once: neither side may deadlock on a full buffer. */
static void test_fd_bulk(void)
{
	enum { SZ = 8 << 20 };
	struct ms_err e;
	struct ms_net *n = NULL;
	unsigned char *out = malloc(SZ), *in = malloc(SZ), buf[65536];
	size_t got, have = 0, i;
	int sv[2], st = 0;
	pid_t pid;

	for (i = 0; i < SZ; i++)
		out[i] = (unsigned char)(i * 7 + (i >> 13));
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	pid = fork();
	if (pid == 0) { /* echo peer */
		ssize_t r, w, off;

		close(sv[0]);
		while ((r = read(sv[1], buf, sizeof buf)) > 0)
			for (off = 0; off < r; off += w)
				if ((w = write(sv[1], buf + off, r - off)) < 0)
					_exit(1);
		_exit(0);
	}
	close(sv[1]);
	ms_net_from_fd(&n, sv[0], 5, &e);
	/* interleave: send 64 KiB, drain what is there */
	for (i = 0; i < SZ; i += 65536) {
		if (ms_net_send(n, out + i, 65536, &e) < 0)
			break;
		while (have < i && ms_net_recv(n, in + have, SZ - have, &got,
					       &e) == 0) {
			have += got;
			if (have >= i)
				break;
		}
	}
	shutdown(sv[0], SHUT_WR);
	while (have < SZ && ms_net_recv(n, in + have, SZ - have, &got, &e) == 0)
		have += got;
	T_EQ_INT(have, SZ, "bulk: all bytes echoed");
	T_OK(memcmp(in, out, SZ) == 0, "bulk: bytes identical");
	ms_net_close(n);
	waitpid(pid, &st, 0);
	free(out);
	free(in);
}

static void account(struct ms_account *a, const char *scheme, int port)
{
	static char url[128];

	memset(a, 0, sizeof *a);
	a->name = "t";
	a->proto = strstr(scheme, "pop3") ? MS_PROTO_POP3 : MS_PROTO_IMAP;
	a->tls_implicit = scheme[strlen(scheme) - 1] == 's';
	a->host = "127.0.0.1";
	a->port = port;
	snprintf(url, sizeof url, "%s://127.0.0.1:%d/", scheme, port);
	a->url = url;
	a->user = getenv("DV_USER");
	a->tls_ca_file = getenv("DV_CA");
	a->timeout = 5;
}

static int free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof sa;
	int s = socket(AF_INET, SOCK_STREAM, 0), port;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(s, (struct sockaddr *)&sa, sizeof sa);
	getsockname(s, (struct sockaddr *)&sa, &sl);
	port = ntohs(sa.sin_port);
	close(s);
	return port;
}

static void test_no_user(void)
{
	struct ms_account a;
	struct ms_net_opts o = { .acct = &a, .secret = "x" };
	struct ms_net *n = NULL;
	struct ms_err e;

	account(&a, "imaps", 993);
	a.user = NULL;
	T_EQ_INT(ms_net_connect(&n, &o, &e), MS_ECONFIG, "no user: ECONFIG");
	a.user = "u";
	o.secret = NULL;
	T_EQ_INT(ms_net_connect(&n, &o, &e), MS_ECONFIG, "no secret: ECONFIG");
}

/* A peer that accepts TCP but never speaks (stalled TLS handshake or
 * greeting): the connect timeout covers the whole login phase. */
static void test_stall(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof sa;
	struct ms_account a;
	struct ms_net_opts o = { .acct = &a, .secret = "x" };
	struct ms_net *n = NULL;
	struct ms_err e;
	struct timespec t0, t1;
	int ls = socket(AF_INET, SOCK_STREAM, 0), k;
	double secs;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(ls, (struct sockaddr *)&sa, sizeof sa);
	listen(ls, 4);
	getsockname(ls, (struct sockaddr *)&sa, &sl);
	for (k = 0; k < 2; k++) {
		account(&a, k ? "imap" : "imaps", ntohs(sa.sin_port));
		a.user = "u";
		a.timeout = 1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		T_EQ_INT(ms_net_connect(&n, &o, &e), MS_ETEMP,
			 k ? "stalled greeting: ETEMP" : "stalled TLS: ETEMP");
		clock_gettime(CLOCK_MONOTONIC, &t1);
		secs = (double)(t1.tv_sec - t0.tv_sec) +
		       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		T_OK(secs >= 0.9 && secs < 3, "stall: gives up after 1 s");
		printf("#   %s\n", e.msg);
	}
	close(ls);
}

static void test_closed_port(void)
{
	struct ms_account a;
	struct ms_net_opts o = { .acct = &a, .secret = "x" };
	struct ms_net *n = NULL;
	struct ms_err e;
	char want[64];
	int port = free_port();

	account(&a, "imaps", port);
	a.user = "u";
	snprintf(want, sizeof want, "cannot connect to 127.0.0.1:%d: ", port);
	T_EQ_INT(ms_net_connect(&n, &o, &e), MS_ETEMP, "closed port: ETEMP");
	T_OK(!strncmp(e.msg, want, strlen(want)), "closed port: message");
	T_OK(n == NULL, "closed port: no connection");
}

/*
 * A plain-text server without STARTTLS/STLS: the connection must fail with
 * MS_EPERM before any credential is sent.  The child records what it got.
 */
static void fake_server(int ls, int pop, int logfd)
{
	char in[4096], out[256];
	size_t have = 0;
	ssize_t r;
	int c;

	alarm(10);
	if ((c = accept(ls, NULL, NULL)) < 0)
		_exit(1);
	dprintf(c, pop ? "+OK fake\r\n" : "* OK fake\r\n");
	while ((r = read(c, in + have, sizeof in - 1 - have)) > 0) {
		char *nl;

		if (write(logfd, in + have, r) != r)
			_exit(1);
		have += r;
		in[have] = '\0';
		while ((nl = strchr(in, '\n'))) {
			*nl = '\0';
			if (pop && !strncmp(in, "CAPA", 4))
				snprintf(out, sizeof out,
					 "+OK\r\nUSER\r\nSASL PLAIN\r\n.\r\n");
			else if (pop)
				snprintf(out, sizeof out, "-ERR no\r\n");
			else if (strstr(in, "CAPABILITY"))
				snprintf(out, sizeof out,
					 "* CAPABILITY IMAP4rev1 AUTH=PLAIN"
					 "\r\n%.4s OK done\r\n", in);
			else
				snprintf(out, sizeof out, "%.4s BAD no\r\n", in);
			if (write(c, out, strlen(out)) < 0)
				_exit(1);
			have -= (size_t)(nl + 1 - in);
			memmove(in, nl + 1, have);
			in[have] = '\0';
		}
	}
	_exit(0);
}

static void test_no_starttls(int pop)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof sa;
	struct ms_account a;
	struct ms_net_opts o = { .acct = &a, .secret = "Secret-Pw" };
	struct ms_net *n = NULL;
	struct ms_err e;
	char log[4096] = "";
	int ls = socket(AF_INET, SOCK_STREAM, 0), p[2], st;
	ssize_t r;
	size_t len = 0;
	pid_t pid;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(ls, (struct sockaddr *)&sa, sizeof sa);
	listen(ls, 1);
	getsockname(ls, (struct sockaddr *)&sa, &sl);
	if (pipe(p) < 0 || (pid = fork()) < 0)
		return;
	if (pid == 0) {
		close(p[0]);
		fake_server(ls, pop, p[1]);
	}
	close(ls);
	close(p[1]);
	account(&a, pop ? "pop3" : "imap", ntohs(sa.sin_port));
	a.user = "u";
	a.tls_ca_file = NULL;
	T_EQ_INT(ms_net_connect(&n, &o, &e), MS_EPERM,
		 pop ? "no STLS: EPERM" : "no STARTTLS: EPERM");
	T_OK(strstr(e.msg, "refused STARTTLS/STLS") != NULL,
	     "no STARTTLS: message");
	printf("#   %s\n", e.msg);
	while ((r = read(p[0], log + len, sizeof log - 1 - len)) > 0)
		len += (size_t)r;
	log[len] = '\0';
	close(p[0]);
	waitpid(pid, &st, 0);
	T_OK(strstr(log, "CAPA") != NULL, "no STARTTLS: server saw CAPA");
	T_OK(!strstr(log, "AUTH") && !strstr(log, "LOGIN") &&
	     !strstr(log, "USER") && !strstr(log, "Secret"),
	     "no STARTTLS: no credential sent");
}

/* Log in, send a no-op, expect its answer as the first bytes. */
static void dv_login(const char *scheme, const char *portenv,
		     enum ms_auth auth)
{
	struct ms_account a;
	struct ms_net_opts o = { .acct = &a, .secret = getenv("DV_PASS") };
	struct ms_net *n = NULL;
	struct ms_err e;
	int pop = strstr(scheme, "pop3") != NULL, rc;
	char buf[65536], name[128];
	size_t got = 0;

	account(&a, scheme, atoi(getenv(portenv)));
	a.auth = auth;
	rc = ms_net_connect(&n, &o, &e);
	snprintf(name, sizeof name, "%s auth %d: login", scheme, auth);
	T_EQ_INT(rc, 0, name);
	if (rc) {
		printf("#   %s\n", e.msg);
		return;
	}
	ms_net_send(n, pop ? "NOOP\r\n" : "X1 NOOP\r\n", pop ? 6 : 9, &e);
	rc = ms_net_recv(n, buf, sizeof buf, &got, &e);
	snprintf(name, sizeof name, "%s auth %d: first bytes answer us",
		 scheme, auth);
	T_OK(rc == 0 && got >= 5 &&
	     !memcmp(buf, pop ? "+OK" : "X1 OK", pop ? 3 : 5), name);
	/* after the goodbye the server closes: ETEMP, account scope */
	ms_net_send(n, pop ? "QUIT\r\n" : "X2 LOGOUT\r\n", pop ? 6 : 11, &e);
	while ((rc = ms_net_recv(n, buf, sizeof buf, &got, &e)) == 0)
		;
	snprintf(name, sizeof name, "%s auth %d: close after goodbye",
		 scheme, auth);
	T_OK(rc == MS_ETEMP && e.scope == MS_SCOPE_ACCOUNT, name);
	if (auth == MS_AUTH_AUTO)
		printf("#   %s\n", e.msg);
	ms_net_close(n);
}

static int dv_fail(const char *scheme, const char *portenv, const char *pass,
		   const char *ca, const char *pin, struct ms_err *e)
{
	struct ms_account a;
	struct ms_net_opts o = { .acct = &a, .secret = pass };
	struct ms_net *n = NULL;
	int rc;

	account(&a, scheme, atoi(getenv(portenv)));
	a.tls_ca_file = (char *)ca;
	a.tls_pin = (char *)pin;
	rc = ms_net_connect(&n, &o, e);
	ms_net_close(n);
	return rc;
}

static void test_dovecot(void)
{
	static const char *const schemes[][2] = {
		{ "imaps", "DV_IMAPS_PORT" }, { "imap", "DV_IMAP_PORT" },
		{ "pop3s", "DV_POP3S_PORT" }, { "pop3", "DV_POP3_PORT" },
	};
	const char *ca = getenv("DV_CA"), *pass = getenv("DV_PASS");
	struct ms_err e;
	char want[160];
	size_t i;
	int a;

	for (i = 0; i < 4; i++)
		for (a = MS_AUTH_AUTO; a <= MS_AUTH_LOGIN; a++)
			dv_login(schemes[i][0], schemes[i][1], a);
	for (i = 0; i < 4; i++) {
		T_EQ_INT(dv_fail(schemes[i][0], schemes[i][1], "wrong-pw", ca,
				 NULL, &e), MS_EPERM, "wrong password: EPERM");
		snprintf(want, sizeof want,
			 "authentication failed for %s at 127.0.0.1:%s: ",
			 getenv("DV_USER"), getenv(schemes[i][1]));
		T_OK(!strncmp(e.msg, want, strlen(want)), "wrong pw message");
		printf("#   %s\n", e.msg);
		T_OK(!strstr(e.msg, "wrong-pw"), "no password in message");
	}
	T_EQ_INT(dv_fail("imaps", "DV_IMAPS_PORT", pass, NULL, NULL, &e),
		 MS_EPERM, "system trust store: EPERM");
	T_OK(strstr(e.msg, "TLS verification of 127.0.0.1:") &&
	     strstr(e.msg, "certificate"), "untrusted cert message");
	printf("#   %s\n", e.msg);
	T_EQ_INT(dv_fail("pop3", "DV_POP3_PORT", pass, NULL, NULL, &e),
		 MS_EPERM, "STLS + system trust store: EPERM");
	T_EQ_INT(dv_fail("imaps", "DV_IMAPS_PORT", pass, ca,
			 "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
			 &e), MS_EPERM, "wrong pin: EPERM");
	T_OK(strstr(e.msg, "TLS verification") != NULL, "wrong pin message");
	printf("#   %s\n", e.msg);
	T_EQ_INT(dv_fail("imaps", "DV_IMAPS_PORT", pass, ca, getenv("DV_PIN"),
			 &e), 0, "right pin: login");
	T_EQ_INT(dv_fail("imaps", "DV_IMAPS_PORT", pass, NULL, getenv("DV_PIN"),
			 &e), MS_EPERM, "pin does not replace verification");
}

static void test_trace(void)
{
	struct ms_account a;
	const char *pass = getenv("DV_PASS");
	struct ms_net_opts o = { .acct = &a, .secret = pass, .trace = 1 };
	struct ms_net *n = NULL;
	struct ms_err e;
	int kind;

	ms_log_setup(sink, NULL, MS_LOG_DEBUG);
	for (kind = 0; kind < 4; kind++) {
		int pop = kind >= 2;

		account(&a, pop ? "pop3s" : "imaps",
			atoi(getenv(pop ? "DV_POP3S_PORT" : "DV_IMAPS_PORT")));
		a.auth = (kind & 1) ? MS_AUTH_LOGIN : MS_AUTH_PLAIN;
		T_EQ_INT(ms_net_connect(&n, &o, &e), 0, "trace: login");
		ms_net_close(n);
		n = NULL;
	}
	T_OK(strstr(trace, "C: A002 AUTHENTICATE PLAIN <redacted>") != NULL,
	     "trace: IMAP PLAIN redacted");
	T_OK(strstr(trace, "C: A002 AUTHENTICATE LOGIN <redacted>") != NULL,
	     "trace: IMAP LOGIN redacted");
	T_OK(strstr(trace, "C: AUTH PLAIN <redacted>") != NULL,
	     "trace: POP3 PLAIN redacted");
	T_OK(strstr(trace, "C: <redacted>") != NULL,
	     "trace: SASL continuation redacted");
	T_OK(strstr(trace, "S: * OK") && strstr(trace, "S: +OK"),
	     "trace: server lines logged");
	T_OK(!strstr(trace, pass), "trace: no password");
	/* base64 of the password alone, and of "\0alice\0" + password */
	T_OK(!strstr(trace, "YWxpY2UtUHcuMQ") && !strstr(trace, "AGFsaWNlAGFs"),
	     "trace: no base64 credentials");
	ms_log_setup(NULL, NULL, MS_LOG_WARN);
	if (getenv("TRACE"))
		fputs(trace, stdout);
}

/* Server offers only CRAM-MD5 (DV_FALLBACK=1 from net_login.sh): auto
 * retries with the server's own choice; an explicit mechanism fails. */
static void test_fallback(void)
{
	static const char *const schemes[][2] = {
		{ "imaps", "DV_IMAPS_PORT" }, { "pop3s", "DV_POP3S_PORT" },
	};
	struct ms_account a;
	struct ms_net_opts o = { .acct = &a, .secret = getenv("DV_PASS") };
	struct ms_net *n = NULL;
	struct ms_err e;
	size_t i;

	for (i = 0; i < 2; i++) {
		account(&a, schemes[i][0], atoi(getenv(schemes[i][1])));
		T_EQ_INT(ms_net_connect(&n, &o, &e), 0,
			 "fallback: auto logs in without PLAIN/LOGIN");
		ms_net_close(n);
		n = NULL;
		a.auth = MS_AUTH_PLAIN;
		T_EQ_INT(ms_net_connect(&n, &o, &e), MS_EPERM,
			 "fallback: auth=plain refused");
		T_OK(strstr(e.msg, "server offers no allowed authentication "
			    "mechanism") != NULL, "fallback: message");
		printf("#   %s\n", e.msg);
	}
}

int main(void)
{
	struct ms_err e;

	T_EQ_INT(ms_net_global_init(&e), 0, "global init");
	test_fd_basic();
	test_fd_bulk();
	test_no_user();
	test_stall();
	test_closed_port();
	test_no_starttls(0);
	test_no_starttls(1);
	if (getenv("DV_FALLBACK")) {
		test_fallback();
	} else if (getenv("DV_IMAPS_PORT")) {
		test_dovecot();
		test_trace();
	} else {
		printf("# DV_IMAPS_PORT unset: Dovecot part runs from "
		       "tests/integration/net_login.sh\n");
	}
	ms_net_global_cleanup();
	return t_done();
}
