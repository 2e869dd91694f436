# docs/ - documentation shipped with the source.
EXTRA_DIST += docs/protocol.md docs/fuzzing.md
