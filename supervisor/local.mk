sbin_PROGRAMS += promptmqd
promptmqd_SOURCES = supervisor/supervisor.c
