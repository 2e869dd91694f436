# docs/ - documentation generated from the sources.
#
# docs/configuration.md and man/promptmq.conf.5 are generated from the
# option table (common/options.def) by optdoc and checked in, so they
# read well on the web and in the tarball.  `make docs` writes them
# again; `make check` fails while a checked-in copy differs from what the
# table says.
noinst_PROGRAMS += optdoc
optdoc_SOURCES = common/options_doc.c
optdoc_LDADD = $(PMQ_LIBS)

EXTRA_DIST += docs/configuration.md

docs: optdoc$(EXEEXT)
	$(AM_V_GEN)./optdoc$(EXEEXT) markdown >configuration.md.tmp && \
	    mv -f configuration.md.tmp $(srcdir)/docs/configuration.md && \
	    ./optdoc$(EXEEXT) man >promptmq.conf.5.tmp && \
	    mv -f promptmq.conf.5.tmp $(srcdir)/man/promptmq.conf.5

TESTS += docs/check-configuration.sh
dist_check_SCRIPTS += docs/check-configuration.sh
CLEANFILES += configuration.md.tmp configuration.md.generated \
	promptmq.conf.5.tmp promptmq.conf.5.generated

.PHONY: docs

# Reference documents shipped with the source.
EXTRA_DIST += docs/wal-format.md docs/architecture.md docs/benchmarks.md \
	docs/protocol.md docs/fuzzing.md docs/mosquitto.md docs/security.md \
	docs/packaging.md docs/operations.md docs/conformance.md
