# metrics/ - promptmq-metrics, the HTTP endpoint of Prometheus metrics and
# health checks: an unprivileged child that reads the counter region.
pkglibexec_PROGRAMS += promptmq-metrics
promptmq_metrics_SOURCES = metrics/metrics.c
promptmq_metrics_CPPFLAGS = $(AM_CPPFLAGS) $(LIBEVENT_CFLAGS)
promptmq_metrics_LDADD = $(PMQ_LIBS)
