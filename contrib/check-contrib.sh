#!/bin/sh
# check-contrib.sh - lint contrib/ with whatever tools are installed:
#
# - sh -n: the init script parses (always);
# - shellcheck: the init script, its defaults file, this script, the
#   Debian maintainer scripts and the version check;
# - systemd-analyze verify: the unit, with the build's promptmqd in place
#   of /usr/sbin/promptmqd and the man pages of man/ for its
#   Documentation= lines;
# - logrotate -d: the logrotate file, on a scratch directory and as the
#   current user;
# - promtool check rules: the Prometheus alerting rules; python3: the
#   Grafana dashboard is JSON;
# - always: every metric the rules and the dashboard name is one the
#   broker exports (common/metrics.h, metrics/metrics.c).
#
# A missing tool is reported and its check skipped: the build never
# depends on them (apt-get install shellcheck systemd logrotate).
set -eu

src=${PMQ_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
build=${PMQ_BUILDDIR:-$src/build}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pmq-contrib.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failed=0

fail() {
	echo "FAIL: $*" >&2
	failed=1
}

skip() {
	echo "skipped: $* is not installed"
}

sh -n "$src/contrib/init.d/promptmq" || fail "contrib/init.d/promptmq does not parse"

if command -v shellcheck >/dev/null 2>&1; then
	# debian/ is in the git tree only, not in the release tarball
	more=
	[ -f "$src/debian/postinst" ] && more="debian/postinst debian/postrm"
	# shellcheck disable=SC2086
	(cd "$src" && shellcheck -x -s sh contrib/init.d/promptmq \
		contrib/default/promptmq contrib/check-contrib.sh \
		tests/packaging/check-version.sh $more) ||
		fail "shellcheck"
else
	skip shellcheck
fi

if command -v systemd-analyze >/dev/null 2>&1; then
	mkdir -p "$tmp/unit" "$tmp/man/man5" "$tmp/man/man8"
	ln -s "$src/man/promptmqd.8" "$tmp/man/man8/promptmqd.8"
	ln -s "$src/man/promptmq.conf.5" "$tmp/man/man5/promptmq.conf.5"
	sed "s|/usr/sbin/promptmqd|$build/promptmqd|g" \
		"$src/contrib/systemd/promptmq.service" >"$tmp/unit/promptmq.service"
	if ! out=$(MANPATH="$tmp/man" systemd-analyze verify \
		"$tmp/unit/promptmq.service" 2>&1) || [ -n "$out" ]; then
		printf '%s\n' "$out" >&2
		fail "systemd-analyze verify contrib/systemd/promptmq.service"
	fi
else
	skip systemd-analyze
fi

if command -v logrotate >/dev/null 2>&1; then
	mkdir -p "$tmp/log"
	touch "$tmp/log/promptmq.log"
	sed -e "s|/var/log/promptmq|$tmp/log|" \
		-e "s|/run/promptmqd.pid|$tmp/promptmqd.pid|" \
		-e "s|su promptmq promptmq|su $(id -un) $(id -gn)|" \
		"$src/contrib/logrotate/promptmq" >"$tmp/logrotate.conf"
	if ! out=$(logrotate -d -s "$tmp/logrotate.state" "$tmp/logrotate.conf" 2>&1) ||
		printf '%s\n' "$out" | grep -q '^error:'; then
		printf '%s\n' "$out" >&2
		fail "logrotate -d contrib/logrotate/promptmq"
	fi
else
	skip logrotate
fi

if command -v promtool >/dev/null 2>&1; then
	promtool check rules "$src/contrib/prometheus/promptmq-alerts.yml" \
		>"$tmp/promtool.out" 2>&1 || {
		cat "$tmp/promtool.out" >&2
		fail "promtool check rules contrib/prometheus/promptmq-alerts.yml"
	}
else
	skip promtool
fi

if command -v python3 >/dev/null 2>&1; then
	python3 -m json.tool "$src/contrib/grafana/promptmq-dashboard.json" \
		>/dev/null || fail "contrib/grafana/promptmq-dashboard.json is not JSON"
else
	skip python3
fi

# the families the broker exports, then every name the files use
grep -oh '"promptmq_[a-z_]*"' "$src/common/metrics.h" "$src/common/metrics.c" \
	"$src/metrics/metrics.c" | tr -d '"' | sort -u >"$tmp/exported"
echo promptmq_build_info >>"$tmp/exported"
grep -oh 'promptmq_[a-z_]*' "$src/contrib/prometheus/promptmq-alerts.yml" \
	"$src/contrib/grafana/promptmq-dashboard.json" |
	sed -e 's/_bucket$//' -e 's/_sum$//' -e 's/_count$//' | sort -u |
	while read -r name; do
		grep -qx "$name" "$tmp/exported" || echo "$name"
	done >"$tmp/unknown"
if [ -s "$tmp/unknown" ]; then
	fail "contrib/ names metrics the broker does not export: $(tr '\n' ' ' <"$tmp/unknown")"
fi

exit "$failed"
