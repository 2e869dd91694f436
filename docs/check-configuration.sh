#!/bin/sh
# check-configuration.sh - fail while docs/configuration.md or
# man/promptmq.conf.5 differs from what optdoc generates from the option
# table; `make docs` fixes both.
set -eu

status=0
for doc in markdown:docs/configuration.md man:man/promptmq.conf.5; do
	format=${doc%%:*}
	file=${doc#*:}
	generated="$PMQ_BUILDDIR/${file##*/}.generated"
	"$PMQ_BUILDDIR/optdoc" "$format" >"$generated"
	if ! diff -u "$PMQ_SRCDIR/$file" "$generated"; then
		echo "$file is out of date: run 'make docs'" >&2
		status=1
	fi
done
exit $status
