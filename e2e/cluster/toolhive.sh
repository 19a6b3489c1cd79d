#!/usr/bin/env bash
# ToolHive's own thv-operator and thv-proxyrunner, built from its Go module at a pinned
# version into the harness cache, for `make bench-vs-toolhive` (measured side by side
# with ours; never part of the product).
#
#   e2e/cluster/toolhive.sh build   build them once (cached; ~4 min on 2 cores)
#   e2e/cluster/toolhive.sh env     print exports: TOOLHIVE_BIN (the binaries) and
#                                   TOOLHIVE_CRDS (its CRD files, from the same module)
#   e2e/cluster/toolhive.sh module  download the module only (no build; seconds) and
#                                   print its directory: the CRDs and example manifests
#                                   the parity test (e2e/tests/toolhive_parity.rs) reads
#
# Environment: THV_E2E_CACHE (default ~/.cache/thv-e2e), GO (default: go on PATH).
set -euo pipefail

# v0.44.0 resolves completely on the module proxy (newer tags need modules it does not
# serve). It needs a newer Go than the harness: the go command fetches that toolchain
# from the module proxy like a module.
TOOLHIVE_VERSION=v0.44.0
TOOLHIVE_GO=go1.27.3
MODULE=github.com/stacklok/toolhive

CACHE="${THV_E2E_CACHE:-${HOME:-/tmp}/.cache/thv-e2e}"
OUT="$CACHE/toolhive-$TOOLHIVE_VERSION"
GOCMD="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
STAMP="version=$TOOLHIVE_VERSION go=$TOOLHIVE_GO cgo=0"

log() { printf 'toolhive.sh: %s\n' "$*" >&2; }
die() { printf 'toolhive.sh: ERROR: %s\n' "$*" >&2; exit 1; }

go_env() {
  # As ToolHive's releases are built: static, no cgo; outside any workspace.
  export GOTOOLCHAIN="$TOOLHIVE_GO" GOWORK=off CGO_ENABLED=0 GOFLAGS=-mod=mod
}

build() {
  if [[ -x "$OUT/bin/thv-operator" && -x "$OUT/bin/thv-proxyrunner" \
        && "$(cat "$OUT/.stamp" 2>/dev/null)" == "$STAMP" ]]; then
    return 0
  fi
  mkdir -p "$OUT/bin"
  log "building ToolHive $TOOLHIVE_VERSION (thv-operator, thv-proxyrunner) into $OUT/bin; log: $OUT/build.log"
  if ! (go_env && GOBIN="$OUT/bin" "$GOCMD" install \
          "$MODULE/cmd/thv-operator@$TOOLHIVE_VERSION" \
          "$MODULE/cmd/thv-proxyrunner@$TOOLHIVE_VERSION") >"$OUT/build.log" 2>&1; then
    tail -20 "$OUT/build.log" >&2
    die "building ToolHive $TOOLHIVE_VERSION failed; log: $OUT/build.log"
  fi
  echo "$STAMP" >"$OUT/.stamp"
}

# The module's directory in the Go module cache (downloaded by the build).
module_dir() {
  (go_env && "$GOCMD" mod download -json "$MODULE@$TOOLHIVE_VERSION") \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'
}

case "${1:-}" in
  build) build ;;
  env)
    build
    dir="$(module_dir)"
    [[ -d "$dir/deploy/charts/operator-crds/files/crds" ]] \
      || die "no CRDs in the module at '$dir' (deploy/charts/operator-crds/files/crds)"
    printf 'export TOOLHIVE_BIN=%q\n' "$OUT/bin"
    printf 'export TOOLHIVE_CRDS=%q\n' "$dir/deploy/charts/operator-crds/files/crds"
    printf 'export TOOLHIVE_VERSION=%q\n' "$TOOLHIVE_VERSION"
    ;;
  module)
    dir="$(module_dir)"
    [[ -d "$dir/deploy/charts/operator-crds/files/crds" ]] \
      || die "downloading $MODULE@$TOOLHIVE_VERSION failed (is the Go module proxy reachable?)"
    printf '%s\n' "$dir"
    ;;
  *) die "usage: $0 build|env|module" ;;
esac
