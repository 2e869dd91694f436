# tests/ - Check unit suites (tests/unit) and integration tests against
# the real daemon (tests/integration).
TEST_EXTENSIONS = .py
PY_LOG_COMPILER = $(PYTHON3)
# Check kills a test that runs longer than CK_DEFAULT_TIMEOUT (4s unless
# set): a bound for hangs, which must leave a loaded machine running a
# sanitizer build ample room.  Waits inside the suites have their own,
# generous limits.
AM_TESTS_ENVIRONMENT = \
	PMQ_BUILDDIR='$(abs_top_builddir)'; export PMQ_BUILDDIR; \
	PMQ_SRCDIR='$(abs_top_srcdir)'; export PMQ_SRCDIR; \
	CK_DEFAULT_TIMEOUT=$${CK_DEFAULT_TIMEOUT:-60}; export CK_DEFAULT_TIMEOUT; \
	LSAN_OPTIONS="suppressions=$(abs_top_srcdir)/tests/unit/lsan.supp:print_suppressions=0$${LSAN_OPTIONS:+:$$LSAN_OPTIONS}"; \
	export LSAN_OPTIONS;

CHECK_TEST_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
CHECK_TEST_LIBS = $(PMQ_LIBS) $(CHECK_LIBS)

# Tools the integration tests and benchmarks drive.
noinst_PROGRAMS += walappend
walappend_SOURCES = tests/tools/walappend.c
walappend_CPPFLAGS = $(AM_CPPFLAGS) $(LIBEVENT_CFLAGS)
walappend_LDADD = $(PMQ_LIBS)

# Integration tests: the real daemon, real clients, free ports.  The
# mqtt_* tests run against Mosquitto instead with PMQ_TARGET=mosquitto
# (those that need promptmqd's processes are then skipped).
INTEGRATION_TESTS = \
	tests/integration/startup_errors.py \
	tests/integration/passwd_tool.py \
	tests/integration/auth_password.py \
	tests/integration/auth_scram.py \
	tests/integration/metrics.py \
	tests/integration/promptmqctl.py \
	tests/integration/sys_topics.py \
	tests/integration/auth_acl.py \
	tests/integration/tls.py \
	tests/integration/websocket.py \
	tests/integration/auth_jwt.py \
	tests/integration/auth_flood.py \
	tests/integration/process_tree.py \
	tests/integration/wal_durability.py \
	tests/integration/mqtt_basic.py \
	tests/integration/mqtt_malformed.py \
	tests/integration/mqtt_takeover.py \
	tests/integration/mqtt_sessions.py \
	tests/integration/mqtt_qos2.py \
	tests/integration/mqtt_retained.py \
	tests/integration/mqtt_wills.py \
	tests/integration/mqtt_expiry.py \
	tests/integration/mqtt_topic_alias.py \
	tests/integration/mqtt_sub_ids.py \
	tests/integration/mqtt_topic_levels.py \
	tests/integration/mqtt_payload_format.py \
	tests/integration/mqtt_response_info.py \
	tests/integration/mqtt_auth_method.py \
	tests/integration/mqtt_queue_qos0.py \
	tests/integration/mqtt_no_subscribers.py \
	tests/integration/mqtt_server_limits.py \
	tests/integration/differential.py \
	tests/integration/session_fuzz_smoke.py \
	tests/integration/storage_compaction.py \
	tests/integration/storage_faults.py \
	tests/integration/walsvc_outage.py \
	tests/integration/walsvc_restart_sync.py \
	tests/integration/walsvc_relink.py \
	tests/integration/mqtt_cross_worker.py \
	tests/integration/mqtt_shared.py \
	tests/integration/mqtt_worker_kill.py \
	tests/integration/placement.py \
	tests/integration/mqtt_walsvc_kill.py \
	tests/integration/kill9_client.py \
	tests/integration/mqtt_kill9.py \
	tests/integration/mqtt_limits.py \
	tests/integration/daemon_reload.py \
	tests/integration/daemon_bind_reload.py \
	tests/integration/daemon_signals.py \
	tests/integration/daemon_supervision.py \
	tests/integration/daemon_detach.py \
	tests/integration/daemon_privileges.py \
	tests/integration/daemon_upgrade.py \
	tests/integration/daemon_syslog.py \
	tests/integration/init_script.py
TESTS += $(INTEGRATION_TESTS)
EXTRA_DIST += tests/integration/pmq.py tests/integration/kill9lib.py \
	tests/integration/differential_cases.py \
	tests/integration/certs.py tests/integration/mqttjs_client.js \
	$(INTEGRATION_TESTS)

check_PROGRAMS += tests/unit/check_options
TESTS += tests/unit/check_options
UNIT_TESTS += tests/unit/check_options
tests_unit_check_options_SOURCES = tests/unit/check_options.c
tests_unit_check_options_CPPFLAGS = $(AM_CPPFLAGS) \
	-DTOP_SRCDIR='"$(abs_top_srcdir)"'
tests_unit_check_options_CFLAGS = $(CHECK_TEST_CFLAGS)
tests_unit_check_options_LDADD = $(CHECK_TEST_LIBS)
# CRC-32C (common/crc32c.c).
check_PROGRAMS += tests/unit/check_crc32c
tests_unit_check_crc32c_SOURCES = tests/unit/check_crc32c.c
tests_unit_check_crc32c_CFLAGS = $(CHECK_TEST_CFLAGS)
tests_unit_check_crc32c_LDADD = $(CHECK_TEST_LIBS)
TESTS += tests/unit/check_crc32c
UNIT_TESTS += tests/unit/check_crc32c

# The message log (walsvc/wal*.c): its storage, the log, the dump tool.
WAL_TEST_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/walsvc
WAL_TEST_LIBS = $(WAL_LIBS) $(CHECK_TEST_LIBS)

check_PROGRAMS += tests/unit/check_wal_storage
tests_unit_check_wal_storage_SOURCES = tests/unit/check_wal_storage.c
tests_unit_check_wal_storage_CPPFLAGS = $(WAL_TEST_CPPFLAGS)
tests_unit_check_wal_storage_CFLAGS = $(CHECK_TEST_CFLAGS)
tests_unit_check_wal_storage_LDADD = $(WAL_TEST_LIBS)
TESTS += tests/unit/check_wal_storage
UNIT_TESTS += tests/unit/check_wal_storage

check_PROGRAMS += tests/unit/check_wal
tests_unit_check_wal_SOURCES = tests/unit/check_wal.c
tests_unit_check_wal_CPPFLAGS = $(WAL_TEST_CPPFLAGS)
tests_unit_check_wal_CFLAGS = $(CHECK_TEST_CFLAGS)
tests_unit_check_wal_LDADD = $(WAL_TEST_LIBS)
TESTS += tests/unit/check_wal
UNIT_TESTS += tests/unit/check_wal

# promptmq-waldump on logs with known contents written by walgen.
check_PROGRAMS += tests/tools/walgen
tests_tools_walgen_SOURCES = tests/tools/walgen.c
tests_tools_walgen_CPPFLAGS = $(WAL_TEST_CPPFLAGS)
tests_tools_walgen_LDADD = $(WAL_LIBS) $(PMQ_LIBS)
dist_check_SCRIPTS += tests/unit/waldump.test
TESTS += tests/unit/waldump.test
UNIT_TESTS += tests/unit/waldump.test

# Group commit throughput on a real disk; built on demand only
# (make tests/tools/walbench).
EXTRA_PROGRAMS += tests/tools/walbench
tests_tools_walbench_SOURCES = tests/tools/walbench.c
tests_tools_walbench_CPPFLAGS = $(WAL_TEST_CPPFLAGS)
tests_tools_walbench_LDADD = $(WAL_LIBS) $(PMQ_LIBS)

# The IPC envelope's throughput between two processes (benchmarks).
EXTRA_PROGRAMS += tests/tools/ipcbench
tests_tools_ipcbench_SOURCES = tests/tools/ipcbench.c
tests_tools_ipcbench_CPPFLAGS = $(AM_CPPFLAGS) $(LIBEVENT_CFLAGS)
tests_tools_ipcbench_LDADD = $(PMQ_LIBS)
EXTRA_DIST += tests/unit/lsan.supp
EXTRA_DIST += tests/bench/platform.py tests/bench/kill9.py \
	tests/bench/backlog.py tests/bench/sessions.py tests/bench/recovery.py \
	tests/bench/loadgen.py

# MQTT codec (common/mqtt*, utf8, topic): Check suites; the fuzz target
# and the benchmark have their own make targets (tests/fuzz, tests/bench).
check_PROGRAMS += check_utf8 check_topic check_mqtt
TESTS += check_utf8 check_topic check_mqtt
UNIT_TESTS += check_utf8 check_topic check_mqtt
check_utf8_SOURCES = tests/unit/check_utf8.c
check_utf8_CFLAGS = $(CHECK_TEST_CFLAGS)
check_utf8_LDADD = $(CHECK_TEST_LIBS)
check_topic_SOURCES = tests/unit/check_topic.c
check_topic_CFLAGS = $(CHECK_TEST_CFLAGS)
check_topic_LDADD = $(CHECK_TEST_LIBS)
check_mqtt_SOURCES = tests/unit/check_mqtt.c tests/unit/check_mqtt.h \
	tests/unit/check_mqtt_props.c tests/unit/check_mqtt_encode.c \
	tests/unit/mqtt_testlib.c tests/unit/mqtt_testlib.h
check_mqtt_CFLAGS = $(CHECK_TEST_CFLAGS)
check_mqtt_LDADD = $(CHECK_TEST_LIBS)

include tests/fuzz/local.mk
include tests/bench/local.mk

# The subscription table (common/sub.c).  malloc, calloc and realloc are
# wrapped by the linker so the suite can make allocations fail.
check_PROGRAMS += tests/unit/check_sub
TESTS += tests/unit/check_sub
UNIT_TESTS += tests/unit/check_sub
tests_unit_check_sub_SOURCES = tests/unit/check_sub.c
tests_unit_check_sub_CFLAGS = $(CHECK_TEST_CFLAGS)
tests_unit_check_sub_LDFLAGS = $(AM_LDFLAGS) -Wl,--wrap=malloc \
	-Wl,--wrap=calloc -Wl,--wrap=realloc
tests_unit_check_sub_LDADD = $(CHECK_TEST_LIBS)

# Matching speed and memory per subscription of the subscription table;
# built on demand only (make tests/tools/subbench).
EXTRA_PROGRAMS += tests/tools/subbench
tests_tools_subbench_SOURCES = tests/tools/subbench.c
tests_tools_subbench_LDADD = $(PMQ_LIBS)
# The common modules (common/): buffer, IPC envelope, nng links, control
# channel, append-stream client, logging.  The suites share a harness:
# scratch directories and bounded waits on an event loop.
check_LIBRARIES = tests/unit/libharness.a
tests_unit_libharness_a_SOURCES = tests/unit/harness.c tests/unit/harness.h
tests_unit_libharness_a_CPPFLAGS = $(AM_CPPFLAGS) $(LIBEVENT_CFLAGS)
tests_unit_libharness_a_CFLAGS = $(CHECK_TEST_CFLAGS)
HARNESS_TEST_LIBS = tests/unit/libharness.a $(CHECK_TEST_LIBS)

check_PROGRAMS += tests/unit/check_buf
tests_unit_check_buf_SOURCES = tests/unit/check_buf.c
tests_unit_check_buf_CFLAGS = $(CHECK_TEST_CFLAGS)
tests_unit_check_buf_LDADD = $(HARNESS_TEST_LIBS)
TESTS += tests/unit/check_buf
UNIT_TESTS += tests/unit/check_buf

check_PROGRAMS += tests/unit/check_ipc
tests_unit_check_ipc_SOURCES = tests/unit/check_ipc.c
tests_unit_check_ipc_CFLAGS = $(CHECK_TEST_CFLAGS)
tests_unit_check_ipc_LDADD = $(HARNESS_TEST_LIBS)
TESTS += tests/unit/check_ipc
UNIT_TESTS += tests/unit/check_ipc

check_PROGRAMS += tests/unit/check_ipc_link
tests_unit_check_ipc_link_SOURCES = tests/unit/check_ipc_link.c
tests_unit_check_ipc_link_CPPFLAGS = $(AM_CPPFLAGS) $(LIBEVENT_CFLAGS)
tests_unit_check_ipc_link_CFLAGS = $(CHECK_TEST_CFLAGS)
tests_unit_check_ipc_link_LDADD = $(HARNESS_TEST_LIBS)
TESTS += tests/unit/check_ipc_link
UNIT_TESTS += tests/unit/check_ipc_link

check_PROGRAMS += tests/unit/check_ctl
tests_unit_check_ctl_SOURCES = tests/unit/check_ctl.c
tests_unit_check_ctl_CPPFLAGS = $(AM_CPPFLAGS) $(LIBEVENT_CFLAGS)
tests_unit_check_ctl_CFLAGS = $(CHECK_TEST_CFLAGS)
tests_unit_check_ctl_LDADD = $(HARNESS_TEST_LIBS)
TESTS += tests/unit/check_ctl
UNIT_TESTS += tests/unit/check_ctl

check_PROGRAMS += tests/unit/check_walc
tests_unit_check_walc_SOURCES = tests/unit/check_walc.c
tests_unit_check_walc_CPPFLAGS = $(AM_CPPFLAGS) $(LIBEVENT_CFLAGS)
tests_unit_check_walc_CFLAGS = $(CHECK_TEST_CFLAGS)
tests_unit_check_walc_LDADD = $(HARNESS_TEST_LIBS)
TESTS += tests/unit/check_walc
UNIT_TESTS += tests/unit/check_walc

check_PROGRAMS += tests/unit/check_log
tests_unit_check_log_SOURCES = tests/unit/check_log.c
tests_unit_check_log_CFLAGS = $(CHECK_TEST_CFLAGS)
tests_unit_check_log_LDADD = $(HARNESS_TEST_LIBS)
TESTS += tests/unit/check_log
UNIT_TESTS += tests/unit/check_log

# The log record payloads (common/walrec.c).
check_PROGRAMS += tests/unit/check_acl
tests_unit_check_acl_SOURCES = tests/unit/check_acl.c
tests_unit_check_acl_CPPFLAGS = $(AM_CPPFLAGS) $(LIBEVENT_CFLAGS)
tests_unit_check_acl_CFLAGS = $(CHECK_TEST_CFLAGS)
tests_unit_check_acl_LDADD = $(HARNESS_TEST_LIBS)
TESTS += tests/unit/check_acl
UNIT_TESTS += tests/unit/check_acl

check_PROGRAMS += tests/unit/check_passwd
tests_unit_check_passwd_SOURCES = tests/unit/check_passwd.c
tests_unit_check_passwd_CPPFLAGS = $(AM_CPPFLAGS) $(LIBEVENT_CFLAGS)
tests_unit_check_passwd_CFLAGS = $(CHECK_TEST_CFLAGS)
tests_unit_check_passwd_LDADD = $(HARNESS_TEST_LIBS) $(OPENSSL_LIBS)
TESTS += tests/unit/check_passwd
UNIT_TESTS += tests/unit/check_passwd

check_PROGRAMS += tests/unit/check_scram
tests_unit_check_scram_SOURCES = tests/unit/check_scram.c
tests_unit_check_scram_CPPFLAGS = $(AM_CPPFLAGS) $(LIBEVENT_CFLAGS)
tests_unit_check_scram_CFLAGS = $(CHECK_TEST_CFLAGS)
tests_unit_check_scram_LDADD = $(HARNESS_TEST_LIBS) $(OPENSSL_LIBS)
TESTS += tests/unit/check_scram
UNIT_TESTS += tests/unit/check_scram

check_PROGRAMS += tests/unit/check_failtab
tests_unit_check_failtab_SOURCES = tests/unit/check_failtab.c
tests_unit_check_failtab_CPPFLAGS = $(AM_CPPFLAGS) $(LIBEVENT_CFLAGS)
tests_unit_check_failtab_CFLAGS = $(CHECK_TEST_CFLAGS)
tests_unit_check_failtab_LDADD = $(HARNESS_TEST_LIBS)
TESTS += tests/unit/check_failtab
UNIT_TESTS += tests/unit/check_failtab

check_PROGRAMS += tests/unit/check_metrics
tests_unit_check_metrics_SOURCES = tests/unit/check_metrics.c
tests_unit_check_metrics_CPPFLAGS = $(AM_CPPFLAGS) $(LIBEVENT_CFLAGS)
tests_unit_check_metrics_CFLAGS = $(CHECK_TEST_CFLAGS)
tests_unit_check_metrics_LDADD = $(HARNESS_TEST_LIBS)
TESTS += tests/unit/check_metrics
UNIT_TESTS += tests/unit/check_metrics

check_PROGRAMS += tests/unit/check_walrec
tests_unit_check_walrec_SOURCES = tests/unit/check_walrec.c
tests_unit_check_walrec_CFLAGS = $(CHECK_TEST_CFLAGS)
tests_unit_check_walrec_LDADD = $(CHECK_TEST_LIBS)
TESTS += tests/unit/check_walrec
UNIT_TESTS += tests/unit/check_walrec
