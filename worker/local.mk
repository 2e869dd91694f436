# worker/ - promptmq-worker, the connection worker process.
pkglibexec_PROGRAMS += promptmq-worker
promptmq_worker_SOURCES = \
	worker/worker.c worker/worker.h \
	worker/accept.c \
	worker/conn.c \
	worker/peers.c
promptmq_worker_CPPFLAGS = $(AM_CPPFLAGS) $(LIBEVENT_CFLAGS)
promptmq_worker_LDADD = $(PMQ_LIBS)
promptmq_worker_SOURCES += \
	worker/connect.c \
	worker/publish.c worker/deliver.c worker/session.c \
	worker/route.c \
	worker/share.c \
	worker/subscribe.c \
	worker/stats.c \
	worker/admin.c \
	worker/sys.c

# Passwords are checked on a thread of the worker's own (OpenSSL's PBKDF2).
promptmq_worker_SOURCES += worker/auth.c
promptmq_worker_CPPFLAGS += $(OPENSSL_CFLAGS)
promptmq_worker_LDADD += $(OPENSSL_LIBS) $(JANSSON_LIBS) -lpthread

# MQTT over TLS, on the connection's own descriptor (common/tls.c makes
# the context).
promptmq_worker_SOURCES += worker/tls.c

# MQTT over WebSocket: libwebsockets on a thread, relayed over a
# socketpair per client.
promptmq_worker_SOURCES += worker/ws.c
promptmq_worker_CPPFLAGS += $(LWS_CFLAGS)
promptmq_worker_LDADD += $(LWS_LIBS)

# $SYS load averages (exp).
promptmq_worker_LDADD += -lm
