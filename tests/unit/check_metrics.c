/*
 * check_metrics.c - unit tests of common/metrics.c: the counter region
 * and its Prometheus text exposition.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "buf.h"
#include "harness.h"
#include "metrics.h"

static char *
render(struct metrics *m)
{
	struct buf	 b = BUF_INITIALIZER;
	char		*s;

	ck_assert_int_eq(metrics_render(m, &b), 0);
	buf_add_u8(&b, 0);
	s = strdup((const char *)b.data);
	buf_free(&b);
	return s;
}

START_TEST(test_region)
{
	size_t		 len = metrics_size(3);
	void		*mem = calloc(1, len);
	struct metrics	*m;

	ck_assert_ptr_null(metrics_of(mem, len));	/* not made yet */
	metrics_init(mem, 3);
	ck_assert_ptr_null(metrics_of(mem, len - 1));
	m = metrics_of(mem, len);
	ck_assert_ptr_nonnull(m);
	ck_assert_uint_eq(metrics_nworkers(m), 3);
	ck_assert_ptr_nonnull(metrics_worker(m, 2));
	ck_assert_ptr_null(metrics_worker(m, 3));
	/* slots do not overlap */
	metric_add(&metrics_worker(m, 0)[METRIC_W_RECEIVED], 5);
	metric_add(&metrics_worker(m, 2)[METRIC_W_RECEIVED], 7);
	ck_assert_uint_eq(metric_get(&metrics_worker(m, 1)[METRIC_W_RECEIVED]),
	    0);
	ck_assert_uint_eq(metric_get(&metrics_worker(m, 2)[METRIC_W_RECEIVED]),
	    7);
	free(mem);
}
END_TEST

START_TEST(test_exposition)
{
	size_t		 len = metrics_size(2);
	void		*mem = calloc(1, len);
	struct metrics	*m;
	char		*text, *line, *save, fams[64][96];
	int		 nfams = 0, i;

	metrics_init(mem, 2);
	m = metrics_of(mem, len);
	metric_set(&metrics_sup(m)[METRIC_SUP_WORKERS], 2);
	metric_add(&metrics_sup(m)[METRIC_SUP_RESTARTS_WALSVC], 3);
	metric_add(&metrics_sup(m)[METRIC_SUP_RESTARTS_WORKER_SIGNAL], 1);
	metric_set(&metrics_traffic(m, 1, METRICS_PACKETS_IN)[3], 40);
	metric_set(&metrics_traffic(m, 0, METRICS_BYTES_OUT)[15], 7);
	metric_set(&metrics_latency(m, 1, METRICS_PATH_STORED)[
	    metrics_latency_bucket(700)], 2);
	metric_set(&metrics_latency(m, 1, METRICS_PATH_STORED)[
	    METRICS_LATENCY_BUCKETS], 1400);
	metric_set(&metrics_worker(m, 1)[METRIC_W_DROPPED_QUEUE], 12);
	metric_set(&metrics_worker(m, 0)[METRIC_W_CONN_TLS], 4);
	metric_set(&metrics_walsvc(m)[METRIC_WAL_RETAINED], 9);
	metrics_fsync(m, 300);
	metrics_fsync(m, 100);
	metrics_fsync(m, 2000000);
	text = render(m);
	ck_assert_ptr_nonnull(strstr(text, "\npromptmq_retained_messages 9\n"));
	/* a histogram: cumulative buckets, +Inf, sum in seconds, count */
	ck_assert_ptr_nonnull(strstr(text, "# TYPE promptmq_log_fsync_seconds "
	    "histogram\n"));
	ck_assert_ptr_nonnull(strstr(text, "\npromptmq_log_fsync_seconds_bucket"
	    "{le=\"0.000100\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(text, "\npromptmq_log_fsync_seconds_bucket"
	    "{le=\"0.000500\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(text, "\npromptmq_log_fsync_seconds_bucket"
	    "{le=\"1.000000\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(text, "\npromptmq_log_fsync_seconds_bucket"
	    "{le=\"+Inf\"} 3\n"));
	ck_assert_ptr_nonnull(strstr(text, "\npromptmq_log_fsync_seconds_sum "
	    "2.000400\n"));
	ck_assert_ptr_nonnull(strstr(text, "\npromptmq_log_fsync_seconds_count "
	    "3\n"));
	ck_assert_ptr_nonnull(strstr(text, "\npromptmq_workers 2\n"));
	ck_assert_ptr_nonnull(strstr(text, "\npromptmq_child_restarts_total"
	    "{role=\"walsvc\",cause=\"exit\"} 3\n"));
	ck_assert_ptr_nonnull(strstr(text, "\npromptmq_child_restarts_total"
	    "{role=\"worker\",cause=\"signal\"} 1\n"));
	/* traffic by packet type, by worker */
	ck_assert_ptr_nonnull(strstr(text, "\npromptmq_packets_received_total"
	    "{worker=\"1\",type=\"publish\"} 40\n"));
	ck_assert_ptr_nonnull(strstr(text, "\npromptmq_sent_bytes_total"
	    "{worker=\"0\",type=\"auth\"} 7\n"));
	/* the latency histograms: by worker and path, cumulative */
	ck_assert_ptr_nonnull(strstr(text, "\npromptmq_delivery_latency_"
	    "seconds_bucket{worker=\"1\",path=\"stored\",le=\"0.000500\"} 0\n"));
	ck_assert_ptr_nonnull(strstr(text, "\npromptmq_delivery_latency_"
	    "seconds_bucket{worker=\"1\",path=\"stored\",le=\"0.001000\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(text, "\npromptmq_delivery_latency_"
	    "seconds_bucket{worker=\"1\",path=\"stored\",le=\"+Inf\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(text, "\npromptmq_delivery_latency_"
	    "seconds_sum{worker=\"1\",path=\"stored\"} 0.001400\n"));
	ck_assert_ptr_nonnull(strstr(text, "\npromptmq_delivery_latency_"
	    "seconds_count{worker=\"1\",path=\"stored\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(text, "\npromptmq_delivery_latency_"
	    "seconds_count{worker=\"0\",path=\"direct\"} 0\n"));
	ck_assert_ptr_nonnull(strstr(text, "\npromptmq_messages_dropped_total"
	    "{worker=\"1\",reason=\"queue_full\"} 12\n"));
	ck_assert_ptr_nonnull(strstr(text,
	    "\npromptmq_connections{worker=\"0\",transport=\"tls\"} 4\n"));
	ck_assert_ptr_nonnull(strstr(text, "# TYPE promptmq_connections "
	    "gauge\n"));
	ck_assert_ptr_nonnull(strstr(text, "# TYPE promptmq_messages_received_"
	    "total counter\n"));
	/* each family announced once, its samples right after */
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL,
	    "\n", &save)) {
		if (strncmp(line, "# HELP ", 7) == 0) {
			ck_assert_int_lt(nfams, 64);
			sscanf(line + 7, "%95s", fams[nfams]);
			/* a family's first line carries its help */
			ck_assert_msg(strlen(line) > 8 + strlen(fams[nfams]),
			    "no help: %s", line);
			for (i = 0; i < nfams; i++)
				ck_assert_str_ne(fams[i], fams[nfams]);
			nfams++;
		} else if (line[0] != '#') {
			ck_assert_int_gt(nfams, 0);
			ck_assert_msg(strncmp(line, fams[nfams - 1],
			    strlen(fams[nfams - 1])) == 0 && strchr("{ _",
			    line[strlen(fams[nfams - 1])]) != NULL,
			    "%s outside %s", line, fams[nfams - 1]);
		}
	}
	ck_assert_int_gt(nfams, 10);
	free(text);
	free(mem);
}
END_TEST

static Suite *
metrics_suite(void)
{
	Suite	*s = suite_create("metrics");
	TCase	*tc;

	tc = harness_tcase(s, "region", NULL, NULL);
	tcase_add_test(tc, test_region);
	tcase_add_test(tc, test_exposition);
	return s;
}

int
main(void)
{
	return harness_run(metrics_suite());
}
