/*
 * check_acl.c - unit tests of common/acl.c.
 *
 * The file below was given to Mosquitto 2.0.11 and the answers noted
 * (which topics each client received with a subscription to '#', which
 * of its publishes were refused): the checks here expect the same.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "acl.h"
#include "harness.h"

static const char measured[] =
    "# comments and blank lines\n"
    "\n"
    "topic read public/#\n"
    "topic readwrite anon/#\n"
    "\n"
    "user alice\n"
    "topic readwrite alice/#\n"
    "topic read shared/#\n"
    "topic deny shared/secret\n"
    "topic write in/alice\n"
    "pattern readwrite clients/%c/#\n"
    "\n"
    "user root\n"
    "topic readwrite #\n"
    "\n"
    "pattern read users/%u/#\n";

static struct acl *
parse(const char *text, char *err, size_t errlen)
{
	struct acl	*acl = NULL;
	FILE		*f = fmemopen((void *)text, strlen(text), "r");

	ck_assert_ptr_nonnull(f);
	if (acl_read(&acl, f, "acl", err, errlen) == -1)
		acl = NULL;
	fclose(f);
	return acl;
}

static int
may(struct acl *acl, const char *user, const char *cid, const char *topic,
    int access)
{
	return acl_check(acl, user, user ? strlen(user) : 0, cid, strlen(cid),
	    topic, strlen(topic), access);
}

static int
sub(struct acl *acl, const char *user, const char *cid, const char *filter)
{
	return acl_may_subscribe(acl, user, user ? strlen(user) : 0, cid,
	    strlen(cid), filter, strlen(filter));
}

START_TEST(test_reads_as_mosquitto)
{
	static const char *topics[] = { "alice/x", "shared/x", "shared/secret",
	    "public/x", "anon/x", "clients/c-alice/x", "clients/c-bob/x",
	    "users/alice/x", "users/bob/x", "in/alice", "other/x", NULL };
	/* who received what, with '#' */
	static const struct {
		const char	*user, *cid, *reads;
	} want[] = {
		{ "alice", "c-alice", "alice/x shared/x clients/c-alice/x "
		    "users/alice/x" },
		{ "bob", "c-bob", "clients/c-bob/x users/bob/x" },
		{ NULL, "c-anon", "public/x anon/x" },
		{ "root", "c-root", "alice/x shared/x shared/secret public/x "
		    "anon/x clients/c-alice/x clients/c-bob/x users/alice/x "
		    "users/bob/x in/alice other/x" },
	};
	struct acl	*acl;
	char		 err[256], got[512];
	size_t		 i, t;

	ck_assert_msg((acl = parse(measured, err, sizeof(err))) != NULL, "%s",
	    err);
	ck_assert_uint_eq(acl_count(acl), 9);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		got[0] = '\0';
		for (t = 0; topics[t]; t++)
			if (may(acl, want[i].user, want[i].cid, topics[t],
			    ACL_READ)) {
				if (got[0])
					strcat(got, " ");
				strcat(got, topics[t]);
			}
		ck_assert_msg(strcmp(got, want[i].reads) == 0, "%s reads "
		    "\"%s\", Mosquitto \"%s\"", want[i].cid, got,
		    want[i].reads);
	}
	acl_free(acl);
}
END_TEST

START_TEST(test_writes_as_mosquitto)
{
	struct acl	*acl;
	char		 err[256];

	ck_assert_ptr_nonnull(acl = parse(measured, err, sizeof(err)));
	/* alice: her own, in/alice (write only), her client id's */
	ck_assert_int_eq(may(acl, "alice", "w-a", "alice/x", ACL_WRITE), 1);
	ck_assert_int_eq(may(acl, "alice", "w-a", "in/alice", ACL_WRITE), 1);
	ck_assert_int_eq(may(acl, "alice", "w-a", "in/alice", ACL_READ), 0);
	ck_assert_int_eq(may(acl, "alice", "w-a", "clients/w-a/x", ACL_WRITE),
	    1);
	ck_assert_int_eq(may(acl, "alice", "w-a", "public/x", ACL_WRITE), 0);
	ck_assert_int_eq(may(acl, "alice", "w-a", "anon/x", ACL_WRITE), 0);
	ck_assert_int_eq(may(acl, "alice", "w-a", "users/alice/x", ACL_WRITE),
	    0);
	ck_assert_int_eq(may(acl, "alice", "w-a", "other/x", ACL_WRITE), 0);
	/* anonymous: the rules before any user line, and the patterns */
	ck_assert_int_eq(may(acl, NULL, "w-n", "anon/x", ACL_WRITE), 1);
	ck_assert_int_eq(may(acl, NULL, "w-n", "clients/w-n/x", ACL_WRITE), 1);
	ck_assert_int_eq(may(acl, NULL, "w-n", "alice/x", ACL_WRITE), 0);
	ck_assert_int_eq(may(acl, NULL, "w-n", "public/x", ACL_WRITE), 0);
	ck_assert_int_eq(may(acl, NULL, "w-n", "users/w-n/x", ACL_READ), 0);
	/* a wildcard rule does not reach $ topics */
	ck_assert_int_eq(may(acl, "root", "r", "$SYS/x", ACL_READ), 0);
	/* %c stands for one level only */
	ck_assert_int_eq(may(acl, "alice", "a/b", "clients/a/b/x", ACL_WRITE),
	    0);
	ck_assert_int_eq(may(acl, "alice", "+", "clients/x/y", ACL_WRITE), 0);
	acl_free(acl);
}
END_TEST

START_TEST(test_subscriptions)
{
	struct acl	*acl;
	char		 err[256];

	ck_assert_ptr_nonnull(acl = parse(measured, err, sizeof(err)));
	/* may deliver something: granted (deliveries are checked anyway) */
	ck_assert_int_eq(sub(acl, "alice", "c", "#"), 1);
	ck_assert_int_eq(sub(acl, "alice", "c", "+/x"), 1);
	ck_assert_int_eq(sub(acl, "alice", "c", "shared/#"), 1);
	ck_assert_int_eq(sub(acl, "alice", "c", "alice"), 1);	/* alice/# */
	ck_assert_int_eq(sub(acl, "alice", "c", "clients/c/+"), 1);
	/* never: refused */
	ck_assert_int_eq(sub(acl, "alice", "c", "other/#"), 0);
	ck_assert_int_eq(sub(acl, "alice", "c", "in/alice"), 0);
	ck_assert_int_eq(sub(acl, "alice", "c", "shared/secret"), 0);
	ck_assert_int_eq(sub(acl, "alice", "c", "clients/d/#"), 0);
	ck_assert_int_eq(sub(acl, "bob", "c", "alice/#"), 0);
	ck_assert_int_eq(sub(acl, NULL, "c", "public/+"), 1);
	ck_assert_int_eq(sub(acl, NULL, "c", "users/#"), 0);
	ck_assert_int_eq(sub(acl, "root", "c", "$SYS/#"), 0);
	acl_free(acl);
}
END_TEST

START_TEST(test_bad_files)
{
	static const struct {
		const char	*text, *err;
	} bad[] = {
		{ "topic read a/#\nbogus line\n", "acl:2: not a user" },
		{ "user\n", "acl:1: user without a name" },
		{ "topic read\n", "acl:1: no topic filter" },
		{ "\ntopic read a/#/b\n", "acl:2: not a valid topic filter" },
		{ "pattern write a+/b\n", "acl:1: not a valid topic filter" },
	};
	struct acl	*acl;
	char		 err[256];
	size_t		 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		ck_assert_ptr_null(acl = parse(bad[i].text, err, sizeof(err)));
		ck_assert_msg(strncmp(err, bad[i].err, strlen(bad[i].err)) == 0,
		    "%zu: %s", i, err);
	}
	/* access words are optional, filters may hold spaces */
	ck_assert_ptr_nonnull(acl = parse("topic a b/#\n", err, sizeof(err)));
	ck_assert_int_eq(may(acl, NULL, "c", "a b/x", ACL_WRITE), 1);
	acl_free(acl);
}
END_TEST

static Suite *
acl_suite(void)
{
	Suite	*s = suite_create("acl");
	TCase	*tc = harness_tcase(s, "mosquitto's meaning", NULL, NULL);

	tcase_add_test(tc, test_reads_as_mosquitto);
	tcase_add_test(tc, test_writes_as_mosquitto);
	tcase_add_test(tc, test_subscriptions);
	tcase_add_test(tc, test_bad_files);
	return s;
}

int
main(void)
{
	return harness_run(acl_suite());
}
