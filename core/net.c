/*
 * net.c: one authenticated connection per account; the only includer of
 * <curl/curl.h>.
 *
 * libcurl does DNS, TCP, TLS with verification and pinning, STARTTLS/STLS
 * and SASL through CURLOPT_CONNECT_ONLY: for imap(s):// and pop3(s)://
 * curl_easy_perform returns after the protocol's connect phase, which
 * includes the greeting, CAPA/CAPABILITY and the login.  From then on the
 * engines speak the protocol themselves over curl_easy_send/recv (TLS) or
 * plain read/write (ms_net_from_fd, unit tests only).  Nothing here keeps
 * a copy of the secret: libcurl copies it, and we clear libcurl's copies
 * as soon as the login is done.
 */
#include "net.h"
#include "net_global.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/ssl.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define LINE_MAX_SAVED 256
#define TLS_RBUF (256 * 1024) /* OpenSSL's read buffer with read-ahead */
#define RECV_MIN (16 * 1024)  /* keep reading while this much room is left */

struct ms_net {
	CURL *curl;        /* NULL for a wrapped fd */
	int fd;            /* the socket (owned by curl when curl != NULL) */
	unsigned timeout;  /* seconds for each wait */
	int trace;
	int in_sasl;       /* we sent AUTHENTICATE/AUTH: redact our lines */
	int no_mech;       /* curl found no allowed SASL mechanism */
	int authing;       /* IMAP LOGIN/AUTHENTICATE sent: watch for caps */
	int caps_ok;       /* caps holds the authenticated capabilities */
	char caps[2048];   /* "IMAP4rev1 UIDPLUS ..." after the login */
	char peer[300];
	char last_in[LINE_MAX_SAVED]; /* last server line of the login */
	char errbuf[CURL_ERROR_SIZE];
	SSL *ssl;          /* set by the handshake, for fast_reads only */
	int pend_rc;       /* an error met after data was returned */
	struct ms_err pend;
};

static int ssl_idx = -1; /* SSL_CTX ex_data: the ms_net being connected */

int ms_net_global_init(struct ms_err *e)
{
	const curl_version_info_data *v;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return ms_err_set(e, MS_EINTERNAL, "curl_global_init failed");
	v = curl_version_info(CURLVERSION_NOW);
	if (!v || v->version_num < 0x074f00)
		return ms_err_set(e, MS_EINTERNAL,
				  "libcurl %s is too old (need >= 7.79.0)",
				  v ? v->version : "?");
	if (!v->ssl_version || strncmp(v->ssl_version, "OpenSSL", 7) != 0)
		return ms_err_set(e, MS_EINTERNAL,
				  "libcurl %s is not an OpenSSL build (%s)",
				  v->version,
				  v->ssl_version ? v->ssl_version : "no TLS");
	if (ssl_idx < 0)
		ssl_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	return 0;
}

void ms_net_global_cleanup(void)
{
	curl_global_cleanup();
}

/* ---- trace and redaction ------------------------------------------- */

/* Copy one line without CR/LF, replacing non-printable bytes by '?'. */
static void clean_line(char *dst, size_t cap, const char *s, size_t len)
{
	size_t i, j = 0;

	while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
		len--;
	for (i = 0; i < len && j + 1 < cap; i++) {
		unsigned char c = (unsigned char)s[i];

		dst[j++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	dst[j] = '\0';
}

/* Length of the n-th (0-based) space separated word, its start in *w. */
static size_t word(const char *s, int nth, const char **w)
{
	size_t len;

	for (;;) {
		while (*s == ' ')
			s++;
		len = strcspn(s, " ");
		if (nth-- == 0 || len == 0)
			break;
		s += len;
	}
	*w = s;
	return len;
}

static int word_is(const char *w, size_t len, const char *what)
{
	return len == strlen(what) && strncasecmp(w, what, len) == 0;
}

/*
 * Redact one line we send.  IMAP: "TAG LOGIN ...", "TAG AUTHENTICATE MECH
 * ...".  POP3: "PASS ...", "APOP ...", "AUTH MECH ...".  After an
 * AUTHENTICATE/AUTH every line we send is SASL data until the server
 * answers with something other than a "+" continuation.
 */
static void redact_out(struct ms_net *n, char *line, size_t cap)
{
	const char *w0, *w1, *w2;
	size_t l0, l1, l2, keep = 0;

	if (n->in_sasl) {
		snprintf(line, cap, "<redacted>");
		return;
	}
	l0 = word(line, 0, &w0);
	l1 = word(line, 1, &w1);
	l2 = word(line, 2, &w2);
	if (word_is(w0, l0, "PASS") || word_is(w0, l0, "APOP")) {
		keep = (size_t)(w0 + l0 - line);
	} else if (word_is(w0, l0, "AUTH") && l1 > 0) {
		keep = (size_t)(w1 + l1 - line);
		n->in_sasl = 1;
	} else if (word_is(w1, l1, "LOGIN")) {
		keep = (size_t)(w1 + l1 - line);
		n->authing = 1;
		n->caps_ok = 0;
	} else if (word_is(w1, l1, "AUTHENTICATE") && l2 > 0) {
		keep = (size_t)(w2 + l2 - line);
		n->in_sasl = 1;
		n->authing = 1;
		n->caps_ok = 0;
	}
	if (keep > 0 && keep + 12 < cap)
		memcpy(line + keep, " <redacted>", 12);
}

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* base64 text -> printable ASCII in out; 0 when it is not both. */
static int b64_printable(const char *in, char *out, size_t cap)
{
	unsigned acc = 0;
	size_t o = 0;
	int bits = 0, v;

	for (; *in && *in != '='; in++) {
		if ((v = b64val((unsigned char)*in)) < 0)
			return 0;
		acc = (acc << 6) | (unsigned)v;
		if ((bits += 6) >= 8) {
			char c = (char)((acc >> (bits -= 8)) & 0xff);

			if (c < 0x20 || c > 0x7e || o + 1 >= cap)
				return 0;
			out[o++] = c;
		}
	}
	out[o] = '\0';
	return o > 0;
}

/*
 * A server line of the login, kept for the error message.  A SASL
 * continuation with data is kept too: a failed XOAUTH2/OAUTHBEARER gets
 * its error as a challenge ("+ " base64 JSON), and libcurl gives up right
 * there, so that challenge is the server's actual answer.  (Challenges
 * come from the server and hold no secret; our replies are never kept.)
 */
static void saw_in(struct ms_net *n, const char *line)
{
	char dec[LINE_MAX_SAVED];
	size_t len;

	if (n->in_sasl && line[0] == '+' && (line[1] == ' ' || !line[1])) {
		/* our next line is still secret: in_sasl stays */
		if (!line[1] || !line[2])
			return;
		if (b64_printable(line + 2, dec, sizeof dec))
			line = dec;
		len = strnlen(line, sizeof n->last_in - 1);
		memcpy(n->last_in, line, len);
		n->last_in[len] = '\0';
		return;
	}
	len = strnlen(line, sizeof n->last_in - 1);
	n->in_sasl = 0;
	memcpy(n->last_in, line, len);
	n->last_in[len] = '\0';
}

/*
 * After our LOGIN/AUTHENTICATE, the server's "* CAPABILITY ..." or the
 * tagged OK's "[CAPABILITY ...]" (RFC 3501 7.1) lists the authenticated
 * state's capabilities: kept so the engine need not ask again.  Only a
 * line that fits whole is kept.
 */
static void save_caps(struct ms_net *n, const char *s, size_t len)
{
	const char *p = NULL, *end;
	size_t i;

	while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
		len--;
	if (len > 13 && !strncasecmp(s, "* CAPABILITY ", 13)) {
		p = s + 13;
		end = s + len;
	} else if (len > 2 && s[0] != '*' && s[0] != '+') {
		/* tagged: "TAG OK [CAPABILITY ...] text" */
		for (i = 0; i + 12 < len && !p; i++)
			if (s[i] == '[' && !strncasecmp(s + i + 1,
							"CAPABILITY ", 11))
				p = s + i + 12;
		if (!p || !(end = memchr(p, ']', (size_t)(s + len - p))))
			return;
	} else {
		return;
	}
	if ((size_t)(end - p) >= sizeof n->caps)
		return;
	for (i = 0; p + i < end; i++)
		if ((unsigned char)p[i] < 0x20 || (unsigned char)p[i] >= 0x7f)
			return;
	memcpy(n->caps, p, (size_t)(end - p));
	n->caps[end - p] = '\0';
	n->caps_ok = 1;
}

static int debug_cb(CURL *h, curl_infotype type, char *data, size_t size,
		    void *ctx)
{
	struct ms_net *n = ctx;
	char line[LINE_MAX_SAVED * 2];
	size_t len;

	(void)h;
	if (type == CURLINFO_TEXT) {
		if (size >= 12 && memmem(data, size, "No known auth", 13))
			n->no_mech = 1;
		return 0;
	}
	if (type != CURLINFO_HEADER_IN && type != CURLINFO_HEADER_OUT)
		return 0; /* never TLS or payload data */
	while (size > 0) {
		const char *nl = memchr(data, '\n', size);

		len = nl ? (size_t)(nl - data) + 1 : size;
		clean_line(line, sizeof line, data, len);
		if (type == CURLINFO_HEADER_OUT) {
			redact_out(n, line, sizeof line);
			if (n->trace)
				ms_log(MS_LOG_DEBUG, "C: %s", line);
		} else {
			if (n->authing)
				save_caps(n, data, len);
			saw_in(n, line);
			if (n->trace)
				ms_log(MS_LOG_DEBUG, "S: %s", line);
		}
		data += len;
		size -= len;
	}
	return 0;
}

/* ---- connect --------------------------------------------------------- */

/*
 * SASL choice.  auto first allows PLAIN and LOGIN only (curl prefers LOGIN
 * when both are offered); if the server offers neither, ms_net_connect
 * retries once with "AUTH=*", which lets curl fall back to the IMAP LOGIN
 * command or POP3 USER/PASS (common on ISP POP3 servers) and, failing
 * those, the challenge-response mechanisms.  That is acceptable because
 * curl only gets there after the TLS certificate was verified.
 */
static const char *login_options(enum ms_auth a)
{
	switch (a) {
	case MS_AUTH_PLAIN:
		return "AUTH=PLAIN";
	case MS_AUTH_LOGIN:
		return "AUTH=LOGIN";
	case MS_AUTH_XOAUTH2:
		return "AUTH=XOAUTH2";
	case MS_AUTH_OAUTHBEARER:
		return "AUTH=OAUTHBEARER";
	default:
		return "AUTH=PLAIN;AUTH=LOGIN";
	}
}

static const char *protocols(const struct ms_account *a)
{
	if (a->proto == MS_PROTO_POP3)
		return a->tls_implicit ? "pop3s" : "pop3";
	return a->tls_implicit ? "imaps" : "imap";
}

#define SET(opt, val)                                                       \
	do {                                                                \
		if ((rc = curl_easy_setopt(h, opt, val)) != CURLE_OK)      \
			goto out;                                           \
	} while (0)

/* OpenSSL backend: a large read buffer for each connection, and the
 * connection's SSL remembered when its handshake is done (curl 7.88 does
 * not give it out for a CONNECT_ONLY handle).  Read-ahead itself is
 * switched on only after the login (fast_reads): curl's own login loop
 * polls the socket when SSL_pending() is 0 and would wait on records that
 * read-ahead already took in; our engines always read before polling. */
static void ssl_info_cb(const SSL *ssl, int where, int ret)
{
	struct ms_net *n;

	(void)ret;
	if (!(where & SSL_CB_HANDSHAKE_DONE) || ssl_idx < 0)
		return;
	n = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ssl_idx);
	if (n)
		n->ssl = (SSL *)ssl;
}

static CURLcode ssl_ctx_cb(CURL *h, void *ctx, void *arg)
{
	(void)h;
	SSL_CTX_set_default_read_buffer_len(ctx, TLS_RBUF);
	if (ssl_idx >= 0 && SSL_CTX_set_ex_data(ctx, ssl_idx, arg))
		SSL_CTX_set_info_callback(ctx, ssl_info_cb);
	return CURLE_OK;
}

/* Logged in: let OpenSSL take as many records as the socket holds in one
 * read (one recv per up to 256 KiB instead of two per 4 KiB record). */
static void fast_reads(struct ms_net *n)
{
	if (n->ssl)
		SSL_set_read_ahead(n->ssl, 1);
	n->ssl = NULL; /* curl owns it; not used again */
}

static CURLcode set_options(struct ms_net *n, const struct ms_net_opts *o,
			    const char *lopts)
{
	const struct ms_account *a = o->acct;
	int oauth = a->auth == MS_AUTH_XOAUTH2 ||
		    a->auth == MS_AUTH_OAUTHBEARER;
	CURL *h = n->curl;
	CURLcode rc;

	SET(CURLOPT_URL, a->url);
	SET(CURLOPT_PROTOCOLS_STR, protocols(a));
	SET(CURLOPT_REDIR_PROTOCOLS_STR, protocols(a));
	SET(CURLOPT_CONNECT_ONLY, 1L);
	SET(CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	SET(CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb);
	SET(CURLOPT_SSL_CTX_DATA, n);
	if (a->tls_ca_file)
		SET(CURLOPT_CAINFO, a->tls_ca_file);
	if (a->tls_pin)
		SET(CURLOPT_PINNEDPUBLICKEY, a->tls_pin);
	SET(CURLOPT_USERNAME, a->user);
	if (oauth)
		SET(CURLOPT_XOAUTH2_BEARER, o->secret);
	else
		SET(CURLOPT_PASSWORD, o->secret);
	SET(CURLOPT_LOGIN_OPTIONS, lopts);
	/* No FORBID_REUSE: in 7.88.1 it makes multi_done close a
	 * CONNECT_ONLY connection, ACTIVESOCKET then reports none.  Reuse
	 * cannot happen anyway: one handle per account, never a second
	 * perform, and curl_easy_cleanup closes the connection. */
	SET(CURLOPT_FRESH_CONNECT, 1L);
	SET(CURLOPT_CONNECTTIMEOUT, (long)n->timeout);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_ERRORBUFFER, n->errbuf);
	/* VERBOSE feeds debug_cb, which needs the server's lines for error
	 * messages even without a trace; it logs only when n->trace. */
	SET(CURLOPT_DEBUGFUNCTION, debug_cb);
	SET(CURLOPT_DEBUGDATA, n);
	SET(CURLOPT_VERBOSE, 1L);
out:
	return rc;
}

/* Server text of the last response line without its tag/status word. */
static const char *server_text(const struct ms_net *n)
{
	const char *s = n->last_in, *w;
	size_t l;

	if (!strncmp(s, "-ERR", 4))
		return s[4] == ' ' ? s + 5 : s + 4;
	l = word(s, 1, &w);
	if (word_is(w, l, "NO") || word_is(w, l, "BAD"))
		return w[l] ? w + l + 1 : w + l;
	return s;
}

static int is_verify_error(CURLcode rc, const char *msg)
{
	switch (rc) {
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CRL_BADFILE:
		return 1;
	case CURLE_SSL_CONNECT_ERROR:
		return strstr(msg, "certificate") || strstr(msg, "verify");
	default:
		return 0;
	}
}

/* A login refused for now, not for bad credentials: RFC 5530 IMAP codes
 * and RFC 3206 POP3 codes (too many connections, mailbox in use). */
static int login_temporary(const char *t)
{
	static const char *const tmp[] = { "[LIMIT]", "[UNAVAILABLE]",
					   "[INUSE]", "[IN-USE]",
					   "[SYS/TEMP]" };

	for (size_t i = 0; i < sizeof tmp / sizeof tmp[0]; i++)
		if (!strncasecmp(t, tmp[i], strlen(tmp[i])))
			return 1;
	return 0;
}

static int map_error(struct ms_net *n, const struct ms_account *a,
		     CURLcode rc, struct ms_err *e)
{
	const char *msg = n->errbuf[0] ? n->errbuf : curl_easy_strerror(rc);

	if (rc == CURLE_LOGIN_DENIED && !n->no_mech && n->last_in[0] &&
	    login_temporary(server_text(n)))
		return ms_err_set(e, MS_ETEMP,
				  "login refused for now for %s at %s: %s",
				  a->user, n->peer, server_text(n));
	if (rc == CURLE_LOGIN_DENIED)
		return ms_err_set(e, MS_EPERM,
				  "authentication failed for %s at %s: %s",
				  a->user, n->peer,
				  n->no_mech ? "server offers no allowed "
					       "authentication mechanism"
				  : n->last_in[0] ? server_text(n) : msg);
	if (is_verify_error(rc, msg))
		return ms_err_set(e, MS_EPERM,
				  "TLS verification of %s failed: %s", n->peer,
				  msg);
	switch (rc) {
	case CURLE_USE_SSL_FAILED:
		return ms_err_set(e, MS_EPERM,
				  "%s refused STARTTLS/STLS: %s", n->peer,
				  msg);
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
		return ms_err_set(e, MS_ETEMP, "cannot connect to %s: %s",
				  n->peer, msg);
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_SSL_CONNECT_ERROR:
		return ms_err_set(e, MS_ETEMP, "connection to %s failed: %s",
				  n->peer, msg);
	case CURLE_OUT_OF_MEMORY:
	case CURLE_BAD_FUNCTION_ARGUMENT:
	case CURLE_UNKNOWN_OPTION:
	case CURLE_NOT_BUILT_IN:
		return ms_err_set(e, MS_EINTERNAL, "libcurl setup for %s: %s",
				  n->peer, msg);
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
		return ms_err_set(e, MS_ECONFIG, "cannot use %s: %s", a->url,
				  msg);
	default:
		return ms_err_set(e, MS_EPROTO, "protocol error with %s: %s",
				  n->peer, msg);
	}
}

/* One connect + login attempt; on failure the handle is cleaned up. */
static CURLcode attempt(struct ms_net *n, const struct ms_net_opts *o,
			const char *lopts)
{
	curl_socket_t s = CURL_SOCKET_BAD;
	CURLcode rc;

	n->errbuf[0] = n->last_in[0] = '\0';
	n->in_sasl = n->no_mech = n->authing = n->caps_ok = 0;
	n->ssl = NULL;
	if (!(n->curl = curl_easy_init()))
		return CURLE_OUT_OF_MEMORY;
	rc = set_options(n, o, lopts);
	if (rc == CURLE_OK)
		rc = curl_easy_perform(n->curl);
	if (rc == CURLE_OK)
		rc = curl_easy_getinfo(n->curl, CURLINFO_ACTIVESOCKET, &s);
	if (rc == CURLE_OK && s == CURL_SOCKET_BAD)
		rc = CURLE_GOT_NOTHING;
	/* libcurl's copies of the secret are not needed any more */
	curl_easy_setopt(n->curl, CURLOPT_PASSWORD, NULL);
	curl_easy_setopt(n->curl, CURLOPT_XOAUTH2_BEARER, NULL);
	if (rc != CURLE_OK) {
		curl_easy_cleanup(n->curl);
		n->curl = NULL;
		return rc;
	}
	curl_easy_setopt(n->curl, CURLOPT_VERBOSE, 0L);
	n->fd = (int)s;
	fast_reads(n);
	return CURLE_OK;
}

int ms_net_connect(struct ms_net **out, const struct ms_net_opts *o,
		   struct ms_err *e)
{
	const struct ms_account *a = o->acct;
	struct ms_net *n;
	CURLcode rc;
	int ret = 0;

	*out = NULL;
	/* without a user libcurl would skip the login and report success */
	if (!a->url || !a->host || !a->user || !a->user[0] || !o->secret)
		return ms_err_set(e, MS_ECONFIG,
				  "no server, user or secret to log in with");
	if (!(n = calloc(1, sizeof *n)))
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	n->fd = -1;
	n->timeout = a->timeout ? a->timeout : 60;
	n->trace = o->trace && ms_log_enabled(MS_LOG_DEBUG);
	snprintf(n->peer, sizeof n->peer, "%s:%d", a->host, a->port);
	rc = attempt(n, o, login_options(a->auth));
	if (rc == CURLE_LOGIN_DENIED && n->no_mech && a->auth == MS_AUTH_AUTO) {
		ms_log(MS_LOG_INFO, "%s offers neither AUTH=PLAIN nor "
		       "AUTH=LOGIN, retrying with the server's login", n->peer);
		rc = attempt(n, o, "AUTH=*");
	}
	if (rc != CURLE_OK) {
		ret = map_error(n, a, rc, e);
		free(n);
		return ret;
	}
	*out = n;
	return 0;
}

/* ---- send / receive ------------------------------------------------- */

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until fd is ready for ev or the deadline passes. */
static int wait_fd(struct ms_net *n, short ev, long long deadline,
		   struct ms_err *e)
{
	struct pollfd p = { .fd = n->fd, .events = ev };
	long long left;
	int r;

	for (;;) {
		left = deadline - now_ms();
		if (left <= 0)
			return ms_err_set(e, MS_ETEMP, "timeout after %u s",
					  n->timeout);
		r = poll(&p, 1, left > 60000 ? 60000 : (int)left);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return ms_err_sys(e, MS_ETEMP, errno, "poll on %s",
					  n->peer);
	}
}

static int lost(struct ms_net *n, const char *what, struct ms_err *e)
{
	ms_err_set(e, MS_ETEMP, "connection to %s lost: %s", n->peer, what);
	e->scope = MS_SCOPE_ACCOUNT;
	return MS_ETEMP;
}

/* One non-blocking write; *done bytes; 1 = would block. */
static int send_some(struct ms_net *n, const char *p, size_t len,
		     size_t *done, struct ms_err *e)
{
	CURLcode rc;
	ssize_t w;

	*done = 0;
	if (n->curl) {
		rc = curl_easy_send(n->curl, p, len, done);
		if (rc == CURLE_AGAIN)
			return 1;
		if (rc != CURLE_OK)
			return lost(n, curl_easy_strerror(rc), e);
		return 0;
	}
	w = send(n->fd, p, len, MSG_NOSIGNAL);
	if (w < 0 && errno == ENOTSOCK)
		w = write(n->fd, p, len);
	if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
		      errno == EINTR))
		return 1;
	if (w < 0)
		return lost(n, strerror(errno), e);
	*done = (size_t)w;
	return 0;
}

int ms_net_send(struct ms_net *n, const void *p, size_t len, struct ms_err *e)
{
	long long deadline = now_ms() + (long long)n->timeout * 1000;
	const char *s = p;
	size_t done;
	int r;

	while (len > 0) {
		r = send_some(n, s, len, &done, e);
		if (r < 0)
			return r;
		if (done > 0) {
			s += done;
			len -= done;
			deadline = now_ms() + (long long)n->timeout * 1000;
			continue;
		}
		if ((r = wait_fd(n, POLLOUT, deadline, e)) < 0)
			return r;
	}
	return 0;
}

/* One non-blocking read; 1 = would block, 0 with *got == 0 = EOF. */
static int recv_some(struct ms_net *n, void *p, size_t cap, size_t *got,
		     struct ms_err *e)
{
	CURLcode rc;
	ssize_t r;

	*got = 0;
	if (n->curl) {
		rc = curl_easy_recv(n->curl, p, cap, got);
		if (rc == CURLE_AGAIN)
			return 1;
		if (rc != CURLE_OK)
			return lost(n, curl_easy_strerror(rc), e);
		return 0;
	}
	r = read(n->fd, p, cap);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
		      errno == EINTR))
		return 1;
	if (r < 0)
		return lost(n, strerror(errno), e);
	*got = (size_t)r;
	return 0;
}

/* What is already readable without waiting, up to cap, after the first
 * bytes: fewer, larger chunks for the engines.  An error here is kept for
 * the next call, which returns it before reading anything. */
static void recv_more(struct ms_net *n, char *p, size_t cap, size_t *got)
{
	size_t more;
	int r;

	while (cap - *got >= RECV_MIN) {
		r = recv_some(n, p + *got, cap - *got, &more, &n->pend);
		if (r < 0) {
			n->pend_rc = r;
			return;
		}
		if (r == 1 || more == 0)
			return; /* would block, or EOF (seen again next call) */
		*got += more;
	}
}

int ms_net_recv(struct ms_net *n, void *p, size_t cap, size_t *got,
		struct ms_err *e)
{
	long long deadline = now_ms() + (long long)n->timeout * 1000;
	int r;

	*got = 0;
	if (cap == 0)
		return ms_err_set(e, MS_EINTERNAL, "ms_net_recv: no room");
	if (n->pend_rc) {
		r = n->pend_rc;
		n->pend_rc = 0;
		if (e)
			*e = n->pend;
		return r;
	}
	for (;;) {
		/* read first: TLS may hold decrypted bytes already */
		r = recv_some(n, p, cap, got, e);
		if (r < 0)
			return r;
		if (r == 0) {
			if (*got > 0) {
				recv_more(n, p, cap, got);
				return 0;
			}
			ms_err_set(e, MS_ETEMP, "connection closed by server");
			e->scope = MS_SCOPE_ACCOUNT;
			return MS_ETEMP;
		}
		if ((r = wait_fd(n, POLLIN, deadline, e)) < 0)
			return r;
	}
}

/* ---- plain fd, peer, close ------------------------------------------ */

int ms_net_from_fd(struct ms_net **out, int fd, unsigned timeout,
		   struct ms_err *e)
{
	struct ms_net *n;
	int fl;

	*out = NULL;
	if (!(n = calloc(1, sizeof *n))) {
		close(fd);
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		ms_err_sys(e, MS_EINTERNAL, errno, "fcntl on fd %d", fd);
		close(fd);
		free(n);
		return MS_EINTERNAL;
	}
	n->fd = fd;
	n->timeout = timeout ? timeout : 60;
	snprintf(n->peer, sizeof n->peer, "fd %d", fd);
	*out = n;
	return 0;
}

const char *ms_net_login_caps(const struct ms_net *n)
{
	return n && n->curl && n->caps_ok ? n->caps : NULL;
}

const char *ms_net_peer(const struct ms_net *n)
{
	return n ? n->peer : "?";
}

void ms_net_close(struct ms_net *n)
{
	if (!n)
		return;
	if (n->curl)
		curl_easy_cleanup(n->curl);
	else if (n->fd >= 0)
		close(n->fd);
	free(n);
}
