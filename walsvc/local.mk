# walsvc/ - the process that owns the durable state, and its tools.

# The message log: format, storage, recovery, append/write/sync.  A
# library of its own so the walsvc process, promptmq-waldump and the
# unit tests link the same code.
noinst_LIBRARIES += libwal.a
libwal_a_SOURCES = \
	walsvc/wal.c walsvc/wal.h walsvc/wal_internal.h \
	walsvc/wal_format.c walsvc/wal_format.h \
	walsvc/wal_reader.c \
	walsvc/wal_recover.c \
	walsvc/wal_stream.c \
	walsvc/wal_storage.c walsvc/wal_storage.h \
	walsvc/wal_storage_file.c \
	walsvc/wal_storage_mem.c

# What a program needs to link the log (before PMQ_LIBS).
WAL_LIBS = libwal.a

# The walsvc process: append streams, group commit, the index.
pkglibexec_PROGRAMS += promptmq-walsvc
promptmq_walsvc_SOURCES = \
	walsvc/walsvc.c walsvc/walsvc.h \
	walsvc/stats.c \
	walsvc/admin.c \
	walsvc/append.c \
	walsvc/index.c \
	walsvc/registry.c \
	walsvc/sessions.c \
	walsvc/shares.c \
	walsvc/retained.c \
	walsvc/wills.c \
	walsvc/bodies.c \
	walsvc/compact.c
promptmq_walsvc_CPPFLAGS = $(AM_CPPFLAGS) $(LIBEVENT_CFLAGS)
promptmq_walsvc_LDADD = $(WAL_LIBS) $(PMQ_LIBS) $(BDB_LIBS)

# The operators' log dump tool.
bin_PROGRAMS += promptmq-waldump
promptmq_waldump_SOURCES = walsvc/waldump.c
promptmq_waldump_LDADD = $(WAL_LIBS) $(PMQ_LIBS)
