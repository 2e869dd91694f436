#!/bin/sh
# check-man.sh - the manual pages render without a warning (groff -ww);
# skipped where groff is not installed.
set -eu

if ! command -v groff >/dev/null 2>&1; then
	echo "skipped: groff is not installed"
	exit 77
fi
status=0
for page in man/promptmqd.8 man/promptmq.conf.5 man/promptmq-passwd.1 \
    man/promptmq-waldump.1 man/promptmqctl.8; do
	out=$(groff -man -Tutf8 -ww -z "$PMQ_SRCDIR/$page" 2>&1) || status=1
	if [ -n "$out" ]; then
		printf '%s: %s\n' "$page" "$out" >&2
		status=1
	fi
done
exit $status
