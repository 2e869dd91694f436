# tools/ - the operators' command-line tools (besides promptmq-waldump,
# which lives with the log it reads).

# Users of a password file, in mosquitto_passwd's format.
bin_PROGRAMS += promptmq-passwd
promptmq_passwd_SOURCES = tools/passwd.c
promptmq_passwd_CPPFLAGS = $(AM_CPPFLAGS) $(OPENSSL_CFLAGS)
promptmq_passwd_LDADD = $(PMQ_LIBS) $(OPENSSL_LIBS)

# Questions and orders to the running broker, over its control socket.
sbin_PROGRAMS += promptmqctl
promptmqctl_SOURCES = tools/promptmqctl.c
promptmqctl_CPPFLAGS = $(AM_CPPFLAGS) $(JANSSON_CFLAGS)
promptmqctl_LDADD = $(PMQ_LIBS) $(JANSSON_LIBS)
