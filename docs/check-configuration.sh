#!/bin/sh
# check-configuration.sh - fail while docs/configuration.md differs from
# what optdoc generates from the option table; `make docs` fixes it.
set -eu

generated="$PMQ_BUILDDIR/configuration.md.generated"
"$PMQ_BUILDDIR/optdoc" markdown >"$generated"
if ! diff -u "$PMQ_SRCDIR/docs/configuration.md" "$generated"; then
	echo "docs/configuration.md is out of date: run 'make docs'" >&2
	exit 1
fi
