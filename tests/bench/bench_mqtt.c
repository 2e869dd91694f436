/*
 * bench_mqtt.c - throughput of the MQTT codec on the broker's hot path:
 * decoding and encoding a PUBLISH with a 64-byte payload at QoS 0 and 1,
 * MQTT 3.1.1 and 5.0, in packets per second, and the allocations each
 * decoded PUBLISH costs (the design says none).
 *
 * Decoding walks a buffer of 1024 packets back to back, as a connection's
 * input buffer looks under load.  Encoding is measured twice: the whole
 * packet with mqtt_encode(), and the fan-out path that writes only the
 * header with mqtt_encode_publish_header() and patches the packet
 * identifier per subscriber.
 *
 *	make bench            (or ./bench_mqtt [seconds per measure])
 *
 * It needs no test framework; allocations are counted by wrapping the
 * C library's allocator, so a sanitizer build reports them as unknown.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mqtt.h"

#if defined(__SANITIZE_ADDRESS__)
#define COUNTING	0
#else
#define COUNTING	1
void	*__libc_malloc(size_t);
void	*__libc_calloc(size_t, size_t);
void	*__libc_realloc(void *, size_t);
void	 __libc_free(void *);

static unsigned long	 allocations;

void *
malloc(size_t n)
{
	allocations++;
	return __libc_malloc(n);
}

void *
calloc(size_t n, size_t size)
{
	allocations++;
	return __libc_calloc(n, size);
}

void *
realloc(void *p, size_t n)
{
	allocations++;
	return __libc_realloc(p, n);
}

void
free(void *p)
{
	__libc_free(p);
}
#endif

#define STREAM_PACKETS	1024

static double	 min_seconds = 0.5;

static double
now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned long
allocs(void)
{
#if COUNTING
	return allocations;
#else
	return 0;
#endif
}

struct result {
	double		 pps;
	double		 allocs_per_packet;
};

static struct result
bench_decode(const struct buf *stream, uint8_t level)
{
	struct mqtt_decode_opts	 opts = { level, MQTT_TO_SERVER, 0, 0, 0 };
	struct mqtt_packet	 pkt;
	struct mqtt_result	 res;
	struct result		 r;
	unsigned long		 n = 0, a0 = allocs();
	volatile size_t		 sink = 0;
	double			 t0 = now(), t;

	do {
		size_t	 off = 0;

		while (off < stream->len) {
			if (mqtt_decode(stream->data + off, stream->len - off,
			    &opts, &pkt, &res) != MQTT_DECODE_OK) {
				fprintf(stderr, "bench: decode failed: %s\n",
				    res.what);
				exit(1);
			}
			sink += pkt.publish.payload.len;
			off += res.size;
			n++;
		}
	} while ((t = now() - t0) < min_seconds);
	(void)sink;
	r.pps = (double)n / t;
	r.allocs_per_packet = (double)(allocs() - a0) / (double)n;
	return r;
}

static struct result
bench_encode(const struct mqtt_packet *pkt, uint8_t level)
{
	struct buf	 out = BUF_INITIALIZER;
	struct result	 r;
	unsigned long	 n = 0, a0;
	double		 t0, t;
	int		 i;

	/* Warm the buffer up to its working size first. */
	for (i = 0; i < STREAM_PACKETS; i++)
		mqtt_encode(&out, pkt, level);
	a0 = allocs();
	t0 = now();
	do {
		buf_reset(&out);
		for (i = 0; i < STREAM_PACKETS; i++)
			if (mqtt_encode(&out, pkt, level) == -1)
				exit(1);
		n += STREAM_PACKETS;
	} while ((t = now() - t0) < min_seconds);
	r.pps = (double)n / t;
	r.allocs_per_packet = (double)(allocs() - a0) / (double)n;
	buf_free(&out);
	return r;
}

/* One header for a group of subscribers, packet identifier patched. */
static struct result
bench_fan_out(const struct mqtt_publish *msg, uint8_t level, uint8_t qos)
{
	struct mqtt_delivery	 d;
	struct buf		 hdr = BUF_INITIALIZER;
	struct result		 r;
	unsigned long		 n = 0, a0;
	volatile uint8_t	 sink = 0;
	size_t			 at;
	double			 t0, t;
	int			 i;

	memset(&d, 0, sizeof(d));
	d.qos = qos;
	d.packet_id = 1;
	mqtt_encode_publish_header(&hdr, msg, level, &d, &at);
	a0 = allocs();
	t0 = now();
	do {
		for (i = 0; i < STREAM_PACKETS; i++) {
			buf_reset(&hdr);
			d.packet_id = (uint16_t)(i + 1);
			if (mqtt_encode_publish_header(&hdr, msg, level, &d,
			    &at) == -1)
				exit(1);
			sink ^= hdr.data[hdr.len - 1];
		}
		n += STREAM_PACKETS;
	} while ((t = now() - t0) < min_seconds);
	(void)sink;
	r.pps = (double)n / t;
	r.allocs_per_packet = (double)(allocs() - a0) / (double)n;
	buf_free(&hdr);
	return r;
}

int
main(int argc, char **argv)
{
	static uint8_t		 payload[64];
	static const uint8_t	 levels[] = { MQTT_LEVEL_311, MQTT_LEVEL_5 };
	struct mqtt_packet	 pkt;
	struct buf		 stream = BUF_INITIALIZER;
	size_t			 li, i;
	uint8_t			 qos;

	if (argc > 1)
		min_seconds = atof(argv[1]);
	for (i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)('a' + i % 26);
	printf("PUBLISH, topic \"sensors/room1/temperature\", 64-byte payload;"
	    " %.1f s per measure\n\n", min_seconds);
	printf("| level | QoS | bytes | decode pkt/s | allocs/decode |"
	    " encode pkt/s | allocs/encode | header-only pkt/s |\n");
	printf("|---|---|---|---|---|---|---|---|\n");
	for (li = 0; li < sizeof(levels); li++) {
		for (qos = 0; qos <= 1; qos++) {
			struct result	 dec, enc, fan;

			memset(&pkt, 0, sizeof(pkt));
			pkt.type = MQTT_PUBLISH;
			pkt.publish.qos = qos;
			pkt.publish.packet_id = qos ? 1 : 0;
			pkt.publish.topic.data =
			    (const uint8_t *)"sensors/room1/temperature";
			pkt.publish.topic.len = 25;
			pkt.publish.payload.data = payload;
			pkt.publish.payload.len = sizeof(payload);
			buf_reset(&stream);
			for (i = 0; i < STREAM_PACKETS; i++)
				mqtt_encode(&stream, &pkt, levels[li]);
			if (buf_failed(&stream))
				return 1;
			dec = bench_decode(&stream, levels[li]);
			enc = bench_encode(&pkt, levels[li]);
			fan = bench_fan_out(&pkt.publish, levels[li], qos);
			printf("| %s | %u | %zu | %.2fM | %s%.3f | %.2fM |"
			    " %s%.3f | %.2fM |\n",
			    levels[li] == MQTT_LEVEL_5 ? "5.0" : "3.1.1", qos,
			    stream.len / STREAM_PACKETS, dec.pps / 1e6,
			    COUNTING ? "" : "~", dec.allocs_per_packet,
			    enc.pps / 1e6, COUNTING ? "" : "~",
			    enc.allocs_per_packet, fan.pps / 1e6);
		}
	}
	buf_free(&stream);
	return 0;
}
