/*
 * fsutil.h: the one place that creates and durably writes files.
 *
 * Everything is relative to a directory fd (openat/mkdirat/renameat) with
 * O_NOFOLLOW, so a symlink planted in the archive cannot redirect writes.
 * New files are O_CREAT|O_EXCL|O_CLOEXEC, mode 0600, whatever the umask.
 */
#ifndef MS_FSUTIL_H
#define MS_FSUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

/* Open (creating 0700 as needed) the directory path; absolute or relative
 * to the cwd.  Components mailsync creates or opens are not followed if
 * they are symlinks, except the existing prefix the user configured.
 * *fd is an O_DIRECTORY fd. */
int ms_fs_open_dir(const char *path, int create, int *fd, struct ms_err *e);
/* Open/create subdirectory rel (may contain '/') below dirfd, never
 * following symlinks in rel. */
int ms_fs_open_subdir(int dirfd, const char *rel, int create, int *fd,
		      struct ms_err *e);
/* Create name below dirfd exclusively, mode 0600. */
int ms_fs_create(int dirfd, const char *name, int *fd, struct ms_err *e);
/* Write all of p (retrying short writes and EINTR). path for messages. */
int ms_fs_write_all(int fd, const void *p, size_t n, const char *path,
		    struct ms_err *e);
int ms_fs_fsync(int fd, const char *path, struct ms_err *e);
/* After a successful fsync: the written pages are clean, let the kernel
 * drop them from the page cache, from byte from to the end (a hint).  A
 * first backup of gigabytes would otherwise push everything else out of
 * it, the local server's own files included. */
void ms_fs_drop_cache(int fd, uint64_t from);
/* renameat within or between directories, no replace of an existing
 * target (RENAME_NOREPLACE, falling back to link+unlink). */
int ms_fs_rename(int fromdir, const char *from, int todir, const char *to,
		 const char *path, struct ms_err *e);
/* Replace name below dirfd with the bytes atomically and durably:
 * tmp file, write, fsync, rename over, fsync dirfd. */
int ms_fs_replace(int dirfd, const char *name, const void *p, size_t n,
		  const char *path, struct ms_err *e);

#endif
