/*
 * rundir.c - the runtime directory (lock, sockets) and the checks on
 * the data directories, all done before any child starts so that a bad
 * path is a clear message and a non-zero exit, not a crash loop.
 */
#include "config.h"

#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipc.h"
#include "ipc_link.h"
#include "supervisor.h"

/* mkdir -p with a mode for the directories we create. */
static int
make_dirs(const char *path, mode_t mode)
{
	char	 tmp[PATH_MAX], *p;

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) == -1 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, mode) == -1 && errno != EEXIST)
		return -1;
	return 0;
}

/* The directory exists (created if need be) and we can create files. */
static int
check_writable(const char *what, const char *dir, mode_t mode, char *err,
    size_t errlen)
{
	char		 probe[PATH_MAX];
	struct stat	 st;
	int		 fd;

	if (make_dirs(dir, mode) == -1) {
		snprintf(err, errlen, "%s %s: cannot create: %s", what, dir,
		    strerror(errno));
		return -1;
	}
	if (stat(dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s %s: not a directory", what, dir);
		return -1;
	}
	snprintf(probe, sizeof(probe), "%s/.promptmq-probe.%ld", dir,
	    (long)getpid());
	if ((fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) ==
	    -1) {
		snprintf(err, errlen, "%s %s: cannot create files there: %s",
		    what, dir, strerror(errno));
		return -1;
	}
	close(fd);
	unlink(probe);
	return 0;
}

/*
 * The runtime directory holds the lock, the control socket and, in its
 * IPC_SUBDIR, the nng endpoints (docs/architecture.md, "Control socket
 * and promptmqctl").  The directory itself is ours (root's): 0750 with
 * server.group when the children run as another user, so that the
 * group reaches the control socket, else 0700.  The endpoints'
 * directory is handed to the children's user later (privs_hand_over of
 * `ipc_dir`).  Every socket path must fit in a sockaddr_un.
 */
int
rundir_prepare(const char *dir, int nworkers, const struct privs *pv,
    char *ipc_dir, size_t ipc_dirlen, char *err, size_t errlen)
{
	char		 longest[PATH_MAX];
	struct stat	 st;
	size_t		 extra = strlen("/" IPC_SUBDIR "/t65535.ipc");

	if (ipc_endpoint_path(longest, sizeof(longest), dir, IPC_ROLE_WORKER,
	    (uint16_t)(nworkers > 0 ? nworkers - 1 : 0)) == -1 ||
	    ipc_endpoint_path(longest, sizeof(longest), dir, IPC_ROLE_TOOL,
	    65535) == -1) {
		snprintf(err, errlen, "server.runtime-dir %s: too long for the "
		    "IPC socket paths inside it (%zu bytes; socket paths may "
		    "have at most %d, so use a directory of at most %zu bytes)",
		    dir, strlen(dir), IPC_PATH_MAX, IPC_PATH_MAX - extra);
		return -1;
	}
	if (check_writable("server.runtime-dir", dir, 0700, err, errlen) == -1)
		return -1;
	if (stat(dir, &st) == -1) {
		snprintf(err, errlen, "server.runtime-dir %s: %s", dir,
		    strerror(errno));
		return -1;
	}
	/* ours, or (root) handed to the children's user by an older
	 * version: taken back */
	if (st.st_uid != geteuid() && !(pv->drop && st.st_uid == pv->uid)) {
		snprintf(err, errlen, "server.runtime-dir %s: owned by uid %u, "
		    "not by us (uid %u)", dir, (unsigned)st.st_uid,
		    (unsigned)geteuid());
		return -1;
	}
	if ((st.st_uid != geteuid() || (pv->drop && st.st_gid != pv->gid)) &&
	    chown(dir, geteuid(), pv->drop ? pv->gid : (gid_t)-1) == -1) {
		snprintf(err, errlen, "server.runtime-dir %s: cannot take it "
		    "back from uid %u: %s", dir, (unsigned)st.st_uid,
		    strerror(errno));
		return -1;
	}
	if ((st.st_mode & 07777) != (pv->drop ? 0750 : 0700) &&
	    chmod(dir, pv->drop ? 0750 : 0700) == -1) {
		snprintf(err, errlen, "server.runtime-dir %s: cannot set its "
		    "mode (%s): %s", dir, pv->drop ? "0750" : "0700",
		    strerror(errno));
		return -1;
	}
	snprintf(ipc_dir, ipc_dirlen, "%s/" IPC_SUBDIR, dir);
	if ((mkdir(ipc_dir, 0700) == -1 && errno != EEXIST) ||
	    lstat(ipc_dir, &st) == -1) {
		snprintf(err, errlen, "server.runtime-dir %s: cannot create "
		    "%s: %s", dir, ipc_dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "server.runtime-dir %s: %s is not a "
		    "directory", dir, ipc_dir);
		return -1;
	}
	if ((st.st_mode & 077) != 0 && chmod(ipc_dir, 0700) == -1) {
		snprintf(err, errlen, "%s: cannot make it private (0700): %s",
		    ipc_dir, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * A lock file that names its holder: created if need be and flock()ed,
 * held for the life of the process (the kernel drops it when we die, so
 * a stale file cannot block a restart).  When another process holds it,
 * -1 with EWOULDBLOCK and the pid written in it in `holder`.
 */
int
lockfile_open(const char *path, mode_t mode, char *holder, size_t holderlen)
{
	ssize_t	 n;
	int	 fd, saved;

	holder[0] = '\0';
	/* never through a link someone else left in the directory */
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
	    mode)) == -1)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		saved = errno;
		n = pread(fd, holder, holderlen - 1, 0);
		holder[n > 0 ? n : 0] = '\0';
		holder[strcspn(holder, "\n")] = '\0';
		if (holder[0] == '\0')
			snprintf(holder, holderlen, "?");
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* Write our pid into a held lock file, in one write. */
int
lockfile_write_pid(int fd)
{
	char	 buf[32];
	int	 n;

	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) == -1 || pwrite(fd, buf, (size_t)n, 0) != n)
		return -1;
	return 0;
}

/*
 * One broker per runtime directory: an exclusive lock on
 * RUNDIR/promptmqd.lock, naming our pid for the error message of a
 * second instance.
 */
int
rundir_lock(const char *dir, char *err, size_t errlen)
{
	char	 path[PATH_MAX], holder[32];
	int	 fd;

	snprintf(path, sizeof(path), "%s/promptmqd.lock", dir);
	if ((fd = lockfile_open(path, 0600, holder, sizeof(holder))) == -1) {
		if (errno == EWOULDBLOCK)
			snprintf(err, errlen, "another promptmqd (pid %s) is "
			    "running with runtime directory %s", holder, dir);
		else
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (lockfile_write_pid(fd) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * The directories of the log files named in log.target: a fresh
 * install has no /var/log/promptmq yet, and a missing directory would
 * otherwise stop the start with a bare "No such file or directory".
 */
int
logdir_prepare(const char *targets, char *err, size_t errlen)
{
	char	 copy[PATH_MAX], *tok, *save, *slash;

	snprintf(copy, sizeof(copy), "%s", targets);
	for (tok = strtok_r(copy, ",", &save); tok;
	    tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		if (tok[0] != '/' || (slash = strrchr(tok, '/')) == tok)
			continue;
		*slash = '\0';
		if (make_dirs(tok, 0755) == -1) {
			snprintf(err, errlen, "log.target: cannot create %s: %s",
			    tok, strerror(errno));
			return -1;
		}
	}
	return 0;
}

int
datadir_prepare(const char *data_dir, const char *wal_dir, char *err,
    size_t errlen)
{
	if (check_writable("storage.data-dir", data_dir, 0750, err, errlen) ==
	    -1)
		return -1;
	return check_writable("storage.wal-dir", wal_dir, 0750, err, errlen);
}
