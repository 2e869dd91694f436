# docs/ - reference documents shipped with the source.
EXTRA_DIST += docs/wal-format.md
