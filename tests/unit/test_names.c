/*
 * test_names.c: modified UTF-7, folder-name mapping and its safety.
 * Tables of (input, expected output or NULL = rejected), the F34
 * traversal set, and an exhaustive injectivity check over short names.
 */
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "t.h"

struct pair {
	const char *in, *want; /* want NULL: must be rejected */
};

static const struct pair decode_tab[] = {
	{ "INBOX", "INBOX" },
	{ "Entw&APw-rfe", "Entw\xc3\xbcrfe" },
	{ "&AKM-", "\xc2\xa3" },
	{ "&-", "&" },
	{ "a&-b&-", "a&b&" },
	{ "&AKMAow-", "\xc2\xa3\xc2\xa3" },
	{ "&AKM-&-&AKM-", "\xc2\xa3&\xc2\xa3" },
	{ "&ZeVnLIqe-", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e" },
	{ "a&2D3eAA-b&AKM-", "a\xf0\x9f\x98\x80" "b\xc2\xa3" },
	{ "&,,8-", "\xef\xbf\xbf" },
	{ "&AA0-", "\r" },          /* valid mUTF-7; folder_to_local refuses */
	{ "&AKM-&AKM-", NULL },     /* adjacent runs: should be &AKMAow- */
	{ "&AGE-", NULL },          /* encoded 'a' */
	{ "&ACY-", NULL },          /* encoded '&' */
	{ "&ACA-", NULL },          /* encoded ' ' */
	{ "&", NULL },
	{ "x&", NULL },
	{ "&AKM", NULL },           /* no terminating '-' */
	{ "&AKN-", NULL },          /* non-zero padding bits */
	{ "&AKMA-", NULL },         /* a whole excess base64 character */
	{ "&AKM=-", NULL },
	{ "&AK/-", NULL },          /* '/' is not modified base64 */
	{ "&2D0-", NULL },          /* lone high surrogate */
	{ "&3gA-", NULL },          /* lone low surrogate */
	{ "&2D0AKM-", NULL },       /* high surrogate + BMP char */
	{ "&AAA-", NULL },          /* NUL */
	{ "Caf\xc3\xa9", NULL },    /* raw 8-bit */
	{ "a\rb", NULL },
	{ "a\x7f", NULL },
};

static const struct pair encode_tab[] = {
	{ "Entw\xc3\xbcrfe", "Entw&APw-rfe" },
	{ "&", "&-" },
	{ "\xc2\xa3&\xc2\xa3", "&AKM-&-&AKM-" },
	{ "\xc2\xa3\xc2\xa3", "&AKMAow-" },
	{ "\xf0\x9f\x98\x80", "&2D3eAA-" },
	{ "plain", "plain" },
	{ "\xc0\xaf", NULL },       /* overlong '/' */
	{ "\xed\xa0\x80", NULL },   /* UTF-8 encoded surrogate */
	{ "\xf4\x90\x80\x80", NULL }, /* > U+10FFFF */
	{ "\xc3", NULL },           /* truncated */
};

struct ftab {
	const char *raw;
	char delim;
	const char *want;
};

static char big[4097], bigslash[4097];

static const struct ftab folder_tab[] = {
	{ "Entw&APw-rfe", '/', "Entw\xc3\xbcrfe" },
	{ "Sales/2024", '.', "Sales%2F2024" },
	{ "Lists/dev", '/', "Lists/dev" },
	{ "Lists.dev", '.', "Lists/dev" },
	{ "a.b/c", '.', "a/b%2Fc" },
	{ "100%", '/', "100%25" },
	{ ".hidden", '/', "%2Ehidden" },
	{ "a/.b", '/', "a/%2Eb" },
	{ "inbox", '/', "INBOX" },
	{ "Inbox", '.', "INBOX" },
	{ "INBOX/x", '/', "INBOX/x" },
	{ "x/y", 0, "x%2Fy" },
	{ "cur", '/', "cur" },
	/* F34 traversal set */
	{ "../../etc", '/', NULL },
	{ "../../etc", '.', NULL },
	{ "../../etc", 0, "%2E.%2F..%2Fetc" },
	{ "/abs", '/', NULL },
	{ "/abs", '.', "%2Fabs" },
	{ "/abs", 0, "%2Fabs" },
	{ "a/../../b", '/', NULL },
	{ "a/../../b", '.', NULL },
	{ "a/../../b", 0, "a%2F..%2F..%2Fb" },
	{ "..", '/', NULL },
	{ "..", '.', NULL },
	{ "..", 0, NULL },
	{ ".", '/', NULL },
	{ ".", 0, NULL },
	{ "", '/', NULL },
	{ "", 0, NULL },
	{ "INBOX/../x", '/', NULL },
	{ "INBOX/./x", '/', NULL },
	{ "a\r\nb", '/', NULL },
	{ "a\r\nb", 0, NULL },
	{ "x\n", '.', NULL },
	{ "&AA0AC-", '/', NULL },   /* CR LF in base64 */
	{ "%0d%0aDELETE x", '/', "%250d%250aDELETE x" },
	{ "a//b", '/', NULL },
	{ "a/", '/', NULL },
	{ "&AGE-", '/', NULL },
	{ "x", '\n', NULL },        /* absurd delimiter */
	{ big, '/', NULL },         /* 4 KB, one level */
	{ big, 0, NULL },
	{ bigslash, '/', NULL },    /* 4 KB of short levels */
};

struct ptab {
	const char *folder;
	enum ms_layout layout;
	const char *want;
};

static const struct ptab path_tab[] = {
	{ "INBOX", MS_LAYOUT_VERBATIM, "INBOX" },
	{ "INBOX", MS_LAYOUT_MAILDIRPP, "" },
	{ "Lists/dev", MS_LAYOUT_VERBATIM, "Lists/dev" },
	{ "Lists/dev", MS_LAYOUT_MAILDIRPP, ".Lists.dev" },
	{ "INBOX/x", MS_LAYOUT_MAILDIRPP, ".INBOX.x" },
	{ "a.b", MS_LAYOUT_MAILDIRPP, ".a%2Eb" },
	{ "a.b", MS_LAYOUT_VERBATIM, "a.b" },
	{ "cur", MS_LAYOUT_VERBATIM, "%63ur" },
	{ "x/new/tmp", MS_LAYOUT_VERBATIM, "x/%6Eew/%74mp" },
	{ "news/tmpl", MS_LAYOUT_VERBATIM, "news/tmpl" },
	{ "cur", MS_LAYOUT_MAILDIRPP, ".cur" },
	{ "mailsync-removed", MS_LAYOUT_MAILDIRPP, ".%6Dailsync-removed" },
	{ "mailsync-removed", MS_LAYOUT_VERBATIM, "mailsync-removed" },
	{ "Entw\xc3\xbcrfe", MS_LAYOUT_VERBATIM, "Entw\xc3\xbcrfe" },
	{ "../x", MS_LAYOUT_VERBATIM, NULL },
	{ "a/..", MS_LAYOUT_MAILDIRPP, NULL },
	{ "/a", MS_LAYOUT_VERBATIM, NULL },
	{ ".a", MS_LAYOUT_VERBATIM, NULL },
	{ "a//b", MS_LAYOUT_MAILDIRPP, NULL },
	{ "", MS_LAYOUT_VERBATIM, NULL },
	{ "a\nb", MS_LAYOUT_VERBATIM, NULL },
};

/* No "", "." or ".." component, no leading '/', no control byte. */
static int path_safe(const char *p)
{
	const char *q;

	if (p[0] == '/')
		return 0;
	for (const char *c = p; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return 0;
	if (!*p)
		return 1;
	for (;;) {
		q = strchr(p, '/');
		size_t len = q ? (size_t)(q - p) : strlen(p);
		if (len == 0 || (len == 1 && p[0] == '.') ||
		    (len == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		if (!q)
			return 1;
		p = q + 1;
	}
}

static void test_mutf7(void)
{
	char name[160];
	struct ms_err e;
	char *out, *back;

	for (size_t i = 0; i < sizeof decode_tab / sizeof *decode_tab; i++) {
		const struct pair *t = &decode_tab[i];
		int rc = ms_names_mutf7_decode(t->in, &out, &e);
		snprintf(name, sizeof name, "decode #%zu", i);
		if (!t->want) {
			T_OK(rc == MS_EPROTO && !out && strlen(e.msg) > 0,
			     name);
			continue;
		}
		T_EQ_STR(rc == 0 ? out : e.msg, t->want, name);
		if (rc == 0 && strcmp(t->want, "\r") != 0) {
			T_OK(ms_names_mutf7_encode(out, &back, &e) == 0 &&
				     strcmp(back, t->in) == 0,
			     "encode(decode(x)) == x");
			free(back);
		}
		free(out);
	}
	for (size_t i = 0; i < sizeof encode_tab / sizeof *encode_tab; i++) {
		const struct pair *t = &encode_tab[i];
		int rc = ms_names_mutf7_encode(t->in, &out, &e);
		snprintf(name, sizeof name, "encode #%zu", i);
		if (!t->want)
			T_OK(rc == MS_EPROTO && !out, name);
		else
			T_EQ_STR(rc == 0 ? out : e.msg, t->want, name);
		free(out);
	}
	T_OK(ms_names_mutf7_decode("&AKM-&AKM-", &out, &e) < 0 &&
		     strstr(e.msg, "adjacent"),
	     "adjacent runs: reason in the message");
}

static void test_folders(void)
{
	char name[200];
	struct ms_err e;
	char *out;

	memset(big, 'a', 4096);
	for (size_t i = 0; i < 4096; i++)
		bigslash[i] = i % 2 ? '/' : 'b';
	bigslash[4095] = 'b';
	for (size_t i = 0; i < sizeof folder_tab / sizeof *folder_tab; i++) {
		const struct ftab *t = &folder_tab[i];
		int rc = ms_names_folder_to_local(t->raw, t->delim, &out, &e);
		snprintf(name, sizeof name, "folder #%zu \"%.30s\" delim %d",
			 i, t->raw, t->delim);
		for (char *c = name; *c; c++)
			if ((unsigned char)*c < 0x20)
				*c = '?';
		if (!t->want) {
			T_OK(rc == MS_EPROTO && !out &&
				     !strpbrk(e.msg, "\r\n"),
			     name);
			continue;
		}
		T_EQ_STR(rc == 0 ? out : e.msg, t->want, name);
		for (int l = 0; rc == 0 && l < 2; l++) {
			char *p = NULL;
			T_OK(ms_names_local_to_path(out, l, &p, &e) == 0 &&
				     path_safe(p),
			     "  ... and its path is safe");
			free(p);
		}
		free(out);
	}
	T_OK(ms_names_folder_to_local("..", '/', &out, &e) < 0 &&
		     strstr(e.msg, "\"..\""),
	     "rejection names the folder");
}

static void test_paths(void)
{
	char name[160];
	struct ms_err e;
	char *out;

	for (size_t i = 0; i < sizeof path_tab / sizeof *path_tab; i++) {
		const struct ptab *t = &path_tab[i];
		int rc = ms_names_local_to_path(t->folder, t->layout, &out, &e);
		snprintf(name, sizeof name, "path #%zu (layout %d)", i,
			 t->layout);
		if (!t->want)
			T_OK(rc == MS_EPROTO && !out, name);
		else
			T_EQ_STR(rc == 0 ? out : e.msg, t->want, name);
		free(out);
	}
}

static void test_state_file(void)
{
	char longa[301], longb[301], *a = NULL, *b = NULL, *out;
	struct ms_err e;

	ms_names_state_file("INBOX", &out, &e);
	T_EQ_STR(out, "INBOX", "state file INBOX");
	free(out);
	ms_names_state_file("Lists/dev", &out, &e);
	T_EQ_STR(out, "Lists%2Fdev", "state file Lists/dev");
	free(out);
	ms_names_state_file("Entw\xc3\xbcrfe x~", &out, &e);
	T_EQ_STR(out, "Entw%C3%BCrfe%20x%7E", "state file non-ASCII");
	free(out);
	T_OK(ms_names_state_file("", &out, &e) == MS_EPROTO,
	     "state file for \"\" rejected");
	memset(longa, 'a', 300);
	longa[300] = '\0';
	memcpy(longb, longa, sizeof longb);
	longb[299] = 'b';
	ms_names_state_file(longa, &a, &e);
	ms_names_state_file(longb, &b, &e);
	T_EQ_INT(a ? strlen(a) : 0, 180 + 1 + 16, "long state name shortened");
	T_OK(a && b && strcmp(a, b) != 0 && a[180] == '~',
	     "long state names stay distinct");
	free(a);
	free(b);
	memset(longa, '%', 100);
	longa[100] = '\0';
	ms_names_state_file(longa, &a, &e);
	T_OK(a && a[180] == '~' && strchr(a, '/') == NULL,
	     "long state name cut on a %XX boundary");
	free(a);
}

struct mapped {
	char *raw, *key;
};

static int cmp_mapped(const void *x, const void *y)
{
	return strcmp(((const struct mapped *)x)->key,
		      ((const struct mapped *)y)->key);
}

/* Every string of up to 5 characters over a hostile alphabet: no two
 * accepted names may share a local name, a path or a state file. */
static void test_injective(char delim, int what)
{
	static const char alpha[] = "./%2EFa";
	const size_t k = sizeof alpha - 1, maxn = 20000;
	struct mapped *v = calloc(maxn, sizeof *v);
	size_t n = 0, dup = 0, unsafe = 0, idx[5];
	char raw[6], name[120];
	struct ms_err e;

	for (size_t len = 1; len <= 5; len++) {
		memset(idx, 0, sizeof idx);
		for (;;) {
			char *local = NULL, *key = NULL;
			for (size_t i = 0; i < len; i++)
				raw[i] = alpha[idx[i]];
			raw[len] = '\0';
			if (ms_names_folder_to_local(raw, delim, &local, &e) ==
			    0) {
				if (what == 2)
					ms_names_state_file(local, &key, &e);
				else
					ms_names_local_to_path(local, what,
							       &key, &e);
				if (key && !path_safe(key))
					unsafe++;
				if (key && n < maxn) {
					v[n].raw = strdup(raw);
					v[n++].key = key;
				} else {
					free(key);
				}
			}
			free(local);
			size_t i = 0;
			while (i < len && ++idx[i] == k)
				idx[i++] = 0;
			if (i == len)
				break;
		}
	}
	qsort(v, n, sizeof *v, cmp_mapped);
	for (size_t i = 1; i < n; i++)
		if (strcmp(v[i - 1].key, v[i].key) == 0) {
			if (dup++ < 3)
				printf("# collision: \"%s\" and \"%s\" -> "
				       "\"%s\"\n", v[i - 1].raw, v[i].raw,
				       v[i].key);
		}
	snprintf(name, sizeof name,
		 "injective over %zu names, delim '%c', %s", n,
		 delim ? delim : '0',
		 what == 2 ? "state file" : what ? "maildir++" : "verbatim");
	T_OK(n > 1000 && dup == 0, name);
	T_EQ_INT(unsafe, 0, "  ... every path safe");
	for (size_t i = 0; i < n; i++) {
		free(v[i].raw);
		free(v[i].key);
	}
	free(v);
}

static void test_case(void)
{
	char *a = NULL, *b = NULL;
	struct ms_err e;

	ms_names_folder_to_local("Foo", '/', &a, &e);
	ms_names_folder_to_local("foo", '/', &b, &e);
	T_OK(a && b && strcmp(a, b) != 0,
	     "names differing in case stay distinct (Linux)");
	free(a);
	free(b);
}

int main(void)
{
	test_mutf7();
	test_folders();
	test_paths();
	test_state_file();
	test_case();
	for (int what = 0; what < 3; what++) {
		test_injective('/', what);
		test_injective('.', what);
		test_injective(0, what);
	}
	return t_done();
}
