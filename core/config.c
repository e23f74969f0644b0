/*
 * config.c: load mailsync.ini into struct ms_config, and fetch secrets.
 *
 * The only includer of ini.h.  inih splits "key = value" lines; we feed it
 * lines ourselves (from one read of the opened fd) so that we know the line
 * number of every key, see every section header (inih truncates long
 * section names and reports none of them), and refuse over-long lines
 * instead of letting the parser cut them.  Any doubt is fatal: an unknown,
 * duplicate or malformed key stops the load with "FILE:LINE: what".
 * Secrets: an inline password requires a 0600 file owned by the user
 * (checked on the fstat of the fd we read, so a symlink is no loophole).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CFG_MAX_FILE (1024 * 1024)
#define NAME_MAX_LEN 64
#define MS_CONFIG_MAX_LINE 1024 /* characters per line, without "\r\n" */

static const char *const general_keys[] = { "state_dir", "jobs", NULL };
static const char *const account_keys[] = {
	"source", "user", "password", "password_file", "password_command",
	"auth", "tls_ca_file", "tls_pin", "folders", "store", "layout",
	"policy", "max_message_size", "timeout", "mirror",
	"mirror_max_percent", "removed_keep_days", NULL
};
enum {
	K_SOURCE, K_USER, K_PASSWORD, K_PASSWORD_FILE, K_PASSWORD_COMMAND,
	K_AUTH, K_TLS_CA_FILE, K_TLS_PIN, K_FOLDERS, K_STORE, K_LAYOUT,
	K_POLICY, K_MAX_MESSAGE_SIZE, K_TIMEOUT, K_MIRROR,
	K_MIRROR_MAX_PERCENT, K_REMOVED_KEEP_DAYS, K_NKEYS
};
enum { G_STATE_DIR, G_JOBS };

static const char *const all_keys[] = {
	"general.state_dir", "general.jobs",
	"account.source", "account.user", "account.password",
	"account.password_file", "account.password_command", "account.auth",
	"account.tls_ca_file", "account.tls_pin", "account.folders",
	"account.store", "account.layout", "account.policy",
	"account.max_message_size", "account.timeout", "account.mirror",
	"account.mirror_max_percent", "account.removed_keep_days", NULL
};

struct section {
	char name[NAME_MAX_LEN + 1];
	int line;
	long acct;               /* index in c->accounts, -1 for [general] */
	int seen[K_NKEYS];       /* line of each key, 0 = absent */
};

struct pctx {
	const char *file;        /* path as given, for messages */
	char *dir;               /* absolute directory of the file */
	const char *buf;
	size_t len, pos;
	int line;
	struct section *secs;
	size_t nsecs;
	long cur;                /* index in secs, -1 before any header */
	struct ms_config *c;
	struct ms_err *e;
	int failed;
};

const char *const *ms_config_keys(void)
{
	return all_keys;
}

static int perr(struct pctx *p, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int perr(struct pctx *p, int line, const char *fmt, ...)
{
	char what[MS_ERR_MSG_MAX];
	va_list ap;

	if (p->failed)
		return MS_ECONFIG;
	p->failed = 1;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	return ms_err_set(p->e, MS_ECONFIG, "%s:%d: %s", p->file, line, what);
}

/* A value for a message: printable, at most 60 bytes. */
static const char *show(const char *v, char *out, size_t n)
{
	size_t i, j = 0;

	for (i = 0; v[i] && j + 4 < n && i < 60; i++)
		out[j++] = isprint((unsigned char)v[i]) ? v[i] : '?';
	if (v[i])
		out[j++] = '.', out[j++] = '.', out[j++] = '.';
	out[j] = '\0';
	return out;
}

static struct section *cursec(struct pctx *p)
{
	return &p->secs[p->cur];
}

static int bad(struct pctx *p, const char *key, const char *val,
	       const char *why)
{
	char v[80];

	return perr(p, p->line, "bad value for \"%s\" in [%s]: \"%s\" %s",
		    key, cursec(p)->name, show(val, v, sizeof v), why);
}

static int oom(struct pctx *p)
{
	p->failed = 1;
	return ms_err_set(p->e, MS_EINTERNAL, "out of memory");
}

static int set_str(struct pctx *p, char **dst, const char *val)
{
	free(*dst);
	*dst = strdup(val);
	return *dst ? 0 : oom(p);
}

/* Decimal without sign; MS_ECONFIG-free: returns -1 on junk/overflow. */
static int parse_uint(const char *s, const char **end, uint64_t *out)
{
	uint64_t v = 0;

	if (!isdigit((unsigned char)*s))
		return -1;
	for (; isdigit((unsigned char)*s); s++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*end = s;
	*out = v;
	return 0;
}

static int set_range(struct pctx *p, const char *key, const char *val,
		     unsigned lo, unsigned hi, unsigned *dst)
{
	const char *end;
	uint64_t v;
	char why[64];

	if (parse_uint(val, &end, &v) < 0 || *end || v < lo || v > hi) {
		snprintf(why, sizeof why, "is not a whole number from %u to %u",
			 lo, hi);
		return bad(p, key, val, why);
	}
	*dst = (unsigned)v;
	return 0;
}

/* Lexically normalise an absolute path: no "", "." or ".." components. */
static void normalise(char *path)
{
	char *out = path, *s = path;
	size_t n;

	while (*s) {
		while (*s == '/')
			s++;
		n = strcspn(s, "/");
		if (n == 0)
			break;
		if (n == 1 && s[0] == '.') {
		} else if (n == 2 && s[0] == '.' && s[1] == '.') {
			while (out > path && *--out != '/')
				;
		} else {
			*out++ = '/';
			memmove(out, s, n);
			out += n;
		}
		s += n;
	}
	if (out == path)
		*out++ = '/';
	*out = '\0';
}

static const char *home_dir(void)
{
	const char *h = getenv("HOME");
	struct passwd *pw;

	if (h && h[0] == '/')
		return h;
	pw = getpwuid(geteuid());
	return pw && pw->pw_dir && pw->pw_dir[0] == '/' ? pw->pw_dir : NULL;
}

/* "~/x" -> $HOME/x, relative -> against base; caller frees. */
static char *resolve(const char *base, const char *v)
{
	const char *home, *pre = base, *rest = v;
	char *out;
	size_t n;

	if (v[0] == '~' && (v[1] == '/' || v[1] == '\0')) {
		if (!(home = home_dir()))
			return NULL;
		pre = home;
		rest = v + 1;
	} else if (v[0] == '/') {
		pre = "";
	}
	n = strlen(pre) + strlen(rest) + 2;
	if (!(out = malloc(n)))
		return NULL;
	snprintf(out, n, "%s/%s", pre, rest);
	normalise(out);
	return out;
}

static int set_path(struct pctx *p, const char *key, const char *shown,
		    const char *val, char **dst)
{
	char *r;

	if (val[0] == '~' && val[1] != '/' && val[1] != '\0')
		return bad(p, key, shown, "uses ~user, which is not supported");
	if (!(r = resolve(p->dir, val)))
		return bad(p, key, shown, "needs $HOME, which is not set");
	free(*dst);
	*dst = r;
	return 0;
}

static const struct scheme {
	const char *pfx;
	int proto, tls, port;
} schemes[] = {
	{ "imaps://", MS_PROTO_IMAP, 1, 993 },
	{ "pop3s://", MS_PROTO_POP3, 1, 995 },
	{ "imap://", MS_PROTO_IMAP, 0, 143 },
	{ "pop3://", MS_PROTO_POP3, 0, 110 },
};

static const char hostchars[] = "abcdefghijklmnopqrstuvwxyz"
				"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-";

/* Split "[v6]" or "name" at the start of h (n bytes of authority). */
static const char *source_host(const char *h, size_t n, const char **hs,
			       const char **he)
{
	const char *end;

	if (h[0] == '[') {
		end = memchr(h, ']', n);
		if (!end || end == h + 1 || !memchr(h + 1, ':', end - h - 1) ||
		    strspn(h + 1, "0123456789abcdefABCDEF:.") !=
			    (size_t)(end - h - 1))
			return NULL;
		*hs = h + 1;
		*he = end;
		return end + 1;
	}
	*hs = h;
	*he = h + strspn(h, hostchars);
	return *he == h ? NULL : *he;
}

static int set_source(struct pctx *p, struct ms_account *a, const char *val)
{
	const struct scheme *sc = NULL;
	const char *h, *hs, *he, *q, *auth_end;
	char host[256], url[320];
	uint64_t port;
	size_t i, n;

	for (i = 0; i < sizeof schemes / sizeof schemes[0] && !sc; i++)
		if (!strncasecmp(val, schemes[i].pfx, strlen(schemes[i].pfx)))
			sc = &schemes[i];
	if (!sc)
		return bad(p, "source", val, "must start with imaps://, "
			   "pop3s://, imap:// or pop3://");
	h = val + strlen(sc->pfx);
	n = strcspn(h, "/?#");
	auth_end = h + n;
	if (memchr(h, '@', n))
		return bad(p, "source", val, "must not contain a user name "
			   "(use the \"user\" key)");
	if (*auth_end && strcmp(auth_end, "/"))
		return bad(p, "source", val, "must not have a path or query");
	if (!(q = source_host(h, n, &hs, &he)) || q > auth_end)
		return bad(p, "source", val, "has no valid host name");
	if ((size_t)(he - hs) >= sizeof host)
		return bad(p, "source", val, "has a host name that is too long");
	port = (uint64_t)sc->port;
	if (q < auth_end && *q == ':' &&
	    (parse_uint(q + 1, &q, &port) < 0 || q != auth_end || port < 1 ||
	     port > 65535))
		return bad(p, "source", val, "has a bad port");
	if (q != auth_end)
		return bad(p, "source", val, "has a bad host name");
	for (i = 0; hs + i < he; i++)
		host[i] = (char)tolower((unsigned char)hs[i]);
	host[i] = '\0';
	a->proto = sc->proto;
	a->tls_implicit = sc->tls;
	a->port = (int)port;
	snprintf(url, sizeof url, "%s%s%s%s:%d/", sc->pfx,
		 *h == '[' ? "[" : "", host, *h == '[' ? "]" : "", a->port);
	if (set_str(p, &a->host, host) || set_str(p, &a->url, url))
		return MS_EINTERNAL;
	return 0;
}

static int b64val(int ch)
{
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				 "abcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *s = ch ? strchr(al, ch) : NULL;

	return s ? (int)(s - al) : -1;
}

/* "sha256//" + canonical base64 of 32 bytes: 43 symbols and one '='. */
static int pin_ok(const char *s, size_t n)
{
	size_t i;

	if (n != 8 + 44 || strncmp(s, "sha256//", 8))
		return 0;
	for (i = 8; i < 8 + 43; i++)
		if (b64val((unsigned char)s[i]) < 0)
			return 0;
	return s[8 + 43] == '=' && (b64val((unsigned char)s[8 + 42]) & 3) == 0;
}

static int set_pin(struct pctx *p, struct ms_account *a, const char *val)
{
	char *out = malloc(strlen(val) + 1), *o = out;
	const char *s = val;
	size_t n;

	if (!out)
		return oom(p);
	for (;;) {
		s += strspn(s, " \t");
		n = strcspn(s, ";");
		while (n && isspace((unsigned char)s[n - 1]))
			n--;
		if (!pin_ok(s, n)) {
			free(out);
			return bad(p, "tls_pin", val, "must be sha256//BASE64 "
				   "(of a 32-byte SHA-256 digest), separated "
				   "by \";\"");
		}
		memcpy(o, s, n);
		o += n;
		s += strcspn(s, ";");
		if (!*s++)
			break;
		*o++ = ';';
	}
	*o = '\0';
	free(a->tls_pin);
	a->tls_pin = out;
	return 0;
}

/* Whitespace-separated words; "..." keeps spaces, \" and \\ inside. */
static int next_word(const char **sp, char *w, size_t *wl)
{
	const char *s = *sp;
	size_t j = 0;

	while (*s && !isspace((unsigned char)*s)) {
		if (*s != '"') {
			w[j++] = *s++;
			continue;
		}
		for (s++; *s && *s != '"'; s++) {
			if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
				s++;
			w[j++] = *s;
		}
		if (!*s)
			return -1;
		s++;
	}
	w[j] = '\0';
	*wl = j;
	*sp = s;
	return 0;
}

static int set_folders(struct pctx *p, struct ms_account *a, const char *val)
{
	const char *s = val;
	char *w = malloc(strlen(val) + 1), **v;
	size_t wl;
	int rc = 0;

	if (!w)
		return oom(p);
	for (;;) {
		s += strspn(s, " \t");
		if (!*s)
			break;
		if (next_word(&s, w, &wl) < 0) {
			rc = bad(p, "folders", val, "has an unterminated quote");
			break;
		}
		if (wl == 0 || !strcmp(w, "!")) {
			rc = bad(p, "folders", val, "has an empty pattern");
			break;
		}
		v = realloc(a->folders, (a->nfolders + 1) * sizeof *v);
		if (v)
			a->folders = v;
		if (!v || !(v[a->nfolders] = strdup(w))) {
			rc = oom(p);
			break;
		}
		a->nfolders++;
	}
	free(w);
	return rc;
}

static int set_store(struct pctx *p, struct ms_account *a, const char *val)
{
	const char *path;

	if (!strncmp(val, "maildir:", 8)) {
		a->store = MS_STORE_MAILDIR;
		path = val + 8;
	} else if (!strncmp(val, "mbox:", 5)) {
		a->store = MS_STORE_MBOX;
		path = val + 5;
	} else {
		return bad(p, "store", val, "must be maildir:PATH or mbox:PATH");
	}
	if (!*path)
		return bad(p, "store", val, "has no path");
	return set_path(p, "store", val, path, &a->store_path);
}

static int set_policy(struct pctx *p, struct ms_account *a, const char *val)
{
	const char *s;
	uint64_t n;

	if (!strcmp(val, "keep")) {
		a->policy = MS_POLICY_KEEP;
		return 0;
	}
	if (!strcmp(val, "delete")) {
		a->policy = MS_POLICY_DELETE;
		return 0;
	}
	s = val + 12;
	if (strncmp(val, "delete-after", 12) || !isspace((unsigned char)*s))
		return bad(p, "policy", val, "must be keep, delete or "
			   "delete-after DAYS");
	s += strspn(s, " \t");
	if (parse_uint(s, &s, &n) < 0 || (*s == 'd' && *++s) || *s ||
	    n < 1 || n > 36500)
		return bad(p, "policy", val, "must give DAYS as a whole number "
			   "from 1 to 36500 (\"30\" or \"30d\")");
	a->policy = MS_POLICY_DELETE_AFTER;
	a->delete_after_days = (unsigned)n;
	return 0;
}

static int set_size(struct pctx *p, struct ms_account *a, const char *val)
{
	const char *s;
	uint64_t n, mul = 1;

	if (parse_uint(val, &s, &n) < 0)
		return bad(p, "max_message_size", val, "must be a number of "
			   "bytes with an optional K, M or G suffix");
	switch (*s) {
	case 'k': case 'K': mul = 1024; s++; break;
	case 'm': case 'M': mul = 1024 * 1024; s++; break;
	case 'g': case 'G': mul = 1024 * 1024 * 1024; s++; break;
	}
	if (*s)
		return bad(p, "max_message_size", val, "must be a number of "
			   "bytes with an optional K, M or G suffix");
	if (n > UINT64_MAX / mul)
		return bad(p, "max_message_size", val, "is too large");
	a->max_message_size = n * mul;
	return 0;
}

/* Map a word to an enum value through a NULL-terminated name table. */
static int set_word(struct pctx *p, const char *key, const char *val,
		    const char *const *names, const char *why, int *dst)
{
	int i;

	for (i = 0; names[i]; i++)
		if (!strcmp(val, names[i])) {
			*dst = i;
			return 0;
		}
	return bad(p, key, val, why);
}

static int set_ca(struct pctx *p, struct ms_account *a, const char *val)
{
	char why[128];
	int rc = set_path(p, "tls_ca_file", val, val, &a->tls_ca_file);

	if (rc || access(a->tls_ca_file, R_OK) == 0)
		return rc;
	snprintf(why, sizeof why, "cannot be read: %s", strerror(errno));
	return bad(p, "tls_ca_file", val, why);
}

static int set_account(struct pctx *p, struct ms_account *a, int k,
		       const char *val)
{
	static const char *const auths[] = { "auto", "plain", "login",
		"xoauth2", "oauthbearer", NULL };
	static const char *const layouts[] = { "verbatim", "maildir++", NULL };
	static const char *const mirrors[] = { "no", "flags", "full", NULL };
	int v = 0, rc;

	switch (k) {
	case K_SOURCE: return set_source(p, a, val);
	case K_USER: return set_str(p, &a->user, val);
	case K_PASSWORD: return set_str(p, &a->password, val);
	case K_PASSWORD_FILE:
		return set_path(p, "password_file", val, val, &a->password_file);
	case K_PASSWORD_COMMAND: return set_str(p, &a->password_command, val);
	case K_AUTH:
		rc = set_word(p, "auth", val, auths, "must be auto, plain, "
			      "login, xoauth2 or oauthbearer", &v);
		a->auth = (enum ms_auth)v;
		return rc;
	case K_TLS_CA_FILE: return set_ca(p, a, val);
	case K_TLS_PIN: return set_pin(p, a, val);
	case K_FOLDERS: return set_folders(p, a, val);
	case K_STORE: return set_store(p, a, val);
	case K_LAYOUT:
		rc = set_word(p, "layout", val, layouts, "must be verbatim or "
			      "maildir++", &v);
		a->layout = (enum ms_layout)v;
		return rc;
	case K_POLICY: return set_policy(p, a, val);
	case K_MAX_MESSAGE_SIZE: return set_size(p, a, val);
	case K_TIMEOUT:
		return set_range(p, "timeout", val, 1, 3600, &a->timeout);
	case K_MIRROR:
		rc = set_word(p, "mirror", val, mirrors, "must be no, flags or "
			      "full", &v);
		a->mirror = (enum ms_mirror)v;
		return rc;
	case K_MIRROR_MAX_PERCENT:
		return set_range(p, "mirror_max_percent", val, 0, 100,
				 &a->mirror_max_percent);
	default:
		return set_range(p, "removed_keep_days", val, 0, 36500,
				 &a->removed_keep_days);
	}
}

static int set_general(struct pctx *p, int k, const char *val)
{
	if (k == G_STATE_DIR)
		return set_path(p, "state_dir", val, val, &p->c->state_dir);
	return set_range(p, "jobs", val, 1, 64, &p->c->jobs);
}

static int key_index(const char *const *keys, const char *name)
{
	int i;

	for (i = 0; keys[i]; i++)
		if (!strcmp(keys[i], name))
			return i;
	return -1;
}

static int handler(void *user, const char *section, const char *name,
		   const char *value)
{
	struct pctx *p = user;
	struct section *sec;
	char n[80];
	const char *s;
	int k;

	(void)section; /* inih truncates it; we track sections ourselves */
	if (p->failed)
		return 0;
	if (p->cur < 0)
		return !perr(p, p->line, "key \"%s\" outside any section",
			     show(name, n, sizeof n));
	sec = cursec(p);
	k = key_index(sec->acct < 0 ? general_keys : account_keys, name);
	if (k < 0)
		return !perr(p, p->line, "unknown key \"%s\" in [%s]",
			     show(name, n, sizeof n), sec->name);
	if (sec->seen[k])
		return !perr(p, p->line, "duplicate key \"%s\" in [%s] (first "
			     "on line %d)", name, sec->name, sec->seen[k]);
	sec->seen[k] = p->line;
	if (!*value)
		return !perr(p, p->line, "empty value for \"%s\" in [%s]",
			     name, sec->name);
	for (s = value; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return !perr(p, p->line, "control character in the "
				     "value of \"%s\" in [%s]", name,
				     sec->name);
	if (sec->acct < 0)
		return set_general(p, k, value) == 0;
	return set_account(p, &p->c->accounts[sec->acct], k, value) == 0;
}

static int name_ok(const char *s, size_t n)
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyz"
				 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
	size_t i;

	if (n < 1 || n > NAME_MAX_LEN)
		return 0;
	for (i = 0; i < n; i++)
		if (!s[i] || !strchr(ok, s[i]))
			return 0;
	return 1;
}

static int new_account(struct pctx *p, struct section *sec)
{
	struct ms_config *c = p->c;
	struct ms_account *v, *a;

	v = realloc(c->accounts, (c->naccounts + 1) * sizeof *v);
	if (!v)
		return oom(p);
	c->accounts = v;
	a = memset(&v[c->naccounts], 0, sizeof *a);
	sec->acct = (long)c->naccounts++;
	a->timeout = 60;
	a->mirror_max_percent = 20;
	a->removed_keep_days = 30;
	a->cfg_line = sec->line;
	if (!(a->name = strdup(sec->name)) || !(a->cfg_file = strdup(p->file)))
		return oom(p);
	return 0;
}

/* A "[name]" line: validate, refuse duplicates, start the section. */
static int section_line(struct pctx *p, const char *s)
{
	struct section *v, *sec;
	const char *end = strchr(s, ']'), *rest;
	char n[80];
	size_t i, len;

	if (!end)
		return perr(p, p->line, "syntax error: missing \"]\"");
	rest = end + 1 + strspn(end + 1, " \t\r\n");
	if (*rest && *rest != ';' && *rest != '#')
		return perr(p, p->line, "syntax error: text after \"]\"");
	len = (size_t)(end - s - 1);
	snprintf(n, sizeof n, "%.*s", (int)(len < 70 ? len : 70), s + 1);
	if (!name_ok(s + 1, len))
		return perr(p, p->line, "bad section name \"%s\": use 1 to 64 "
			    "of A-Z a-z 0-9 . _ -", show(n, n, sizeof n));
	for (i = 0; i < p->nsecs; i++)
		if (!strcmp(p->secs[i].name, n))
			return perr(p, p->line, "duplicate section [%s] "
				    "(first on line %d)", n, p->secs[i].line);
	if (!(v = realloc(p->secs, (p->nsecs + 1) * sizeof *v)))
		return oom(p);
	p->secs = v;
	sec = memset(&v[p->nsecs], 0, sizeof *sec);
	memcpy(sec->name, n, len + 1);
	sec->line = p->line;
	sec->acct = -1;
	p->cur = (long)p->nsecs++;
	return strcmp(n, "general") ? new_account(p, sec) : 0;
}

/* inih's line source: one line per call, counted, length-checked. */
static char *reader(char *str, int num, void *stream)
{
	struct pctx *p = stream;
	const char *l, *nl, *s;
	size_t n, clen;

	if (p->failed || p->pos >= p->len)
		return NULL;
	l = p->buf + p->pos;
	nl = memchr(l, '\n', p->len - p->pos);
	n = nl ? (size_t)(nl - l) + 1 : p->len - p->pos;
	p->pos += n;
	p->line++;
	clen = nl ? n - 1 : n;
	if (clen && l[clen - 1] == '\r')
		clen--;
	if (clen > MS_CONFIG_MAX_LINE || n + 1 > (size_t)num) {
		perr(p, p->line, "line too long (over %d characters)",
		     MS_CONFIG_MAX_LINE);
		return NULL;
	}
	memcpy(str, l, n);
	str[n] = '\0';
	s = str;
	if (p->line == 1 && !strncmp(s, "\xEF\xBB\xBF", 3))
		s += 3;
	s += strspn(s, " \t\v\f\r");
	if (*s == '[' && section_line(p, s) < 0)
		return NULL;
	return str;
}

static int parse(struct pctx *p)
{
	int max_line = ini_max_line, r;
	bool multiline = ini_allow_multiline, stop = ini_stop_on_first_error;

	/* Debian's inih sizes its line buffer from ini_max_line at run time.
	 * Continuation lines would turn a stray indent into a duplicate. */
	ini_max_line = MS_CONFIG_MAX_LINE + 3;
	ini_allow_multiline = false;
	ini_stop_on_first_error = true;
	r = ini_parse_stream(reader, p, handler, p);
	ini_max_line = max_line;
	ini_allow_multiline = multiline;
	ini_stop_on_first_error = stop;
	if (p->failed)
		return p->e->code;
	if (r > 0)
		return perr(p, r, "syntax error: expected \"[section]\" or "
			    "\"key = value\"");
	if (r < 0)
		return oom(p);
	if (p->c->naccounts == 0)
		return ms_err_set(p->e, MS_ECONFIG, "%s: no accounts (add a "
				  "[NAME] section with source, user, store "
				  "and a password source)", p->file);
	return 0;
}

static int validate(struct pctx *p, const struct section *sec)
{
	static const int req[] = { K_SOURCE, K_USER, K_STORE };
	static const int pw[] = { K_PASSWORD, K_PASSWORD_FILE,
				  K_PASSWORD_COMMAND };
	const struct ms_account *a = &p->c->accounts[sec->acct];
	int i, n = 0, last = 0;

	for (i = 0; i < 3; i++)
		if (!sec->seen[req[i]])
			return perr(p, sec->line, "missing required key \"%s\" "
				    "in [%s]", account_keys[req[i]], sec->name);
	for (i = 0; i < 3; i++)
		if (sec->seen[pw[i]]) {
			n++;
			last = last > sec->seen[pw[i]] ? last : sec->seen[pw[i]];
		}
	if (n == 0)
		return perr(p, sec->line, "missing \"password\", "
			    "\"password_file\" or \"password_command\" in [%s]",
			    sec->name);
	if (n > 1)
		return perr(p, last, "only one of \"password\", "
			    "\"password_file\" and \"password_command\" may be "
			    "set in [%s]", sec->name);
	if (a->proto == MS_PROTO_POP3 && sec->seen[K_FOLDERS])
		return perr(p, sec->seen[K_FOLDERS], "\"folders\" in [%s] needs "
			    "an IMAP source", sec->name);
	if (a->proto == MS_PROTO_POP3 && a->mirror != MS_MIRROR_NO)
		return perr(p, sec->seen[K_MIRROR], "\"mirror\" in [%s] needs "
			    "an IMAP source", sec->name);
	return 0;
}

/* An inline password needs a file only its owner can read (F32). */
static int check_perms(struct pctx *p, const struct stat *st)
{
	size_t i;

	for (i = 0; i < p->c->naccounts; i++)
		if (p->c->accounts[i].password)
			break;
	if (i == p->c->naccounts)
		return 0;
	if (st->st_uid != geteuid())
		return ms_err_set(p->e, MS_ECONFIG, "config %s: owned by uid "
				  "%u, not %u, must be yours because it "
				  "contains a password", p->file,
				  (unsigned)st->st_uid, (unsigned)geteuid());
	if (st->st_mode & 077)
		return ms_err_set(p->e, MS_ECONFIG, "config %s: mode %04o, "
				  "must be 0600 or stricter because it "
				  "contains a password", p->file,
				  (unsigned)(st->st_mode & 07777));
	return 0;
}

static char *xdg_path(const char *var, const char *fallback,
		      const char *tail)
{
	const char *x = getenv(var), *home;
	size_t n;
	char *out;

	home = x && x[0] == '/' ? NULL : home_dir();
	if (!(x && x[0] == '/') && !home)
		return NULL;
	n = (x && x[0] == '/' ? strlen(x) : strlen(home) + strlen(fallback)) +
	    strlen(tail) + 3;
	if (!(out = malloc(n)))
		return NULL;
	if (x && x[0] == '/')
		snprintf(out, n, "%s/%s", x, tail);
	else
		snprintf(out, n, "%s/%s/%s", home, fallback, tail);
	normalise(out);
	return out;
}

char *ms_config_default_path(void)
{
	return xdg_path("XDG_CONFIG_HOME", ".config", "mailsync/mailsync.ini");
}

static int finish(struct pctx *p, const struct stat *st)
{
	size_t i;
	int rc;

	for (i = 0; i < p->nsecs; i++)
		if (p->secs[i].acct >= 0 && (rc = validate(p, &p->secs[i])))
			return rc;
	if ((rc = check_perms(p, st)))
		return rc;
	if (!p->c->state_dir &&
	    !(p->c->state_dir = xdg_path("XDG_STATE_HOME", ".local/state",
					 "mailsync")))
		return ms_err_set(p->e, MS_ECONFIG, "%s: cannot find the state "
				  "directory: set HOME or state_dir", p->file);
	return 0;
}

/* Absolute directory of the config file, for relative paths in it. */
static char *file_dir(const char *path)
{
	char cwd[PATH_MAX], *abs, *slash;
	size_t n;

	if (path[0] != '/' && !getcwd(cwd, sizeof cwd))
		return NULL;
	n = strlen(path) + (path[0] == '/' ? 0 : strlen(cwd)) + 2;
	if (!(abs = malloc(n)))
		return NULL;
	snprintf(abs, n, "%s/%s", path[0] == '/' ? "" : cwd, path);
	normalise(abs);
	slash = strrchr(abs, '/');
	slash[slash == abs] = '\0';
	return abs;
}

static int read_file(int fd, const char *path, char **buf, size_t *len,
		     struct ms_err *e)
{
	size_t cap = CFG_MAX_FILE + 1, n = 0;
	ssize_t r;

	if (!(*buf = malloc(cap)))
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	while (n < cap) {
		r = read(fd, *buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return ms_err_sys(e, MS_ECONFIG, errno, "%s: cannot "
					  "read", path);
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > CFG_MAX_FILE)
		return ms_err_set(e, MS_ECONFIG, "%s: too large (over 1 MiB)",
				  path);
	*len = n;
	return 0;
}

int ms_config_load(struct ms_config **out, const char *path,
		   struct ms_err *e)
{
	struct pctx p = { .file = path, .cur = -1, .e = e };
	char *buf = NULL;
	const char *nul;
	struct stat st;
	size_t len = 0;
	int fd = -1, rc;

	*out = NULL;
	if (!(p.c = calloc(1, sizeof *p.c)) || !(p.c->path = strdup(path)) ||
	    !(p.dir = file_dir(path))) {
		rc = ms_err_set(e, MS_EINTERNAL, "out of memory");
		goto out;
	}
	p.c->jobs = 1;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = ms_err_sys(e, MS_ECONFIG, errno, "%s: cannot open", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = ms_err_set(e, MS_ECONFIG, "%s: not a regular file", path);
		goto out;
	}
	if ((rc = read_file(fd, path, &buf, &len, e)))
		goto out;
	if ((nul = memchr(buf, '\0', len))) {
		for (p.line = 1, p.buf = buf; p.buf < nul; p.buf++)
			p.line += *p.buf == '\n';
		rc = perr(&p, p.line, "NUL byte in the file");
		goto out;
	}
	p.buf = buf;
	p.len = len;
	if ((rc = parse(&p)) || (rc = finish(&p, &st)))
		goto out;
	*out = p.c;
	p.c = NULL;
out:
	if (buf) {
		explicit_bzero(buf, len);
		free(buf);
	}
	if (fd >= 0)
		close(fd);
	free(p.secs);
	free(p.dir);
	ms_config_free(p.c);
	return rc;
}

static void wipe_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

void ms_config_free(struct ms_config *c)
{
	struct ms_account *a;
	size_t i, j;

	if (!c)
		return;
	for (i = 0; i < c->naccounts; i++) {
		a = &c->accounts[i];
		wipe_free(a->password);
		wipe_free(a->password_command);
		free(a->name);
		free(a->cfg_file);
		free(a->host);
		free(a->url);
		free(a->user);
		free(a->password_file);
		free(a->tls_ca_file);
		free(a->tls_pin);
		for (j = 0; j < a->nfolders; j++)
			free(a->folders[j]);
		free(a->folders);
		free(a->store_path);
	}
	free(c->accounts);
	free(c->state_dir);
	free(c->path);
	free(c);
}

const struct ms_account *ms_config_account(const struct ms_config *c,
					   const char *name)
{
	size_t i;

	for (i = 0; c && name && i < c->naccounts; i++)
		if (!strcmp(c->accounts[i].name, name))
			return &c->accounts[i];
	return NULL;
}
