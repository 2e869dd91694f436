/*
 * ipcbench.c - throughput of the IPC envelope between two processes.
 *
 *	ipcbench DIR [RECORDS] [PER_TURN] [BYTES]
 *
 * Forks a receiver that listens on an nng pull endpoint in DIR and a
 * sender that pushes RECORDS records of BYTES bytes through an
 * ipc_link, PER_TURN records per event-loop turn (1: one nng message per
 * record, the cost the design avoids; 32: a busy turn).  The receiver
 * checks every record's sequence and reports when it has them all.
 * Prints one line:
 *
 *	RESULT per_turn=32 records=N seconds=S records_per_s=R
 *	    nng_msgs=M cpu_us_per_record=C
 *
 * where cpu is user+system time of both processes.
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "ipc_link.h"
#include "log.h"

#define TYPE_BENCH	0x7fff

struct bench {
	struct event_base	*base;
	struct ipc_link		*link;
	uint64_t		 records;
	uint64_t		 per_turn;
	size_t			 bytes;
	uint64_t		 next;		/* sender: next sequence */
	uint64_t		 received;	/* receiver */
	uint64_t		 batches;
	uint8_t			*payload;
};

static double
now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
receive(struct ipc_batch *batch, void *arg)
{
	struct bench		*b = arg;
	struct ipc_record	 rec;

	b->batches++;
	while (ipc_batch_next(batch, &rec) == 1) {
		if (rec.type != TYPE_BENCH || rec.seq != b->received + 1 ||
		    rec.len != b->bytes)
			fatalx("record out of order", "seq=%llu expected=%llu",
			    (unsigned long long)rec.seq,
			    (unsigned long long)b->received + 1);
		if (++b->received == b->records) {
			printf("%llu\n", (unsigned long long)b->batches);
			fflush(stdout);
			exit(0);
		}
	}
}

/* One loop turn's worth of records: PER_TURN, then the turn ends. */
static void
turn(struct bench *b)
{
	uint64_t	 i;

	/* keep the pipe busy but bounded, as a worker would */
	if (ipc_link_backlog(b->link) > 4u << 20)
		return;
	for (i = 0; i < b->per_turn && b->next <= b->records; i++, b->next++)
		if (ipc_link_send(b->link, TYPE_BENCH, b->next, 0, b->payload,
		    b->bytes) == -1)
			fatalx("send failed", "");
}

static int	 done;

static void
done_cb(evutil_socket_t fd, short what, void *arg)
{
	done = 1;
}

static double
cpu_seconds(int who)
{
	struct rusage	 ru;

	getrusage(who, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

int
main(int argc, char *argv[])
{
	struct bench		 b;
	struct ipc_identity	 self = { IPC_ROLE_TOOL, 1, 1 };
	char			 path[IPC_PATH_MAX + 1], err[256], line[64];
	int			 pipefd[2], status;
	double			 t0, t1, cpu;
	pid_t			 pid;
	FILE			*f;

	if (argc < 2) {
		fprintf(stderr, "usage: ipcbench DIR [RECORDS] [PER_TURN] "
		    "[BYTES]\n");
		return 2;
	}
	memset(&b, 0, sizeof(b));
	b.records = argc > 2 ? strtoull(argv[2], NULL, 10) : 1000000;
	b.per_turn = argc > 3 ? strtoull(argv[3], NULL, 10) : 32;
	b.bytes = argc > 4 ? strtoul(argv[4], NULL, 10) : 64;
	log_init("ipcbench", -1);
	snprintf(path, sizeof(path), "%s/" IPC_SUBDIR, argv[1]);
	if (mkdir(path, 0700) == -1 && errno != EEXIST)
		fatal("cannot create the endpoints' directory", "dir=%s", path);
	if (ipc_endpoint_path(path, sizeof(path), argv[1], IPC_ROLE_TOOL, 0) ==
	    -1)
		fatalx("directory path too long", "");
	if (pipe(pipefd) == -1)
		fatal("pipe", "");

	if ((pid = fork()) == 0) {
		close(pipefd[0]);
		dup2(pipefd[1], STDOUT_FILENO);
		b.base = evloop_new();
		if (ipc_endpoint_open(b.base, path, 0, 8u << 20, receive, &b,
		    err, sizeof(err)) == NULL)
			fatalx("endpoint", "error=\"%s\"", err);
		event_base_dispatch(b.base);
		_exit(1);
	}
	close(pipefd[1]);
	usleep(100000);		/* let the receiver listen */

	b.base = evloop_new();
	if ((b.link = ipc_link_open(b.base, path, &self, err,
	    sizeof(err))) == NULL)
		fatalx("link", "error=\"%s\"", err);
	if ((b.payload = calloc(1, b.bytes)) == NULL)
		fatal("payload", "");
	b.next = 1;
	t0 = now();

	/* run the loop until the receiver reports the last record */
	f = fdopen(pipefd[0], "r");
	event_base_once(b.base, pipefd[0], EV_READ, done_cb, NULL, NULL);
	while (!done) {
		turn(&b);
		/* block when nothing is left to send or the pipe is full */
		if (event_base_loop(b.base, b.next > b.records ||
		    ipc_link_backlog(b.link) > 4u << 20 ? EVLOOP_ONCE :
		    EVLOOP_NONBLOCK) == -1)
			fatalx("event loop failed", "");
	}
	t1 = now();
	if (fgets(line, sizeof(line), f) == NULL)
		fatalx("receiver failed", "");
	waitpid(pid, &status, 0);
	cpu = cpu_seconds(RUSAGE_SELF) + cpu_seconds(RUSAGE_CHILDREN);
	printf("RESULT per_turn=%llu bytes=%zu records=%llu seconds=%.3f "
	    "records_per_s=%.0f nng_msgs=%llu cpu_us_per_record=%.2f\n",
	    (unsigned long long)b.per_turn, b.bytes,
	    (unsigned long long)b.records, t1 - t0,
	    (double)b.records / (t1 - t0), strtoull(line, NULL, 10),
	    cpu * 1e6 / (double)b.records);
	return 0;
}
