/*
 * config_value.c: one configuration value at a time, from text to the
 * fields of struct ms_config / struct ms_account.
 *
 * Pure parsing (plus access(2) for tls_ca_file): every value is checked
 * completely and refused with a reason rather than guessed at -- a port of
 * 0, a "delete-after" without days, a pin that is not a SHA-256 digest.
 * Paths get "~/" expanded and are made absolute against the config
 * file's directory, lexically normalised.
 */
#include "config_int.h"
#include "rules.h"

#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct vctx {
	const char *dir;  /* absolute directory of the config file */
	char *why;        /* reason for a bad value */
	size_t whylen;
};

static int bad(struct vctx *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int bad(struct vctx *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->why, p->whylen, fmt, ap);
	va_end(ap);
	return MS_ECONFIG;
}

static int oom(struct vctx *p)
{
	snprintf(p->why, p->whylen, "out of memory");
	return MS_EINTERNAL;
}

static int set_str(struct vctx *p, char **dst, const char *val)
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

static int set_range(struct vctx *p, const char *val,
		     unsigned lo, unsigned hi, unsigned *dst)
{
	const char *end;
	uint64_t v;
	char why[64];

	if (parse_uint(val, &end, &v) < 0 || *end || v < lo || v > hi) {
		snprintf(why, sizeof why, "is not a whole number from %u to %u",
			 lo, hi);
		return bad(p, "%s", why);
	}
	*dst = (unsigned)v;
	return 0;
}

/* Lexically normalise an absolute path: no "", "." or ".." components. */
void ms_config_normalise(char *path)
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

const char *ms_config_home(void)
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
		if (!(home = ms_config_home()))
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
	ms_config_normalise(out);
	return out;
}

static int set_path(struct vctx *p, const char *val, char **dst)
{
	char *r;

	if (val[0] == '~' && val[1] != '/' && val[1] != '\0')
		return bad(p, "uses ~user, which is not supported");
	if (!(r = resolve(p->dir, val)))
		return bad(p, "needs $HOME, which is not set");
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

static int set_source(struct vctx *p, struct ms_account *a, const char *val)
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
		return bad(p, "must start with imaps://, "
			   "pop3s://, imap:// or pop3://");
	h = val + strlen(sc->pfx);
	n = strcspn(h, "/?#");
	auth_end = h + n;
	if (memchr(h, '@', n))
		return bad(p, "must not contain a user name "
			   "(use the \"user\" key)");
	if (*auth_end && strcmp(auth_end, "/"))
		return bad(p, "must not have a path or query");
	if (!(q = source_host(h, n, &hs, &he)) || q > auth_end)
		return bad(p, "has no valid host name");
	if ((size_t)(he - hs) >= sizeof host)
		return bad(p, "has a host name that is too long");
	port = (uint64_t)sc->port;
	if (q < auth_end && *q == ':' &&
	    (parse_uint(q + 1, &q, &port) < 0 || q != auth_end || port < 1 ||
	     port > 65535))
		return bad(p, "has a bad port");
	if (q != auth_end)
		return bad(p, "has a bad host name");
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

static int set_pin(struct vctx *p, struct ms_account *a, const char *val)
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
			return bad(p, "must be sha256//BASE64 "
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

static int set_folders(struct vctx *p, struct ms_account *a, const char *val)
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
			rc = bad(p, "has an unterminated quote");
			break;
		}
		if (wl == 0 || !strcmp(w, "!")) {
			rc = bad(p, "has an empty pattern");
			break;
		}
		if (w[w[0] == '!'] == '\\' &&
		    !ms_rules_special_use(w + (w[0] == '!'))) {
			rc = bad(p, "has an unknown special-use attribute "
				 "\"%s\" (known: \\All \\Archive \\Drafts "
				 "\\Flagged \\Junk \\Sent \\Trash)",
				 w + (w[0] == '!'));
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

static int set_store(struct vctx *p, struct ms_account *a, const char *val)
{
	const char *path;

	if (!strncmp(val, "maildir:", 8)) {
		a->store = MS_STORE_MAILDIR;
		path = val + 8;
	} else if (!strncmp(val, "mbox:", 5)) {
		a->store = MS_STORE_MBOX;
		path = val + 5;
	} else {
		return bad(p, "must be maildir:PATH or mbox:PATH");
	}
	if (!*path)
		return bad(p, "has no path");
	return set_path(p, path, &a->store_path);
}

static int set_policy(struct vctx *p, struct ms_account *a, const char *val)
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
		return bad(p, "must be keep, delete or "
			   "delete-after DAYS");
	s += strspn(s, " \t");
	if (parse_uint(s, &s, &n) < 0 || (*s == 'd' && *++s) || *s ||
	    n < 1 || n > 36500)
		return bad(p, "must give DAYS as a whole number "
			   "from 1 to 36500 (\"30\" or \"30d\")");
	a->policy = MS_POLICY_DELETE_AFTER;
	a->delete_after_days = (unsigned)n;
	return 0;
}

static int set_size(struct vctx *p, struct ms_account *a, const char *val)
{
	const char *s;
	uint64_t n, mul = 1;

	if (parse_uint(val, &s, &n) < 0)
		return bad(p, "must be a number of "
			   "bytes with an optional K, M or G suffix");
	switch (*s) {
	case 'k': case 'K': mul = 1024; s++; break;
	case 'm': case 'M': mul = 1024 * 1024; s++; break;
	case 'g': case 'G': mul = 1024 * 1024 * 1024; s++; break;
	}
	if (*s)
		return bad(p, "must be a number of "
			   "bytes with an optional K, M or G suffix");
	if (n > UINT64_MAX / mul)
		return bad(p, "is too large");
	a->max_message_size = n * mul;
	return 0;
}

/* Map a word to an enum value through a NULL-terminated name table. */
static int set_word(struct vctx *p, const char *val,
		    const char *const *names, const char *why, int *dst)
{
	int i;

	for (i = 0; names[i]; i++)
		if (!strcmp(val, names[i])) {
			*dst = i;
			return 0;
		}
	return bad(p, "%s", why);
}

static int set_ca(struct vctx *p, struct ms_account *a, const char *val)
{
	char why[128];
	int rc = set_path(p, val, &a->tls_ca_file);

	if (rc || access(a->tls_ca_file, R_OK) == 0)
		return rc;
	snprintf(why, sizeof why, "cannot be read: %s", strerror(errno));
	return bad(p, "%s", why);
}

int ms_config_set_account(struct ms_account *a, int k, const char *val,
			  const char *dir, char *why, size_t whylen)
{
	struct vctx vc = { dir, why, whylen }, *p = &vc;
	static const char *const auths[] = { "auto", "plain", "login",
		"xoauth2", "oauthbearer", NULL };
	static const char *const layouts[] = { "verbatim", "maildir++", NULL };
	static const char *const mirrors[] = { "no", "flags", "full", NULL };
	static const char *const gmails[] = { "no", "all-mail", NULL };
	int v = 0, rc;

	switch (k) {
	case K_SOURCE: return set_source(p, a, val);
	case K_USER: return set_str(p, &a->user, val);
	case K_PASSWORD: return set_str(p, &a->password, val);
	case K_PASSWORD_FILE:
		return set_path(p, val, &a->password_file);
	case K_PASSWORD_COMMAND: return set_str(p, &a->password_command, val);
	case K_AUTH:
		rc = set_word(p, val, auths, "must be auto, plain, "
			      "login, xoauth2 or oauthbearer", &v);
		a->auth = (enum ms_auth)v;
		return rc;
	case K_TLS_CA_FILE: return set_ca(p, a, val);
	case K_TLS_PIN: return set_pin(p, a, val);
	case K_FOLDERS: return set_folders(p, a, val);
	case K_STORE: return set_store(p, a, val);
	case K_LAYOUT:
		rc = set_word(p, val, layouts, "must be verbatim or "
			      "maildir++", &v);
		a->layout = (enum ms_layout)v;
		return rc;
	case K_POLICY: return set_policy(p, a, val);
	case K_MAX_MESSAGE_SIZE: return set_size(p, a, val);
	case K_TIMEOUT:
		return set_range(p, val, 1, 3600, &a->timeout);
	case K_MIRROR:
		rc = set_word(p, val, mirrors, "must be no, flags or "
			      "full", &v);
		a->mirror = (enum ms_mirror)v;
		return rc;
	case K_MIRROR_MAX_PERCENT:
		return set_range(p, val, 0, 100,
				 &a->mirror_max_percent);
	case K_GMAIL:
		rc = set_word(p, val, gmails, "must be no or all-mail", &v);
		a->gmail = (enum ms_gmail)v;
		return rc;
	default:
		return set_range(p, val, 0, 36500,
				 &a->removed_keep_days);
	}
}

int ms_config_set_general(struct ms_config *c, int k, const char *val,
			  const char *dir, char *why, size_t whylen)
{
	struct vctx vc = { dir, why, whylen }, *p = &vc;

	if (k == G_STATE_DIR)
		return set_path(p, val, &c->state_dir);
	return set_range(p, val, 1, 64, &c->jobs);
}

