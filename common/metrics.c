/*
 * metrics.c - the shared counter region and its exposition (see
 * metrics.h).
 */
#include "config.h"

#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "metrics.h"

#define METRICS_MAGIC	0x706d6574u	/* "pmet" */

struct metrics {
	uint32_t	 magic;
	uint32_t	 nworkers;
	uint32_t	 nsup, nworker;	/* the tables' sizes it was made for */
	uint32_t	 nwalsvc, pad;
	metric_t	 sup[METRIC_SUP_N];
	metric_t	 walsvc[METRIC_WALSVC_N];
	metric_t	 fsync[METRICS_FSYNC_BUCKETS];	/* not cumulative */
	metric_t	 fsync_sum_us;
	metric_t	 workers[];	/* nworkers × METRIC_WORKER_N, then
					   nworkers × METRICS_PATHS ×
					   METRICS_LATENCY_VALUES, then
					   nworkers × METRICS_TRAFFIC ×
					   METRICS_TYPES */
};

struct series {
	const char	*family, *labels, *help;
	int		 type;
};

#define METRIC_ROW(id, family, labels, type, help)	\
	{ family, labels, help, type },
static const struct series sup_series[] = { METRICS_SUP(METRIC_ROW) };
static const struct series worker_series[] = { METRICS_WORKER(METRIC_ROW) };
static const struct series walsvc_series[] = { METRICS_WALSVC(METRIC_ROW) };
static const uint64_t fsync_bounds[] = METRICS_FSYNC_BOUNDS_US;
static const uint64_t latency_bounds[] = METRICS_LATENCY_BOUNDS_US;
static const char *const path_names[METRICS_PATHS] = { "direct", "stored" };

_Static_assert(sizeof(fsync_bounds) / sizeof(fsync_bounds[0]) + 1 ==
    METRICS_FSYNC_BUCKETS, "METRICS_FSYNC_BUCKETS is the bounds and +Inf");
_Static_assert(sizeof(latency_bounds) / sizeof(latency_bounds[0]) + 1 ==
    METRICS_LATENCY_BUCKETS, "METRICS_LATENCY_BUCKETS is the bounds and +Inf");
#undef METRIC_ROW

size_t
metrics_size(uint32_t nworkers)
{
	return sizeof(struct metrics) + (size_t)nworkers * (METRIC_WORKER_N +
	    METRICS_PATHS * METRICS_LATENCY_VALUES + METRICS_TRAFFIC *
	    METRICS_TYPES) * sizeof(metric_t);
}

void
metrics_init(void *mem, uint32_t nworkers)
{
	struct metrics	*m = mem;

	m->nworkers = nworkers;
	m->nsup = METRIC_SUP_N;
	m->nworker = METRIC_WORKER_N;
	m->nwalsvc = METRIC_WALSVC_N;
	m->magic = METRICS_MAGIC;
}

struct metrics *
metrics_of(void *mem, size_t len)
{
	struct metrics	*m = mem;

	if (mem == NULL || len < sizeof(*m) || m->magic != METRICS_MAGIC ||
	    m->nsup != METRIC_SUP_N || m->nworker != METRIC_WORKER_N ||
	    m->nwalsvc != METRIC_WALSVC_N ||
	    len < metrics_size(m->nworkers))
		return NULL;
	return m;
}

struct metrics *
metrics_map(int fd, int writable, const char **why)
{
	struct metrics	*m;
	struct stat	 st;
	void		*mem;

	if (fstat(fd, &st) == -1 || (mem = mmap(NULL, (size_t)st.st_size,
	    writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd,
	    0)) == MAP_FAILED) {
		*why = strerror(errno);
		close(fd);
		return NULL;
	}
	close(fd);
	if ((m = metrics_of(mem, (size_t)st.st_size)) == NULL) {
		*why = "not a counter region of this version";
		munmap(mem, (size_t)st.st_size);
	}
	return m;
}

uint32_t
metrics_nworkers(const struct metrics *m)
{
	return m->nworkers;
}

metric_t *
metrics_sup(struct metrics *m)
{
	return m->sup;
}

metric_t *
metrics_walsvc(struct metrics *m)
{
	return m->walsvc;
}

/* The first bucket of `bounds` (n, +Inf left out) that holds `us`. */
static size_t
bucket_of(const uint64_t *bounds, size_t n, uint64_t us)
{
	size_t	 i;

	for (i = 0; i < n && us > bounds[i]; i++)
		;
	return i;
}

void
metrics_fsync(struct metrics *m, uint64_t us)
{
	metric_add(&m->fsync[bucket_of(fsync_bounds, METRICS_FSYNC_BUCKETS - 1,
	    us)], 1);
	metric_add(&m->fsync_sum_us, us);
}

metric_t *
metrics_traffic(struct metrics *m, uint32_t slot, int which)
{
	if (slot >= m->nworkers || which < 0 || which >= METRICS_TRAFFIC)
		return NULL;
	return m->workers + (size_t)m->nworkers * (METRIC_WORKER_N +
	    METRICS_PATHS * METRICS_LATENCY_VALUES) + ((size_t)slot *
	    METRICS_TRAFFIC + (size_t)which) * METRICS_TYPES;
}

size_t
metrics_latency_bucket(uint64_t us)
{
	return bucket_of(latency_bounds, METRICS_LATENCY_BUCKETS - 1, us);
}

metric_t *
metrics_latency(struct metrics *m, uint32_t slot, int path)
{
	if (slot >= m->nworkers || path < 0 || path >= METRICS_PATHS)
		return NULL;
	return m->workers + (size_t)m->nworkers * METRIC_WORKER_N +
	    ((size_t)slot * METRICS_PATHS + (size_t)path) *
	    METRICS_LATENCY_VALUES;
}

metric_t *
metrics_worker(struct metrics *m, uint32_t slot)
{
	return slot < m->nworkers ? m->workers + (size_t)slot *
	    METRIC_WORKER_N : NULL;
}

static void
header(struct buf *b, const struct series *s)
{
	char	 line[512];
	int	 n;

	n = snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n",
	    s->family, s->help, s->family, s->type == METRIC_GAUGE ?
	    "gauge" : "counter");
	buf_add(b, line, (size_t)n < sizeof(line) ? (size_t)n :
	    sizeof(line) - 1);
}

/* One series; `worker` < 0: none. */
static void
sample(struct buf *b, const struct series *s, int worker, uint64_t v)
{
	char	 line[512], num[32], sep[2] = { 0, 0 };
	int	 n;

	if (s->type == METRIC_SECONDS)
		snprintf(num, sizeof(num), "%" PRIu64 ".%06" PRIu64,
		    v / 1000000, v % 1000000);
	else
		snprintf(num, sizeof(num), "%" PRIu64, v);
	if (worker >= 0) {
		sep[0] = *s->labels ? ',' : '\0';
		n = snprintf(line, sizeof(line), "%s{worker=\"%d\"%s%s} %s\n",
		    s->family, worker, sep, s->labels, num);
	} else if (*s->labels)
		n = snprintf(line, sizeof(line), "%s{%s} %s\n", s->family,
		    s->labels, num);
	else
		n = snprintf(line, sizeof(line), "%s %s\n", s->family, num);
	buf_add(b, line, (size_t)n < sizeof(line) ? (size_t)n :
	    sizeof(line) - 1);
}

/* Series without a worker label, a header before each family. */
static void
plain(struct buf *out, const struct series *s, const metric_t *v, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		if (i == 0 || strcmp(s[i].family, s[i - 1].family) != 0)
			header(out, &s[i]);
		sample(out, &s[i], -1, metric_get(&v[i]));
	}
}

/*
 * A histogram's series: `buckets` (nb, not cumulative, the last +Inf)
 * with upper `bounds` in microseconds, then its sum and count; `labels`
 * ("" or `a="x",b="y"`) go on every series, before le.
 */
static void
histogram(struct buf *b, const char *family, const char *labels,
    const uint64_t *bounds, const metric_t *buckets, size_t nb,
    uint64_t sum)
{
	char		 line[256], lead[128], braced[128];
	uint64_t	 count = 0;
	size_t		 i;
	int		 n;

	snprintf(lead, sizeof(lead), "%s%s", labels, *labels ? "," : "");
	snprintf(braced, sizeof(braced), "%s%s%s", *labels ? "{" : "", labels,
	    *labels ? "}" : "");
	for (i = 0; i < nb; i++) {
		count += metric_get(&buckets[i]);
		if (i < nb - 1)
			n = snprintf(line, sizeof(line), "%s_bucket{%sle=\"%"
			    PRIu64 ".%06" PRIu64 "\"} %" PRIu64 "\n", family,
			    lead, bounds[i] / 1000000, bounds[i] % 1000000,
			    count);
		else
			n = snprintf(line, sizeof(line), "%s_bucket{%sle="
			    "\"+Inf\"} %" PRIu64 "\n", family, lead, count);
		buf_add(b, line, (size_t)n);
	}
	n = snprintf(line, sizeof(line), "%s_sum%s %" PRIu64 ".%06" PRIu64
	    "\n%s_count%s %" PRIu64 "\n", family, braced, sum / 1000000,
	    sum % 1000000, family, braced, count);
	buf_add(b, line, (size_t)n);
}

static void
histogram_header(struct buf *b, const char *family, const char *help)
{
	char	 line[512];
	int	 n;

	n = snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s histogram\n",
	    family, help, family);
	buf_add(b, line, (size_t)n);
}

/* The traffic families, in METRICS_PACKETS_IN.. order. */
static const struct {
	const char	*family, *help;
} traffic_families[METRICS_TRAFFIC] = {
	{ "promptmq_packets_received_total",
	    "MQTT packets received from clients, by type." },
	{ "promptmq_packets_sent_total",
	    "MQTT packets sent to clients, by type." },
	{ "promptmq_received_bytes_total", "MQTT bytes received from "
	    "clients (whole packets, after TLS and WebSocket framing), by "
	    "packet type." },
	{ "promptmq_sent_bytes_total", "MQTT bytes sent to clients (whole "
	    "packets, before TLS and WebSocket framing), by packet type." },
};

static const char *const type_names[METRICS_TYPES] = {
	"", "connect", "connack", "publish", "puback", "pubrec", "pubrel",
	"pubcomp", "subscribe", "suback", "unsubscribe", "unsuback",
	"pingreq", "pingresp", "disconnect", "auth",
};

static void
traffic(struct buf *b, const struct metrics *m)
{
	char		 line[256];
	const metric_t	*v;
	uint32_t	 w;
	int		 which, t, n;

	for (which = 0; which < METRICS_TRAFFIC; which++) {
		n = snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s "
		    "counter\n", traffic_families[which].family,
		    traffic_families[which].help,
		    traffic_families[which].family);
		buf_add(b, line, (size_t)n);
		for (w = 0; w < m->nworkers; w++) {
			v = metrics_traffic((struct metrics *)m, w, which);
			for (t = 1; t < METRICS_TYPES; t++) {
				n = snprintf(line, sizeof(line), "%s{worker="
				    "\"%u\",type=\"%s\"} %" PRIu64 "\n",
				    traffic_families[which].family, w,
				    type_names[t], metric_get(&v[t]));
				buf_add(b, line, (size_t)n);
			}
		}
	}
}

#define FSYNC_FAMILY	"promptmq_log_fsync_seconds"
#define LATENCY_FAMILY	"promptmq_delivery_latency_seconds"

static void
latency_histograms(struct buf *b, const struct metrics *m)
{
	char		 labels[64];
	const metric_t	*v;
	uint32_t	 w;
	int		 path;

	histogram_header(b, LATENCY_FAMILY, "From a QoS 1 message's PUBLISH "
	    "read from its publisher to its PUBLISH written to a subscriber, "
	    "by path: direct (routed by the workers, to clean sessions) or "
	    "stored (through the log, to stored sessions).");
	for (w = 0; w < m->nworkers; w++)
		for (path = 0; path < METRICS_PATHS; path++) {
			v = metrics_latency((struct metrics *)m, w, path);
			snprintf(labels, sizeof(labels), "worker=\"%u\","
			    "path=\"%s\"", w, path_names[path]);
			histogram(b, LATENCY_FAMILY, labels, latency_bounds, v,
			    METRICS_LATENCY_BUCKETS, metric_get(
			    &v[METRICS_LATENCY_BUCKETS]));
		}
}

int
metrics_render(const struct metrics *m, struct buf *out)
{
	size_t		 i;
	uint32_t	 w;

	plain(out, sup_series, m->sup, METRIC_SUP_N);
	plain(out, walsvc_series, m->walsvc, METRIC_WALSVC_N);
	histogram_header(out, FSYNC_FAMILY, "Time of one fdatasync of the "
	    "message log.");
	histogram(out, FSYNC_FAMILY, "", fsync_bounds, m->fsync,
	    METRICS_FSYNC_BUCKETS, metric_get(&m->fsync_sum_us));
	/* a family's series together: every worker, then the next labels */
	for (i = 0; i < METRIC_WORKER_N; i++) {
		if (i == 0 || strcmp(worker_series[i].family,
		    worker_series[i - 1].family) != 0)
			header(out, &worker_series[i]);
		for (w = 0; w < m->nworkers; w++)
			sample(out, &worker_series[i], (int)w, metric_get(
			    &m->workers[(size_t)w * METRIC_WORKER_N + i]));
	}
	traffic(out, m);
	latency_histograms(out, m);
	return buf_failed(out) ? -1 : 0;
}
