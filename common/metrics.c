/*
 * metrics.c - the shared counter region and its exposition (see
 * metrics.h).
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "metrics.h"

#define METRICS_MAGIC	0x706d6574u	/* "pmet" */

struct metrics {
	uint32_t	 magic;
	uint32_t	 nworkers;
	uint32_t	 nsup, nworker;	/* the tables' sizes it was made for */
	metric_t	 sup[METRIC_SUP_N];
	metric_t	 workers[];	/* nworkers × METRIC_WORKER_N */
};

struct series {
	const char	*family, *labels, *help;
	int		 type;
};

#define METRIC_ROW(id, family, labels, type, help)	\
	{ family, labels, help, type },
static const struct series sup_series[] = { METRICS_SUP(METRIC_ROW) };
static const struct series worker_series[] = { METRICS_WORKER(METRIC_ROW) };
#undef METRIC_ROW

size_t
metrics_size(uint32_t nworkers)
{
	return sizeof(struct metrics) + (size_t)nworkers * METRIC_WORKER_N *
	    sizeof(metric_t);
}

void
metrics_init(void *mem, uint32_t nworkers)
{
	struct metrics	*m = mem;

	m->nworkers = nworkers;
	m->nsup = METRIC_SUP_N;
	m->nworker = METRIC_WORKER_N;
	m->magic = METRICS_MAGIC;
}

struct metrics *
metrics_of(void *mem, size_t len)
{
	struct metrics	*m = mem;

	if (mem == NULL || len < sizeof(*m) || m->magic != METRICS_MAGIC ||
	    m->nsup != METRIC_SUP_N || m->nworker != METRIC_WORKER_N ||
	    len < metrics_size(m->nworkers))
		return NULL;
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
	    s->family, s->help, s->family, s->type == METRIC_COUNTER ?
	    "counter" : "gauge");
	buf_add(b, line, (size_t)n < sizeof(line) ? (size_t)n :
	    sizeof(line) - 1);
}

/* One series; `worker` < 0: none. */
static void
sample(struct buf *b, const struct series *s, int worker, uint64_t v)
{
	char	 line[512];
	int	 n;

	if (worker >= 0)
		n = snprintf(line, sizeof(line), "%s{worker=\"%d\"%s%s} %"
		    PRIu64 "\n", s->family, worker, *s->labels ? "," : "",
		    s->labels, v);
	else if (*s->labels)
		n = snprintf(line, sizeof(line), "%s{%s} %" PRIu64 "\n",
		    s->family, s->labels, v);
	else
		n = snprintf(line, sizeof(line), "%s %" PRIu64 "\n",
		    s->family, v);
	buf_add(b, line, (size_t)n < sizeof(line) ? (size_t)n :
	    sizeof(line) - 1);
}

int
metrics_render(const struct metrics *m, struct buf *out)
{
	size_t		 i;
	uint32_t	 w;

	for (i = 0; i < METRIC_SUP_N; i++) {
		if (i == 0 || strcmp(sup_series[i].family,
		    sup_series[i - 1].family) != 0)
			header(out, &sup_series[i]);
		sample(out, &sup_series[i], -1, metric_get(&m->sup[i]));
	}
	/* a family's series together: every worker, then the next labels */
	for (i = 0; i < METRIC_WORKER_N; i++) {
		if (i == 0 || strcmp(worker_series[i].family,
		    worker_series[i - 1].family) != 0)
			header(out, &worker_series[i]);
		for (w = 0; w < m->nworkers; w++)
			sample(out, &worker_series[i], (int)w, metric_get(
			    &m->workers[(size_t)w * METRIC_WORKER_N + i]));
	}
	return buf_failed(out) ? -1 : 0;
}
