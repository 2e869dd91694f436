# man/ - manual pages.  promptmq.conf.5
# is generated from the option table by optdoc and checked in, like
# docs/configuration.md: `make docs` writes both again, and `make check`
# (docs/check-configuration.sh) fails while either differs from the
# table.
dist_man_MANS = man/promptmq.conf.5
