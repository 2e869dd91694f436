# man/ - manual pages.  promptmqd.8 is written by hand; promptmq.conf.5
# is generated from the option table by optdoc and checked in, like
# docs/configuration.md: `make docs` writes both again, and `make check`
# (docs/check-configuration.sh) fails while either differs from the
# table.
dist_man_MANS = man/promptmqd.8 man/promptmq.conf.5 \
	man/promptmq-passwd.1 man/promptmq-waldump.1 man/promptmqctl.8

TESTS += man/check-man.sh
dist_check_SCRIPTS += man/check-man.sh
