/*
 * auth.c - the files the workers authenticate and authorize clients
 * with: auth.password-file and auth.acl-file.
 *
 * The supervisor reads them, as root, before it starts the workers and
 * again on every reload: they may be readable by root alone, and a file
 * that cannot be read, or that changed into something unreadable, is
 * found here, where it can be reported and the running one kept.  Each
 * worker gets the bytes as a sealed memory file over its control channel
 * (IPC_CTL_AUTH, one per file), before its configuration, so that it
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

#include "acl.h"
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

/* Whether the bytes make a file of this kind; err otherwise. */
static int
check_file(int kind, const char *path, FILE *f, char *err, size_t errlen)
{
	struct passwd_db	*db;
	struct acl		*acl;

	if (kind == IPC_AUTH_PASSWORD_FILE) {
		if (passwd_read(&db, f, path, bad_line, NULL, err, errlen) == -1)
			return -1;
		log_info("password file read", "file=%s users=%zu", path,
		    passwd_count(db));
		passwd_free(db);
		return 0;
	}
	if (acl_read(&acl, f, path, err, errlen) == -1)
		return -1;
	log_info("access control file read", "file=%s rules=%zu", path,
	    acl_count(acl));
	acl_free(acl);
	return 0;
}

/* Read and check one file as cfg names it into *af. */
static int
load_one(struct auth_file *af, int kind, const char *path, char *err,
    size_t errlen)
{
	struct buf	 bytes = BUF_INITIALIZER;
	const char	*opt = kind == IPC_AUTH_PASSWORD_FILE ?
			    "auth.password-file" : "auth.acl-file";
	char		 why[512];
	FILE		*f;

	if (*path == '\0') {
		buf_free(&af->bytes);
		af->name[0] = '\0';
		return 0;
	}
	if (buf_load_file(&bytes, path) == -1) {
		snprintf(err, errlen, "%s: cannot read %s: %s", opt, path,
		    strerror(errno));
		buf_free(&bytes);
		return -1;
	}
	if ((f = fmemopen(bytes.data ? bytes.data : (uint8_t *)"", bytes.len,
	    "r")) == NULL || check_file(kind, path, f, why, sizeof(why)) ==
	    -1) {
		snprintf(err, errlen, "%s: %s", opt, f ? why : strerror(errno));
		if (f)
			fclose(f);
		buf_free(&bytes);
		return -1;
	}
	fclose(f);
	buf_free(&af->bytes);
	af->bytes = bytes;
	snprintf(af->name, sizeof(af->name), "%s", path);
	return 0;
}

int
auth_load(struct supervisor *s, const struct config *cfg, char *err,
    size_t errlen)
{
	if (load_one(&s->auth[IPC_AUTH_PASSWORD_FILE], IPC_AUTH_PASSWORD_FILE,
	    config_str(cfg, OPT_auth_password_file), err, errlen) == -1 ||
	    load_one(&s->auth[IPC_AUTH_ACL_FILE], IPC_AUTH_ACL_FILE,
	    config_str(cfg, OPT_auth_acl_file), err, errlen) == -1)
		return -1;
	return 0;
}

/* Hand one file (or its absence) to worker c. */
static void
send_one(const struct auth_file *af, int kind, struct child *c)
{
	uint8_t		 body[1 + sizeof(af->name)];
	size_t		 len = strlen(af->name), off = 0;
	ssize_t		 n;
	int		 fd = -1;

	if (len > 0) {
		if ((fd = memfd_create("promptmq-auth", MFD_CLOEXEC |
		    MFD_ALLOW_SEALING)) == -1)
			goto fail;
		while (off < af->bytes.len) {
			if ((n = write(fd, af->bytes.data + off,
			    af->bytes.len - off)) < 0) {
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
	body[0] = (uint8_t)kind;
	memcpy(body + 1, af->name, len);
	if (ctl_send(c->ctl, IPC_CTL_AUTH, 0, body, 1 + len, fd) == -1)
		goto fail;
	if (fd != -1)
		close(fd);
	return;
fail:
	log_error("cannot hand an authentication file to a worker", "slot=%u "
	    "file=%s error=\"%s\"", c->slot, af->name, strerror(errno));
	if (fd != -1)
		close(fd);
}

void
auth_send(struct supervisor *s, struct child *c)
{
	send_one(&s->auth[IPC_AUTH_PASSWORD_FILE], IPC_AUTH_PASSWORD_FILE, c);
	send_one(&s->auth[IPC_AUTH_ACL_FILE], IPC_AUTH_ACL_FILE, c);
}

/*
 * SIGHUP: both files are read again, changed names or not (they are
 * edited in place); workers get a file whose bytes or name changed.  One
 * that cannot be read leaves the running one in force.
 */
void
auth_reload(struct supervisor *s)
{
	static const struct {
		int		 kind;
		enum option_id	 opt;
	} files[] = {
		{ IPC_AUTH_PASSWORD_FILE, OPT_auth_password_file },
		{ IPC_AUTH_ACL_FILE, OPT_auth_acl_file },
	};
	struct auth_file	 was;
	char			 err[768];
	size_t			 i;
	int			 w, same;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		struct auth_file *af = &s->auth[files[i].kind];

		was = *af;
		buf_init(&af->bytes);
		if (load_one(af, files[i].kind, config_str(&s->cfg,
		    files[i].opt), err, sizeof(err)) == -1) {
			log_error("reload: file not changed", "error=\"%s\"",
			    err);
			buf_free(&af->bytes);
			*af = was;
			continue;
		}
		same = strcmp(was.name, af->name) == 0 && was.bytes.len ==
		    af->bytes.len && (was.bytes.len == 0 ||
		    memcmp(was.bytes.data, af->bytes.data, was.bytes.len) == 0);
		buf_free(&was.bytes);
		if (same)
			continue;
		for (w = 0; w < s->nworkers; w++)
			if (spawn_alive(&s->workers[w]))
				send_one(af, files[i].kind, &s->workers[w]);
	}
}
