/*
 * config.h: the validated configuration model.
 *
 * config.c is the only includer of ini.h.  Loading is parse, then validate,
 * then permission checks; any failure is MS_ECONFIG with "file:line: what".
 * Every other module reads these structs and never re-parses strings.
 */
#ifndef MS_CONFIG_H
#define MS_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

enum ms_proto { MS_PROTO_IMAP = 1, MS_PROTO_POP3 };
enum ms_auth {
	MS_AUTH_AUTO = 0, MS_AUTH_PLAIN, MS_AUTH_LOGIN, MS_AUTH_XOAUTH2,
	MS_AUTH_OAUTHBEARER
};
enum ms_store_kind { MS_STORE_MAILDIR = 1, MS_STORE_MBOX };
enum ms_layout { MS_LAYOUT_VERBATIM = 0, MS_LAYOUT_MAILDIRPP };
enum ms_policy { MS_POLICY_KEEP = 0, MS_POLICY_DELETE, MS_POLICY_DELETE_AFTER };
enum ms_mirror { MS_MIRROR_NO = 0, MS_MIRROR_FLAGS, MS_MIRROR_FULL };
enum ms_gmail { MS_GMAIL_NO = 0, MS_GMAIL_ALL_MAIL };

struct ms_account {
	char *name;          /* the section name: [NAME] */
	char *cfg_file;      /* config file path, for messages */
	int cfg_line;        /* line of the section header */

	enum ms_proto proto;
	int tls_implicit;    /* 1: imaps/pop3s; 0: imap/pop3 + STARTTLS/STLS required */
	char *host;
	int port;            /* filled with the default when absent */
	char *url;           /* canonical "imaps://host:port/" for net.c */

	char *user;
	char *password;         /* inline (config must be 0600); may be NULL */
	char *password_file;    /* first line of this file; may be NULL */
	char *password_command; /* run via /bin/sh -c, first line; may be NULL */
	enum ms_auth auth;
	char *tls_ca_file;   /* NULL: system trust store */
	char *tls_pin;       /* "sha256//BASE64[;sha256//...]" or NULL */

	char **folders;      /* include/exclude patterns, in order; NULL = all */
	size_t nfolders;

	enum ms_store_kind store;
	char *store_path;    /* absolute, ~ expanded */
	enum ms_layout layout;

	enum ms_policy policy;
	unsigned delete_after_days; /* with MS_POLICY_DELETE_AFTER */
	uint64_t max_message_size;  /* bytes; 0 = no limit */
	unsigned timeout;           /* seconds for connect and each read */

	enum ms_mirror mirror;
	unsigned mirror_max_percent; /* guard for mirror=full, default 20 */
	unsigned removed_keep_days;  /* .mailsync-removed retention, default 30 */

	enum ms_gmail gmail;         /* all-mail: \\All only, X-GM-LABELS kept */
};

struct ms_config {
	char *path;          /* the file that was loaded */
	char *state_dir;     /* absolute, ~ expanded */
	unsigned jobs;       /* accounts in parallel (>= 1) */
	struct ms_account *accounts;
	size_t naccounts;
};

/* Load, validate and permission-check a config file.  On success *out is
 * owned by the caller (ms_config_free).  Errors: MS_ECONFIG with
 * "FILE:LINE: message". */
int ms_config_load(struct ms_config **out, const char *path,
		   struct ms_err *e);
void ms_config_free(struct ms_config *c);

/* The default config path: $XDG_CONFIG_HOME/mailsync/mailsync.ini, else
 * ~/.config/mailsync/mailsync.ini.  Caller frees. */
char *ms_config_default_path(void);

/* Find an account by name, NULL if absent. */
const struct ms_account *ms_config_account(const struct ms_config *c,
					   const char *name);

/* Obtain the account's secret (password or OAuth2 token) from its source.
 * *out is owned by the caller, who must explicit_bzero and free it.
 * MS_ECONFIG on a missing/empty/failed source; never puts the secret in e. */
int ms_config_secret(const struct ms_account *a, char **out,
		     struct ms_err *e);

/* NULL-terminated list of every key the parser accepts, as "general.KEY"
 * and "account.KEY" (for the documentation test). */
const char *const *ms_config_keys(void);

#endif
