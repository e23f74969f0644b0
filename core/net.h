/*
 * net.h: one authenticated connection to a mail server.
 *
 * net.c is the only file that includes <curl/curl.h>.  libcurl does DNS,
 * TCP, TLS, certificate verification/pinning, STARTTLS/STLS and the login
 * (SASL) through CURLOPT_CONNECT_ONLY; after ms_net_connect returns, the
 * session is authenticated and the protocol engines speak over
 * ms_net_send/ms_net_recv with their own tags.
 */
#ifndef MS_NET_H
#define MS_NET_H

#include <stddef.h>

#include "config.h"
#include "err.h"

struct ms_net;

struct ms_net_opts {
	const struct ms_account *acct; /* url, user, auth, tls_* and timeout */
	const char *secret;            /* password or token; net.c copies it
					* into libcurl and keeps no copy */
	int trace;                     /* 1: log the login phase at DEBUG,
					* credentials redacted */
};

/* Connect, verify TLS, log in.  Errors: MS_EPERM (authentication, TLS
 * verification), MS_ETEMP (network, timeout), MS_EPROTO (protocol). */
int ms_net_connect(struct ms_net **out, const struct ms_net_opts *o,
		   struct ms_err *e);
/* Send all n bytes (waits up to the timeout for the socket). */
int ms_net_send(struct ms_net *n, const void *p, size_t len, struct ms_err *e);
/* Receive at most cap bytes into p; *got > 0 on success: once some bytes
 * arrived, also whatever else is readable without waiting (while 16 KiB
 * of room is left).  Waits up to the account timeout.  EOF -> MS_ETEMP "connection closed by server";
 * timeout -> MS_ETEMP "timeout after N s". */
int ms_net_recv(struct ms_net *n, void *p, size_t cap, size_t *got,
		struct ms_err *e);
/* Wrap an already connected plain socket: no TLS, no login.  For unit
 * tests of the protocol engines over a socketpair with a scripted peer
 * only; never reachable from the configuration.  Takes ownership of fd. */
int ms_net_from_fd(struct ms_net **out, int fd, unsigned timeout,
		   struct ms_err *e);
/* Close and free (no protocol goodbye: the engines send LOGOUT/QUIT). */
void ms_net_close(struct ms_net *n);
/* IMAP: the capability list the server sent with (or just before) the
 * tagged OK of the login ("IMAP4rev1 UIDPLUS ..."), or NULL when it sent
 * none: then the engine asks with CAPABILITY.  Pre-login capabilities are
 * never returned. */
const char *ms_net_login_caps(const struct ms_net *n);
/* The peer description for messages, e.g. "host:port". */
const char *ms_net_peer(const struct ms_net *n);

#endif
