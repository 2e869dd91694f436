/*
 * passwd.c - promptmq-passwd: add, change and delete the users of a
 * password file, in the format of Mosquitto 2.0's mosquitto_passwd
 * (common/passwd.h), with its options.
 *
 * The file is rewritten whole: every other line is kept as it was
 * (comments, other users, lines this tool cannot read), the new content
 * goes to a temporary file beside it that is synced and renamed over the
 * old one, so a crash leaves the old file or the new one, never half of
 * either.  The mode of an existing file is kept; a new one is 0600.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "buf.h"
#include "passwd.h"
#include "scram.h"

#define EXIT_USAGE	2
#define PW_MAX		65535	/* an MQTT password's longest */

/* the files as they were and as they will be (static: reachable at any
 * exit): the password file and its SCRAM verifiers */
static struct buf	 file_was, file_new, scram_was, scram_new;

static const char manual[] =
"NAME\n"
"    promptmq-passwd - manage the users of a PromptMQ password file\n"
"\n"
"SYNOPSIS\n"
"    promptmq-passwd [-H HASH] [-I ITERATIONS] [-c | -D] FILE USER\n"
"    promptmq-passwd [-H HASH] [-I ITERATIONS] [-c] -b FILE USER PASSWORD\n"
"    promptmq-passwd -h\n"
"\n"
"DESCRIPTION\n"
"    Adds USER to FILE, or changes its password, asking for the password\n"
"    twice on the terminal without echo (from standard input, one line,\n"
"    when that is not a terminal).  The file has the format of\n"
"    mosquitto_passwd from Mosquitto 2.0, and files written by either\n"
"    tool work with both brokers:\n"
"\n"
"      USER:$7$ITERATIONS$SALT$HASH   PBKDF2-HMAC-SHA512 (the default)\n"
"      USER:$6$SALT$HASH              SHA-512 (-H sha512; older files)\n"
"\n"
"    Every other line of FILE is kept as it was.  The file is replaced\n"
"    atomically (a synced temporary file renamed over it) and keeps its\n"
"    mode; a new file is made with mode 0600.  The broker reads it again\n"
"    on SIGHUP.\n"
"\n"
"    Beside FILE, FILE.scram gets the user's SCRAM-SHA-256 verifier, for\n"
"    MQTT 5 clients that authenticate with SCRAM instead of sending the\n"
"    password (PostgreSQL's verifier format, bound to the user's line in\n"
"    FILE: a verifier counts only while that line is unchanged).  It has\n"
"    FILE's mode.  Users added by mosquitto_passwd have none until their\n"
"    password is set again here.\n"
"\n"
"OPTIONS\n"
"    -b   batch mode: the password is the last argument.  It is then\n"
"         visible to other users of the machine (ps); prefer the prompt.\n"
"    -c   create FILE, replacing any file of that name.\n"
"    -D   delete USER from FILE.\n"
"    -H HASH\n"
"         sha512-pbkdf2 (the default) or sha512.\n"
"    -I ITERATIONS\n"
"         PBKDF2 iterations (default 101, as mosquitto_passwd).  Every\n"
"         login costs that many; 10000 or more make a stolen file much\n"
"         harder to crack.  SCRAM verifiers use as many, and at least\n"
"         4096 (the client does that work).\n"
"    -h   print this manual.\n"
"\n"
"EXIT STATUS\n"
"    0 done; 1 the file could not be read or written, or the user was not\n"
"    found (-D); 2 usage error.\n";

static void
usage(void)
{
	fprintf(stderr, "usage: promptmq-passwd [-H HASH] [-I ITERATIONS] "
	    "[-c | -D] FILE USER\n"
	    "       promptmq-passwd [-H HASH] [-I ITERATIONS] [-c] -b FILE "
	    "USER PASSWORD\n"
	    "       promptmq-passwd -h\n");
	exit(EXIT_USAGE);
}

/* One line from the terminal without echo, or from a pipe. */
static int
read_password(const char *prompt, char *out, size_t outlen)
{
	struct termios	 old, quiet;
	int		 tty = isatty(STDIN_FILENO), ok;
	size_t		 len;

	/* echo off before the prompt: nothing typed after it is shown */
	if (tty) {
		if (tcgetattr(STDIN_FILENO, &old) == -1)
			return -1;
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		quiet.c_lflag |= ECHONL;
		if (tcsetattr(STDIN_FILENO, TCSANOW, &quiet) == -1)
			return -1;
		fputs(prompt, stderr);
		fflush(stderr);
	}
	ok = fgets(out, (int)outlen, stdin) != NULL;
	if (tty)
		(void)tcsetattr(STDIN_FILENO, TCSANOW, &old);
	if (!ok)
		return -1;
	len = strlen(out);
	if (len > 0 && out[len - 1] == '\n')
		out[--len] = '\0';
	else if (len == outlen - 1)
		return -2;	/* longer than an MQTT password can be */
	if (len > 0 && out[len - 1] == '\r')
		out[--len] = '\0';
	return 0;
}

/* Every line of `was` but USER's into `out`: 1 when USER had one. */
static int
copy_others(const struct buf *was, struct buf *out, const char *user,
    size_t userlen)
{
	const char	*line, *nl, *colon, *end = (const char *)was->data +
			    was->len;
	size_t		 len;
	int		 found = 0;

	for (line = (const char *)was->data; line && line < end;
	    line = nl ? nl + 1 : NULL) {
		len = (size_t)(end - line);
		nl = memchr(line, '\n', len);
		if (nl)
			len = (size_t)(nl - line);
		/* a line is the user's up to its first ':', read or not */
		colon = line[0] == '#' ? NULL : memchr(line, ':', len);
		if (colon && (size_t)(colon - line) == userlen &&
		    memcmp(line, user, userlen) == 0) {
			found = 1;
			continue;
		}
		buf_add(out, line, len);
		if (nl)
			buf_add_u8(out, '\n');
	}
	if (out->len > 0 && out->data[out->len - 1] != '\n')
		buf_add_u8(out, '\n');
	return found;
}

/* The whole of path into b and its mode; 0, or -1 with errno. */
static int
read_file(const char *path, struct buf *b, mode_t *mode)
{
	struct stat	 st;

	if (stat(path, &st) == -1 || buf_load_file(b, path) == -1)
		return -1;
	*mode = st.st_mode & 07777;
	return 0;
}

/* Write b to path through a synced temporary file renamed over it. */
static int
replace_file(const char *path, const struct buf *b, mode_t mode)
{
	char	 tmp[4096];
	size_t	 off = 0;
	ssize_t	 n;
	int	 fd, saved;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", path) >=
	    sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = mkstemp(tmp)) == -1)
		return -1;
	if (fchmod(fd, mode) == -1)
		goto fail;
	while (off < b->len) {
		if ((n = write(fd, b->data + off, b->len - off)) < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		off += (size_t)n;
	}
	if (fsync(fd) == -1 || close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) == -1)
		goto fail;
	return 0;
fail:
	saved = errno;
	if (fd != -1)
		close(fd);
	unlink(tmp);
	errno = saved;
	return -1;
}

static int
write_file(const char *path, const struct buf *b, mode_t mode)
{
	if (replace_file(path, b, mode) == 0)
		return 0;
	fprintf(stderr, "promptmq-passwd: cannot write %s: %s\n", path,
	    strerror(errno));
	return -1;
}

int
main(int argc, char **argv)
{
	enum passwd_type type = PASSWD_SHA512_PBKDF2;
	unsigned long	 iterations = PASSWD_DEFAULT_ITERATIONS;
	const char	*file, *user;
	char		 pw[PW_MAX + 2], again[PW_MAX + 2], *end;
	char		 scram_path[PATH_MAX];
	int		 ch, batch = 0, create = 0, delete = 0, found, rv;
	int		 scram_exists = 0;
	size_t		 userlen, hash;
	mode_t		 mode = 0600, scram_mode;

	while ((ch = getopt(argc, argv, "bcDH:I:h")) != -1) {
		switch (ch) {
		case 'b':
			batch = 1;
			break;
		case 'c':
			create = 1;
			break;
		case 'D':
			delete = 1;
			break;
		case 'H':
			if (strcmp(optarg, "sha512-pbkdf2") == 0)
				type = PASSWD_SHA512_PBKDF2;
			else if (strcmp(optarg, "sha512") == 0)
				type = PASSWD_SHA512;
			else {
				fprintf(stderr, "promptmq-passwd: unknown hash "
				    "\"%s\" (sha512-pbkdf2 or sha512)\n",
				    optarg);
				return EXIT_USAGE;
			}
			break;
		case 'I':
			errno = 0;
			iterations = strtoul(optarg, &end, 10);
			if (*end != '\0' || optarg[0] < '0' || optarg[0] > '9' ||
			    errno != 0 || iterations == 0 ||
			    iterations > PASSWD_MAX_ITERATIONS) {
				fprintf(stderr, "promptmq-passwd: -I wants a "
				    "number from 1 to %u\n",
				    PASSWD_MAX_ITERATIONS);
				return EXIT_USAGE;
			}
			break;
		case 'h':
			fputs(manual, stdout);
			return 0;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != (batch ? 3 : 2) || (create && delete) || (batch &&
	    delete))
		usage();
	file = argv[0];
	user = argv[1];
	userlen = strlen(user);
	if (userlen == 0 || strchr(user, ':') != NULL || strpbrk(user,
	    "\r\n") != NULL || userlen > 65535) {
		fprintf(stderr, "promptmq-passwd: a user name is 1 to 65535 "
		    "bytes without ':' or line breaks\n");
		return EXIT_USAGE;
	}

	if (!create && read_file(file, &file_was, &mode) == -1) {
		fprintf(stderr, "promptmq-passwd: cannot read %s: %s%s\n", file,
		    strerror(errno), errno == ENOENT ? " (-c creates it)" : "");
		return 1;
	}
	found = copy_others(&file_was, &file_new, user, userlen);
	/* its verifiers: none yet is no error (a mosquitto_passwd file) */
	snprintf(scram_path, sizeof(scram_path), "%s%s", file,
	    SCRAM_FILE_SUFFIX);
	scram_mode = mode;
	if (!create && read_file(scram_path, &scram_was, &scram_mode) == 0)
		scram_exists = 1;
	else if (!create && errno != ENOENT) {
		fprintf(stderr, "promptmq-passwd: cannot read %s: %s\n",
		    scram_path, strerror(errno));
		return 1;
	}
	copy_others(&scram_was, &scram_new, user, userlen);
	if (delete && !found) {
		fprintf(stderr, "promptmq-passwd: no user \"%s\" in %s\n", user,
		    file);
		return 1;
	}

	if (!delete) {
		if (batch) {
			if (strlen(argv[2]) > PW_MAX) {
				fprintf(stderr, "promptmq-passwd: a password "
				    "is at most %u bytes\n", PW_MAX);
				return EXIT_USAGE;
			}
			snprintf(pw, sizeof(pw), "%s", argv[2]);
		} else {
			rv = read_password("Password: ", pw, sizeof(pw));
			if (rv == 0 && isatty(STDIN_FILENO))
				rv = read_password("Reenter password: ", again,
				    sizeof(again));
			if (rv == -2) {
				fprintf(stderr, "promptmq-passwd: a password "
				    "is at most %u bytes\n", PW_MAX);
				return 1;
			}
			if (rv != 0) {
				fprintf(stderr, "promptmq-passwd: no password "
				    "read\n");
				return 1;
			}
			if (isatty(STDIN_FILENO) && strcmp(pw, again) != 0) {
				OPENSSL_cleanse(pw, sizeof(pw));
				OPENSSL_cleanse(again, sizeof(again));
				fprintf(stderr, "promptmq-passwd: the "
				    "passwords do not match\n");
				return 1;
			}
			OPENSSL_cleanse(again, sizeof(again));
		}
		buf_add(&file_new, user, userlen);
		buf_add_u8(&file_new, ':');
		hash = file_new.len;
		rv = passwd_hash(&file_new, type, (uint32_t)iterations, pw,
		    strlen(pw));
		/* the verifier, bound to the line just made */
		if (rv == 0 && !buf_failed(&file_new)) {
			buf_add(&scram_new, user, userlen);
			buf_add_u8(&scram_new, ':');
			rv = scram_verifier(&scram_new, iterations <
			    SCRAM_MIN_ITERATIONS ? SCRAM_MIN_ITERATIONS :
			    (uint32_t)iterations, pw, strlen(pw),
			    (const char *)file_new.data + hash, file_new.len -
			    hash, NULL);
			buf_add_u8(&scram_new, '\n');
		}
		OPENSSL_cleanse(pw, sizeof(pw));
		if (rv == -1) {
			fprintf(stderr, "promptmq-passwd: cannot hash the "
			    "password (no random bytes or memory)\n");
			return 1;
		}
		buf_add_u8(&file_new, '\n');
	}
	if (buf_failed(&file_new) || buf_failed(&scram_new)) {
		fprintf(stderr, "promptmq-passwd: out of memory\n");
		return 1;
	}
	/*
	 * A new verifier is written before the line it is bound to, a
	 * deleted one after: a crash between the two leaves a verifier
	 * that does not count, never one that outlives its password.
	 */
	if ((!delete && write_file(scram_path, &scram_new, scram_mode) ==
	    -1) || write_file(file, &file_new, mode) == -1 || (delete &&
	    scram_exists && write_file(scram_path, &scram_new,
	    scram_mode) == -1))
		return 1;
	buf_free(&file_was);
	buf_free(&file_new);
	buf_free(&scram_was);
	buf_free(&scram_new);
	return 0;
}
