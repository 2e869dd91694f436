# common/ - the convenience library every process links.
noinst_LIBRARIES += libpromptmq.a
libpromptmq_a_CPPFLAGS = $(AM_CPPFLAGS) $(LIBEVENT_CFLAGS) $(LIBCONFIG_CFLAGS)
libpromptmq_a_SOURCES = \
	common/buf.c common/buf.h \
	common/log.c common/log.h \
	common/ipc.c common/ipc.h

# What a program needs to link the library.
PMQ_LIBS = libpromptmq.a $(LIBEVENT_LIBS) $(NNG_LIBS) $(LIBCONFIG_LIBS)

# CRC-32C, the checksum of the message log (walsvc) and its dump tool.
libpromptmq_a_SOURCES += common/crc32c.c common/crc32c.h
