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
 * Values are parsed in config_value.c, secrets fetched in config_secret.c.
 */
#include "config.h"
#include "config_int.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
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
	"mirror_max_percent", "removed_keep_days", "gmail", NULL
};
static const char *const all_keys[] = {
	"general.state_dir", "general.jobs",
	"account.source", "account.user", "account.password",
	"account.password_file", "account.password_command", "account.auth",
	"account.tls_ca_file", "account.tls_pin", "account.folders",
	"account.store", "account.layout", "account.policy",
	"account.max_message_size", "account.timeout", "account.mirror",
	"account.mirror_max_percent", "account.removed_keep_days",
	"account.gmail", NULL
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
	char n[80], why[256];
	const char *s;
	int k, rc;

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
		rc = ms_config_set_general(p->c, k, value, p->dir, why,
					   sizeof why);
	else
		rc = ms_config_set_account(&p->c->accounts[sec->acct], k,
					   value, p->dir, why, sizeof why);
	if (rc == MS_EINTERNAL)
		return !oom(p);
	return rc ? !bad(p, name, value, why) : 1;
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
	char n[80], shown[80];
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
			    "of A-Z a-z 0-9 . _ -%s",
			    show(n, shown, sizeof shown),
			    strncmp(n, "account ", 8) ? "" : " (an account "
			    "section is just [NAME])");
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

/* gmail = all-mail backs up the \\All folder alone and keeps the server
 * as it is: deleting from All Mail would remove a message from every
 * label at once. */
static int validate_gmail(struct pctx *p, const struct section *sec)
{
	const struct ms_account *a = &p->c->accounts[sec->acct];

	if (a->proto != MS_PROTO_IMAP)
		return perr(p, sec->seen[K_GMAIL], "\"gmail = all-mail\" in "
			    "[%s] needs an IMAP source", sec->name);
	if (sec->seen[K_FOLDERS])
		return perr(p, sec->seen[K_FOLDERS], "\"folders\" in [%s] "
			    "cannot be combined with \"gmail = all-mail\", "
			    "which backs up only the \\All folder", sec->name);
	if (a->policy != MS_POLICY_KEEP || a->mirror != MS_MIRROR_NO)
		return perr(p, sec->seen[K_GMAIL], "\"gmail = all-mail\" in "
			    "[%s] needs policy = keep and mirror = no",
			    sec->name);
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
			if (sec->seen[pw[i]] > last)
				last = sec->seen[pw[i]];
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
		return perr(p, sec->seen[K_FOLDERS], "\"folders\" in [%s] "
			    "needs an IMAP source", sec->name);
	if (a->proto == MS_PROTO_POP3 && a->mirror != MS_MIRROR_NO)
		return perr(p, sec->seen[K_MIRROR], "\"mirror\" in [%s] needs "
			    "an IMAP source", sec->name);
	if (a->gmail == MS_GMAIL_ALL_MAIL)
		return validate_gmail(p, sec);
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

	home = x && x[0] == '/' ? NULL : ms_config_home();
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
	ms_config_normalise(out);
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
	ms_config_normalise(abs);
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
