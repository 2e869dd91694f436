/*
 * tlsfanin.c - fan-in over MQTT over TLS, for comparing brokers with the
 * same certificate: PUBLISHERS clients publish MESSAGES messages each of
 * SIZE bytes at QOS to one subscriber, all over TLS (libmosquitto, as
 * Mosquitto's own tools), as fast as the library takes them.
 *
 *	tlsfanin HOST PORT CAFILE PUBLISHERS MESSAGES QOS SIZE
 *
 * CAFILE "-": plain MQTT, the same clients without TLS (the baseline).
 *
 * Prints "sent=N received=N lost=N seconds=S rate=R": R is messages
 * received per second, from the first publish to the last message (it
 * stops waiting 2 s after the last one: a broker may drop QoS 0).  The broker's CPU is measured outside (docs/
 * benchmarks.md says how).  Built on demand: make tlsfanin.
 */
#include <mosquitto.h>

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define OUTSTANDING	100	/* per publisher: sent, not yet acknowledged
				   (QoS 0: not yet written) */

static atomic_ulong	 received;
static atomic_ulong	 last_ns;	/* when the last message came */
static atomic_ulong	*acked;		/* per publisher */
static atomic_int	 connected;
static atomic_int	 subscribed;

static unsigned long
now_ns(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long)ts.tv_sec * 1000000000UL +
	    (unsigned long)ts.tv_nsec;
}

static void
on_connect(struct mosquitto *m, void *arg, int rc)
{
	if (rc != 0) {
		fprintf(stderr, "tlsfanin: CONNACK %d\n", rc);
		exit(1);
	}
	atomic_fetch_add(&connected, 1);
}

static void
on_subscribe(struct mosquitto *m, void *arg, int mid, int n,
    const int *granted)
{
	atomic_store(&subscribed, 1);
}

static void
on_message(struct mosquitto *m, void *arg,
    const struct mosquitto_message *msg)
{
	atomic_fetch_add(&received, 1);
	atomic_store(&last_ns, now_ns());
}

static void
on_publish(struct mosquitto *m, void *arg, int mid)
{
	atomic_fetch_add(&acked[(intptr_t)arg - 1], 1);
}

static struct mosquitto *
client(const char *id, const char *host, int port, const char *ca,
    intptr_t n)
{
	struct mosquitto	*m;

	/* n + 1: libmosquitto passes the client itself for NULL */
	if ((m = mosquitto_new(id, true, (void *)(n + 1))) == NULL ||
	    (strcmp(ca, "-") != 0 &&
	    mosquitto_tls_set(m, ca, NULL, NULL, NULL, NULL) != 0) ||
	    mosquitto_max_inflight_messages_set(m, 100) != 0) {
		fprintf(stderr, "tlsfanin: cannot make client %s\n", id);
		exit(1);
	}
	mosquitto_connect_callback_set(m, on_connect);
	mosquitto_publish_callback_set(m, on_publish);
	if (mosquitto_connect(m, host, port, 60) != 0 ||
	    mosquitto_loop_start(m) != 0) {
		fprintf(stderr, "tlsfanin: %s cannot connect\n", id);
		exit(1);
	}
	return m;
}

int
main(int argc, char *argv[])
{
	struct mosquitto	**pubs, *sub;
	const char		 *host, *ca;
	char			  id[64], *payload;
	unsigned long		  total, got, t0, t1, *sent;
	int			  port, npub, nmsg, qos, size, i, busy, rc;

	if (argc != 8) {
		fprintf(stderr, "usage: tlsfanin HOST PORT CAFILE PUBLISHERS "
		    "MESSAGES QOS SIZE\n");
		return 2;
	}
	host = argv[1];
	port = atoi(argv[2]);
	ca = argv[3];
	npub = atoi(argv[4]);
	nmsg = atoi(argv[5]);
	qos = atoi(argv[6]);
	size = atoi(argv[7]);
	if (npub < 1 || nmsg < 1 || qos < 0 || qos > 1 || size < 0 ||
	    (payload = calloc(1, (size_t)size + 1)) == NULL ||
	    (pubs = calloc((size_t)npub, sizeof(*pubs))) == NULL ||
	    (sent = calloc((size_t)npub, sizeof(*sent))) == NULL ||
	    (acked = calloc((size_t)npub, sizeof(*acked))) == NULL)
		return 2;
	mosquitto_lib_init();
	sub = client("tlsfanin-sub", host, port, ca, 0);
	mosquitto_subscribe_callback_set(sub, on_subscribe);
	mosquitto_message_callback_set(sub, on_message);
	while (atomic_load(&connected) < 1)
		usleep(1000);
	mosquitto_subscribe(sub, NULL, "tlsfanin/#", qos);
	while (!atomic_load(&subscribed))
		usleep(1000);
	for (i = 0; i < npub; i++) {
		snprintf(id, sizeof(id), "tlsfanin-pub%d", i);
		pubs[i] = client(id, host, port, ca, i);
	}
	while (atomic_load(&connected) < npub + 1)
		usleep(1000);
	total = (unsigned long)npub * (unsigned long)nmsg;
	t0 = now_ns();
	atomic_store(&last_ns, t0);
	/* each publisher keeps OUTSTANDING messages in flight: libmosquitto
	 * walks its queue on every acknowledgement */
	do {
		busy = 0;
		for (i = 0; i < npub; i++) {
			if (sent[i] == (unsigned long)nmsg)
				continue;
			busy = 1;
			if (sent[i] - atomic_load(&acked[i]) >= OUTSTANDING)
				continue;
			snprintf(id, sizeof(id), "tlsfanin/%d", i);
			if ((rc = mosquitto_publish(pubs[i], NULL, id, size,
			    payload, qos, false)) != 0) {
				fprintf(stderr, "tlsfanin: publish failed: %s\n",
				    mosquitto_strerror(rc));
				return 1;
			}
			sent[i]++;
		}
	} while (busy);
	/* until all came, or nothing came for 2 s (a broker that drops) */
	while ((got = atomic_load(&received)) < total &&
	    now_ns() - atomic_load(&last_ns) < 2000000000UL)
		usleep(1000);
	t1 = atomic_load(&last_ns);
	printf("sent=%lu received=%lu lost=%lu seconds=%.3f rate=%.0f\n",
	    total, got, total - got, (double)(t1 - t0) / 1e9,
	    (double)got / ((double)(t1 - t0) / 1e9));
	for (i = 0; i < npub; i++) {
		mosquitto_disconnect(pubs[i]);
		mosquitto_loop_stop(pubs[i], false);
		mosquitto_destroy(pubs[i]);
	}
	mosquitto_disconnect(sub);
	mosquitto_loop_stop(sub, false);
	mosquitto_destroy(sub);
	mosquitto_lib_cleanup();
	return got == total ? 0 : 1;
}
