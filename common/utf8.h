/*
 * utf8.h - UTF-8 validation for MQTT strings.
 *
 * Every MQTT UTF-8 Encoded String must be well-formed UTF-8 (RFC 3629:
 * no overlong forms, nothing above U+10FFFF), must not encode the UTF-16
 * surrogates U+D800..U+DFFF and must not contain U+0000; a string that
 * breaks any of these makes the whole packet malformed.
 *
 * The specification lets a receiver also refuse the "disallowed code
 * points": the control characters U+0001..U+001F and U+007F..U+009F and
 * the Unicode noncharacters (U+FDD0..U+FDEF and every U+xxFFFE/U+xxFFFF).
 * PromptMQ refuses them where a string becomes part of the routing of
 * other clients' messages (topic names, topic filters, response topics:
 * pass UTF8_STRICT) and accepts them in strings that are opaque to the
 * broker and forwarded unaltered (client identifiers, user names, user
 * properties, content types, reason strings...).  docs/protocol.md says
 * the same.
 */
#ifndef PMQ_UTF8_H
#define PMQ_UTF8_H

#include <stddef.h>
#include <stdint.h>

#define UTF8_STRICT	0x01	/* also refuse control characters and noncharacters */

/* 0 when the bytes are an acceptable MQTT string, -1 otherwise. */
int	utf8_check(const uint8_t *, size_t, unsigned flags);

#endif /* PMQ_UTF8_H */
