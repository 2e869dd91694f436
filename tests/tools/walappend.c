/*
 * walappend.c - append records to a running broker's message log
 * through walsvc, the way a worker does, and report what became durable.
 *
 *	walappend -r RUNDIR -s SLOT [-n COUNT] [-z BYTES] [-w WINDOW]
 *	    [-p RATE] [-t SECONDS] [-k KIND] [-v] [-g]
 *
 * It speaks the append stream of walc.h as role "tool" with slot SLOT
 * and a generation taken from the clock (unique per run), keeps at most
 * WINDOW records unacknowledged (and, with -p, appends at most RATE a
 * second), and ends when all COUNT are durable or after SECONDS.
 * Payloads read "walappend SLOT GEN SEQ" padded to BYTES, so a test can
 * find every record in promptmq-waldump's output.  With -v it prints
 * "durable N" at every watermark.  With -g it appends no further than a
 * gate that the caller moves by writing numbers to its standard input
 * (end of input opens it), so a test can make things happen before the
 * run can end, and while appends are in flight.  The last line is
 * machine-readable:
 *
 *	RESULT appended=N durable=N gen=G seconds=S rate=R resent=K status=ok
 *
 * Used by the integration tests (kill walsvc while appending, then check
 * the log) and by the benchmarks (durable appends per second).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "ipc_link.h"
#include "log.h"
#include "walc.h"

struct tool {
	struct event_base	*base;
	struct walc		*walc;
	struct ipc_identity	 self;
	uint64_t		 count;
	uint64_t		 window;
	size_t			 size;
	uint8_t			 kind;
	int			 verbose;
	uint64_t		 rate;		/* appends a second, 0: no limit */
	uint64_t		 allowed;	/* appends the rate allows so far */
	uint64_t		 gate;		/* -g: appends allowed so far */
	struct event		*gate_ev;
	char			 gate_line[32];
	size_t			 gate_len;
	struct timespec		 start;
	char			*payload;
};

static double
elapsed(const struct tool *t)
{
	struct timespec	 now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->start.tv_sec) +
	    (double)(now.tv_nsec - t->start.tv_nsec) / 1e9;
}

static void
fill(struct tool *t)
{
	uint64_t	 seq;
	int		 n;

	while (walc_last(t->walc) < t->count &&
	    walc_last(t->walc) - walc_durable(t->walc) < t->window &&
	    (t->rate == 0 || walc_last(t->walc) < t->allowed) &&
	    walc_last(t->walc) < t->gate) {
		seq = walc_last(t->walc) + 1;
		memset(t->payload, '.', t->size);
		n = snprintf(t->payload, t->size, "walappend %u %llu %llu ",
		    t->self.slot, (unsigned long long)t->self.gen,
		    (unsigned long long)seq);
		if (n > 0 && (size_t)n < t->size)
			t->payload[n] = '.';
		if (walc_append(t->walc, t->kind, t->payload, t->size) != seq)
			fatalx("append failed", "seq=%llu",
			    (unsigned long long)seq);
	}
}

static void
report(struct tool *t, const char *status)
{
	double	 s = elapsed(t);

	printf("RESULT appended=%llu durable=%llu gen=%llu seconds=%.3f "
	    "rate=%.0f resent=%llu status=%s\n",
	    (unsigned long long)walc_last(t->walc),
	    (unsigned long long)walc_durable(t->walc),
	    (unsigned long long)t->self.gen, s,
	    s > 0 ? (double)walc_durable(t->walc) / s : 0.0,
	    (unsigned long long)walc_resent(t->walc), status);
	fflush(stdout);
}

static void
durable_cb(void *arg, uint64_t seq)
{
	struct tool	*t = arg;

	if (t->verbose) {
		printf("durable %llu\n", (unsigned long long)seq);
		fflush(stdout);
	}
	if (seq == t->count) {
		report(t, "ok");
		exit(0);
	}
	fill(t);
}

static void
refused_cb(void *arg, uint64_t seq, int error)
{
	log_warnx("walsvc refused appends", "seq=%llu error=\"%s\"",
	    (unsigned long long)seq, strerror(error));
}

static void
dispatch(struct ipc_batch *batch, void *arg)
{
	struct tool		*t = arg;
	struct ipc_record	 rec;

	while (ipc_batch_next(batch, &rec) == 1)
		walc_handle(t->walc, batch, &rec);
}

static void
timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	report(arg, "timeout");
	exit(1);
}

/* -g: a line on standard input moves the gate; end of input opens it */
static void
gate_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tool	*t = arg;
	char		 buf[256];
	ssize_t		 n, i;

	if ((n = read(fd, buf, sizeof(buf))) == -1 && errno == EINTR)
		return;
	if (n <= 0) {
		t->gate = t->count;
		event_del(t->gate_ev);
		fill(t);
		return;
	}
	for (i = 0; i < n; i++) {
		if (buf[i] != '\n') {
			if (t->gate_len < sizeof(t->gate_line) - 1)
				t->gate_line[t->gate_len++] = buf[i];
			continue;
		}
		t->gate_line[t->gate_len] = '\0';
		t->gate = strtoull(t->gate_line, NULL, 10);
		t->gate_len = 0;
	}
	fill(t);
}

/* -p: every 10 ms the rate allows another RATE/100 appends */
static void
pace_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tool	*t = arg;

	t->allowed = (uint64_t)(elapsed(t) * (double)t->rate) + 1;
	fill(t);
}

static void
usage(void)
{
	fprintf(stderr, "usage: walappend -r RUNDIR -s SLOT [-n COUNT] "
	    "[-z BYTES] [-w WINDOW] [-p RATE] [-t SECONDS] [-k KIND] [-v] "
	    "[-g]\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	static struct tool	 t;
	struct ipc_endpoint	*ep;
	struct ipc_link		*link;
	struct timespec		 now;
	struct timeval		 tv;
	const char		*rundir = NULL;
	char			 path[IPC_PATH_MAX + 1], err[256];
	long			 seconds = 60;
	int			 ch;

	log_init("walappend", -1);
	t.self.role = IPC_ROLE_TOOL;
	t.count = 1000;
	t.window = 256;
	t.size = 64;
	t.kind = 1;
	int			 gated = 0;

	while ((ch = getopt(argc, argv, "r:s:n:z:w:p:t:k:vg")) != -1) {
		switch (ch) {
		case 'r':
			rundir = optarg;
			break;
		case 's':
			t.self.slot = (uint16_t)atoi(optarg);
			break;
		case 'n':
			t.count = strtoull(optarg, NULL, 10);
			break;
		case 'z':
			t.size = strtoul(optarg, NULL, 10);
			break;
		case 'w':
			t.window = strtoull(optarg, NULL, 10);
			break;
		case 't':
			seconds = atol(optarg);
			break;
		case 'p':
			t.rate = strtoull(optarg, NULL, 10);
			break;
		case 'k':
			t.kind = (uint8_t)atoi(optarg);
			break;
		case 'v':
			t.verbose = 1;
			break;
		case 'g':
			gated = 1;
			break;
		default:
			usage();
		}
	}
	if (rundir == NULL || t.count == 0 || t.window == 0 || t.size < 48)
		usage();
	clock_gettime(CLOCK_REALTIME, &now);
	t.self.gen = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
	if ((t.payload = malloc(t.size)) == NULL)
		fatal("payload", "");
	if ((t.base = evloop_new()) == NULL)
		fatalx("event base", "");
	if (ipc_endpoint_path(path, sizeof(path), rundir, IPC_ROLE_TOOL,
	    t.self.slot) == -1)
		fatalx("runtime directory path too long", "dir=%s", rundir);
	if ((ep = ipc_endpoint_open(t.base, path, t.self.gen, 1 << 20, dispatch,
	    &t, err, sizeof(err))) == NULL)
		fatalx("cannot open endpoint", "error=\"%s\"", err);
	ipc_endpoint_path(path, sizeof(path), rundir, IPC_ROLE_WALSVC, 0);
	if ((link = ipc_link_open(t.base, path, &t.self, err,
	    sizeof(err))) == NULL)
		fatalx("cannot open link to walsvc", "error=\"%s\"", err);
	if ((t.walc = walc_new(t.base, link, durable_cb, refused_cb, &t)) ==
	    NULL)
		fatalx("out of memory", "");
	tv.tv_sec = seconds;
	tv.tv_usec = 0;
	event_base_once(t.base, -1, EV_TIMEOUT, timeout_cb, &t, &tv);
	clock_gettime(CLOCK_MONOTONIC, &t.start);
	if (t.rate) {
		struct event	*pace;
		struct timeval	 tick = { 0, 10000 };

		pace = event_new(t.base, -1, EV_PERSIST, pace_cb, &t);
		if (pace == NULL || event_add(pace, &tick) == -1)
			fatalx("pacing timer", "");
		t.allowed = 1;
	}
	t.gate = t.count;
	if (gated) {
		t.gate = 0;
		t.gate_ev = event_new(t.base, STDIN_FILENO, EV_READ | EV_PERSIST,
		    gate_cb, &t);
		if (t.gate_ev == NULL || event_add(t.gate_ev, NULL) == -1)
			fatalx("gate event", "");
	}
	fill(&t);
	event_base_dispatch(t.base);
	return 1;
}
