# tests/bench - benchmarks, outside the test framework.
#
#   make bench [BENCH_SECONDS=s]   build and run bench_mqtt (codec throughput)
#   make backlog                   build the client of tests/bench/backlog.py
#   make tlsfanin                  build the TLS fan-in client (benchmarks.md)
#
# Built with the library's own optimisation flags (CFLAGS); bench_mqtt is
# linked against libpromptmq.a, backlog needs only libc.  Neither is part
# of `make all` nor `make check`.
BENCH_SECONDS = 0.5

EXTRA_DIST += tests/bench/bench_mqtt.c
CLEANFILES += bench_mqtt

bench_mqtt: $(top_srcdir)/tests/bench/bench_mqtt.c libpromptmq.a
	$(CC) $(AM_CPPFLAGS) -I$(top_builddir) $(WARN_CFLAGS) $(SAN_CFLAGS) \
		$(CFLAGS) -o $@ $(top_srcdir)/tests/bench/bench_mqtt.c \
		libpromptmq.a $(SAN_CFLAGS)

bench: bench_mqtt
	./bench_mqtt $(BENCH_SECONDS)

.PHONY: bench

# backlog: the MQTT client of tests/bench/backlog.py (a backlog drained
# on reconnect).
EXTRA_DIST += tests/bench/backlog.c
CLEANFILES += backlog

backlog: $(top_srcdir)/tests/bench/backlog.c
	$(CC) $(WARN_CFLAGS) $(SAN_CFLAGS) $(CFLAGS) -o $@ \
		$(top_srcdir)/tests/bench/backlog.c

# tlsfanin: fan-in over MQTT over TLS with libmosquitto (the TLS
# benchmark of docs/benchmarks.md).
EXTRA_DIST += tests/bench/tlsfanin.c
CLEANFILES += tlsfanin

tlsfanin: $(top_srcdir)/tests/bench/tlsfanin.c
	$(CC) $(WARN_CFLAGS) $(SAN_CFLAGS) $(CFLAGS) -o $@ \
		$(top_srcdir)/tests/bench/tlsfanin.c -lmosquitto
