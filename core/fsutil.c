/*
 * fsutil.c: the one place that creates and durably writes files.
 *
 * Every operation is relative to a directory fd (openat/mkdirat/renameat),
 * so once the store root is open nothing can redirect a write: components
 * mailsync creates or opens below it are opened with O_NOFOLLOW.  Only the
 * prefix of the root path that already exists is followed (the user may
 * keep ~/Mail behind a symlink).  New files are O_CREAT|O_EXCL 0600, new
 * directories 0700; a new directory entry is made durable by fsyncing its
 * parent, because a message fsynced into a directory that vanishes on a
 * crash is not stored.  Messages name the full path (via /proc/self/fd).
 */
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIR_MODE 0700
#define FILE_MODE 0600

/* "DIR/rel" for messages, DIR being what dirfd refers to. */
static const char *fd_path(int dirfd, const char *rel, char *buf, size_t n)
{
	char link[64];
	ssize_t len = -1;

	if (dirfd == AT_FDCWD) {
		len = 1;
		memcpy(buf, ".", 2);
	} else if (dirfd >= 0) {
		snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
		len = readlink(link, buf, n - 1);
	}
	if (len < 0)
		len = snprintf(buf, n, "(fd %d)", dirfd);
	else
		buf[len] = '\0';
	if (rel && *rel && (size_t)len < n)
		snprintf(buf + len, n - (size_t)len, "%s%s",
			 len == 1 && buf[0] == '/' ? "" : "/", rel);
	return buf;
}

static int sys_err(struct ms_err *e, int errnum, const char *what,
		   const char *path)
{
	return ms_err_sys(e, ms_err_code_for_errno(errnum), errnum, "%s %s",
			  what, path);
}

static int sys_err_at(struct ms_err *e, int errnum, const char *what, int dirfd,
		      const char *rel)
{
	char p[PATH_MAX + 256];

	return sys_err(e, errnum, what, fd_path(dirfd, rel, p, sizeof p));
}

/* Best effort: make a new entry in dirfd durable (dirfd may be O_PATH). */
static void sync_parent(int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

/*
 * Open one component below cur.  follow: the component may be a symlink
 * (existing user prefix only).  create: mkdir it when missing; *made says
 * whether we did.
 */
static int open_comp(int cur, const char *comp, int follow, int create,
		     int last, int *made)
{
	int flags = O_DIRECTORY | O_CLOEXEC | (last ? O_RDONLY : O_PATH);
	int fd;

	*made = 0;
	fd = openat(cur, comp, flags | (follow ? 0 : O_NOFOLLOW));
	if (fd >= 0 || errno != ENOENT || !create)
		return fd;
	if (mkdirat(cur, comp, DIR_MODE) == 0) {
		*made = 1;
		sync_parent(cur);
	} else if (errno != EEXIST) {
		return -1;
	}
	return openat(cur, comp, flags | O_NOFOLLOW);
}

static int comp_err(struct ms_err *e, int err, int cur, const char *comp)
{
	char p[PATH_MAX + 256];
	struct stat st;

	fd_path(cur, comp, p, sizeof p);
	if ((err == ELOOP || err == ENOTDIR) &&
	    fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISLNK(st.st_mode))
		return ms_err_set(e, MS_ECREATE,
				  "refusing to follow symlink %s", p);
	return sys_err(e, err, "cannot open directory", p);
}

/* Walk path (split in place) from start; symlinks are followed only when
 * follow_existing is set and nothing has been created yet. */
static int walk(int start, char *path, const char *shown, int create,
		int follow_existing, int *out, struct ms_err *e)
{
	int cur = start, fd, made, created = 0, rc = 0;
	char *comp = path, *next;

	while (*comp == '/')
		comp++;
	if (!*comp)
		comp = ".";
	for (;;) {
		if ((next = strchr(comp, '/'))) {
			*next++ = '\0';
			while (*next == '/')
				next++;
			if (!*next)
				next = NULL; /* trailing slash */
		}
		if (!follow_existing &&
		    (strcmp(comp, "..") == 0 || strcmp(comp, ".") == 0)) {
			rc = ms_err_set(e, MS_EINTERNAL,
					"%s: unsafe relative path", shown);
			goto out;
		}
		fd = open_comp(cur, comp, follow_existing && !created, create,
			       !next, &made);
		if (fd < 0) {
			rc = comp_err(e, errno, cur, comp);
			goto out;
		}
		created |= made;
		if (cur != start)
			close(cur);
		cur = fd;
		if (!next)
			break;
		comp = next;
	}
	*out = cur;
	cur = start;
out:
	if (cur != start)
		close(cur);
	return rc;
}

int ms_fs_open_dir(const char *path, int create, int *fd, struct ms_err *e)
{
	char *copy = NULL;
	int start = -1, rc;

	*fd = -1;
	if (!path || !*path)
		return ms_err_set(e, MS_EINTERNAL, "empty directory path");
	if (strlen(path) >= PATH_MAX)
		return ms_err_sys(e, MS_ECREATE, ENAMETOOLONG, "%.200s...",
				  path);
	if (!(copy = strdup(path)))
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	start =
	    open(path[0] == '/' ? "/" : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (start < 0) {
		rc = sys_err(e, errno, "cannot open directory", path);
		goto out;
	}
	rc = walk(start, copy, path, create, 1, fd, e);
out:
	if (start >= 0)
		close(start);
	free(copy);
	return rc;
}

int ms_fs_open_subdir(int dirfd, const char *rel, int create, int *fd,
		      struct ms_err *e)
{
	char *copy = NULL;
	int rc;

	*fd = -1;
	if (!rel || !*rel) {
		*fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (*fd < 0)
			return sys_err_at(e, errno, "cannot open directory",
					  dirfd, NULL);
		return 0;
	}
	if (rel[0] == '/')
		return ms_err_set(e, MS_EINTERNAL, "%s: absolute path", rel);
	if (!(copy = strdup(rel)))
		return ms_err_set(e, MS_EINTERNAL, "out of memory");
	rc = walk(dirfd, copy, rel, create, 0, fd, e);
	free(copy);
	return rc;
}

int ms_fs_create(int dirfd, const char *name, int *fd, struct ms_err *e)
{
	*fd = openat(dirfd, name,
		     O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		     FILE_MODE);
	if (*fd < 0)
		return sys_err_at(e, errno, "cannot create", dirfd, name);
	return 0;
}

int ms_fs_write_all(int fd, const void *p, size_t n, const char *path,
		    struct ms_err *e)
{
	const char *s = p;
	ssize_t w;

	while (n > 0) {
		w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return sys_err(e, errno, "cannot write", path);
		if (w == 0)
			return sys_err(e, EIO, "cannot write", path);
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

void ms_fs_drop_cache(int fd, uint64_t from)
{
	long pg = sysconf(_SC_PAGESIZE);

	/* the kernel drops whole pages only: start at the page holding from
	 * (its older part is as clean as the rest after the fsync) */
	if (pg > 0)
		from -= from % (uint64_t)pg;
	(void)posix_fadvise(fd, (off_t)from, 0, POSIX_FADV_DONTNEED);
}

int ms_fs_fsync(int fd, const char *path, struct ms_err *e)
{
	int rc;

	do
		rc = fsync(fd);
	while (rc < 0 && errno == EINTR);
	if (rc < 0) {
		/* EACCES/EROFS from fsync still mean the data is not safe */
		int err = errno;
		return ms_err_sys(e, MS_EIO, err, "cannot fsync %s", path);
	}
	return 0;
}

int ms_fs_rename(int fromdir, const char *from, int todir, const char *to,
		 const char *path, struct ms_err *e)
{
	int err;

	if (renameat2(fromdir, from, todir, to, RENAME_NOREPLACE) == 0)
		return 0;
	err = errno;
	if (err != EINVAL && err != ENOSYS && err != ENOTSUP &&
	    err != EOPNOTSUPP)
		goto fail;
	/* filesystems without RENAME_NOREPLACE: link refuses a target too */
	if (linkat(fromdir, from, todir, to, 0) < 0) {
		err = errno;
		goto fail;
	}
	if (unlinkat(fromdir, from, 0) < 0) {
		err = errno;
		(void)unlinkat(todir, to, 0);
		goto fail;
	}
	return 0;
fail:
	return sys_err(e, err, "cannot rename into", path);
}

static void tmp_name(const char *name, char *buf, size_t n)
{
	uint64_t r = 0;

	if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
		r = (uint64_t)(uintptr_t)buf ^ (uint64_t)getpid() << 32;
	snprintf(buf, n, ".%.180s.tmp%ld.%016llx", name, (long)getpid(),
		 (unsigned long long)r);
}

int ms_fs_replace(int dirfd, const char *name, const void *p, size_t n,
		  const char *path, struct ms_err *e)
{
	char tmp[256];
	int fd = -1, rc;

	tmp_name(name, tmp, sizeof tmp);
	if ((rc = ms_fs_create(dirfd, tmp, &fd, e)) < 0)
		return rc;
	if ((rc = ms_fs_write_all(fd, p, n, path, e)) < 0)
		goto out;
	if ((rc = ms_fs_fsync(fd, path, e)) < 0)
		goto out;
	if (close(fd) < 0) {
		fd = -1;
		rc = sys_err(e, errno, "cannot close", path);
		goto out;
	}
	fd = -1;
	if (renameat(dirfd, tmp, dirfd, name) < 0) {
		rc = sys_err(e, errno, "cannot rename into", path);
		goto out;
	}
	tmp[0] = '\0';
	rc = ms_fs_fsync(dirfd, path, e);
out:
	if (fd >= 0)
		close(fd);
	if (rc < 0 && tmp[0])
		(void)unlinkat(dirfd, tmp, 0);
	return rc;
}
