# common/ - the convenience library every process links.
noinst_LIBRARIES += libpromptmq.a
libpromptmq_a_CPPFLAGS = $(AM_CPPFLAGS) $(LIBEVENT_CFLAGS) $(LIBCONFIG_CFLAGS) \
	$(OPENSSL_CFLAGS) $(JANSSON_CFLAGS)
libpromptmq_a_SOURCES = \
	common/buf.c common/buf.h \
	common/log.c common/log.h \
	common/ipc.c common/ipc.h

# What a program needs to link the library.
PMQ_LIBS = libpromptmq.a $(LIBEVENT_LIBS) $(NNG_LIBS) $(LIBCONFIG_LIBS)
libpromptmq_a_SOURCES += \
	common/ipc_link.c common/ipc_link.h \
	common/adm.c common/adm.h \
	common/ctl.c common/ctl.h \
	common/proc.c common/proc.h \
	common/walc.c common/walc.h \
	common/walrec.c common/walrec.h \
	common/idmap.c common/idmap.h \
	common/addr.c common/addr.h \
	common/clock.h \
	common/hash.h \
	common/options.c common/options.h common/options.def \
	common/options_internal.h common/options_file.c common/options_load.c

# CRC-32C, the checksum of the message log (walsvc) and its dump tool.
libpromptmq_a_SOURCES += common/crc32c.c common/crc32c.h

# The MQTT codec and topic validation.
libpromptmq_a_SOURCES += \
	common/utf8.c common/utf8.h \
	common/topic.c common/topic.h \
	common/mqtt.h common/mqtt_private.h \
	common/mqtt_decode.c common/mqtt_encode.c \
	common/mqtt_props.c common/mqtt_reason.c

# The subscription table of a worker: local subscribers, remote interest.
libpromptmq_a_SOURCES += common/sub.c common/sub.h

# Mosquitto-compatible password files; a program that uses them links
# OpenSSL's libcrypto too ($(OPENSSL_LIBS)).
libpromptmq_a_SOURCES += common/passwd.c common/passwd.h

# SCRAM-SHA-256 verifiers and exchanges (MQTT 5 enhanced authentication).
libpromptmq_a_SOURCES += common/scram.c common/scram.h

# Failed logins by address, in memory the workers share.
libpromptmq_a_SOURCES += common/failtab.c common/failtab.h

# The counters every process writes and promptmq-metrics renders.
libpromptmq_a_SOURCES += common/metrics.c common/metrics.h

# MQTT over TLS: the bundle of certificate, key and CAs, and the
# context made from it (supervisor and workers; they link OpenSSL).
libpromptmq_a_SOURCES += common/tls.c common/tls.h

# JSON Web Tokens as passwords (auth.jwt-*): OpenSSL and jansson.
libpromptmq_a_SOURCES += common/jwt.c common/jwt.h

# Mosquitto-compatible access control lists.
libpromptmq_a_SOURCES += common/acl.c common/acl.h common/lines.h
