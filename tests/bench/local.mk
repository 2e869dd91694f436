# tests/bench - codec throughput, outside the test framework.
#
#   make bench [BENCH_SECONDS=s]   build and run bench_mqtt
#
# Built with the library's own optimisation flags (CFLAGS) and linked
# against libpromptmq.a; not part of `make all` nor `make check`.
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
