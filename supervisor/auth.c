/*
 * auth.c - the files the workers authenticate and authorize clients
 * with, auth.password-file and auth.acl-file, and serve TLS with,
 * tls.cert-file, tls.key-file, tls.ca-file and tls.ca-dir.
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

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "acl.h"
#include "ctl.h"
#include "failtab.h"
#include "jwt.h"
#include "log.h"
#include "passwd.h"
#include "scram.h"
#include "supervisor.h"
#include "tls.h"

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
check_file(int kind, const char *path, const struct buf *bytes, FILE *f,
    char *err, size_t errlen)
{
	struct passwd_db	*db;
	struct scram_db		*sdb;
	struct acl		*acl;
	struct jwt_key		*k;

	if (kind == IPC_AUTH_JWT_KEY) {
		if (jwt_key_load(bytes->data, bytes->len, &k, err, errlen) ==
		    -1)
			return -1;
		log_info("token key read", "file=%s algorithm=%s", path,
		    jwt_key_alg(k));
		jwt_key_free(k);
		return 0;
	}

	if (kind == IPC_AUTH_PASSWORD_FILE) {
		if (passwd_read(&db, f, path, bad_line, NULL, err, errlen) == -1)
			return -1;
		log_info("password file read", "file=%s users=%zu", path,
		    passwd_count(db));
		passwd_free(db);
		return 0;
	}
	if (kind == IPC_AUTH_SCRAM_FILE) {
		if (scram_read(&sdb, f, path, bad_line, NULL, err, errlen) ==
		    -1)
			return -1;
		log_info("SCRAM verifiers read", "file=%s users=%zu", path,
		    scram_count(sdb));
		scram_free(sdb);
		return 0;
	}
	if (acl_read(&acl, f, path, err, errlen) == -1)
		return -1;
	log_info("access control file read", "file=%s rules=%zu", path,
	    acl_count(acl));
	acl_free(acl);
	return 0;
}

static uint8_t	 ticket_keys[TLS_TICKET_KEYS_LEN];
static int	 have_ticket_keys;

/* A bundle holds a private key: it leaves memory wiped. */
static void
forget(struct buf *b)
{
	if (b->data != NULL)
		OPENSSL_cleanse(b->data, b->cap);
	buf_free(b);
}

/*
 * The TLS files (certificate, key, CAs, pre-shared keys) in one bundle,
 * checked by making the context a worker will make from it.
 */
static int
load_tls(struct auth_file *af, const struct config *cfg, char *err,
    size_t errlen)
{
	struct buf	 bytes;
	const char	*cert = config_str(cfg, OPT_tls_cert_file);
	SSL_CTX		*ctx;

	/* named after the certificate, or the keys when there is none */
	if (*cert == '\0')
		cert = config_str(cfg, OPT_tls_psk_file);
	if (*cert == '\0') {
		forget(&af->bytes);
		af->name[0] = '\0';
		return 0;
	}
	if (tls_bundle_read(cfg, &bytes, err, errlen) == -1)
		return -1;
	/*
	 * One session ticket key for every worker, for as long as the
	 * broker runs: a client resumes whichever worker it comes back to
	 * (each worker's own key would send most of them through a full
	 * handshake), and a reload does not throw every ticket away.
	 */
	if (!have_ticket_keys) {
		if (RAND_bytes(ticket_keys, sizeof(ticket_keys)) != 1) {
			forget(&bytes);
			snprintf(err, errlen, "no random bytes for TLS session "
			    "tickets");
			return -1;
		}
		have_ticket_keys = 1;
	}
	buf_add_u32(&bytes, sizeof(ticket_keys));
	buf_add(&bytes, ticket_keys, sizeof(ticket_keys));
	if ((ctx = tls_ctx_new(bytes.data, bytes.len, cfg, err, errlen)) ==
	    NULL) {
		forget(&bytes);
		return -1;
	}
	SSL_CTX_free(ctx);
	forget(&af->bytes);
	af->bytes = bytes;
	snprintf(af->name, sizeof(af->name), "%s", cert);
	return 0;
}

/* The files of each kind: the option that names them. */
static const struct {
	enum option_id	 id;
	const char	*opt;
} files[IPC_AUTH_KINDS] = {
	[IPC_AUTH_PASSWORD_FILE] = { OPT_auth_password_file,
	    "auth.password-file" },
	[IPC_AUTH_ACL_FILE] = { OPT_auth_acl_file, "auth.acl-file" },
	[IPC_AUTH_JWT_KEY] = { OPT_auth_jwt_key_file, "auth.jwt-key-file" },
	/* its name with SCRAM_FILE_SUFFIX */
	[IPC_AUTH_SCRAM_FILE] = { OPT_auth_password_file,
	    "auth.password-file" },
};

/* Read and check one file as cfg names it into *af. */
static int
load_one(struct auth_file *af, int kind, const struct config *cfg,
    char *err, size_t errlen)
{
	struct buf	 bytes = BUF_INITIALIZER;
	const char	*opt = files[kind].opt;
	char		 path[PATH_MAX], why[512];
	FILE		*f;

	if (kind == IPC_AUTH_TLS)
		return load_tls(af, cfg, err, errlen);
	snprintf(path, sizeof(path), "%s%s", config_str(cfg, files[kind].id),
	    kind == IPC_AUTH_SCRAM_FILE && *config_str(cfg,
	    files[kind].id) != '\0' ? SCRAM_FILE_SUFFIX : "");
	if (*path == '\0') {
		buf_free(&af->bytes);
		af->name[0] = '\0';
		return 0;
	}
	if (buf_load_file(&bytes, path) == -1) {
		/* no verifiers yet (a file from mosquitto_passwd): nobody
		 * logs in with SCRAM, passwords work as ever */
		if (kind == IPC_AUTH_SCRAM_FILE && errno == ENOENT) {
			log_info("no SCRAM verifiers: promptmq-passwd writes "
			    "them", "file=%s", path);
			buf_free(&bytes);
			goto keep;
		}
		snprintf(err, errlen, "%s: cannot read %s: %s", opt, path,
		    strerror(errno));
		buf_free(&bytes);
		return -1;
	}
	if ((f = fmemopen(bytes.data ? bytes.data : (uint8_t *)"", bytes.len,
	    "r")) == NULL || check_file(kind, path, &bytes, f, why,
	    sizeof(why)) == -1) {
		snprintf(err, errlen, "%s: %s", opt, f ? why : strerror(errno));
		if (f)
			fclose(f);
		buf_free(&bytes);
		return -1;
	}
	fclose(f);
keep:
	buf_free(&af->bytes);
	af->bytes = bytes;
	snprintf(af->name, sizeof(af->name), "%s", path);
	return 0;
}

int
auth_load(struct supervisor *s, const struct config *cfg, char *err,
    size_t errlen)
{
	int	 kind;

	for (kind = 1; kind < IPC_AUTH_KINDS; kind++)
		if (load_one(&s->auth[kind], kind, cfg, err, errlen) == -1)
			return -1;
	if (s->auth[IPC_AUTH_TLS].name[0] != '\0')
		log_info("TLS certificate loaded", "file=%s",
		    s->auth[IPC_AUTH_TLS].name);
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
	int	 kind;

	for (kind = 1; kind < IPC_AUTH_KINDS; kind++)
		send_one(&s->auth[kind], kind, c);
	if (s->failtab_fd > 0 && ctl_send(c->ctl, IPC_CTL_FAILURES, 0, NULL,
	    0, s->failtab_fd) == -1)
		log_error("cannot hand the failed login table to a worker",
		    "slot=%u error=\"%s\"", c->slot, strerror(errno));
}

/*
 * The table of failed logins every worker counts in (failtab.h): one
 * memory file for the life of the broker, so that a restarted worker
 * still knows who was guessing.
 */
int
auth_failtab_open(struct supervisor *s, char *err, size_t errlen)
{
	size_t	 len = failtab_size();
	void	*mem;
	int	 fd;

	if ((fd = shared_memory("promptmq-failed-logins", len, &mem, err,
	    errlen)) == -1)
		return -1;
	if (failtab_init(mem) == -1) {
		snprintf(err, errlen, "no random bytes for the failed login "
		    "table");
		munmap(mem, len);
		close(fd);
		return -1;
	}
	munmap(mem, len);
	s->failtab_fd = fd;
	return 0;
}

/*
 * SIGHUP: both files are read again, changed names or not (they are
 * edited in place); workers get a file whose bytes or name changed.  One
 * that cannot be read leaves the running one in force.
 */
void
auth_reload(struct supervisor *s)
{
	struct auth_file	 was;
	char			 err[768];
	int			 kind, w, same;

	for (kind = 1; kind < IPC_AUTH_KINDS; kind++) {
		struct auth_file *af = &s->auth[kind];

		was = *af;
		buf_init(&af->bytes);
		if (load_one(af, kind, &s->cfg, err, sizeof(err)) == -1) {
			log_error("reload: file not changed", "error=\"%s\"",
			    err);
			forget(&af->bytes);
			*af = was;
			continue;
		}
		same = strcmp(was.name, af->name) == 0 && was.bytes.len ==
		    af->bytes.len && (was.bytes.len == 0 ||
		    memcmp(was.bytes.data, af->bytes.data, was.bytes.len) == 0);
		forget(&was.bytes);
		if (same)
			continue;
		if (kind == IPC_AUTH_TLS && af->name[0] != '\0')
			log_notice("TLS certificate loaded", "file=%s",
			    af->name);
		for (w = 0; w < s->nworkers; w++)
			if (spawn_alive(&s->workers[w]))
				send_one(af, kind, &s->workers[w]);
	}
}
