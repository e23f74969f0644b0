/*
 * test_fsutil.c: durable file creation below directory fds.
 * Runs in a mkdtemp directory.  The ENOSPC case needs root and a private
 * mount namespace (a 64 KiB tmpfs); without them it is reported as SKIP.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fsutil.h"
#include "t.h"

static char top[64];

static char *at(const char *rel)
{
	static char p[4][512];
	static int i;

	i = (i + 1) % 4;
	snprintf(p[i], sizeof p[i], "%s/%s", top, rel);
	return p[i];
}

static int mode_of(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
}

static int count_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.' ||
		     (de->d_name[1] && strcmp(de->d_name, "..") != 0);
	closedir(d);
	return n;
}

static void test_open_dir(void)
{
	struct ms_err e;
	int fd = -1, fd2 = -1;

	T_EQ_INT(ms_fs_open_dir(at("a/b/c"), 1, &fd, &e), 0,
		 "open_dir creates a nested path");
	T_EQ_INT(mode_of(at("a/b/c")), 0700, "  ... mode 0700 under umask 022");
	T_EQ_INT(mode_of(at("a")), 0700, "  ... every created level 0700");
	T_OK(fd >= 0 && fsync(fd) == 0, "  ... fd is a readable dir fd");
	close(fd);
	T_EQ_INT(ms_fs_open_dir(at("a/b/c/"), 0, &fd, &e), 0,
		 "open_dir on an existing path, trailing slash, no create");
	close(fd);
	T_EQ_INT(ms_fs_open_dir(at("nope/x"), 0, &fd, &e), MS_EIO,
		 "open_dir without create on a missing path fails");
	T_OK(strstr(e.msg, "/nope") && fd == -1, "  ... naming the path");
	/* the user's prefix may be a symlink: followed */
	T_OK(symlink(at("a"), at("link")) == 0, "symlink for prefix");
	T_EQ_INT(ms_fs_open_dir(at("link/b/new"), 1, &fd, &e), 0,
		 "existing symlinked prefix is followed");
	T_EQ_INT(mode_of(at("a/b/new")), 0700, "  ... created in the target");
	close(fd);
	/* below a dir fd nothing is followed */
	T_EQ_INT(ms_fs_open_dir(top, 0, &fd, &e), 0, "open top");
	T_EQ_INT(ms_fs_open_subdir(fd, "link/z", 1, &fd2, &e), MS_ECREATE,
		 "open_subdir refuses a symlink component");
	T_OK(strstr(e.msg, "symlink") && strstr(e.msg, at("link")),
	     "  ... naming the full path");
	T_EQ_INT(mode_of(at("a/z")), -1, "  ... nothing created behind it");
	T_EQ_INT(ms_fs_open_subdir(fd, "../x", 1, &fd2, &e), MS_EINTERNAL,
		 "open_subdir refuses ..");
	T_EQ_INT(ms_fs_open_subdir(fd, "a/./b", 1, &fd2, &e), MS_EINTERNAL,
		 "open_subdir refuses .");
	T_EQ_INT(ms_fs_open_subdir(fd, "/etc", 1, &fd2, &e), MS_EINTERNAL,
		 "open_subdir refuses an absolute path");
	T_EQ_INT(ms_fs_open_subdir(fd, "s1/s2", 1, &fd2, &e), 0,
		 "open_subdir creates below the fd");
	T_EQ_INT(mode_of(at("s1/s2")), 0700, "  ... mode 0700");
	close(fd2);
	T_EQ_INT(ms_fs_open_subdir(fd, "", 0, &fd2, &e), 0,
		 "open_subdir \"\" is the dir itself");
	T_OK(fd2 >= 0 && fd2 != fd, "  ... as a new fd");
	close(fd2);
	close(fd);
}

static void test_files(void)
{
	char buf[64] = {0};
	struct ms_err e;
	int dfd = -1, fd = -1, rfd;

	ms_fs_open_dir(top, 0, &dfd, &e);
	T_EQ_INT(ms_fs_create(dfd, "f1", &fd, &e), 0, "create");
	T_EQ_INT(mode_of(at("f1")), 0600, "  ... mode 0600 under umask 022");
	T_EQ_INT(ms_fs_write_all(fd, "hello\n", 6, "f1", &e), 0, "write_all");
	T_EQ_INT(ms_fs_fsync(fd, "f1", &e), 0, "fsync");
	close(fd);
	rfd = open(at("f1"), O_RDONLY);
	T_EQ_INT(read(rfd, buf, sizeof buf), 6, "  ... 6 bytes on disk");
	close(rfd);
	T_EQ_INT(ms_fs_create(dfd, "f1", &fd, &e), MS_ECREATE,
		 "create is exclusive");
	T_OK(strstr(e.msg, at("f1")) && strstr(e.msg, "File exists"),
	     "  ... message names path and errno");
	T_OK(symlink(at("victim"), at("dangling")) == 0, "dangling symlink");
	T_EQ_INT(ms_fs_create(dfd, "dangling", &fd, &e), MS_ECREATE,
		 "create refuses a dangling symlink");
	T_EQ_INT(mode_of(at("victim")), -1, "  ... target not created");
	/* rename without replace */
	ms_fs_create(dfd, "f2", &fd, &e);
	close(fd);
	T_EQ_INT(ms_fs_rename(dfd, "f2", dfd, "f1", "f1", &e), MS_ECREATE,
		 "rename never replaces");
	T_OK(mode_of(at("f2")) == 0600 && strstr(e.msg, "File exists"),
	     "  ... source kept, errno named");
	T_EQ_INT(ms_fs_rename(dfd, "f2", dfd, "f3", "f3", &e), 0, "rename");
	T_OK(mode_of(at("f2")) == -1 && mode_of(at("f3")) == 0600,
	     "  ... moved");
	/* atomic replace */
	T_EQ_INT(ms_fs_replace(dfd, "f1", "new content", 11, "f1", &e), 0,
		 "replace an existing file");
	rfd = open(at("f1"), O_RDONLY);
	memset(buf, 0, sizeof buf);
	T_EQ_INT(read(rfd, buf, sizeof buf), 11, "  ... new size");
	T_EQ_STR(buf, "new content", "  ... new bytes");
	close(rfd);
	T_EQ_INT(ms_fs_replace(dfd, "f4", "", 0, "f4", &e), 0,
		 "replace creates a missing file");
	T_EQ_INT(mode_of(at("f4")), 0600, "  ... mode 0600");
	T_EQ_INT(count_entries(top), 7, "  ... no temporary files left");
	T_EQ_INT(ms_fs_create(dfd, "nodir/x", &fd, &e), MS_EIO,
		 "create in a missing dir");
	T_OK(strstr(e.msg, at("nodir/x")) != NULL, "  ... names the path");
	close(dfd);
}

/* In a child: private mount namespace, 64 KiB tmpfs, write 100 KiB. */
static int enospc_child(void)
{
	static char big[100 * 1024];
	struct ms_err e;
	int dfd, fd, rc;

	if (geteuid() != 0 || unshare(CLONE_NEWNS) < 0)
		return 77;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("tmpfs", at("small"), "tmpfs", 0, "size=64k") < 0)
		return 77;
	if (ms_fs_open_dir(at("small"), 0, &dfd, &e) < 0 ||
	    ms_fs_create(dfd, "big", &fd, &e) < 0)
		return 2;
	rc = ms_fs_write_all(fd, big, sizeof big, "small/big", &e);
	if (rc != MS_EIO)
		return 3;
	if (!strstr(e.msg, "small/big: No space left on device"))
		return 4;
	return 0;
}

static void test_enospc(void)
{
	pid_t pid;
	int st = 0;

	mkdir(at("small"), 0700);
	fflush(stdout);
	if ((pid = fork()) == 0) {
		int r = enospc_child();
		fflush(stdout);
		_exit(r);
	}
	waitpid(pid, &st, 0);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
		printf("ok %d - ENOSPC # SKIP needs root and unshare -m\n",
		       ++t_n);
		return;
	}
	T_EQ_INT(WIFEXITED(st) ? WEXITSTATUS(st) : 100, 0,
		 "ENOSPC -> MS_EIO \"PATH: No space left on device\"");
}

int main(void)
{
	umask(022);
	snprintf(top, sizeof top, "/tmp/ms_test_fsutil.XXXXXX");
	if (!mkdtemp(top))
		return 1;
	test_open_dir();
	test_files();
	test_enospc();
	if (getenv("MS_KEEP_TMP") == NULL) {
		char cmd[128];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", top);
		if (system(cmd) != 0)
			printf("# could not remove %s\n", top);
	}
	return t_done();
}
