/*
 * session.h: one logged-in account: secret, connection, protocol engine.
 * Internal to the core (sync.c and the API functions in session.c).
 */
#ifndef MS_SESSION_H
#define MS_SESSION_H

#include "config.h"
#include "err.h"
#include "source.h"
#include "store.h"

struct ms_session {
	const struct ms_account *acct;
	const struct ms_source_ops *ops;
	struct ms_source *src; /* owned; NULL when closed */
};

/* Obtain the secret, connect, log in, open the protocol engine.  The
 * secret is wiped before this returns. */
int ms_session_open(struct ms_session *s, const struct ms_account *a,
		    struct ms_err *e);
/* LOGOUT/QUIT when commit, else drop the connection.  Idempotent. */
int ms_session_close(struct ms_session *s, int commit, struct ms_err *e);

/* The store implementation for an account. */
const struct ms_store_ops *ms_session_store_ops(const struct ms_account *a);

/* A server folder decoded for the local side.  local is NULL when the
 * name is refused, with the reason in why. */
struct ms_lfolder {
	char *raw;    /* server name, owned */
	char *local;  /* UTF-8, '/'-separated, owned; NULL if refused */
	char why[MS_ERR_MSG_MAX];
	char delim;
	unsigned attrs;
};

struct ms_lfolders {
	struct ms_lfolder *v; /* owned */
	size_t n, cap;
};

/* LIST the server and decode every name (IMAP); POP3 gives INBOX. */
int ms_session_folders(struct ms_session *s, struct ms_lfolders *out,
		       struct ms_err *e);
void ms_lfolders_free(struct ms_lfolders *f);

#endif
