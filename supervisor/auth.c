/*
 * auth.c - the files the workers authenticate clients with.
 *
 * The supervisor reads them, as root, before it starts the workers and
 * again on every reload: a password file may be readable by root alone,
 * and a file that cannot be read, or that changed into something
 * unreadable, is found here, where it can be reported and the running
 * one kept.  Each worker gets the bytes as a sealed memory file over its
 * control channel (IPC_CTL_AUTH), before its configuration, so that it
 * never serves a client without them; the worker parses them itself.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ctl.h"
#include "log.h"
#include "passwd.h"
#include "supervisor.h"

static void
bad_line(void *arg, const char *path, unsigned line, const char *why)
{
	if (line > 0)
		log_warnx("password file line ignored", "file=%s line=%u "
		    "why=\"%s\"", path, line, why);
	else
		log_warnx("password file line ignored", "file=%s why=\"%s\"",
		    path, why);
}

/*
 * Read and check auth.password-file as cfg names it.  Returns 0 with
 * s->passwd holding it (empty name: none), -1 with err, s->passwd as it
 * was.
 */
int
auth_load(struct supervisor *s, const struct config *cfg, char *err,
    size_t errlen)
{
	const char		*path = config_str(cfg, OPT_auth_password_file);
	struct buf		 bytes = BUF_INITIALIZER;
	struct passwd_db	*db;
	FILE			*f;
	char			 why[256];

	if (*path == '\0') {
		buf_free(&s->passwd);
		s->passwd_name[0] = '\0';
		return 0;
	}
	if (buf_load_file(&bytes, path) == -1) {
		snprintf(err, errlen, "auth.password-file: cannot read %s: %s",
		    path, strerror(errno));
		buf_free(&bytes);
		return -1;
	}
	if ((f = fmemopen(bytes.data ? bytes.data : (uint8_t *)"",
	    bytes.len, "r")) == NULL ||
	    passwd_read(&db, f, path, bad_line, NULL, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "auth.password-file: %s", f ? why :
		    strerror(errno));
		if (f)
			fclose(f);
		buf_free(&bytes);
		return -1;
	}
	fclose(f);
	log_info("password file read", "file=%s users=%zu", path,
	    passwd_count(db));
	passwd_free(db);
	buf_free(&s->passwd);
	s->passwd = bytes;
	snprintf(s->passwd_name, sizeof(s->passwd_name), "%s", path);
	return 0;
}

/* Hand the password file (or its absence) to worker c. */
void
auth_send(struct supervisor *s, struct child *c)
{
	uint8_t		 body[1 + sizeof(s->passwd_name)];
	size_t		 len = strlen(s->passwd_name), off = 0;
	ssize_t		 n;
	int		 fd = -1;

	if (len > 0) {
		if ((fd = memfd_create("promptmq-passwd", MFD_CLOEXEC |
		    MFD_ALLOW_SEALING)) == -1)
			goto fail;
		while (off < s->passwd.len) {
			if ((n = write(fd, s->passwd.data + off,
			    s->passwd.len - off)) < 0) {
				if (errno == EINTR)
					continue;
				goto fail;
			}
			off += (size_t)n;
		}
		/* what the worker reads is what was checked here */
		if (lseek(fd, 0, SEEK_SET) == -1 || fcntl(fd, F_ADD_SEALS,
		    F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE |
		    F_SEAL_SEAL) == -1)
			goto fail;
	}
	body[0] = 1;	/* the password file */
	memcpy(body + 1, s->passwd_name, len);
	if (ctl_send(c->ctl, IPC_CTL_AUTH, 0, body, 1 + len, fd) == -1)
		goto fail;
	if (fd != -1)
		close(fd);
	return;
fail:
	log_error("cannot hand the password file to a worker", "slot=%u "
	    "error=\"%s\"", c->slot, strerror(errno));
	if (fd != -1)
		close(fd);
}
