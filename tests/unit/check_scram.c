/*
 * check_scram.c - unit tests of common/scram.c: SCRAM-SHA-256 verifiers
 * and the server's side of the exchange.
 *
 * The exchange is RFC 7677's example (user "user", password "pencil");
 * its stored and server keys were computed independently (Python's
 * hashlib and hmac).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "buf.h"
#include "harness.h"
#include "passwd.h"
#include "scram.h"

#define HASH		"$7$101$AQIDBAUGBwgJCgsM$ElKF/yT2lAwrOIqDbqwyDkdEWWjEv9xN" \
			"CPp7zaw7NgKePlIs4CqOpY89+U/jSu9Z0ymojy1xkdWS2VfMzvRKZw=="
#define OTHER_HASH	"$6$AQIDBAUGBwgJCgsM$XtaqFTpVqKCBusKxL7SramYPpHVSOw+CXtRU" \
			"Iv0PpX6q57MW1a1RUVsLMxkhMn6XOYi3uYMZcGrMAEzcnh9EoA=="
#define RFC_SALT	"W22ZaJ0SNY7soEsUEjb6gQ=="
#define RFC_KEYS	"SCRAM-SHA-256$4096:" RFC_SALT \
			"$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=" \
			":wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=:"
#define CLIENT_FIRST	"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define SNONCE		"%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define NONCE		"rOprNGfwEbeRWgbNEkqO" SNONCE
#define SERVER_FIRST	"r=" NONCE ",s=" RFC_SALT ",i=4096"
#define CLIENT_FINAL	"c=biws,r=" NONCE \
			",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define SERVER_FINAL	"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

static unsigned	 bad_lines[16];
static int	 nbad;

static void
on_bad(void *arg, const char *p, unsigned line, const char *why)
{
	if (nbad < 16)
		bad_lines[nbad] = line;
	nbad++;
}

static struct passwd_db *
pw_db(const char *text)
{
	struct passwd_db	*db;
	char			 err[256];
	FILE			*f = fmemopen((void *)text, strlen(text), "r");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(passwd_read(&db, f, "passwd", NULL, NULL, err,
	    sizeof(err)), 0);
	fclose(f);
	return db;
}

static struct scram_db *
scram_db(const char *text)
{
	struct scram_db	*db;
	char		 err[256];
	FILE		*f = fmemopen((void *)text, strlen(text), "r");

	ck_assert_ptr_nonnull(f);
	nbad = 0;
	ck_assert_int_eq(scram_read(&db, f, "passwd.scram", on_bad, NULL, err,
	    sizeof(err)), 0);
	fclose(f);
	return db;
}

/* "user:" and the RFC's verifier bound to `hash`, as the tool writes it */
static char *
rfc_line(const char *hash)
{
	struct buf	 b = BUF_INITIALIZER;
	uint8_t		 salt[SCRAM_SALT_LEN];
	char		*s;

	ck_assert_int_eq(passwd_b64_decode(RFC_SALT, strlen(RFC_SALT), salt,
	    sizeof(salt)), SCRAM_SALT_LEN);
	buf_add(&b, "user:", 5);
	ck_assert_int_eq(scram_verifier(&b, 4096, "pencil", 6, hash,
	    strlen(hash), salt), 0);
	buf_add(&b, "\n", 2);
	ck_assert(!buf_failed(&b));
	s = strdup((const char *)b.data);
	buf_free(&b);
	return s;
}

static void
expect_message(struct scram_exchange *x, const char *want)
{
	const uint8_t	*m;
	size_t		 len;

	m = scram_message(x, &len);
	ck_assert_msg(len == strlen(want) && memcmp(m, want, len) == 0,
	    "got \"%.*s\", expected \"%s\"", (int)len, m, want);
}

START_TEST(test_verifier_keys)
{
	char	*line = rfc_line(HASH);

	/* the keys of RFC 7677's example, then the binding */
	ck_assert_msg(strncmp(line, "user:" RFC_KEYS, strlen("user:"
	    RFC_KEYS)) == 0, "%s", line);
	free(line);
}
END_TEST

START_TEST(test_rfc7677_exchange)
{
	char			*line = rfc_line(HASH);
	struct passwd_db	*pw = pw_db("user:" HASH "\n");
	struct scram_db		*db = scram_db(line);
	struct scram_exchange	*x;
	const char		*why = NULL;

	ck_assert_uint_eq(scram_count(db), 1);
	x = scram_begin(db, pw, CLIENT_FIRST, strlen(CLIENT_FIRST), SNONCE,
	    &why);
	ck_assert_msg(x != NULL, "%s", why);
	ck_assert_str_eq(scram_user(x), "user");
	expect_message(x, SERVER_FIRST);
	ck_assert_int_eq(scram_finish(x, CLIENT_FINAL, strlen(CLIENT_FINAL),
	    &why), 1);
	expect_message(x, SERVER_FINAL);
	/* once only */
	ck_assert_int_eq(scram_finish(x, CLIENT_FINAL, strlen(CLIENT_FINAL),
	    &why), 0);
	scram_end(x);
	scram_free(db);
	passwd_free(pw);
	free(line);
}
END_TEST

/* the final message, changed; 0 expected */
static void
final_refused(const char *final)
{
	char			*line = rfc_line(HASH);
	struct passwd_db	*pw = pw_db("user:" HASH "\n");
	struct scram_db		*db = scram_db(line);
	struct scram_exchange	*x;
	const char		*why = NULL;

	x = scram_begin(db, pw, CLIENT_FIRST, strlen(CLIENT_FIRST), SNONCE,
	    &why);
	ck_assert_ptr_nonnull(x);
	ck_assert_msg(scram_finish(x, final, strlen(final), &why) == 0,
	    "accepted: %s", final);
	ck_assert_ptr_nonnull(why);
	scram_end(x);
	scram_free(db);
	passwd_free(pw);
	free(line);
}

START_TEST(test_bad_finals)
{
	/* a proof one bit off */
	final_refused("c=biws,r=" NONCE
	    ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVU=");
	/* the nonce of another exchange */
	final_refused("c=biws,r=rOprNGfwEbeRWgbNEkqOx"
	    ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
	/* the client's half of the nonce only */
	final_refused("c=biws,r=rOprNGfwEbeRWgbNEkqO"
	    ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
	/* channel binding data that is not "n,," */
	final_refused("c=eSws,r=" NONCE
	    ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
	/* no proof, a short one, a truncated message, nothing */
	final_refused("c=biws,r=" NONCE);
	final_refused("c=biws,r=" NONCE ",p=dHzbZapW");
	final_refused("c=biws,r=" NONCE ",p=");
	final_refused("c=bi");
	final_refused("");
}
END_TEST

START_TEST(test_bad_firsts)
{
	const char	*bad[] = {
		"p=tls-unique,,n=user,r=abc",	/* channel binding */
		"n,a=admin,n=user,r=abc",	/* authzid */
		"n,,m=ext,n=user,r=abc",	/* mandatory extension */
		"n,,n=,r=abc",			/* empty name */
		"n,,n=us=er,r=abc",		/* bad escape */
		"n,,n=user",			/* no nonce */
		"n,,n=user,r=",			/* empty nonce */
		"n,,n=user,r=a\x01" "b",	/* unprintable nonce */
		"x,,n=user,r=abc",
		"n,",
		"",
	};
	struct passwd_db	*pw = pw_db("user:" HASH "\n");
	struct scram_db		*db = scram_db("");
	const char		*why;
	size_t			 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		ck_assert_msg(scram_begin(db, pw, bad[i], strlen(bad[i]), NULL,
		    &why) == NULL, "taken: %s", bad[i]);
		ck_assert_ptr_nonnull(why);
	}
	scram_free(db);
	passwd_free(pw);
}
END_TEST

/* the salt and iteration count of a server-first-message */
static void
salt_of(struct scram_exchange *x, char *out, size_t outlen)
{
	const uint8_t	*m;
	const char	*s;
	size_t		 len;

	m = scram_message(x, &len);
	snprintf(out, outlen, "%.*s", (int)len, m);
	s = strstr(out, ",s=");
	ck_assert_ptr_nonnull(s);
	memmove(out, s, strlen(s) + 1);
}

/* An unknown user looks like a known one: a stable salt, then a refusal. */
START_TEST(test_unknown_users)
{
	char			*line = rfc_line(HASH);
	struct passwd_db	*pw = pw_db("user:" HASH "\n");
	struct scram_db		*db = scram_db(line);
	struct scram_exchange	*x;
	const char		*why, *ghost = "n,,n=ghost,r=abcdef";
	char			 a[128], b[128], c[128];

	x = scram_begin(db, pw, ghost, strlen(ghost), NULL, &why);
	ck_assert_ptr_nonnull(x);
	salt_of(x, a, sizeof(a));
	ck_assert_int_eq(scram_finish(x, CLIENT_FINAL, strlen(CLIENT_FINAL),
	    &why), 0);
	scram_end(x);
	x = scram_begin(db, pw, ghost, strlen(ghost), NULL, &why);
	ck_assert_ptr_nonnull(x);
	salt_of(x, b, sizeof(b));
	scram_end(x);
	ck_assert_str_eq(a, b);
	ck_assert_ptr_nonnull(strstr(a, ",i=4096"));
	x = scram_begin(db, pw, "n,,n=ghost2,r=abcdef", 20, NULL, &why);
	ck_assert_ptr_nonnull(x);
	salt_of(x, c, sizeof(c));
	scram_end(x);
	ck_assert_str_ne(a, c);
	scram_free(db);
	passwd_free(pw);
	free(line);
}
END_TEST

/*
 * A verifier counts only while the password file has the hash it was
 * made beside: a password changed or a user deleted by another tool.
 */
START_TEST(test_binding)
{
	char			*line = rfc_line(HASH);
	struct passwd_db	*changed = pw_db("user:" OTHER_HASH "\n");
	struct passwd_db	*gone = pw_db("someone:" HASH "\n");
	struct scram_db		*db = scram_db(line);
	struct scram_exchange	*x;
	const char		*why;

	x = scram_begin(db, changed, CLIENT_FIRST, strlen(CLIENT_FIRST),
	    SNONCE, &why);
	ck_assert_ptr_nonnull(x);
	ck_assert_int_eq(scram_finish(x, CLIENT_FINAL, strlen(CLIENT_FINAL),
	    &why), 0);
	scram_end(x);
	x = scram_begin(db, gone, CLIENT_FIRST, strlen(CLIENT_FIRST), SNONCE,
	    &why);
	ck_assert_ptr_nonnull(x);
	ck_assert_int_eq(scram_finish(x, CLIENT_FINAL, strlen(CLIENT_FINAL),
	    &why), 0);
	scram_end(x);
	scram_free(db);
	passwd_free(changed);
	passwd_free(gone);
	free(line);
}
END_TEST

START_TEST(test_escaped_names)
{
	struct buf		 b = BUF_INITIALIZER;
	struct passwd_db	*pw = pw_db("a,b=c:" HASH "\n");
	struct scram_db		*db;
	struct scram_exchange	*x;
	const char		*why, *first = "y,,n=a=2Cb=3Dc,r=xyz";

	buf_add(&b, "a,b=c:", 6);
	ck_assert_int_eq(scram_verifier(&b, 4096, "pw", 2, HASH, strlen(HASH),
	    NULL), 0);
	buf_add_u8(&b, 0);
	db = scram_db((const char *)b.data);
	x = scram_begin(db, pw, first, strlen(first), NULL, &why);
	ck_assert_ptr_nonnull(x);
	ck_assert_str_eq(scram_user(x), "a,b=c");
	/* a known user: its own salt, not a made-up one */
	{
		const uint8_t	*m;
		size_t		 len;
		char		 salt[64];
		const char	*s = strchr((const char *)b.data, ':') + 1;

		s = strchr(s, ':') + 1;
		snprintf(salt, sizeof(salt), ",s=%.*s,", (int)(strchr(s, '$') -
		    s), s);
		m = scram_message(x, &len);
		ck_assert_ptr_nonnull(memmem(m, len, salt, strlen(salt)));
	}
	scram_end(x);
	scram_free(db);
	passwd_free(pw);
	buf_free(&b);
}
END_TEST

START_TEST(test_bad_lines)
{
	char		*line = rfc_line(HASH), text[2048];
	struct scram_db	*db;

	snprintf(text, sizeof(text),
	    "# comment\n"
	    "\n"
	    "nouser\n"				/* 3 */
	    "u1:$7$101$AQID$AQID\n"		/* 4: not SCRAM */
	    "u2:SCRAM-SHA-256$0:" RFC_SALT "$a:b:c\n"	/* 5: iterations */
	    "u3:SCRAM-SHA-256$4096:" RFC_SALT "$short:short:short\n" /* 6 */
	    "%s"				/* 7: good */
	    "dup:%s"				/* 8: twice */
	    "dup:%s", line, line + 5, line + 5);
	db = scram_db(text);
	ck_assert_uint_eq(scram_count(db), 1);
	ck_assert_int_eq(nbad, 5);
	ck_assert_uint_eq(bad_lines[0], 3);
	ck_assert_uint_eq(bad_lines[1], 4);
	ck_assert_uint_eq(bad_lines[2], 5);
	ck_assert_uint_eq(bad_lines[3], 6);
	ck_assert_uint_eq(bad_lines[4], 0);	/* the repeated name */
	scram_free(db);
	free(line);
}
END_TEST

static Suite *
scram_suite(void)
{
	Suite	*s = suite_create("scram");
	TCase	*tc;

	tc = harness_tcase(s, "verifiers", NULL, NULL);
	tcase_add_test(tc, test_verifier_keys);
	tcase_add_test(tc, test_bad_lines);
	tcase_add_test(tc, test_binding);
	tc = harness_tcase(s, "exchange", NULL, NULL);
	tcase_add_test(tc, test_rfc7677_exchange);
	tcase_add_test(tc, test_bad_finals);
	tcase_add_test(tc, test_bad_firsts);
	tcase_add_test(tc, test_unknown_users);
	tcase_add_test(tc, test_escaped_names);
	return s;
}

int
main(void)
{
	return harness_run(scram_suite());
}
