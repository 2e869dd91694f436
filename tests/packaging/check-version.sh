#!/bin/sh
# check-version.sh - one version everywhere: AC_INIT in configure.ac (the
# source), the newest entry of NEWS, the upstream part of the newest
# debian/changelog entry, the RPM spec configure made, and what
# `promptmqd -V` prints.
set -eu

src=$PMQ_SRCDIR
build=$PMQ_BUILDDIR
status=0

want=$(sed -n 's/^AC_INIT(\[promptmq\], \[\([^]]*\)\].*/\1/p' "$src/configure.ac")
if [ -z "$want" ]; then
	echo "configure.ac: no AC_INIT([promptmq], [VERSION], ...) line" >&2
	exit 1
fi

differs() {
	printf '%s: version %s, configure.ac says %s\n' "$1" "${2:-(none)}" "$want" >&2
	status=1
}

news=$(awk '/^[0-9][0-9.]* \(/ {print $1; exit}' "$src/NEWS")
[ "$news" = "$want" ] || differs "NEWS (newest entry)" "$news"

deb=$(sed -n '1s/^promptmq (\([^)]*\)).*/\1/p' "$src/debian/changelog")
[ "${deb%-*}" = "$want" ] || differs "debian/changelog (newest entry)" "${deb%-*}"

spec=$(sed -n 's/^Version: *//p' "$build/rpm/promptmq.spec")
[ "$spec" = "$want" ] || differs "rpm/promptmq.spec (Version)" "$spec"
case $(sed -n 's/^\* .* - //p' "$build/rpm/promptmq.spec" | head -n 1) in
"$want"-*) ;;
*) differs "rpm/promptmq.spec (newest %changelog entry)" \
	"$(sed -n 's/^\* .* - //p' "$build/rpm/promptmq.spec" | head -n 1)" ;;
esac

v=$("$build/promptmqd" -V | sed -n 's/^promptmqd \([^ ]*\).*/\1/p')
[ "$v" = "$want" ] || differs "promptmqd -V" "$v"

[ $status -eq 0 ] && echo "version $want everywhere"
exit $status
