/*
 * check_options.c - unit tests of the option table and the configuration
 * loader (common/options*.c): defaults, the file, units and ranges, the
 * environment, the flags, their precedence, every kind of error, the
 * canonical text used between processes, and the derived values.
 *
 * Each test writes its configuration files into its own mkdtemp
 * directory (a checked fixture), and passes its own environment to
 * config_load(), so tests neither see the caller's PROMPTMQ_* variables
 * nor each other's files.
 */
#include "config.h"

#include <check.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "options.h"

#ifndef TOP_SRCDIR
#define TOP_SRCDIR "."
#endif

#define MAX_FILES 8

static char	 tmpdir[PATH_MAX];
static char	*files[MAX_FILES];
static size_t	 nfiles;

static struct config		cfg;
static struct config_messages	msgs;

static void
setup(void)
{
	const char	*base = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/check_options.XXXXXX",
	    base && *base ? base : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	nfiles = 0;
	ck_assert_int_eq(config_defaults(&cfg), 0);
	memset(&msgs, 0, sizeof(msgs));
}

static void
teardown(void)
{
	size_t	i;

	for (i = 0; i < nfiles; i++) {
		unlink(files[i]);
		free(files[i]);
	}
	rmdir(tmpdir);
	config_free(&cfg);
	config_messages_free(&msgs);
}

/* Writes tmpdir/name; the path stays valid until teardown. */
static const char *
write_file(const char *name, const char *text)
{
	FILE	*f;
	char	*path;

	ck_assert_uint_lt(nfiles, MAX_FILES);
	ck_assert_int_ne(asprintf(&path, "%s/%s", tmpdir, name), -1);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	ck_assert_int_eq(fputs(text, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
	files[nfiles++] = path;
	return path;
}

static const char *
missing_file(void)
{
	static char	path[PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/missing.conf", tmpdir);
	return path;
}

static char *const no_env[] = { NULL };

/* argv from a NULL-terminated list, with a program name in front. */
static int
load(const char *const *args, char *const envp[], const char *default_file)
{
	char	*argv[32];
	int	 argc = 0;

	argv[argc++] = (char *)"promptmqd";
	while (args != NULL && *args != NULL && argc < 31)
		argv[argc++] = (char *)*args++;
	argv[argc] = NULL;
	return config_load(&cfg, argc, argv, envp ? envp : no_env,
	    default_file, &msgs);
}

/* Loads only a file of this text (-c). */
static int
load_text(const char *text)
{
	const char	*args[] = { "-c", write_file("test.conf", text), NULL };

	return load(args, NULL, NULL);
}

static char *
all_errors(void)
{
	static char	out[8192];
	size_t		i, off = 0;

	out[0] = '\0';
	for (i = 0; i < msgs.nerrors && off < sizeof(out); i++)
		off += (size_t)snprintf(out + off, sizeof(out) - off, "\n  %s",
		    msgs.errors[i]);
	return out;
}

#define ck_assert_loaded(rc)                                               \
	ck_assert_msg((rc) == 0 && msgs.nerrors == 0, "load failed:%s",    \
	    all_errors())

static int
has(char **list, size_t n, const char *needle)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (strstr(list[i], needle) != NULL)
			return 1;
	return 0;
}

#define ck_assert_error(needle)                                            \
	ck_assert_msg(has(msgs.errors, msgs.nerrors, needle),              \
	    "no error containing \"%s\"; errors:%s", needle, all_errors())

/* Text set through config_set(), or the error it gave. */
static const char *
set(enum option_id id, const char *text)
{
	static char	err[512];

	if (config_set(&cfg, id, text, ORIGIN_FLAG, err, sizeof(err)) == -1)
		return err;
	return config_text(&cfg, id);
}

/* The table. */

#define LOWER "abcdefghijklmnopqrstuvwxyz"

START_TEST(test_table_names)
{
	char	a[128], b[128];
	size_t	i, j;
	int	seen_later;

	for (i = 0; i < OPT__COUNT; i++) {
		const struct option_def	*o = &option_table[i];

		ck_assert_int_eq(o->id, (int)i);
		ck_assert_msg(strspn(o->leaf, LOWER "-0123456789") ==
			strlen(o->leaf), "leaf %s", o->leaf);
		ck_assert_msg(strspn(o->group, LOWER) ==
			strlen(o->group), "group %s", o->group);
		ck_assert_int_eq(o->type == OPTION_ENUM, o->choices != NULL);
		ck_assert_ptr_nonnull(o->help);
		ck_assert_int_le(o->min, o->max);
		for (j = i + 1; j < OPT__COUNT; j++) {
			ck_assert_str_ne(config_name(i, a, sizeof(a)),
			    config_name(j, b, sizeof(b)));
			ck_assert_str_ne(option_env_name(i, a, sizeof(a)),
			    option_env_name(j, b, sizeof(b)));
			ck_assert_str_ne(option_flag_name(i, a, sizeof(a)),
			    option_flag_name(j, b, sizeof(b)));
		}
		/* A group's options are together: usage and docs rely on it. */
		if (i > 0 && strcmp(option_table[i - 1].group, o->group) != 0) {
			for (seen_later = 0, j = 0; j < i; j++)
				seen_later |= strcmp(option_table[j].group,
				    o->group) == 0;
			ck_assert_msg(!seen_later, "group %s is split",
			    o->group);
		}
	}
	for (i = 0; i < option_alias_count; i++) {
		ck_assert_int_lt(option_aliases[i].id, OPT__COUNT);
		ck_assert_int_eq(option_aliases[i].flag != NULL ||
			option_aliases[i].letter != 0, 1);
	}
	ck_assert_str_eq(option_env_name(OPT_storage_wal_sync, a, sizeof(a)),
	    "PROMPTMQ_STORAGE_WAL_SYNC");
	ck_assert_str_eq(option_flag_name(OPT_storage_wal_sync, a, sizeof(a)),
	    "--storage-wal-sync");
}
END_TEST

START_TEST(test_defaults)
{
	size_t	i;

	for (i = 0; i < OPT__COUNT; i++) {
		ck_assert_int_eq(cfg.v[i].origin, ORIGIN_DEFAULT);
		ck_assert_ptr_nonnull(config_text(&cfg, i));
	}
	ck_assert_str_eq(config_str(&cfg, OPT_server_bind), "127.0.0.1:1883");
	ck_assert_int_eq(config_num(&cfg, OPT_server_workers), 0);
	ck_assert_int_eq(config_num(&cfg, OPT_mqtt_max_packet_size),
	    256 << 20);
	ck_assert_str_eq(config_text(&cfg, OPT_mqtt_max_packet_size), "256MB");
	ck_assert_int_eq(config_num(&cfg, OPT_server_connect_timeout), 10000);
	ck_assert_int_eq(config_num(&cfg, OPT_storage_wal_sync), 0);
	ck_assert_str_eq(config_str(&cfg, OPT_storage_wal_sync), "always");
	ck_assert_int_eq(config_num(&cfg, OPT_mqtt_allow_anonymous), 0);
	ck_assert_str_eq(config_text(&cfg, OPT_mqtt_allow_anonymous), "false");
	ck_assert_str_eq(config_str(&cfg, OPT_storage_wal_dir), "");
	ck_assert_ptr_null(cfg.file);
}
END_TEST

START_TEST(test_defaults_finish)
{
	const char	*args[] = { NULL };

	ck_assert_loaded(load(args, NULL, missing_file()));
	ck_assert_ptr_null(cfg.file);
	ck_assert_str_eq(config_str(&cfg, OPT_storage_wal_dir),
	    "/var/lib/promptmq/wal");
	ck_assert_str_eq(config_str(&cfg, OPT_server_pidfile), "");
	ck_assert_int_eq(config_num(&cfg, OPT_server_workers), 0);
}
END_TEST

/* config_num on a string option is a bug of ours: panic. */
START_TEST(test_accessor_misuse)
{
	config_num(&cfg, OPT_server_bind);
}
END_TEST

/* The file. */

START_TEST(test_file_values)
{
	int	rc;

	rc = load_text("# a comment\n"
		       "server: {\n"
		       "  bind = \"0.0.0.0:1883, [::]:1883\";\n"
		       "  workers = 4;\n"
		       "  daemon = false;\n"
		       "};\n"
		       "mqtt = {\n"
		       "  max-packet-size = \"1MB\"; max-qos = 1;\n"
		       "  allow-anonymous = true;\n"
		       "};\n"
		       "storage: { wal-sync = \"interval\"; "
		       "wal-sync-interval = \"250ms\"; };\n"
		       "log: { target = [\"stderr\", \"syslog\"]; "
		       "level = \"debug\"; };\n");
	ck_assert_loaded(rc);
	ck_assert_str_eq(config_str(&cfg, OPT_server_bind),
	    "0.0.0.0:1883,[::]:1883");
	ck_assert_int_eq(config_num(&cfg, OPT_server_workers), 4);
	ck_assert_int_eq(cfg.v[OPT_server_workers].origin, ORIGIN_FILE);
	ck_assert_int_eq(cfg.v[OPT_server_workers].line, 4);
	ck_assert_int_eq(config_num(&cfg, OPT_mqtt_max_packet_size), 1 << 20);
	ck_assert_int_eq(cfg.v[OPT_mqtt_max_packet_size].line, 8);
	ck_assert_int_eq(config_num(&cfg, OPT_mqtt_max_qos), 1);
	ck_assert_int_eq(config_num(&cfg, OPT_mqtt_allow_anonymous), 1);
	ck_assert_int_eq(config_num(&cfg, OPT_storage_wal_sync), 1);
	ck_assert_int_eq(config_num(&cfg, OPT_storage_wal_sync_interval), 250);
	ck_assert_str_eq(config_str(&cfg, OPT_log_target), "stderr,syslog");
	ck_assert_str_eq(config_str(&cfg, OPT_log_level), "debug");
	ck_assert_str_eq(cfg.file, files[0]);
	/* untouched options keep their defaults */
	ck_assert_int_eq(cfg.v[OPT_metrics_enabled].origin, ORIGIN_DEFAULT);
}
END_TEST

START_TEST(test_file_include)
{
	int	rc;

	write_file("mqtt.conf", "max-qos = 1;\nmax-inflight = 99999999999;\n");
	rc = load_text("mqtt: {\n  @include \"mqtt.conf\"\n};\n");
	ck_assert_int_eq(rc, -1);
	ck_assert_int_eq(config_num(&cfg, OPT_mqtt_max_qos), 1);
	/* the wrapped integer is checked in the included file's text */
	ck_assert_error("mqtt.conf:2: mqtt.max-inflight: 99999999999 is out "
			"of range (1 to 65535)");
	ck_assert_uint_eq(msgs.nerrors, 1);
}
END_TEST

START_TEST(test_file_integer_layouts)
{
	int	rc;

	/* a name in a comment or a string before the setting is skipped */
	rc = load_text("mqtt: {\n"
		       "  /* max-inflight = 9 */ max-inflight = 30;\n"
		       "  max-queued-messages =\n"
		       "      5000;  # on the next line\n"
		       "  max-connections = 0x10;\n"
		       "  max-qos = 1L;\n"
		       "};\n"
		       "server: { user = \"workers = 7\"; workers = 3; };\n");
	ck_assert_loaded(rc);
	ck_assert_int_eq(config_num(&cfg, OPT_mqtt_max_inflight), 30);
	ck_assert_int_eq(config_num(&cfg, OPT_mqtt_max_queued_messages), 5000);
	ck_assert_int_eq(config_num(&cfg, OPT_mqtt_max_connections), 16);
	ck_assert_int_eq(config_num(&cfg, OPT_mqtt_max_qos), 1);
	ck_assert_int_eq(config_num(&cfg, OPT_server_workers), 3);
}
END_TEST

START_TEST(test_file_missing_default)
{
	const char	*args[] = { NULL };

	ck_assert_loaded(load(args, NULL, missing_file()));
	ck_assert_uint_eq(msgs.nwarnings, 0);
}
END_TEST

START_TEST(test_file_from_environment)
{
	char	 var[PATH_MAX + 32];
	char	*env[] = { var, NULL };
	const char *args[] = { NULL };

	snprintf(var, sizeof(var), "PROMPTMQ_CONFIG=%s",
	    write_file("env.conf", "log: { level = \"warn\"; };\n"));
	ck_assert_loaded(load(args, env, missing_file()));
	ck_assert_str_eq(config_str(&cfg, OPT_log_level), "warn");
	ck_assert_uint_eq(msgs.nwarnings, 0);
}
END_TEST

START_TEST(test_file_development_config)
{
	const char	*args[] = { "-c", TOP_SRCDIR "/etc/promptmq.conf",
		      NULL };
	char		*cwd;

	ck_assert_loaded(load(args, NULL, NULL));
	ck_assert_uint_eq(msgs.nwarnings, 0);
	ck_assert_ptr_nonnull(cwd = getcwd(NULL, 0));
	ck_assert_str_eq(config_str(&cfg, OPT_server_bind), "127.0.0.1:1883");
	ck_assert_int_eq(config_num(&cfg, OPT_mqtt_allow_anonymous), 1);
	ck_assert_int_eq(strncmp(config_str(&cfg, OPT_storage_data_dir), cwd,
			     strlen(cwd)),
	    0);
	ck_assert_ptr_nonnull(
	    strstr(config_str(&cfg, OPT_storage_data_dir), "/var/data"));
	ck_assert_ptr_nonnull(
	    strstr(config_str(&cfg, OPT_storage_wal_dir), "/var/data/wal"));
	ck_assert_ptr_nonnull(
	    strstr(config_str(&cfg, OPT_server_runtime_dir), "/var/run"));
	ck_assert_str_eq(config_str(&cfg, OPT_server_user), "");
	ck_assert_str_eq(config_str(&cfg, OPT_log_target), "stderr");
	ck_assert_int_eq(config_num(&cfg, OPT_metrics_enabled), 0);
	free(cwd);
}
END_TEST

/* Units and ranges: text in, canonical text (or the error) out. */

struct set_case {
	enum option_id	 id;
	const char	*in;
	const char	*out;
};

static void
check_set_cases(const struct set_case *cases, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		ck_assert_msg(strcmp(set(cases[i].id, cases[i].in),
				  cases[i].out) == 0,
		    "'%s' gave '%s', not '%s'", cases[i].in,
		    set(cases[i].id, cases[i].in), cases[i].out);
}

#define CHECK_SET_CASES(cases)                                             \
	check_set_cases(cases, sizeof(cases) / sizeof(cases[0]))

START_TEST(test_units_size)
{
	static const struct set_case cases[] = {
		{ OPT_mqtt_max_packet_size, "1KB", "1KB" },
		{ OPT_mqtt_max_packet_size, "1024KB", "1MB" },
		{ OPT_mqtt_max_packet_size, "1MiB", "1MB" },
		{ OPT_mqtt_max_packet_size, "2 mb", "2MB" },
		{ OPT_mqtt_max_packet_size, "1536B", "1536B" },
		{ OPT_mqtt_max_packet_size, "64B", "64B" },
		{ OPT_mqtt_max_queued_bytes, "1GiB", "1GB" },
		{ OPT_storage_wal_segment_size, "4294967295B", "4294967295B" },
		{ OPT_mqtt_max_queued_bytes, "1TB", "1TB" },
	};

	CHECK_SET_CASES(cases);
	ck_assert_int_eq(config_num(&cfg, OPT_mqtt_max_queued_bytes),
	    1LL << 40);
	ck_assert_str_eq(set(OPT_mqtt_max_packet_size, "1KB"), "1KB");
	ck_assert_int_eq(config_num(&cfg, OPT_mqtt_max_packet_size), 1024);
}
END_TEST

START_TEST(test_units_duration)
{
	static const struct set_case cases[] = {
		{ OPT_server_connect_timeout, "120s", "2m" },
		{ OPT_server_connect_timeout, "90s", "90s" },
		{ OPT_server_connect_timeout, "3600000ms", "1h" },
		{ OPT_server_connect_timeout, "1h", "1h" },
		{ OPT_server_respawn_delay, "0s", "0ms" },
		{ OPT_server_respawn_delay, "0ms", "0ms" },
		{ OPT_server_connect_timeout, "1500ms", "1500ms" },
	};

	CHECK_SET_CASES(cases);
	ck_assert_int_eq(config_num(&cfg, OPT_server_connect_timeout), 1500);
	ck_assert_int_eq(config_num(&cfg, OPT_server_respawn_delay), 0);
}
END_TEST

START_TEST(test_units_errors)
{
	static const struct set_case cases[] = {
		{ OPT_mqtt_max_packet_size, "12XB",
		    "'12XB': unknown unit 'XB' (use B, KB, MB, GB, TB or KiB, "
		    "MiB, GiB, TiB)" },
		{ OPT_mqtt_max_packet_size, "12",
		    "'12' needs a unit (B, KB, MB, GB, TB or KiB, MiB, GiB, "
		    "TiB), e.g. \"256MB\"" },
		{ OPT_mqtt_max_packet_size, "big",
		    "'big' is not a size: write a number and a unit (B, KB, "
		    "MB, GB, TB or KiB, MiB, GiB, TiB), e.g. \"256MB\"" },
		{ OPT_mqtt_max_packet_size, "1.5MB",
		    "'1.5MB': unknown unit '.5MB' (use B, KB, MB, GB, TB or "
		    "KiB, MiB, GiB, TiB)" },
		{ OPT_mqtt_max_packet_size, "1GB",
		    "1GB is out of range (64B to 268435460B)" },
		{ OPT_mqtt_max_packet_size, "99999999999TB",
		    "'99999999999TB' is too large" },
		{ OPT_mqtt_max_packet_size, "99999999999999999999B",
		    "'99999999999999999999B' is too large" },
		{ OPT_server_connect_timeout, "50ms",
		    "50ms is out of range (100ms to 1h)" },
		{ OPT_server_connect_timeout, "10 fortnights",
		    "'10 fortnights': unknown unit 'fortnights' (use ms, s, m, "
		    "h)" },
		{ OPT_server_workers, "257", "257 is out of range (0 to 256)" },
		{ OPT_server_workers, "-1", "-1 is out of range (0 to 256)" },
		{ OPT_server_workers, "four", "'four' is not an integer" },
		{ OPT_server_workers, " 4", "' 4' is not an integer" },
		{ OPT_server_workers, "99999999999999999999",
		    "99999999999999999999 is too large" },
	};

	CHECK_SET_CASES(cases);
	ck_assert_ptr_nonnull(
	    strstr(set(OPT_mqtt_max_packet_size, "-1MB"), "is not a size"));
	/* a failed set leaves the value alone */
	ck_assert_str_eq(config_text(&cfg, OPT_mqtt_max_packet_size), "256MB");
	ck_assert_int_eq(cfg.v[OPT_mqtt_max_packet_size].origin,
	    ORIGIN_DEFAULT);
}
END_TEST

START_TEST(test_values_other_types)
{
	static const struct set_case cases[] = {
		{ OPT_server_daemon, "yes", "true" },
		{ OPT_server_daemon, "OFF", "false" },
		{ OPT_server_daemon, "1", "true" },
		{ OPT_server_daemon, "maybe",
		    "'maybe' is not a boolean: use true or false" },
		{ OPT_storage_wal_sync, "alway",
		    "'alway' is not one of always, interval, none (did you "
		    "mean 'always'?)" },
		{ OPT_server_bind, " a:1 , b:2 ", "a:1,b:2" },
		{ OPT_server_bind, "a:1,,b:2",
		    "'a:1,,b:2' has an empty element" },
		{ OPT_log_target, "  ", "" },
		{ OPT_server_user, " spaced name ", " spaced name " },
		{ OPT_storage_wal_sync, "NONE", "none" },
	};

	CHECK_SET_CASES(cases);
	ck_assert_int_eq(config_num(&cfg, OPT_storage_wal_sync), 2);
}
END_TEST

/* The environment. */

START_TEST(test_env_values)
{
	char		*env[] = { (char *)"PATH=/bin",
		       (char *)"PROMPTMQ_STORAGE_WAL_SYNC=none",
		       (char *)"PROMPTMQ_MQTT_MAX_PACKET_SIZE=1MB",
		       (char *)"PROMPTMQ_SERVER_DAEMON=no", NULL };
	const char	*args[] = { NULL };

	ck_assert_loaded(load(args, env, NULL));
	ck_assert_str_eq(config_str(&cfg, OPT_storage_wal_sync), "none");
	ck_assert_int_eq(cfg.v[OPT_storage_wal_sync].origin, ORIGIN_ENV);
	ck_assert_int_eq(config_num(&cfg, OPT_mqtt_max_packet_size), 1 << 20);
	ck_assert_int_eq(config_num(&cfg, OPT_server_daemon), 0);
	ck_assert_uint_eq(msgs.nwarnings, 0);
}
END_TEST

START_TEST(test_env_unknown_is_warning)
{
	char		*env[] = { (char *)"PROMPTMQ_STORAGE_WAL_SNYC=none",
		       (char *)"PROMPTMQ_NOTHING_LIKE_IT=1", NULL };
	const char	*args[] = { NULL };

	ck_assert_loaded(load(args, env, NULL));
	ck_assert_uint_eq(msgs.nwarnings, 2);
	ck_assert_str_eq(msgs.warnings[0],
	    "PROMPTMQ_STORAGE_WAL_SNYC: unknown variable, ignored (did you "
	    "mean PROMPTMQ_STORAGE_WAL_SYNC?)");
	ck_assert_str_eq(msgs.warnings[1],
	    "PROMPTMQ_NOTHING_LIKE_IT: unknown variable, ignored");
	ck_assert_str_eq(config_str(&cfg, OPT_storage_wal_sync), "always");
}
END_TEST

START_TEST(test_env_errors)
{
	char		*env[] = { (char *)"PROMPTMQ_LOG_LEVEL=loud",
		       (char *)"PROMPTMQ_SERVER_WORKERS=", NULL };
	const char	*args[] = { NULL };

	ck_assert_int_eq(load(args, env, NULL), -1);
	ck_assert_uint_eq(msgs.nerrors, 2);
	ck_assert_str_eq(msgs.errors[0],
	    "PROMPTMQ_LOG_LEVEL: 'loud' is not one of error, warn, notice, "
	    "info, debug");
	ck_assert_str_eq(msgs.errors[1],
	    "PROMPTMQ_SERVER_WORKERS: '' is not an integer");
}
END_TEST

/* The flags. */

START_TEST(test_flags_long)
{
	const char	*args[] = { "--storage-wal-sync", "interval",
		      "--log-level=debug", "--server-daemon",
		      "--mqtt-retain-available=false", "--server-pidfile=",
		      "--metrics-bind", "[::1]:9100", NULL };

	ck_assert_loaded(load(args, NULL, NULL));
	ck_assert_str_eq(config_str(&cfg, OPT_storage_wal_sync), "interval");
	ck_assert_int_eq(cfg.v[OPT_storage_wal_sync].origin, ORIGIN_FLAG);
	ck_assert_str_eq(config_str(&cfg, OPT_log_level), "debug");
	ck_assert_int_eq(config_num(&cfg, OPT_server_daemon), 1);
	ck_assert_int_eq(config_num(&cfg, OPT_mqtt_retain_available), 0);
	ck_assert_str_eq(config_str(&cfg, OPT_metrics_bind), "[::1]:9100");
	/* a daemon gets a pidfile in the runtime directory */
	ck_assert_str_eq(config_str(&cfg, OPT_server_pidfile),
	    "/run/promptmq/promptmqd.pid");
	ck_assert_int_eq(cfg.check_only, 0);
}
END_TEST

START_TEST(test_flags_short)
{
	const char	*args[] = { "-td", "--bind", "127.0.0.1:0", "--workers",
		      "2", "--data-dir", "/srv/data", "--runtime-dir=/srv/run",
		      "--pidfile", "/srv/run/p.pid", NULL };

	ck_assert_loaded(load(args, NULL, NULL));
	ck_assert_int_eq(cfg.check_only, 1);
	ck_assert_int_eq(config_num(&cfg, OPT_server_daemon), 1);
	ck_assert_str_eq(config_str(&cfg, OPT_server_bind), "127.0.0.1:0");
	ck_assert_int_eq(config_num(&cfg, OPT_server_workers), 2);
	ck_assert_str_eq(config_str(&cfg, OPT_storage_data_dir), "/srv/data");
	ck_assert_str_eq(config_str(&cfg, OPT_storage_wal_dir),
	    "/srv/data/wal");
	ck_assert_str_eq(config_str(&cfg, OPT_server_runtime_dir), "/srv/run");
	ck_assert_str_eq(config_str(&cfg, OPT_server_pidfile),
	    "/srv/run/p.pid");
}
END_TEST

START_TEST(test_flags_config_file)
{
	const char	*path, *forms[3][3];
	char		 joined[PATH_MAX + 8];
	size_t		 i;

	path = write_file("c.conf", "server: { workers = 3; };\n");
	snprintf(joined, sizeof(joined), "-c%s", path);
	forms[0][0] = "-c";
	forms[0][1] = path;
	forms[1][0] = joined;
	forms[1][1] = NULL;
	forms[2][0] = "--config";
	forms[2][1] = path;
	for (i = 0; i < 3; i++) {
		forms[i][2] = NULL;
		config_free(&cfg);
		ck_assert_int_eq(config_defaults(&cfg), 0);
		ck_assert_loaded(load(forms[i], NULL, missing_file()));
		ck_assert_int_eq(config_num(&cfg, OPT_server_workers), 3);
	}
}
END_TEST

START_TEST(test_flags_help_version)
{
	const char	*help[] = { "--no-such-flag", "-h", NULL };
	const char	*version[] = { "-c", "/nonexistent", "--version",
		      NULL };

	/* help answers whatever else is on the line, and reads no file */
	ck_assert_int_eq(load(help, NULL, NULL), 0);
	ck_assert_int_eq(cfg.show_help, 1);
	ck_assert_uint_eq(msgs.nerrors, 0);
	config_free(&cfg);
	ck_assert_int_eq(config_defaults(&cfg), 0);
	ck_assert_int_eq(load(version, NULL, NULL), 0);
	ck_assert_int_eq(cfg.show_help, 0);
	ck_assert_int_eq(cfg.show_version, 1);
	ck_assert_ptr_null(cfg.file);
}
END_TEST

START_TEST(test_flags_errors)
{
	const char	*args[] = { "--storage-wal-snyc", "always", "-x",
		      "--server-daemon", "false", "--log-level=loud",
		      "--help=yes", "--config=", "--workers", NULL };

	ck_assert_int_eq(load(args, NULL, NULL), -1);
	ck_assert_error("unknown flag '--storage-wal-snyc' (did you mean "
			"--storage-wal-sync?)");
	/* its likely value is not a second error */
	ck_assert_msg(!has(msgs.errors, msgs.nerrors, "'always'"), "%s",
	    all_errors());
	ck_assert_error("unknown flag '-x'");
	ck_assert_error("unexpected argument 'false' (a boolean flag takes "
			"its value as --server-daemon=false)");
	ck_assert_error("--log-level: 'loud' is not one of error, warn, "
			"notice, info, debug");
	ck_assert_error("--help: takes no value");
	ck_assert_error("--config: needs a file name");
	ck_assert_error("--workers: needs a value");
	ck_assert_uint_eq(msgs.nerrors, 7);
}
END_TEST

/* Precedence: flag > environment > file > default. */

START_TEST(test_precedence)
{
	const char	*path = write_file("p.conf",
	    "log: { level = \"notice\"; format = \"logfmt\"; "
	    "target = \"syslog\"; };\n");
	char		*env[] = { (char *)"PROMPTMQ_LOG_LEVEL=warn",
		       (char *)"PROMPTMQ_LOG_FORMAT=text", NULL };
	const char	*args[] = { "--log-level", "error", NULL };
	char		 where[PATH_MAX + 32], expected[PATH_MAX + 32];

	ck_assert_loaded(load(args, env, path));
	ck_assert_str_eq(config_str(&cfg, OPT_log_level), "error");
	ck_assert_int_eq(cfg.v[OPT_log_level].origin, ORIGIN_FLAG);
	ck_assert_str_eq(config_str(&cfg, OPT_log_format), "text");
	ck_assert_int_eq(cfg.v[OPT_log_format].origin, ORIGIN_ENV);
	ck_assert_str_eq(config_str(&cfg, OPT_log_target), "syslog");
	ck_assert_int_eq(cfg.v[OPT_log_target].origin, ORIGIN_FILE);
	ck_assert_str_eq(config_str(&cfg, OPT_log_syslog_facility), "daemon");
	ck_assert_int_eq(cfg.v[OPT_log_syslog_facility].origin,
	    ORIGIN_DEFAULT);
	ck_assert_str_eq(config_source(&cfg, OPT_log_level, where,
			     sizeof(where)),
	    "--log-level");
	ck_assert_str_eq(config_source(&cfg, OPT_log_format, where,
			     sizeof(where)),
	    "PROMPTMQ_LOG_FORMAT");
	snprintf(expected, sizeof(expected), "%s:1", path);
	ck_assert_str_eq(config_source(&cfg, OPT_log_target, where,
			     sizeof(where)),
	    expected);
	ck_assert_str_eq(config_source(&cfg, OPT_log_syslog_facility, where,
			     sizeof(where)),
	    "default");
}
END_TEST

/* Errors in the file. */

START_TEST(test_error_syntax)
{
	char	expected[PATH_MAX + 64];

	ck_assert_int_eq(load_text("server: {\n  workers = ;\n};\n"), -1);
	snprintf(expected, sizeof(expected), "%s:2: syntax error", files[0]);
	ck_assert_uint_eq(msgs.nerrors, 1);
	ck_assert_str_eq(msgs.errors[0], expected);
}
END_TEST

START_TEST(test_error_unknown_option)
{
	char	expected[PATH_MAX + 128];

	ck_assert_int_eq(load_text("storage: {\n  wal-snyc = \"none\";\n"
				   "  level = \"debug\";\n"
				   "  colour = \"blue\";\n};\n"),
	    -1);
	snprintf(expected, sizeof(expected),
	    "%s:2: unknown option 'storage.wal-snyc' (did you mean "
	    "'storage.wal-sync'?)",
	    files[0]);
	ck_assert_str_eq(msgs.errors[0], expected);
	ck_assert_error(":3: unknown option 'storage.level' (did you mean "
			"'log.level'?)");
	ck_assert_error(":4: unknown option 'storage.colour'");
	ck_assert_uint_eq(msgs.nerrors, 3);
}
END_TEST

START_TEST(test_error_unknown_group)
{
	ck_assert_int_eq(load_text("sever: { workers = 2; };\n"
				   "mqtts: { };\n"
				   "server = 1;\n"),
	    -1);
	ck_assert_error(":1: unknown group 'sever' (did you mean 'server'?)");
	ck_assert_error(":2: unknown group 'mqtts'");
	ck_assert_error(":3: 'server' must be a group: server: { ... };");
	ck_assert_uint_eq(msgs.nerrors, 3);
}
END_TEST

START_TEST(test_error_bad_size)
{
	ck_assert_int_eq(load_text("mqtt: { max-packet-size = \"12XB\"; };\n"),
	    -1);
	ck_assert_error(":1: mqtt.max-packet-size: '12XB': unknown unit 'XB'");
}
END_TEST

START_TEST(test_error_size_bare_integer)
{
	ck_assert_int_eq(load_text("mqtt: {\n  max-packet-size = 1024;\n};\n"
				   "server: { connect-timeout = 10; };\n"),
	    -1);
	ck_assert_error(":2: mqtt.max-packet-size: expected a string with a "
			"size unit, e.g. max-packet-size = \"256MB\"; (got an "
			"integer)");
	ck_assert_error(":4: server.connect-timeout: expected a string with a "
			"time unit, e.g. connect-timeout = \"10s\"; (got an "
			"integer)");
}
END_TEST

START_TEST(test_error_wrapped_integer)
{
	/* libconfig reads these as -1294967296, 1, -1 and 1 */
	ck_assert_int_eq(load_text("server: { workers = 3000000000; };\n"
				   "mqtt: {\n"
				   "  max-qos = 4294967297;\n"
				   "  max-inflight = 0xFFFFFFFF;\n"
				   "  max-connections = 0x100000001;\n"
				   "  max-queued-messages = 3000000000L;\n"
				   "};\n"),
	    -1);
	ck_assert_error(":1: server.workers: 3000000000 is out of range (0 to "
			"256)");
	ck_assert_error(":3: mqtt.max-qos: 4294967297 is out of range (0 to "
			"2)");
	ck_assert_error(":4: mqtt.max-inflight: 4294967295 is out of range "
			"(1 to 65535)");
	ck_assert_error(":5: mqtt.max-connections: 4294967297 is out of "
			"range");
	ck_assert_error(":6: mqtt.max-queued-messages: 3000000000 is out of "
			"range");
	ck_assert_uint_eq(msgs.nerrors, 5);
	ck_assert_int_eq(config_num(&cfg, OPT_mqtt_max_qos), 2);
}
END_TEST

START_TEST(test_error_out_of_range)
{
	ck_assert_int_eq(load_text("server: { workers = 300; };\n"
				   "mqtt: { max-packet-size = \"1GB\"; };\n"),
	    -1);
	ck_assert_error(":1: server.workers: 300 is out of range (0 to 256)");
	ck_assert_error(":2: mqtt.max-packet-size: 1GB is out of range (64B "
			"to 268435460B)");
}
END_TEST

START_TEST(test_error_bad_enum_and_bool)
{
	ck_assert_int_eq(load_text("storage: { wal-sync = \"sometimes\"; };\n"
				   "server: { daemon = \"yes\"; };\n"
				   "metrics: { enabled = 1; };\n"
				   "log: { level = debug; };\n"),
	    -1);
	ck_assert_error(":4: syntax error");
	ck_assert_int_eq(load_text("storage: { wal-sync = \"sometimes\"; };\n"
				   "server: { daemon = \"yes\"; };\n"
				   "metrics: { enabled = 1; };\n"
				   "log: { level = 2.5; };\n"),
	    -1);
	ck_assert_error(":1: storage.wal-sync: 'sometimes' is not one of "
			"always, interval, none");
	ck_assert_error(":2: server.daemon: expected true or false, e.g. "
			"daemon = false; (got a string)");
	ck_assert_error(":3: metrics.enabled: expected true or false, e.g. "
			"enabled = false; (got an integer)");
	ck_assert_error(":4: log.level: expected a string, e.g. level = "
			"\"info\"; (got a decimal number)");
}
END_TEST

START_TEST(test_error_wrong_list)
{
	ck_assert_int_eq(load_text("server: { bind = (\"a:1\", 2); };\n"
				   "log: { target = (\"x,y\"); };\n"
				   "mqtt: { max-qos = \"2\"; };\n"),
	    -1);
	ck_assert_error(":1: server.bind: element 2 is an integer; expected "
			"strings");
	ck_assert_error(":2: log.target: element 1 ('x,y') has a comma");
	ck_assert_error(":3: mqtt.max-qos: expected an integer, e.g. max-qos "
			"= 2; (got a string)");
}
END_TEST

START_TEST(test_error_missing_file)
{
	const char	*args[] = { "-c", missing_file(), NULL };
	char		 expected[PATH_MAX + 64];

	ck_assert_int_eq(load(args, NULL, NULL), -1);
	snprintf(expected, sizeof(expected),
	    "%s: cannot read: No such file or directory", missing_file());
	ck_assert_str_eq(msgs.errors[0], expected);
}
END_TEST

START_TEST(test_error_file_is_directory)
{
	const char	*args[] = { "-c", tmpdir, NULL };

	ck_assert_int_eq(load(args, NULL, NULL), -1);
	ck_assert_error("cannot read: Is a directory");
}
END_TEST

START_TEST(test_error_unknown_flag)
{
	const char	*args[] = { "--bnd", "x", NULL };

	ck_assert_int_eq(load(args, NULL, NULL), -1);
	ck_assert_str_eq(msgs.errors[0],
	    "unknown flag '--bnd' (did you mean --bind?)");
}
END_TEST

/* Every error of every source, not only the first. */
START_TEST(test_errors_collected)
{
	char		*env[] = { (char *)"PROMPTMQ_SERVER_WORKERS=lots",
		       NULL };
	const char	*path = write_file("all.conf",
	    "server: { workers = 999; typo = 1; };\nmqtt: { max-qos = 3; };\n");
	const char	*args[] = { "-c", path, "--log-level=shout", NULL };

	ck_assert_int_eq(load(args, env, NULL), -1);
	ck_assert_uint_eq(msgs.nerrors, 5);
	ck_assert_error(":1: server.workers: 999 is out of range");
	ck_assert_error(":1: unknown option 'server.typo'");
	ck_assert_error(":2: mqtt.max-qos: 3 is out of range (0 to 2)");
	ck_assert_error("PROMPTMQ_SERVER_WORKERS: 'lots' is not an integer");
	ck_assert_error("--log-level: 'shout' is not one of");
}
END_TEST

/* The text form between processes. */

START_TEST(test_text_round_trip)
{
	static const struct {
		enum option_id	 id;
		const char	*in;
	} samples[] = {
		{ OPT_server_bind, " [::]:1883 ,0.0.0.0:1883" },
		{ OPT_server_daemon, "on" },
		{ OPT_server_user, "mqtt broker" },
		{ OPT_mqtt_max_packet_size, "4096 KiB" },
		{ OPT_mqtt_max_keep_alive, "65535000ms" },
		{ OPT_server_respawn_stable, "1440m" },
		{ OPT_storage_wal_sync, "Interval" },
		{ OPT_log_target, "stderr, /var/log/promptmq.log" },
	};
	struct config	 child;
	char		 err[256], *text;
	size_t		 i;

	for (i = 0; i < sizeof(samples) / sizeof(samples[0]); i++)
		ck_assert_int_eq(config_set(&cfg, samples[i].id, samples[i].in,
				     ORIGIN_FLAG, err, sizeof(err)),
		    0);
	/* what a child receives: (name, text) pairs */
	ck_assert_int_eq(config_defaults(&child), 0);
	for (i = 0; i < OPT__COUNT; i++) {
		char	name[128];

		config_name(i, name, sizeof(name));
		ck_assert_int_eq(config_find(name), (int)i);
		ck_assert_msg(config_set(&child, config_find(name),
				  config_text(&cfg, i), ORIGIN_SUPERVISOR, err,
				  sizeof(err)) == 0,
		    "%s: %s", name, err);
		ck_assert_str_eq(config_text(&child, i), config_text(&cfg, i));
		ck_assert_int_eq(child.v[i].num, cfg.v[i].num);
		/* and again: the canonical text is a fixed point */
		text = strdup(config_text(&child, i));
		ck_assert_int_eq(config_set(&child, i, text, ORIGIN_SUPERVISOR,
				     err, sizeof(err)),
		    0);
		ck_assert_str_eq(config_text(&child, i), text);
		free(text);
	}
	ck_assert_uint_eq(config_diff(&cfg, &child, NULL, 0), 0);
	ck_assert_str_eq(config_text(&child, OPT_mqtt_max_keep_alive),
	    "65535s");
	ck_assert_str_eq(config_text(&child, OPT_server_respawn_stable), "24h");
	config_free(&child);
}
END_TEST

START_TEST(test_diff)
{
	struct config	other;
	enum option_id	changed[4];
	char		err[256];

	ck_assert_int_eq(config_defaults(&other), 0);
	ck_assert_uint_eq(config_diff(&cfg, &other, changed, 4), 0);
	ck_assert_int_eq(config_set(&other, OPT_log_level, "debug",
			     ORIGIN_FILE, err, sizeof(err)),
	    0);
	ck_assert_int_eq(config_set(&other, OPT_server_workers, "8",
			     ORIGIN_FILE, err, sizeof(err)),
	    0);
	/* the same value spelt differently is no change */
	ck_assert_int_eq(config_set(&other, OPT_mqtt_max_packet_size,
			     "262144KB", ORIGIN_FILE, err, sizeof(err)),
	    0);
	ck_assert_uint_eq(config_diff(&cfg, &other, changed, 4), 2);
	ck_assert_int_eq(changed[0], OPT_server_workers);
	ck_assert_int_eq(changed[1], OPT_log_level);
	/* the count is whole even when out is short */
	ck_assert_uint_eq(config_diff(&cfg, &other, changed, 1), 2);
	ck_assert_int_eq(changed[0], OPT_server_workers);
	ck_assert_int_eq(config_find("log.level"), OPT_log_level);
	ck_assert_int_eq(config_find("log.levels"), -1);
	ck_assert_int_eq(config_find("log"), -1);
	config_free(&other);
}
END_TEST

/* Derived values (config_finish). */

START_TEST(test_finish_paths)
{
	const char	*path = write_file("paths.conf",
	    "storage: { data-dir = \"./state//data/\"; };\n"
	    "server: { runtime-dir = \"run\"; pidfile = \"/abs/./p.pid\"; };\n"
	    "log: { target = \"stderr,logs/broker.log\"; };\n");
	const char	*args[] = { "-c", "paths.conf", NULL };
	char		 expected[PATH_MAX + 64], *cwd;

	/* a reload after daemonizing: relative to where we started */
	ck_assert_ptr_nonnull(cwd = getcwd(NULL, 0));
	ck_assert_int_eq(chdir("/"), 0);
	ck_assert_int_eq(config_set_base_dir(&cfg, tmpdir), 0);
	ck_assert_loaded(load(args, NULL, NULL));
	ck_assert_str_eq(cfg.file, path);
	snprintf(expected, sizeof(expected), "%s/state/data", tmpdir);
	ck_assert_str_eq(config_str(&cfg, OPT_storage_data_dir), expected);
	snprintf(expected, sizeof(expected), "%s/state/data/wal", tmpdir);
	ck_assert_str_eq(config_str(&cfg, OPT_storage_wal_dir), expected);
	snprintf(expected, sizeof(expected), "%s/run", tmpdir);
	ck_assert_str_eq(config_str(&cfg, OPT_server_runtime_dir), expected);
	ck_assert_str_eq(config_str(&cfg, OPT_server_pidfile), "/abs/p.pid");
	snprintf(expected, sizeof(expected), "stderr,%s/logs/broker.log",
	    tmpdir);
	ck_assert_str_eq(config_str(&cfg, OPT_log_target), expected);
	/* config_finish is idempotent: a child may run it again */
	ck_assert_int_eq(config_finish(&cfg, &msgs), 0);
	ck_assert_str_eq(config_str(&cfg, OPT_log_target), expected);
	ck_assert_str_eq(cfg.base_dir, tmpdir);
	/* without fork mode the next tests run in this process */
	ck_assert_int_eq(chdir(cwd), 0);
	free(cwd);
}
END_TEST

START_TEST(test_finish_checks)
{
	const char	*args[] = { "--server-respawn-delay=20s",
		      "--bind=localhost,::1:1883,[::1]:1883,h:70000,:1883",
		      "--metrics-path=metrics", "--log-target=stdrr", NULL };

	ck_assert_int_eq(load(args, NULL, NULL), -1);
	ck_assert_error("--server-respawn-delay: 20s is longer than "
			"server.respawn-delay-max (10s)");
	ck_assert_error("--server-bind: 'localhost' has no port: use "
			"HOST:PORT");
	ck_assert_error("--server-bind: '::1:1883': put an IPv6 address in "
			"brackets");
	ck_assert_error("--server-bind: 'h:70000': the port must be a number "
			"from 0 to 65535");
	ck_assert_error("--server-bind: ':1883' has no host");
	ck_assert_error("--metrics-path: 'metrics' must start with /");
	ck_assert_error("--log-target: 'stdrr' is neither stderr, syslog nor "
			"a file path");
	ck_assert_uint_eq(msgs.nerrors, 7);
}
END_TEST

START_TEST(test_finish_file_prefix)
{
	ck_assert_int_eq(load_text("storage: {\n  data-dir = \"\";\n};\n"), -1);
	ck_assert_error(":2: storage.data-dir: must not be empty");
}
END_TEST

/* Usage. */

START_TEST(test_usage)
{
	char	*text = NULL;
	size_t	 len = 0;
	FILE	*out;

	ck_assert_ptr_nonnull(out = open_memstream(&text, &len));
	config_usage(out, "promptmqd");
	ck_assert_int_eq(fclose(out), 0);
	ck_assert_ptr_nonnull(
	    strstr(text, "usage: promptmqd [-dhtV] [-c FILE]"));
	ck_assert_ptr_nonnull(
	    strstr(text, "  --storage-wal-sync always|interval|none\n"));
	ck_assert_ptr_nonnull(
	    strstr(text, "  --server-bind LIST, --bind\n"));
	ck_assert_ptr_nonnull(
	    strstr(text, "  --server-daemon[=BOOL], -d\n"));
	ck_assert_ptr_nonnull(strstr(text, "(default: 256MB)"));
	ck_assert_ptr_nonnull(strstr(text, "\nlog:\n"));
	free(text);
}
END_TEST

static Suite *
options_suite(void)
{
	Suite		*s = suite_create("options");
	TCase		*tc;
	const char	*fork_mode = getenv("CK_FORK");

#define CASE(name)                                                        \
	tc = tcase_create(name);                                           \
	tcase_add_checked_fixture(tc, setup, teardown);                    \
	suite_add_tcase(s, tc)

	CASE("table");
	tcase_add_test(tc, test_table_names);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_defaults_finish);
	/* A panic aborts; without fork mode it would end the whole run. */
	if (fork_mode == NULL || strcmp(fork_mode, "no") != 0)
		tcase_add_test_raise_signal(tc, test_accessor_misuse, SIGABRT);

	CASE("file");
	tcase_add_test(tc, test_file_values);
	tcase_add_test(tc, test_file_include);
	tcase_add_test(tc, test_file_integer_layouts);
	tcase_add_test(tc, test_file_missing_default);
	tcase_add_test(tc, test_file_from_environment);
	tcase_add_test(tc, test_file_development_config);

	CASE("units and ranges");
	tcase_add_test(tc, test_units_size);
	tcase_add_test(tc, test_units_duration);
	tcase_add_test(tc, test_units_errors);
	tcase_add_test(tc, test_values_other_types);

	CASE("environment");
	tcase_add_test(tc, test_env_values);
	tcase_add_test(tc, test_env_unknown_is_warning);
	tcase_add_test(tc, test_env_errors);

	CASE("flags");
	tcase_add_test(tc, test_flags_long);
	tcase_add_test(tc, test_flags_short);
	tcase_add_test(tc, test_flags_config_file);
	tcase_add_test(tc, test_flags_help_version);
	tcase_add_test(tc, test_flags_errors);

	CASE("precedence");
	tcase_add_test(tc, test_precedence);

	CASE("errors");
	tcase_add_test(tc, test_error_syntax);
	tcase_add_test(tc, test_error_unknown_option);
	tcase_add_test(tc, test_error_unknown_group);
	tcase_add_test(tc, test_error_bad_size);
	tcase_add_test(tc, test_error_size_bare_integer);
	tcase_add_test(tc, test_error_wrapped_integer);
	tcase_add_test(tc, test_error_out_of_range);
	tcase_add_test(tc, test_error_bad_enum_and_bool);
	tcase_add_test(tc, test_error_wrong_list);
	tcase_add_test(tc, test_error_missing_file);
	tcase_add_test(tc, test_error_file_is_directory);
	tcase_add_test(tc, test_error_unknown_flag);
	tcase_add_test(tc, test_errors_collected);

	CASE("text between processes");
	tcase_add_test(tc, test_text_round_trip);
	tcase_add_test(tc, test_diff);

	CASE("derived values");
	tcase_add_test(tc, test_finish_paths);
	tcase_add_test(tc, test_finish_checks);
	tcase_add_test(tc, test_finish_file_prefix);

	CASE("usage");
	tcase_add_test(tc, test_usage);
#undef CASE
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(options_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
