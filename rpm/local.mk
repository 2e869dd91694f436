# rpm/ - the RPM spec (configured: it carries AC_INIT's version) and the
# sysusers.d file it installs; debian/ is the Debian package.
EXTRA_DIST += rpm/promptmq.spec.in rpm/promptmq.sysusers rpm/promptmq.rpmlintrc NEWS

# The version is the same in configure.ac, NEWS, debian/changelog, the
# spec and promptmqd -V.
TESTS += tests/packaging/check-version.sh
dist_check_SCRIPTS += tests/packaging/check-version.sh

# Both packages built, linted, and the .deb installed, upgraded, removed
# and purged on this machine (root only).  Not part of `make check`: it
# installs system packages and builds the tree twice more, so
# ./bootstrap test runs it on its own, after the other tests.
PACKAGING_TESTS = tests/packaging/packages.py
EXTRA_DIST += $(PACKAGING_TESTS) tests/packaging/debian-host.rpmlintrc

check-packaging:
	$(MAKE) $(AM_MAKEFLAGS) check TESTS="$(PACKAGING_TESTS)"

.PHONY: check-packaging
