/*
 * check_passwd.c - unit tests of common/passwd.c: Mosquitto password
 * files read, checked and written.
 *
 * The fixed hashes below were computed independently (Python's hashlib:
 * pbkdf2_hmac("sha512", ...) and sha512(password + salt)) for the salt
 * bytes 1..12.  A file written by mosquitto_passwd itself is checked
 * when that tool is installed.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "buf.h"
#include "harness.h"
#include "passwd.h"

#define PBKDF2_SECRET	"$7$101$AQIDBAUGBwgJCgsM$ElKF/yT2lAwrOIqDbqwyDkdEWWjEv9xN" \
			"CPp7zaw7NgKePlIs4CqOpY89+U/jSu9Z0ymojy1xkdWS2VfMzvRKZw=="
#define SHA512_SECRET	"$6$AQIDBAUGBwgJCgsM$XtaqFTpVqKCBusKxL7SramYPpHVSOw+CXtRU" \
			"Iv0PpX6q57MW1a1RUVsLMxkhMn6XOYi3uYMZcGrMAEzcnh9EoA=="
#define PBKDF2_EMPTY	"$7$3$AQIDBAUGBwgJCgsM$KwT2O/MyV1KhgOQE/2PYeRXDkHaCTggErl8" \
			"8XvsGZ3ZYy8PTeu3eWh24Yqol/RN5xO5zxtT5Ix0yNcVNIfI20g=="

static char	 dir[64], path[128];
static unsigned	 bad_lines[16];
static char	 bad_why[16][128];
static int	 nbad;

static void
on_bad(void *arg, const char *p, unsigned line, const char *why)
{
	if (nbad < 16) {
		bad_lines[nbad] = line;
		snprintf(bad_why[nbad], sizeof(bad_why[nbad]), "%s", why);
	}
	nbad++;
}

static void
setup(void)
{
	harness_tempdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/passwd", dir);
	nbad = 0;
}

static void
teardown(void)
{
	unlink(path);
	harness_tempdir_remove(dir);
}

static void
write_file(const char *text)
{
	FILE	*f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(text, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
}

static struct passwd_db *
load(void)
{
	struct passwd_db	*db;
	char			 err[256];

	ck_assert_msg(passwd_load(&db, path, on_bad, NULL, err,
	    sizeof(err)) == 0, "load: %s", err);
	return db;
}

static int
check(struct passwd_db *db, const char *user, const char *pw)
{
	return passwd_check(db, user, strlen(user), pw, strlen(pw));
}

START_TEST(test_known_hashes)
{
	struct passwd_db	*db;

	write_file("alice:" PBKDF2_SECRET "\n"
	    "bob:" SHA512_SECRET "\n"
	    "carol:" PBKDF2_EMPTY "\n");
	db = load();
	ck_assert_uint_eq(passwd_count(db), 3);
	ck_assert_int_eq(nbad, 0);
	ck_assert_int_eq(check(db, "alice", "secret"), 1);
	ck_assert_int_eq(check(db, "bob", "secret"), 1);
	ck_assert_int_eq(check(db, "carol", ""), 1);
	passwd_free(db);
}
END_TEST

START_TEST(test_refusals)
{
	struct passwd_db	*db;

	write_file("alice:" PBKDF2_SECRET "\nbob:" SHA512_SECRET "\n");
	db = load();
	ck_assert_int_eq(check(db, "alice", "Secret"), 0);
	ck_assert_int_eq(check(db, "alice", "secret "), 0);
	ck_assert_int_eq(check(db, "alice", ""), 0);
	ck_assert_int_eq(check(db, "bob", "secre"), 0);
	/* names are exact: no prefix, no case folding */
	ck_assert_int_eq(check(db, "alic", "secret"), 0);
	ck_assert_int_eq(check(db, "Alice", "secret"), 0);
	ck_assert_int_eq(check(db, "alicee", "secret"), 0);
	ck_assert_int_eq(check(db, "nobody", "secret"), 0);
	ck_assert_int_eq(check(db, "", "secret"), 0);
	/* a password is bytes: one with a NUL inside is another one */
	ck_assert_int_eq(passwd_check(db, "alice", 5, "secret\0x", 8), 0);
	passwd_free(db);
}
END_TEST

/* A name given twice: the first line holds, wherever the sort puts it. */
START_TEST(test_first_line_holds)
{
	struct passwd_db	*db;
	char			 text[8192];
	size_t			 off = 0;
	int			 i;

	off += (size_t)snprintf(text + off, sizeof(text) - off, "dup:"
	    SHA512_SECRET "\n");
	for (i = 0; i < 40; i++)
		off += (size_t)snprintf(text + off, sizeof(text) - off,
		    "u%02d:" PBKDF2_EMPTY "\n", i);
	snprintf(text + off, sizeof(text) - off, "dup:" PBKDF2_EMPTY "\n");
	write_file(text);
	db = load();
	ck_assert_uint_eq(passwd_count(db), 41);
	ck_assert_int_eq(nbad, 1);
	ck_assert_int_eq(check(db, "dup", "secret"), 1);
	ck_assert_int_eq(check(db, "dup", ""), 0);
	passwd_free(db);
}
END_TEST

START_TEST(test_bad_lines_skipped)
{
	struct passwd_db	*db;

	write_file("# a comment\n"
	    "\n"
	    "nocolon\n"					/* 3 */
	    ":" PBKDF2_SECRET "\n"			/* 4 */
	    "plain:secret\n"				/* 5 */
	    "x:$5$AQIDBAUGBwgJCgsM$AAAA\n"		/* 6 */
	    "y:$7$$AQIDBAUGBwgJCgsM$AAAA\n"		/* 7 */
	    "y:$7$0$AQIDBAUGBwgJCgsM$AAAA\n"		/* 8 */
	    "z:$7$101$not*base64$AAAA\n"		/* 9 */
	    "w:$7$101$AQIDBAUGBwgJCgsM$AAAA\n"		/* 10: short hash */
	    "v:$6$AQIDBAUGBwgJCgsM\n"			/* 11 */
	    "alice:" PBKDF2_SECRET "\r\n"		/* CRLF is fine */
	    "alice:" SHA512_SECRET "\n"			/* a repeat */
	    "bob:" SHA512_SECRET "   \n");
	db = load();
	ck_assert_uint_eq(passwd_count(db), 2);
	ck_assert_int_eq(nbad, 10);
	ck_assert_uint_eq(bad_lines[0], 3);
	ck_assert_uint_eq(bad_lines[1], 4);
	ck_assert_str_eq(bad_why[1], "empty user name");
	ck_assert_uint_eq(bad_lines[2], 5);
	ck_assert_uint_eq(bad_lines[3], 6);
	ck_assert_str_eq(bad_why[3], "unknown hash type (not $6$ or $7$)");
	ck_assert_str_eq(bad_why[4], "no iteration count");
	ck_assert_str_eq(bad_why[5], "bad iteration count");
	ck_assert_str_eq(bad_why[6], "bad salt");
	ck_assert_str_eq(bad_why[7], "bad hash");
	ck_assert_uint_eq(bad_lines[8], 11);
	ck_assert_msg(strstr(bad_why[9], "alice") != NULL, "%s", bad_why[9]);
	ck_assert_int_eq(check(db, "alice", "secret"), 1);
	ck_assert_int_eq(check(db, "bob", "secret"), 1);
	passwd_free(db);
}
END_TEST

START_TEST(test_missing_file)
{
	struct passwd_db	*db;
	char			 err[256];

	ck_assert_int_eq(passwd_load(&db, path, on_bad, NULL, err,
	    sizeof(err)), -1);
	ck_assert_ptr_null(db);
	ck_assert_msg(strstr(err, path) != NULL && strstr(err,
	    "No such file") != NULL, "%s", err);
}
END_TEST

START_TEST(test_hash_round_trip)
{
	struct passwd_db	*db;
	struct buf		 b = BUF_INITIALIZER, line = BUF_INITIALIZER;
	size_t			 ulen;
	const char		*why;

	ck_assert_int_eq(passwd_hash(&b, PASSWD_SHA512_PBKDF2, 1000, "pw1", 3),
	    0);
	ck_assert_int_eq(strncmp((char *)b.data, "$7$1000$", 8), 0);
	buf_add(&line, "u1:", 3);
	buf_add(&line, b.data, b.len);
	ck_assert_int_eq(passwd_parse_line((char *)line.data, line.len, &ulen,
	    &why), 0);
	ck_assert_uint_eq(ulen, 2);
	buf_add_u8(&line, '\n');
	buf_reset(&b);
	ck_assert_int_eq(passwd_hash(&b, PASSWD_SHA512, 0, "pw2", 3), 0);
	ck_assert_int_eq(strncmp((char *)b.data, "$6$", 3), 0);
	buf_add(&line, "u2:", 3);
	buf_add(&line, b.data, b.len);
	buf_add(&line, "\n", 2);	/* and the NUL */
	write_file((char *)line.data);
	db = load();
	ck_assert_int_eq(nbad, 0);
	ck_assert_int_eq(check(db, "u1", "pw1"), 1);
	ck_assert_int_eq(check(db, "u2", "pw2"), 1);
	ck_assert_int_eq(check(db, "u1", "pw2"), 0);
	passwd_free(db);
	/* two hashes of one password differ: the salt is random */
	buf_reset(&b);
	buf_reset(&line);
	ck_assert_int_eq(passwd_hash(&b, PASSWD_SHA512_PBKDF2, 101, "x", 1), 0);
	ck_assert_int_eq(passwd_hash(&line, PASSWD_SHA512_PBKDF2, 101, "x", 1),
	    0);
	ck_assert_uint_eq(b.len, line.len);
	ck_assert_int_ne(memcmp(b.data, line.data, b.len), 0);
	ck_assert_int_eq(passwd_hash(&b, PASSWD_SHA512_PBKDF2, 0, "x", 1), -1);
	buf_free(&b);
	buf_free(&line);
}
END_TEST

/* A file written by Mosquitto's own tool, when it is installed. */
START_TEST(test_mosquitto_passwd_file)
{
	struct passwd_db	*db;
	char			 cmd[1024];

	if (access("/usr/bin/mosquitto_passwd", X_OK) != 0) {
		fprintf(stderr, "mosquitto_passwd not installed; skipped\n");
		return;
	}
	snprintf(cmd, sizeof(cmd), "/usr/bin/mosquitto_passwd -c -b %s dev "
	    "'pa ss:w$rd' && /usr/bin/mosquitto_passwd -I 2000 -b %s iot "
	    "k3y && /usr/bin/mosquitto_passwd -H sha512 -b %s old legacy",
	    path, path, path);
	ck_assert_int_eq(system(cmd), 0);
	db = load();
	ck_assert_int_eq(nbad, 0);
	ck_assert_uint_eq(passwd_count(db), 3);
	ck_assert_int_eq(check(db, "dev", "pa ss:w$rd"), 1);
	ck_assert_int_eq(check(db, "iot", "k3y"), 1);
	ck_assert_int_eq(check(db, "old", "legacy"), 1);
	ck_assert_int_eq(check(db, "dev", "pa ss:w$r"), 0);
	passwd_free(db);
}
END_TEST

static Suite *
passwd_suite(void)
{
	Suite	*s = suite_create("passwd");
	TCase	*tc;

	tc = harness_tcase(s, "reading", setup, teardown);
	tcase_add_test(tc, test_known_hashes);
	tcase_add_test(tc, test_refusals);
	tcase_add_test(tc, test_bad_lines_skipped);
	tcase_add_test(tc, test_first_line_holds);
	tcase_add_test(tc, test_missing_file);
	tc = harness_tcase(s, "writing", setup, teardown);
	tcase_add_test(tc, test_hash_round_trip);
	tcase_add_test(tc, test_mosquitto_passwd_file);
	return s;
}

int
main(void)
{
	return harness_run(passwd_suite());
}
