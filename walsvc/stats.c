/*
 * stats.c - walsvc's counters and gauges in the counter region the
 * supervisor shares (common/metrics.h), for promptmq-metrics.
 *
 * Counted where they happen, in walsvc's own fields, and copied into the
 * region once a second; a walsvc that starts takes the region's counters
 * as its own, so totals never fall across a restart.  Each fdatasync of
 * the log goes into the histogram as it ends.
 */
#include "config.h"

#include <unistd.h>

#include <event2/event.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "wal.h"
#include "walsvc.h"

void
stats_set_region(struct walsvc *ws, int fd)
{
	const char	*why;
	metric_t	*v;

	if (fd == -1)
		return;
	if (ws->metrics != NULL) {
		close(fd);
		return;
	}
	if ((ws->metrics = metrics_map(fd, 1, &why)) == NULL) {
		log_warnx("counter region not taken", "error=\"%s\"", why);
		return;
	}
	v = metrics_walsvc(ws->metrics);
	ws->appends = metric_get(&v[METRIC_WAL_APPENDS]);
	ws->duplicates = metric_get(&v[METRIC_WAL_DUPLICATES]);
	ws->commits = metric_get(&v[METRIC_WAL_COMMITS]);
}

void
stats_publish(struct walsvc *ws)
{
	struct sessions_gauges	 g;
	metric_t		*v;

	if (ws->metrics == NULL)
		return;
	v = metrics_walsvc(ws->metrics);
	metric_set(&v[METRIC_WAL_APPENDS], ws->appends);
	metric_set(&v[METRIC_WAL_DUPLICATES], ws->duplicates);
	metric_set(&v[METRIC_WAL_COMMITS], ws->commits);
	metric_set(&v[METRIC_WAL_DISK_FULL], ws->disk_full != 0);
	metric_set(&v[METRIC_WAL_FAILING], ws->failing != 0);
	if (ws->wal != NULL) {
		metric_set(&v[METRIC_WAL_POSITION], wal_written_lsn(ws->wal));
		metric_set(&v[METRIC_WAL_DISK_BYTES], wal_disk_bytes(ws->wal));
		metric_set(&v[METRIC_WAL_SEGMENTS], wal_segment_count(ws->wal));
		metric_set(&v[METRIC_WAL_STORAGE_BYTES],
		    compact_storage_bytes(ws));
		metric_set(&v[METRIC_WAL_INDEX_BYTES],
		    index_disk_bytes(ws->index_dir));
	}
	metric_set(&v[METRIC_WAL_STORAGE_LIMIT], (uint64_t)config_num(
	    &ws->proc->cfg, OPT_storage_max_disk));
	if (ws->registry != NULL)
		metric_set(&v[METRIC_WAL_CLIENTS], registry_count(ws));
	if (ws->sessions != NULL) {
		sessions_gauges(ws, &g);
		metric_set(&v[METRIC_WAL_SESSIONS], g.online);
		metric_set(&v[METRIC_WAL_SESSIONS_OFFLINE], g.offline);
		metric_set(&v[METRIC_WAL_QUEUED], g.queued);
		metric_set(&v[METRIC_WAL_QUEUED_BYTES], g.queued_bytes);
	}
	if (ws->retained != NULL)
		metric_set(&v[METRIC_WAL_RETAINED], retained_count(ws));
	if (ws->wills != NULL)
		metric_set(&v[METRIC_WAL_WILLS], wills_count(ws));
}

void
stats_recovered(struct walsvc *ws, int64_t ms)
{
	if (ws->metrics != NULL)
		metric_set(&metrics_walsvc(ws->metrics)[METRIC_WAL_RECOVERY],
		    (uint64_t)(ms + 500) / 1000);
}

/* wal_sync(), timed into the histogram. */
int
stats_sync(struct walsvc *ws)
{
	int64_t	 t0 = clock_mono_us();
	int	 rv = wal_sync(ws->wal);

	if (rv >= 0 && ws->metrics != NULL)
		metrics_fsync(ws->metrics, (uint64_t)(clock_mono_us() - t0));
	return rv;
}

static void
tick(evutil_socket_t fd, short what, void *arg)
{
	stats_publish(arg);
}

void
stats_start(struct walsvc *ws)
{
	struct timeval	 second = { 1, 0 };

	if ((ws->stats_ev = event_new(ws->base, -1, EV_PERSIST, tick,
	    ws)) == NULL || event_add(ws->stats_ev, &second) == -1)
		log_warnx("counters not published", "");
	stats_publish(ws);
}
