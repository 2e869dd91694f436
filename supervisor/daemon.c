/*
 * daemon.c - running as a Unix daemon: detaching with a readiness pipe,
 * the pid file, and the systemd notification protocol.
 *
 * Detaching (-d):
 *   1) a pipe is made; the process forks and the parent waits on the
 *      pipe, so the command that started the daemon returns only when
 *      the daemon is ready (exit 0) or has failed (exit 1, with the
 *      reason the daemon wrote into the pipe);
 *   2) the child calls setsid() and forks again, so the daemon is not a
 *      session leader and can never reacquire a terminal;
 *   3) the daemon changes to /, sets its umask and points the standard
 *      descriptors at /dev/null.
 * Everything that can fail because of the configuration (directories,
 * the lock, the listeners, the pid file's lock) happens before step 1,
 * in the foreground, where its message reaches the terminal.
 *
 * The pid file is created and locked (flock) before detaching and the
 * lock is inherited by the daemon, which then writes its own pid into
 * it; a second promptmqd with the same pid file finds it locked.  It is
 * removed at a clean exit.
 *
 * systemd (Type=notify): when NOTIFY_SOCKET is set, READY=1, RELOADING=1
 * and STOPPING=1 are sent to it, without linking libsystemd.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "supervisor.h"

static int	 ready_fd = -1;
static int	 pid_fd = -1;
static char	 pid_path[PATH_MAX];

void
daemon_notify(const char *state)
{
	const char		*path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un	 sun;
	socklen_t		 len;
	int			 fd;

	if (path == NULL || (path[0] != '/' && path[0] != '@') ||
	    strlen(path) >= sizeof(sun.sun_path))
		return;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path));
	if (path[0] == '@')
		sun.sun_path[0] = '\0';	/* an abstract socket */
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
	    strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL,
	    (struct sockaddr *)&sun, len) == -1)
		log_debug("systemd notification failed", "state=\"%s\"", state);
	close(fd);
}

/*
 * Take the pid file's lock in the foreground.  Returns -1 with a message
 * when another promptmqd holds it.
 */
int
daemon_pidfile_lock(const char *path, char *err, size_t errlen)
{
	char	 holder[32];

	snprintf(pid_path, sizeof(pid_path), "%s", path);
	if ((pid_fd = lockfile_open(path, 0644, holder, sizeof(holder))) ==
	    -1) {
		if (errno == EWOULDBLOCK)
			snprintf(err, errlen, "promptmqd is already running "
			    "(pid %s, pid file %s)", holder, path);
		else
			snprintf(err, errlen, "pid file %s: %s", path,
			    strerror(errno));
		return -1;
	}
	/* a file left by a crash may have been handed to server.user */
	if (geteuid() == 0)
		(void)!fchown(pid_fd, 0, 0);
	return 0;
}

/* Write our pid into the locked pid file. */
int
daemon_pidfile_write(char *err, size_t errlen)
{
	if (pid_fd == -1)
		return 0;
	if (lockfile_write_pid(pid_fd) == -1) {
		snprintf(err, errlen, "pid file %s: %s", pid_path,
		    strerror(errno));
		return -1;
	}
	return 0;
}

void
daemon_pidfile_remove(void)
{
	if (pid_fd == -1)
		return;
	unlink(pid_path);
	close(pid_fd);
	pid_fd = -1;
}

/* Steps 1-3 above; returns in the daemon only. */
void
daemon_detach(void)
{
	char	 buf[512];
	ssize_t	 n, got = 0;
	int	 p[2], fd;
	pid_t	 pid;

	if (pipe2(p, O_CLOEXEC) == -1)
		fatal("cannot create readiness pipe", "");
	if ((pid = fork()) == -1)
		fatal("cannot fork", "");
	if (pid > 0) {
		/* 1) the starting command waits for the verdict */
		close(p[1]);
		while ((n = read(p[0], buf + got, sizeof(buf) - 1 -
		    (size_t)got)) > 0 || (n == -1 && errno == EINTR))
			if (n > 0)
				got += n;
		buf[got] = '\0';
		if (got > 0 && buf[0] == 'R')
			_exit(0);
		fprintf(stderr, "promptmqd: %s\n", got > 1 ? buf + 1 :
		    "the daemon exited before it was ready; see its log");
		_exit(1);
	}
	close(p[0]);
	/* 2) a new session, and not its leader */
	if (setsid() == -1)
		fatal("setsid failed", "");
	if ((pid = fork()) == -1)
		fatal("cannot fork", "");
	if (pid > 0)
		_exit(0);
	/* 3) no terminal, no working directory to pin */
	if (chdir("/") == -1)
		fatal("cannot change to /", "");
	umask(027);
	if ((fd = open("/dev/null", O_RDWR)) != -1) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	ready_fd = p[1];
}

/* The broker serves: release the starting command and systemd. */
void
daemon_ready(void)
{
	char	 state[64];

	snprintf(state, sizeof(state), "READY=1\nMAINPID=%ld", (long)getpid());
	daemon_notify(state);
	if (ready_fd != -1) {
		(void)!write(ready_fd, "R", 1);
		close(ready_fd);
		ready_fd = -1;
	}
}

/* Starting failed after detaching: the starting command says why. */
void
daemon_failed(const char *why)
{
	char	 buf[512];
	int	 n;

	if (ready_fd == -1)
		return;
	n = snprintf(buf, sizeof(buf), "F%s", why);
	(void)!write(ready_fd, buf, (size_t)(n < (int)sizeof(buf) ? n :
	    (int)sizeof(buf) - 1));
	close(ready_fd);
	ready_fd = -1;
}
