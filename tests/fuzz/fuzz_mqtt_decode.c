/*
 * fuzz_mqtt_decode.c - libFuzzer target over mqtt_decode().
 *
 * The first byte of an input picks the decode options (level, direction,
 * payload check, a 64-byte maximum packet size), the rest is the bytes a
 * peer sent.  Beyond "no crash, no leak, no undefined behaviour" the
 * target checks the codec's own promises (mqtt_fuzz_one() in
 * tests/unit/mqtt_testlib.c): a prefix of a packet never decodes, a
 * decoded packet's lists iterate to their counts, and it encodes to a
 * packet that decodes to the same thing.
 *
 * Built by `make fuzz` with clang -fsanitize=fuzzer,address,undefined;
 * `make fuzz-run FUZZ_TIME=seconds` runs it on the seed corpus.  A crash
 * found goes into tests/fuzz/regressions/, which check_mqtt replays.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>

#include "mqtt_testlib.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	mqtt_fuzz_one(data, size);
	return 0;
}
