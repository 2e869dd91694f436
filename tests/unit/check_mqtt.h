/*
 * check_mqtt.h - the suites of the check_mqtt program (codec per packet
 * type, properties, encoder) and the helpers they share.
 */
#ifndef PMQ_CHECK_MQTT_H
#define PMQ_CHECK_MQTT_H

#include <check.h>
#include <stdint.h>

#include "mqtt.h"

Suite	*mqtt_type_suite(uint8_t type);
Suite	*mqtt_fixed_header_suite(void);
Suite	*mqtt_props_suite(void);
Suite	*mqtt_encode_suite(void);
Suite	*mqtt_regress_suite(void);

/* Decode a whole buffer with these options. */
int	 decode_with(const uint8_t *, size_t, uint8_t level, uint8_t direction,
	    struct mqtt_packet *, struct mqtt_result *);

#endif /* PMQ_CHECK_MQTT_H */
