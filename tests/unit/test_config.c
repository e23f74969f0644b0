/*
 * test_config.c: config loading (every key, good and bad, with the exact
 * "FILE:LINE: message"), permission rules, secret sources, and the docs:
 * mailsync.ini.example loads, every key and option is in the man pages.
 * Files are written under a mkdtemp directory; HOME points there too.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "t.h"

static char dir[64];
static char srcdir[4096];
static int nfile;

static void write_file(const char *path, const char *body, size_t len,
		       mode_t mode)
{
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, body, len) != (ssize_t)len) {
		perror(path);
		exit(2);
	}
	fchmod(fd, mode);
	close(fd);
}

/* A new config file holding body; returns its path (static buffer). */
static const char *cfg(const char *body, mode_t mode)
{
	static char path[128];

	snprintf(path, sizeof path, "%s/c%d.ini", dir, ++nfile);
	write_file(path, body, strlen(body), mode);
	return path;
}

/* Load body; return the error message ("" when it loaded). */
static const char *load_msg(const char *body, mode_t mode, const char **path)
{
	static struct ms_err e;
	struct ms_config *c = NULL;

	ms_err_clear(&e);
	*path = cfg(body, mode);
	if (ms_config_load(&c, *path, &e) == 0) {
		ms_config_free(c);
		return "";
	}
	if (e.code != MS_ECONFIG)
		snprintf(e.msg, sizeof e.msg, "code %d", e.code);
	return e.msg;
}

/* The account under test is [a]; its lines, minus the key under test. */
static void account_body(char *out, size_t n, const char *key,
			 const char *val, int *line)
{
	static const char *const base[][2] = {
		{ "source", "imaps://h" }, { "user", "u" },
		{ "store", "maildir:/m" }, { "password_command", "echo pw" },
	};
	size_t i, len;

	len = (size_t)snprintf(out, n, "[a]\n");
	*line = 1;
	for (i = 0; i < 4; i++) {
		if (!strcmp(key, base[i][0]) ||
		    (i == 3 && !strncmp(key, "password", 8)))
			continue;
		len += (size_t)snprintf(out + len, n - len, "%s = %s\n",
					base[i][0], base[i][1]);
		(*line)++;
	}
	snprintf(out + len, n - len, "%s = %s\n", key, val);
	(*line)++;
}

static char *join_folders(const struct ms_account *a, char *out, size_t n)
{
	size_t i, len = 0;

	out[0] = '\0';
	for (i = 0; i < a->nfolders; i++)
		len += (size_t)snprintf(out + len, n - len, "%s%s",
					i ? "|" : "", a->folders[i]);
	return out;
}

/* The parsed field for a key, as text. */
static const char *describe(const struct ms_config *c, const char *key,
			    char *out, size_t n)
{
	const struct ms_account *a = ms_config_account(c, "a");

	if (!strcmp(key, "state_dir"))
		snprintf(out, n, "%s", c->state_dir);
	else if (!strcmp(key, "jobs"))
		snprintf(out, n, "%u", c->jobs);
	else if (!strcmp(key, "source"))
		snprintf(out, n, "%d %d %s %d %s", a->proto, a->tls_implicit,
			 a->host, a->port, a->url);
	else if (!strcmp(key, "user"))
		snprintf(out, n, "%s", a->user);
	else if (!strcmp(key, "password"))
		snprintf(out, n, "%s", a->password);
	else if (!strcmp(key, "password_file"))
		snprintf(out, n, "%s", a->password_file);
	else if (!strcmp(key, "password_command"))
		snprintf(out, n, "%s", a->password_command);
	else if (!strcmp(key, "auth"))
		snprintf(out, n, "%d", a->auth);
	else if (!strcmp(key, "tls_ca_file"))
		snprintf(out, n, "%s", a->tls_ca_file);
	else if (!strcmp(key, "tls_pin"))
		snprintf(out, n, "%s", a->tls_pin);
	else if (!strcmp(key, "folders"))
		join_folders(a, out, n);
	else if (!strcmp(key, "store"))
		snprintf(out, n, "%d %s", a->store, a->store_path);
	else if (!strcmp(key, "layout"))
		snprintf(out, n, "%d", a->layout);
	else if (!strcmp(key, "policy"))
		snprintf(out, n, "%d %u", a->policy, a->delete_after_days);
	else if (!strcmp(key, "max_message_size"))
		snprintf(out, n, "%llu",
			 (unsigned long long)a->max_message_size);
	else if (!strcmp(key, "timeout"))
		snprintf(out, n, "%u", a->timeout);
	else if (!strcmp(key, "mirror"))
		snprintf(out, n, "%d", a->mirror);
	else if (!strcmp(key, "mirror_max_percent"))
		snprintf(out, n, "%u", a->mirror_max_percent);
	else if (!strcmp(key, "removed_keep_days"))
		snprintf(out, n, "%u", a->removed_keep_days);
	else if (!strcmp(key, "gmail"))
		snprintf(out, n, "%d", a->gmail);
	else
		snprintf(out, n, "?");
	return out;
}

#define PIN_A "sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
#define PIN_B "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

/* value, and the field as describe() shows it; "@" stands for dir. */
static const struct good {
	const char *key, *val, *want;
} goods[] = {
	{ "source", "imaps://Mail.Example.org", "1 1 mail.example.org 993 "
	  "imaps://mail.example.org:993/" },
	{ "source", "imaps://h:10993/", "1 1 h 10993 imaps://h:10993/" },
	{ "source", "pop3s://h", "2 1 h 995 pop3s://h:995/" },
	{ "source", "imap://h", "1 0 h 143 imap://h:143/" },
	{ "source", "pop3://[::1]:1100", "2 0 ::1 1100 pop3://[::1]:1100/" },
	{ "source", "IMAPS://127.0.0.1", "1 1 127.0.0.1 993 "
	  "imaps://127.0.0.1:993/" },
	{ "user", "me@example.org", "me@example.org" },
	{ "password", "s3cr=t:x", "s3cr=t:x" },
	{ "password_file", "~/pw", "@/pw" },
	{ "password_file", "sub/../pw", "@/pw" },
	{ "password_command", "pass show mail", "pass show mail" },
	{ "auth", "auto", "0" },
	{ "auth", "plain", "1" },
	{ "auth", "login", "2" },
	{ "auth", "xoauth2", "3" },
	{ "auth", "oauthbearer", "4" },
	{ "tls_ca_file", "ca.pem", "@/ca.pem" },
	{ "tls_pin", PIN_A, PIN_A },
	{ "tls_pin", PIN_A "; " PIN_B, PIN_A ";" PIN_B },
	{ "folders", "INBOX \"Sent Items\" !Junk !\"Old Stuff\"",
	  "INBOX|Sent Items|!Junk|!Old Stuff" },
	{ "folders", "*", "*" },
	{ "folders", "* !\\Trash !\\junk \\All", "*|!\\Trash|!\\junk|\\All" },
	{ "store", "maildir:~/Mail", "1 @/Mail" },
	{ "store", "mbox:rel/./x", "2 @/rel/x" },
	{ "store", "mbox:/var/mail/me", "2 /var/mail/me" },
	{ "layout", "verbatim", "0" },
	{ "layout", "maildir++", "1" },
	{ "policy", "keep", "0 0" },
	{ "policy", "delete", "1 0" },
	{ "policy", "delete-after 30", "2 30" },
	{ "policy", "delete-after 30d", "2 30" },
	{ "policy", "delete-after 36500", "2 36500" },
	{ "max_message_size", "0", "0" },
	{ "max_message_size", "1000", "1000" },
	{ "max_message_size", "100K", "102400" },
	{ "max_message_size", "100M", "104857600" },
	{ "max_message_size", "2g", "2147483648" },
	{ "timeout", "1", "1" },
	{ "timeout", "3600", "3600" },
	{ "mirror", "no", "0" },
	{ "mirror", "flags", "1" },
	{ "mirror", "full", "2" },
	{ "gmail", "no", "0" },
	{ "gmail", "all-mail", "1" },
	{ "mirror_max_percent", "0", "0" },
	{ "mirror_max_percent", "100", "100" },
	{ "removed_keep_days", "0", "0" },
	{ "removed_keep_days", "365", "365" },
	{ "state_dir", "~/st", "@/st" },
	{ "state_dir", "rel", "@/rel" },
	{ "state_dir", "/var/x/", "/var/x" },
	{ "jobs", "1", "1" },
	{ "jobs", "64", "64" },
};

static const struct bad {
	const char *key, *val, *why; /* why follows "\"VAL\" " */
} bads[] = {
	{ "source", "http://h", "must start with imaps://, pop3s://, imap:// "
	  "or pop3://" },
	{ "source", "imaps://me@h", "must not contain a user name (use the "
	  "\"user\" key)" },
	{ "source", "imaps://h/INBOX", "must not have a path or query" },
	{ "source", "imaps://h?x", "must not have a path or query" },
	{ "source", "imaps://h#x", "must not have a path or query" },
	{ "source", "imaps://", "has no valid host name" },
	{ "source", "imaps://[zz]", "has no valid host name" },
	{ "source", "imaps://[::1", "has no valid host name" },
	{ "source", "imaps://h:0", "has a bad port" },
	{ "source", "imaps://h:65536", "has a bad port" },
	{ "source", "imaps://h:", "has a bad port" },
	{ "source", "imaps://h:99x", "has a bad port" },
	{ "source", "imaps://h_x", "has a bad host name" },
	{ "auth", "md5", "must be auto, plain, login, xoauth2 or oauthbearer" },
	{ "auth", "PLAIN", "must be auto, plain, login, xoauth2 or "
	  "oauthbearer" },
	{ "tls_ca_file", "/nonexistent/ca.pem", "cannot be read: No such file "
	  "or directory" },
	{ "tls_ca_file", "~bob/ca.pem", "uses ~user, which is not supported" },
	{ "tls_pin", "sha256//abc", "must be sha256//BASE64 (of a 32-byte "
	  "SHA-256 digest), separated by \";\"" },
	{ "tls_pin", "md5//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
	  "must be sha256//BASE64 (of a 32-byte SHA-256 digest), separated by "
	  "\";\"" },
	{ "tls_pin", PIN_A ";", "must be sha256//BASE64 (of a 32-byte SHA-256 "
	  "digest), separated by \";\"" },
	{ "folders", "INBOX \"Sent", "has an unterminated quote" },
	{ "folders", "INBOX ! Junk", "has an empty pattern" },
	{ "folders", "\"\"", "has an empty pattern" },
	{ "folders", "* !\\Bin", "has an unknown special-use attribute \"\\Bin\""
	  " (known: \\All \\Archive \\Drafts \\Flagged \\Junk \\Sent \\Trash)" },
	{ "folders", "\\", "has an unknown special-use attribute \"\\\""
	  " (known: \\All \\Archive \\Drafts \\Flagged \\Junk \\Sent \\Trash)" },
	{ "store", "imap:x", "must be maildir:PATH or mbox:PATH" },
	{ "store", "Maildir:/x", "must be maildir:PATH or mbox:PATH" },
	{ "store", "maildir:", "has no path" },
	{ "store", "mbox:~bob/x", "uses ~user, which is not supported" },
	{ "layout", "flat", "must be verbatim or maildir++" },
	{ "policy", "remove", "must be keep, delete or delete-after DAYS" },
	{ "policy", "delete-after", "must be keep, delete or delete-after "
	  "DAYS" },
	{ "policy", "delete-after 0", "must give DAYS as a whole number from "
	  "1 to 36500 (\"30\" or \"30d\")" },
	{ "policy", "delete-after 36501", "must give DAYS as a whole number "
	  "from 1 to 36500 (\"30\" or \"30d\")" },
	{ "policy", "delete-after 30days", "must give DAYS as a whole number "
	  "from 1 to 36500 (\"30\" or \"30d\")" },
	{ "policy", "delete-after -1", "must give DAYS as a whole number "
	  "from 1 to 36500 (\"30\" or \"30d\")" },
	{ "max_message_size", "10X", "must be a number of bytes with an "
	  "optional K, M or G suffix" },
	{ "max_message_size", "-1", "must be a number of bytes with an "
	  "optional K, M or G suffix" },
	{ "max_message_size", "10MB", "must be a number of bytes with an "
	  "optional K, M or G suffix" },
	{ "max_message_size", "99999999999999999999", "must be a number of "
	  "bytes with an optional K, M or G suffix" },
	{ "max_message_size", "17179869184G", "is too large" },
	{ "timeout", "0", "is not a whole number from 1 to 3600" },
	{ "timeout", "3601", "is not a whole number from 1 to 3600" },
	{ "timeout", "60s", "is not a whole number from 1 to 3600" },
	{ "mirror", "yes", "must be no, flags or full" },
	{ "gmail", "yes", "must be no or all-mail" },
	{ "mirror_max_percent", "101", "is not a whole number from 0 to 100" },
	{ "removed_keep_days", "-1", "is not a whole number from 0 to 36500" },
	{ "jobs", "0", "is not a whole number from 1 to 64" },
	{ "jobs", "65", "is not a whole number from 1 to 64" },
	{ "jobs", "+2", "is not a whole number from 1 to 64" },
	{ "state_dir", "~bob/x", "uses ~user, which is not supported" },
};

static int is_general(const char *key)
{
	return !strcmp(key, "state_dir") || !strcmp(key, "jobs");
}

/* Config text for key = val at a known line. */
static void body_for(char *b, size_t n, const char *key, const char *val,
		     int *line)
{
	char acc[1024];
	int l;

	if (!is_general(key)) {
		account_body(b, n, key, val, line);
		return;
	}
	account_body(acc, sizeof acc, "timeout", "60", &l);
	snprintf(b, n, "[general]\n%s = %s\n%s", key, val, acc);
	*line = 2;
}

/* want with every "@/" turned into the test directory and "/". */
static const char *subst(const char *w, char *out, size_t n)
{
	size_t len = 0;

	for (; *w && len + strlen(dir) + 1 < n; w++)
		if (w[0] == '@' && w[1] == '/')
			len += (size_t)snprintf(out + len, n - len, "%s", dir);
		else
			out[len++] = *w;
	out[len] = '\0';
	return out;
}

static void test_goods(void)
{
	char b[2048], got[512], want[512], name[256];
	struct ms_config *c;
	struct ms_err e;
	const char *p;
	size_t i;
	int line;

	snprintf(b, sizeof b, "%s/ca.pem", dir);
	write_file(b, "x", 1, 0644);
	for (i = 0; i < sizeof goods / sizeof goods[0]; i++) {
		body_for(b, sizeof b, goods[i].key, goods[i].val, &line);
		p = cfg(b, 0600);
		ms_err_clear(&e);
		c = NULL;
		snprintf(name, sizeof name, "good %s = %s", goods[i].key,
			 goods[i].val);
		if (ms_config_load(&c, p, &e)) {
			T_EQ_STR(e.msg, "", name);
			continue;
		}
		subst(goods[i].want, want, sizeof want);
		T_EQ_STR(describe(c, goods[i].key, got, sizeof got), want,
			 name);
		ms_config_free(c);
	}
}

static void test_bads(void)
{
	char b[2048], want[1024], name[256];
	const char *p, *msg;
	size_t i;
	int line;

	for (i = 0; i < sizeof bads / sizeof bads[0]; i++) {
		body_for(b, sizeof b, bads[i].key, bads[i].val, &line);
		msg = load_msg(b, 0600, &p);
		snprintf(want, sizeof want, "%s:%d: bad value for \"%s\" in "
			 "[%s]: \"%s\" %s", p, line, bads[i].key,
			 is_general(bads[i].key) ? "general" : "a",
			 bads[i].val, bads[i].why);
		snprintf(name, sizeof name, "bad %s = %s", bads[i].key,
			 bads[i].val);
		T_EQ_STR(msg, want, name);
	}
}

#define A "[a]\nsource = imaps://h\nuser = u\nstore = maildir:/m\n" \
	  "password_command = echo pw\n"
#define P "[a]\nsource = pop3s://h\nuser = u\nstore = mbox:/m\n" \
	  "password_command = echo pw\n"
#define NOACC "no accounts (add a [NAME] section with source, user, " \
	      "store and a password source)"
#define SYNTAX "syntax error: expected \"[section]\" or \"key = value\""
#define LONG32 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define LONG64 LONG32 LONG32

static const struct shape {
	const char *name, *body;
	int line;          /* 0: message without a line number */
	const char *msg;   /* NULL: loads */
} shapes[] = {
	{ "unknown key", A "pasword = x\n", 6,
	  "unknown key \"pasword\" in [a]" },
	{ "unknown key in general", "[general]\nuser = x\n" A, 2,
	  "unknown key \"user\" in [general]" },
	{ "duplicate key", A "user = v\n", 6,
	  "duplicate key \"user\" in [a] (first on line 3)" },
	{ "duplicate section", A A, 6,
	  "duplicate section [a] (first on line 1)" },
	{ "duplicate general", "[general]\n[general]\n" A, 2,
	  "duplicate section [general] (first on line 1)" },
	{ "empty file", "", 0, NOACC },
	{ "only general", "[general]\njobs = 2\n", 0, NOACC },
	{ "only comments", "; x\n# y\n\n", 0, NOACC },
	{ "missing source", "[a]\nuser = u\nstore = mbox:/m\n"
	  "password = x\n", 1, "missing required key \"source\" in [a]" },
	{ "missing user", "[a]\nsource = imaps://h\nstore = mbox:/m\n"
	  "password = x\n", 1, "missing required key \"user\" in [a]" },
	{ "missing store", "[a]\nsource = imaps://h\nuser = u\n"
	  "password = x\n", 1, "missing required key \"store\" in [a]" },
	{ "empty section", "[general]\n" A "[b]\n", 7,
	  "missing required key \"source\" in [b]" },
	{ "missing password", "[a]\nsource = imaps://h\nuser = u\n"
	  "store = mbox:/m\n", 1, "missing \"password\", \"password_file\" "
	  "or \"password_command\" in [a]" },
	{ "two password sources", A "password_file = /x\n", 6, "only one of "
	  "\"password\", \"password_file\" and \"password_command\" may be "
	  "set in [a]" },
	{ "key outside section", "user = u\n" A, 1,
	  "key \"user\" outside any section" },
	{ "section name with space", "[a b]\n", 1, "bad section name "
	  "\"a b\": use 1 to 64 of A-Z a-z 0-9 . _ -" },
	{ "section name 65", "[" LONG64 "a]\n", 1, "bad section name \""
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\": "
	  "use 1 to 64 of A-Z a-z 0-9 . _ -" },
	{ "section name 64", "[" LONG64 "]\nsource = imaps://h\nuser = u\n"
	  "store = maildir:/m\npassword_command = x\n", 0, NULL },
	{ "section name empty", "[]\n", 1, "bad section name \"\": use 1 to "
	  "64 of A-Z a-z 0-9 . _ -" },
	{ "section name account x", "[account x]\n", 1, "bad section name "
	  "\"account x\": use 1 to 64 of A-Z a-z 0-9 . _ - (an account "
	  "section is just [NAME])" },
	{ "section name slash", "[a/b]\n", 1, "bad section name \"a/b\": use "
	  "1 to 64 of A-Z a-z 0-9 . _ -" },
	{ "missing ]", A "[b\n", 6, "syntax error: missing \"]\"" },
	{ "text after ]", "[a] x\n", 1, "syntax error: text after \"]\"" },
	{ "comment after ]", "[a] ; note\nsource = imaps://h\nuser = u\n"
	  "store = maildir:/m\npassword_command = x\n", 0, NULL },
	{ "no equals", A "garbage\n", 6, SYNTAX },
	{ "continuation line", A "timeout = 5\n   more\n", 7, SYNTAX },
	{ "indented key", A "   timeout = 5\n", 0, NULL },
	{ "colon separator", A "timeout: 5\n", 0, NULL },
	{ "BOM", "\xEF\xBB\xBF" A, 0, NULL },
	{ "CRLF", "[a]\r\nsource = imaps://h\r\nuser = u\r\n"
	  "store = maildir:/m\r\npassword_command = x\r\n", 0, NULL },
	{ "empty value", A "auth =\n", 6, "empty value for \"auth\" in [a]" },
	{ "unknown key user2", A "user2 = x\n", 6,
	  "unknown key \"user2\" in [a]" },
	{ "control character in value", "[a]\nuser = u\x01v\n", 2,
	  "control character in the value of \"user\" in [a]" },
	{ "folders on pop3", P "folders = INBOX\n", 6,
	  "\"folders\" in [a] needs an IMAP source" },
	{ "mirror on pop3", P "mirror = flags\n", 6,
	  "\"mirror\" in [a] needs an IMAP source" },
	{ "mirror no on pop3", P "mirror = no\n", 0, NULL },
	{ "gmail all-mail on pop3", P "gmail = all-mail\n", 6,
	  "\"gmail = all-mail\" in [a] needs an IMAP source" },
	{ "gmail all-mail and folders", A "gmail = all-mail\nfolders = *\n", 7,
	  "\"folders\" in [a] cannot be combined with \"gmail = all-mail\", "
	  "which backs up only the \\All folder" },
	{ "gmail all-mail and delete", A "policy = delete\ngmail = all-mail\n",
	  7, "\"gmail = all-mail\" in [a] needs policy = keep and mirror = no" },
	{ "gmail all-mail and mirror", A "gmail = all-mail\nmirror = flags\n",
	  6, "\"gmail = all-mail\" in [a] needs policy = keep and mirror = no" },
	{ "gmail all-mail", A "gmail = all-mail\n", 0, NULL },
	{ "two accounts", A "[b]\nsource = pop3://h\nuser = u\n"
	  "store = mbox:/m\npassword_command = x\n", 0, NULL },
};

static void test_shapes(void)
{
	char want[1024];
	const char *p, *msg;
	size_t i;

	for (i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
		msg = load_msg(shapes[i].body, 0600, &p);
		if (!shapes[i].msg)
			want[0] = '\0';
		else if (shapes[i].line)
			snprintf(want, sizeof want, "%s:%d: %s", p,
				 shapes[i].line, shapes[i].msg);
		else
			snprintf(want, sizeof want, "%s: %s", p,
				 shapes[i].msg);
		T_EQ_STR(msg, want, shapes[i].name);
	}
}

static void test_lines(void)
{
	static char b[4096];
	char want[256];
	const char *p, *msg;
	size_t n;

	/* 1024 characters is the limit, "\r\n" not counted */
	n = (size_t)snprintf(b, sizeof b, A "; ");
	memset(b + n, 'x', 1022);
	strcpy(b + n + 1022, "\r\n");
	T_EQ_STR(load_msg(b, 0600, &p), "", "line of 1024 characters loads");
	memset(b + n, 'x', 1023);
	strcpy(b + n + 1023, "\n");
	msg = load_msg(b, 0600, &p);
	snprintf(want, sizeof want, "%s:6: line too long (over 1024 "
		 "characters)", p);
	T_EQ_STR(msg, want, "line of 1025 characters refused");
	n = (size_t)snprintf(b, sizeof b, A "user = ");
	memset(b + n, 'x', 3000);
	strcpy(b + n + 3000, "\n");
	msg = load_msg(b, 0600, &p);
	snprintf(want, sizeof want, "%s:6: line too long (over 1024 "
		 "characters)", p);
	T_EQ_STR(msg, want, "long value refused, not truncated");

	snprintf(want, sizeof want, "%s/nul.ini", dir);
	write_file(want, A "\0x\n", sizeof A + 2, 0600);
	{
		struct ms_config *c = NULL;
		struct ms_err e;
		char w2[300];

		ms_err_clear(&e);
		ms_config_load(&c, want, &e);
		snprintf(w2, sizeof w2, "%s:6: NUL byte in the file", want);
		T_EQ_STR(e.msg, w2, "NUL byte refused");
	}
}

static void test_values_misc(void)
{
	struct ms_config *c = NULL;
	struct ms_err e;
	const char *p;

	p = cfg(A "auth = login ; the server wants LOGIN\n", 0600);
	ms_err_clear(&e);
	T_EQ_INT(ms_config_load(&c, p, &e), 0, "inline comment loads");
	if (c) {
		T_EQ_INT(c->accounts[0].auth, MS_AUTH_LOGIN,
			 "inline comment stripped");
		T_EQ_STR(c->accounts[0].name, "a", "account name");
		T_EQ_STR(c->accounts[0].cfg_file, p, "cfg_file");
		T_EQ_INT(c->accounts[0].cfg_line, 1, "cfg_line");
		T_EQ_INT(c->accounts[0].timeout, 60, "timeout default");
		T_EQ_INT(c->accounts[0].mirror_max_percent, 20,
			 "mirror_max_percent default");
		T_EQ_INT(c->accounts[0].removed_keep_days, 30,
			 "removed_keep_days default");
		T_EQ_INT(c->accounts[0].policy, MS_POLICY_KEEP,
			 "policy default");
		T_EQ_INT(c->accounts[0].max_message_size, 0,
			 "max_message_size default");
		T_EQ_INT(c->jobs, 1, "jobs default");
		T_OK(c->accounts[0].folders == NULL, "folders default NULL");
		T_EQ_STR(c->path, p, "config path kept");
		T_OK(ms_config_account(c, "a") == &c->accounts[0],
		     "ms_config_account finds");
		T_OK(ms_config_account(c, "b") == NULL,
		     "ms_config_account misses");
	}
	ms_config_free(c);
}

static void test_default_paths(void)
{
	struct ms_config *c = NULL;
	struct ms_err e;
	char want[256], *s;
	const char *p;

	setenv("XDG_CONFIG_HOME", "/xdg/conf", 1);
	s = ms_config_default_path();
	T_EQ_STR(s, "/xdg/conf/mailsync/mailsync.ini", "XDG_CONFIG_HOME");
	free(s);
	setenv("XDG_CONFIG_HOME", "relative", 1);
	s = ms_config_default_path();
	snprintf(want, sizeof want, "%s/.config/mailsync/mailsync.ini", dir);
	T_EQ_STR(s, want, "relative XDG_CONFIG_HOME ignored");
	free(s);
	unsetenv("XDG_CONFIG_HOME");
	s = ms_config_default_path();
	T_EQ_STR(s, want, "HOME/.config");
	free(s);

	p = cfg(A, 0600);
	setenv("XDG_STATE_HOME", "/xdg/state", 1);
	ms_config_load(&c, p, &e);
	T_EQ_STR(c ? c->state_dir : NULL, "/xdg/state/mailsync",
		 "state_dir from XDG_STATE_HOME");
	ms_config_free(c);
	unsetenv("XDG_STATE_HOME");
	c = NULL;
	ms_config_load(&c, p, &e);
	snprintf(want, sizeof want, "%s/.local/state/mailsync", dir);
	T_EQ_STR(c ? c->state_dir : NULL, want, "state_dir default");
	ms_config_free(c);
}

#define APW "[a]\nsource = imaps://h\nuser = u\nstore = maildir:/m\n" \
	    "password = s3cret\n"
#define MODEMSG "must be 0600 or stricter because it contains a password"

static void test_perms(void)
{
	char want[512], link[128];
	const char *p, *msg;

	msg = load_msg(APW, 0644, &p);
	snprintf(want, sizeof want, "config %s: mode 0644, " MODEMSG, p);
	T_EQ_STR(msg, want, "password in 0644 config refused");
	msg = load_msg(APW, 0640, &p);
	snprintf(want, sizeof want, "config %s: mode 0640, " MODEMSG, p);
	T_EQ_STR(msg, want, "password in 0640 config refused");
	msg = load_msg(APW, 0604, &p);
	snprintf(want, sizeof want, "config %s: mode 0604, " MODEMSG, p);
	T_EQ_STR(msg, want, "password in 0604 config refused");
	T_EQ_STR(load_msg(APW, 0600, &p), "", "password in 0600 config ok");
	T_EQ_STR(load_msg(APW, 0400, &p), "", "password in 0400 config ok");
	T_EQ_STR(load_msg(A, 0644, &p), "",
		 "password_command in 0644 config ok");

	p = cfg(APW, 0644);
	snprintf(link, sizeof link, "%s/link.ini", dir);
	unlink(link);
	if (symlink(p, link) < 0)
		perror("symlink");
	{
		struct ms_config *c = NULL;
		struct ms_err e;

		ms_err_clear(&e);
		ms_config_load(&c, link, &e);
		snprintf(want, sizeof want, "config %s: mode 0644, " MODEMSG,
			 link);
		T_EQ_STR(e.msg, want, "symlink to a 0644 config refused");
		ms_config_free(c);
	}
	if (geteuid() != 0) {
		printf("ok %d - # SKIP foreign owner (needs root)\n", ++t_n);
		return;
	}
	p = cfg(APW, 0600);
	if (chown(p, 12345, 12345) < 0)
		perror("chown");
	{
		struct ms_config *c = NULL;
		struct ms_err e;

		ms_err_clear(&e);
		ms_config_load(&c, p, &e);
		snprintf(want, sizeof want, "config %s: owned by uid 12345, "
			 "not 0, must be yours because it contains a password",
			 p);
		T_EQ_STR(e.msg, want, "password in foreign-owned config");
		ms_config_free(c);
	}
}

/* Load a one-account config with this password line, get the secret. */
static int secret_of(const char *pwline, char **out, struct ms_err *e)
{
	char b[1024];
	struct ms_config *c = NULL;
	int rc;

	snprintf(b, sizeof b, "[a]\nsource = imaps://h\nuser = u\n"
		 "store = maildir:/m\n%s\n", pwline);
	ms_err_clear(e);
	*out = NULL;
	if ((rc = ms_config_load(&c, cfg(b, 0600), e)))
		return rc;
	rc = ms_config_secret(&c->accounts[0], out, e);
	ms_config_free(c);
	return rc;
}

static const struct sec {
	const char *name, *line, *secret, *msg; /* msg: '@' = dir */
} secs[] = {
	{ "inline", "password = s3cr=t x", "s3cr=t x", NULL },
	{ "file first line", "password_file = pw_two", "pw1", NULL },
	{ "file without newline", "password_file = pw_nonl", "nonl", NULL },
	{ "file 0644", "password_file = pw_644", NULL, ""
	  "password_file @/pw_644: mode 0644, " MODEMSG },
	{ "file missing", "password_file = pw_none", NULL, ""
	  "password_file @/pw_none: cannot open: No such file or directory" },
	{ "file empty", "password_file = pw_empty", NULL, ""
	  "password_file gave no password (empty first line or NUL byte)" },
	{ "file empty first line", "password_file = pw_nl", NULL, ""
	  "password_file gave no password (empty first line or NUL byte)" },
	{ "file over 64 KiB", "password_file = pw_big", NULL, ""
	  "password_file @/pw_big: larger than 64 KiB" },
	{ "command two lines", "password_command = printf 'a b\\nsecond\\n'",
	  "a b", NULL },
	{ "command CRLF", "password_command = printf 'x\\r\\n'", "x", NULL },
	{ "command no newline", "password_command = printf nonl", "nonl",
	  NULL },
	{ "command exit 3", "password_command = echo leaked; exit 3", NULL,
	  "password_command exited with status 3" },
	{ "command not found", "password_command = /nonexistent/cmd", NULL,
	  "password_command exited with status 127" },
	{ "command empty", "password_command = true", NULL, ""
	  "password_command gave no password (empty first line or NUL byte)" },
	{ "command stdin is /dev/null", "password_command = cat", NULL,
	  "password_command gave no password (empty first line "
	  "or NUL byte)" },
	{ "command killed", "password_command = kill -9 $$", NULL,
	  "password_command killed by signal 9" },
	{ "command output over 64 KiB", "password_command = head -c 70000 "
	  "/dev/zero | tr '\\000' x", NULL, "password_command "
	  "printed more than 64 KiB" },
};

static void make_pw_files(void)
{
	static char big[70000];
	char p[128];

	memset(big, 'x', sizeof big);
	snprintf(p, sizeof p, "%s/pw_two", dir);
	write_file(p, "pw1\r\nline2\n", 11, 0600);
	snprintf(p, sizeof p, "%s/pw_nonl", dir);
	write_file(p, "nonl", 4, 0400);
	snprintf(p, sizeof p, "%s/pw_644", dir);
	write_file(p, "pw\n", 3, 0644);
	snprintf(p, sizeof p, "%s/pw_empty", dir);
	write_file(p, "", 0, 0600);
	snprintf(p, sizeof p, "%s/pw_nl", dir);
	write_file(p, "\nx\n", 3, 0600);
	snprintf(p, sizeof p, "%s/pw_big", dir);
	write_file(p, big, sizeof big, 0600);
	snprintf(p, sizeof p, "%s/pw_64k", dir);
	write_file(p, big, 65536, 0600);
}

static void test_secrets(void)
{
	char want[512], *s;
	struct ms_err e;
	struct timespec t0, t1;
	size_t i;
	int rc;

	make_pw_files();
	for (i = 0; i < sizeof secs / sizeof secs[0]; i++) {
		rc = secret_of(secs[i].line, &s, &e);
		if (secs[i].secret) {
			T_EQ_STR(rc ? e.msg : s, secs[i].secret, secs[i].name);
		} else {
			subst(secs[i].msg, want, sizeof want);
			T_EQ_STR(rc ? e.msg : "(no error)", want,
				 secs[i].name);
			T_EQ_INT(rc, MS_ECONFIG, secs[i].name);
			T_OK(s == NULL, secs[i].name);
		}
		free(s);
	}
	rc = secret_of("password_file = pw_64k", &s, &e);
	T_EQ_INT(rc == 0 ? strlen(s) : 0, 65536, "file of exactly 64 KiB");
	free(s);

	setenv("MAILSYNC_TEST_CMD_TIMEOUT", "1", 1);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = secret_of("password_command = echo early; sleep 20", &s, &e);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	T_EQ_STR(e.msg, "password_command timed out after 1 s",
		 "command past the timeout is killed");
	T_OK(t1.tv_sec - t0.tv_sec < 5, "timeout is prompt");
	T_OK(s == NULL, "no secret after a timeout");
	unsetenv("MAILSYNC_TEST_CMD_TIMEOUT");
}

/* Read a whole file from the source tree. */
static char *slurp(const char *rel)
{
	char path[4200], *b;
	FILE *f;
	long n;

	snprintf(path, sizeof path, "%s/%s", srcdir, rel);
	if (!(f = fopen(path, "r")))
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	b = calloc(1, (size_t)n + 2);
	b[0] = '\n';
	if (b && fread(b + 1, 1, (size_t)n, f) != (size_t)n)
		b[1] = '\0';
	fclose(f);
	return b;
}

/* Does the text contain "\n<prefix><word>" followed by space or "\n"? */
static int has_macro(const char *text, const char *prefix, const char *word)
{
	char pat[200];
	const char *s = text;
	size_t n;

	n = (size_t)snprintf(pat, sizeof pat, "\n%s%s", prefix, word);
	while (s && (s = strstr(s, pat))) {
		if (s[n] == ' ' || s[n] == '\n')
			return 1;
		s += n;
	}
	return 0;
}

/* Is "Fl OPT" a macro argument somewhere (".It Fl c", ".Op Fl q")? */
static int has_fl(const char *text, const char *opt)
{
	char pat[64];
	const char *s = text + 1;
	size_t n = (size_t)snprintf(pat, sizeof pat, "Fl %s", opt);

	while ((s = strstr(s, pat))) {
		if ((s[-1] == ' ' || s[-1] == '.') &&
		    (s[n] == ' ' || s[n] == '\n'))
			return 1;
		s += n;
	}
	return 0;
}

static void test_docs(void)
{
	static const char *const opts[] = { "c", "-config", "n", "-dry-run",
		"v", "-verbose", "q", "-quiet", "-help", "-version", NULL };
	const char *const *k = ms_config_keys();
	char *man5 = slurp("man/mailsync.ini.5");
	char *man1 = slurp("man/mailsync.1");
	char path[4200], name[128];
	struct ms_config *c = NULL;
	struct ms_err e;
	int n = 0;

	T_OK(man5 != NULL, "man/mailsync.ini.5 readable");
	T_OK(man1 != NULL, "man/mailsync.1 readable");
	for (; *k; k++, n++) {
		snprintf(name, sizeof name, "%s documented in mailsync.ini.5",
			 *k);
		T_OK(man5 && has_macro(man5, ".It Cm ", strchr(*k, '.') + 1),
		     name);
	}
	T_EQ_INT(n, 20, "ms_config_keys lists 20 keys");
	for (k = opts; *k; k++) {
		snprintf(name, sizeof name, "option -%s in mailsync.1", *k);
		T_OK(man1 && has_fl(man1, *k), name);
	}
	free(man5);
	free(man1);

	snprintf(path, sizeof path, "%s/mailsync.ini.example", srcdir);
	ms_err_clear(&e);
	T_EQ_STR(ms_config_load(&c, path, &e) ? e.msg : "", "",
		 "mailsync.ini.example loads");
	T_OK(c && c->naccounts >= 3, "example has at least 3 accounts");
	ms_config_free(c);
}

static void find_srcdir(void)
{
	const char *env = getenv("MS_SRCDIR"), *f = __FILE__;
	const char *tail = strstr(f, "tests/unit/test_config.c");

	if (env)
		snprintf(srcdir, sizeof srcdir, "%s", env);
	else if (tail && tail > f)
		snprintf(srcdir, sizeof srcdir, "%.*s", (int)(tail - f - 1), f);
	else
		snprintf(srcdir, sizeof srcdir, ".");
}

int main(void)
{
	snprintf(dir, sizeof dir, "/tmp/test_config.XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 2;
	}
	find_srcdir();
	setenv("HOME", dir, 1);
	unsetenv("XDG_STATE_HOME");
	unsetenv("XDG_CONFIG_HOME");
	umask(022);
	test_goods();
	test_bads();
	test_shapes();
	test_lines();
	test_values_misc();
	test_default_paths();
	test_perms();
	test_secrets();
	test_docs();
	{
		char cmd[128];

		snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			printf("# could not remove %s\n", dir);
	}
	return t_done();
}
