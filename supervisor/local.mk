# supervisor/ - promptmqd, the supervisor process.
sbin_PROGRAMS += promptmqd
promptmqd_SOURCES = \
	supervisor/supervisor.c supervisor/supervisor.h \
	supervisor/listen.c \
	supervisor/rundir.c \
	supervisor/spawn.c
promptmqd_CPPFLAGS = $(AM_CPPFLAGS) $(LIBEVENT_CFLAGS)
promptmqd_LDADD = $(PMQ_LIBS)
promptmqd_SOURCES += \
	supervisor/daemon.c \
	supervisor/privs.c

# The files workers authenticate and authorize with, read here (as root)
# and handed on.
promptmqd_SOURCES += supervisor/auth.c
promptmqd_CPPFLAGS += $(OPENSSL_CFLAGS)
promptmqd_LDADD += $(OPENSSL_LIBS) $(JANSSON_LIBS)

# The counter region and promptmq-metrics, the child that serves it.
promptmqd_SOURCES += supervisor/stats.c

# Which worker new connections go to.
promptmqd_SOURCES += supervisor/place.c

# The control socket promptmqctl talks to.
promptmqd_SOURCES += supervisor/admin.c
