/*
 * mqtt_testlib.h - what the codec's unit tests, its fuzz target and its
 * benchmark share: a set of valid sample packets of every type at every
 * level, packet comparison, hex input, and the invariants every decode
 * must keep.
 */
#ifndef PMQ_MQTT_TESTLIB_H
#define PMQ_MQTT_TESTLIB_H

#include <stddef.h>
#include <stdint.h>

#include "mqtt.h"

struct mqtt_sample {
	const char		*name;
	uint8_t			 direction;
	struct mqtt_packet	 pkt;	/* pkt.level is the level to use */
};

/* All samples; the storage lives until mqtt_samples_free(). */
size_t	mqtt_samples(const struct mqtt_sample **);
void	mqtt_samples_free(void);

/* Same packet, views compared by their bytes. */
int	mqtt_packet_equal(const struct mqtt_packet *, const struct mqtt_packet *);

/* "30 05 00 01 61" -> bytes; returns the count, aborts on bad input. */
size_t	mqtt_hex(const char *, uint8_t *, size_t cap);

/*
 * The fuzz target's body.  The first input byte picks the decode options
 * (level, direction, payload check, a small maximum size), the rest is
 * decoded; whatever decodes must re-encode, decode again to the same
 * packet, and have its lists iterate cleanly.  Aborts when an invariant
 * breaks.
 */
void	mqtt_fuzz_one(const uint8_t *, size_t);

/* The options byte mqtt_fuzz_one() reads for a level and direction. */
uint8_t	mqtt_fuzz_selector(uint8_t level, uint8_t direction);

#endif /* PMQ_MQTT_TESTLIB_H */
