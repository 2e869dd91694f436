/*
 * mqtt_private.h - what the codec's own files (mqtt_decode.c,
 * mqtt_encode.c, mqtt_props.c, mqtt_reason.c) share and nothing else
 * includes: the reading primitives and the property block coder.
 */
#ifndef PMQ_MQTT_PRIVATE_H
#define PMQ_MQTT_PRIVATE_H

#include "buf.h"
#include "mqtt.h"

/* Record an error in res; returns MQTT_DECODE_ERROR for tail calls. */
int	mqtt_fail(struct mqtt_result *, uint8_t reason, const char *what);

/*
 * Reading primitives: 0, or -1 when the bytes run out or break the
 * encoding (a Variable Byte Integer longer than 4 bytes or not in its
 * shortest form).
 */
int	mqtt_read_vbi(struct buf_reader *, uint32_t *);
int	mqtt_read_view(struct buf_reader *, struct mqtt_view *);

/*
 * A property block (Property Length and records) for the given context
 * (a packet type or MQTT_WILL): decoded and checked, or written.
 * mqtt_props_size() is the size of the records alone, (size_t)-1 with
 * errno when they cannot be encoded; `edit`, when not NULL, replaces the
 * Topic Alias and Subscription Identifiers (PUBLISH fan-out).
 */
int	mqtt_props_decode(struct buf_reader *, uint8_t context,
	    uint8_t direction, struct mqtt_props *, struct mqtt_result *);
size_t	mqtt_props_size(const struct mqtt_props *, uint8_t context,
	    const struct mqtt_delivery *edit);
int	mqtt_props_write(struct buf *, const struct mqtt_props *,
	    uint8_t context, const struct mqtt_delivery *edit, size_t size);

#endif /* PMQ_MQTT_PRIVATE_H */
