# tests/ - Check unit suites (tests/unit) and integration tests against
# the real daemon (tests/integration).
TEST_EXTENSIONS = .py
PY_LOG_COMPILER = $(PYTHON3)
AM_TESTS_ENVIRONMENT = \
	PMQ_BUILDDIR='$(abs_top_builddir)'; export PMQ_BUILDDIR; \
	PMQ_SRCDIR='$(abs_top_srcdir)'; export PMQ_SRCDIR;

CHECK_TEST_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
CHECK_TEST_LIBS = $(PMQ_LIBS) $(CHECK_LIBS)

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
