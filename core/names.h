/*
 * names.h: folder names, from the server's bytes to safe local paths.
 *
 * Pure code (no I/O, fuzzed).  A server name is first decoded strictly
 * from modified UTF-7 (RFC 3501 5.1.3), then split at the server's
 * delimiter into levels, and each level is checked/escaped so that no
 * name can escape the archive root or collide with Maildir's own
 * directories.  The mapping is stable and reversible.
 */
#ifndef MS_NAMES_H
#define MS_NAMES_H

#include <stddef.h>

#include "config.h"
#include "err.h"

/* Decode modified UTF-7 to UTF-8.  Rejects non-canonical forms (encoded
 * printable ASCII, bad base64, bad padding bits, unpaired surrogates,
 * "&-" misuse, 8-bit bytes).  *out owned by caller.  MS_EPROTO. */
int ms_names_mutf7_decode(const char *in, char **out, struct ms_err *e);
/* Encode UTF-8 to modified UTF-7 (for sending a name back). */
int ms_names_mutf7_encode(const char *in, char **out, struct ms_err *e);

/* Server name (raw, mUTF-7) + delimiter -> the store's folder name: UTF-8
 * levels joined with '/'.  Each level: no NUL/CR/LF/control characters
 * (rejected), "." and ".." and "" rejected, '/' inside a level escaped
 * as %2F, '%' as %25, a leading '.' as %2E, over 255 bytes rejected.
 * MS_EPROTO with the reason for a name that must be skipped. */
int ms_names_folder_to_local(const char *raw, char delim, char **out,
			     struct ms_err *e);

/* Store folder name ("a/b") -> relative directory path in the store:
 * verbatim: "a/b" ("INBOX" stays "INBOX"); maildir++: ".a.b", INBOX -> ""
 * (the root); levels named cur/new/tmp are escaped in verbatim.  Caller
 * frees *out. */
int ms_names_local_to_path(const char *folder, enum ms_layout layout,
			   char **out, struct ms_err *e);

/* Folder name -> one safe file name component for state files
 * (percent-encoding of everything outside [A-Za-z0-9._-]). */
int ms_names_state_file(const char *folder, char **out, struct ms_err *e);

#endif
