/*
 * config_int.h: shared by config.c (file, sections, validation, permission
 * checks) and config_value.c (parsing one value into the structs).
 * Internal to the config module; nothing else includes it.
 */
#ifndef MS_CONFIG_INT_H
#define MS_CONFIG_INT_H

#include <stddef.h>

#include "config.h"

/* Account keys, in the order of the name table in config.c. */
enum ms_config_key {
	K_SOURCE, K_USER, K_PASSWORD, K_PASSWORD_FILE, K_PASSWORD_COMMAND,
	K_AUTH, K_TLS_CA_FILE, K_TLS_PIN, K_FOLDERS, K_STORE, K_LAYOUT,
	K_POLICY, K_MAX_MESSAGE_SIZE, K_TIMEOUT, K_MIRROR,
	K_MIRROR_MAX_PERCENT, K_REMOVED_KEEP_DAYS, K_GMAIL, K_NKEYS
};
enum ms_config_gkey { G_STATE_DIR, G_JOBS };

/* Set one key from a non-empty value; relative paths are resolved against
 * dir (absolute).  0 on success; MS_ECONFIG with why set to the reason,
 * which follows the quoted value in the message ("is not a whole number
 * from 1 to 64"); MS_EINTERNAL when out of memory. */
int ms_config_set_account(struct ms_account *a, int key, const char *val,
			  const char *dir, char *why, size_t whylen);
int ms_config_set_general(struct ms_config *c, int key, const char *val,
			  const char *dir, char *why, size_t whylen);

/* Lexically normalise an absolute path in place (no "", ".", ".."). */
void ms_config_normalise(char *path);
/* $HOME if absolute, else the passwd entry's; NULL if neither. */
const char *ms_config_home(void);

#endif
