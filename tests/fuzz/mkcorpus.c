/*
 * mkcorpus.c - writes the fuzz seed corpus: every sample packet of
 * tests/unit/mqtt_testlib.c (all fifteen types, each level it exists
 * at), encoded and prefixed with the options byte the fuzz target reads.
 *
 *	mkcorpus DIR
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt_testlib.h"

int
main(int argc, char **argv)
{
	const struct mqtt_sample	*s;
	struct buf			 b = BUF_INITIALIZER;
	size_t				 n, i;

	if (argc != 2) {
		fprintf(stderr, "usage: mkcorpus DIR\n");
		return 2;
	}
	n = mqtt_samples(&s);
	for (i = 0; i < n; i++) {
		const struct mqtt_packet	*p = &s[i].pkt;
		char				 path[4096];
		uint8_t				 level = p->level;
		FILE				*f;

		buf_reset(&b);
		/* CONNECT is decoded before the level is known. */
		buf_add_u8(&b, mqtt_fuzz_selector(p->type == MQTT_CONNECT ?
		    0 : level, s[i].direction));
		if (mqtt_encode(&b, p, level) == -1) {
			fprintf(stderr, "mkcorpus: %s does not encode\n",
			    s[i].name);
			return 1;
		}
		snprintf(path, sizeof(path), "%s/%03zu-%s-v%u", argv[1], i,
		    mqtt_type_name(p->type), level);
		if ((f = fopen(path, "wb")) == NULL ||
		    fwrite(b.data, 1, b.len, f) != b.len || fclose(f) != 0) {
			perror(path);
			return 1;
		}
	}
	buf_free(&b);
	mqtt_samples_free();
	printf("mkcorpus: %zu seeds in %s\n", n, argv[1]);
	return 0;
}
