# tests/fuzz - the libFuzzer target over mqtt_decode() and its corpus.
#
#   make fuzz                     build fuzz_mqtt_decode (needs clang)
#   make fuzz-run [FUZZ_TIME=s]   run it for FUZZ_TIME seconds on the seed
#                                 corpus; new inputs go to fuzz-corpus/,
#                                 crashes to fuzz-crashes/
#   make fuzz-corpus              rewrite tests/fuzz/corpus from the samples
#
# session_fuzz.py fuzzes whole sessions against the running daemon
# (docs/fuzzing.md); integration/session_fuzz_smoke.py runs it briefly.
#
# The target is compiled from the codec sources directly so that clang
# instruments all of them; it does not use libpromptmq.a.
FUZZ_TIME = 300
FUZZ_CFLAGS = -g -O1 -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_FILES = common/buf.c common/utf8.c common/topic.c \
	common/mqtt_decode.c common/mqtt_encode.c common/mqtt_props.c \
	common/mqtt_reason.c tests/unit/mqtt_testlib.c \
	tests/fuzz/fuzz_mqtt_decode.c
FUZZ_CPPFLAGS = -I$(top_builddir) -I$(top_srcdir)/common \
	-I$(top_srcdir)/tests/unit

EXTRA_DIST += tests/fuzz/fuzz_mqtt_decode.c tests/fuzz/mkcorpus.c \
	tests/fuzz/session_fuzz.py \
	tests/fuzz/mqtt.dict tests/fuzz/corpus tests/fuzz/regressions
CLEANFILES += fuzz_mqtt_decode mkcorpus fuzz-run.log

if HAVE_CLANG
fuzz_mqtt_decode: $(FUZZ_FILES:%=$(top_srcdir)/%) config.h
	$(CLANG) $(FUZZ_CFLAGS) $(FUZZ_CPPFLAGS) -o $@ \
		$(FUZZ_FILES:%=$(top_srcdir)/%)

fuzz: fuzz_mqtt_decode
else
fuzz:
	@echo "make fuzz needs clang with libFuzzer:" \
		"apt-get install clang libclang-rt-14-dev" >&2; exit 1
endif

fuzz-run: fuzz
	mkdir -p fuzz-corpus fuzz-crashes
	./fuzz_mqtt_decode -max_total_time=$(FUZZ_TIME) -print_final_stats=1 \
		-dict=$(top_srcdir)/tests/fuzz/mqtt.dict \
		-artifact_prefix=fuzz-crashes/ fuzz-corpus \
		$(top_srcdir)/tests/fuzz/corpus \
		$(top_srcdir)/tests/fuzz/regressions 2>&1 | tee fuzz-run.log
	@grep -E '^(stat::|Done|#[0-9]+ +DONE)' fuzz-run.log || true

mkcorpus: $(top_srcdir)/tests/fuzz/mkcorpus.c \
		$(top_srcdir)/tests/unit/mqtt_testlib.c libpromptmq.a
	$(CC) $(AM_CPPFLAGS) $(FUZZ_CPPFLAGS) $(CFLAGS) -o $@ \
		$(top_srcdir)/tests/fuzz/mkcorpus.c \
		$(top_srcdir)/tests/unit/mqtt_testlib.c libpromptmq.a

fuzz-corpus: mkcorpus
	rm -f $(top_srcdir)/tests/fuzz/corpus/*
	./mkcorpus $(top_srcdir)/tests/fuzz/corpus

.PHONY: fuzz fuzz-run fuzz-corpus
