/*
 * net_global.h: process-wide setup of the network layer (libcurl).
 *
 * Call ms_net_global_init once at start-up, before any thread or account
 * runs, and ms_net_global_cleanup once at exit.
 */
#ifndef MS_NET_GLOBAL_H
#define MS_NET_GLOBAL_H

#include "err.h"

/* curl_global_init, then check that libcurl is >= 7.79.0 and built with
 * OpenSSL and IMAP/POP3.  MS_EINTERNAL otherwise. */
int ms_net_global_init(struct ms_err *e);
void ms_net_global_cleanup(void);

#endif
