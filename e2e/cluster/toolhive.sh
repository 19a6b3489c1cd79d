#!/usr/bin/env bash
# ToolHive's own thv-operator and thv-proxyrunner, built from its Go module at a pinned
# version into the harness cache, for `make bench-vs-toolhive` (measured side by side
# with ours; never part of the product).
#
#   e2e/cluster/toolhive.sh build   build them once (cached; ~4 min on 2 cores)
#   e2e/cluster/toolhive.sh image   build (once) an image of its thv-proxyrunner, which
#                                   its operator deploys as the proxy pod, into
#                                   $THV_E2E_CACHE/toolhive-VERSION/images (load it with
#                                   cluster.sh load-images DIR)
#   e2e/cluster/toolhive.sh env     print exports: TOOLHIVE_BIN (the binaries),
#                                   TOOLHIVE_CRDS (its CRD files, from the same module),
#                                   TOOLHIVE_IMAGES and TOOLHIVE_RUNNER_IMAGE (the image)
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

# Its proxy runner as an image, laid out as ToolHive's own (a static binary, CA
# certificates, the nonroot user 65532) and packed by the harness's thv-image: its
# operator deploys the proxy as a pod, so the real node needs the image.
RUNNER_IMAGE="ghcr.io/stacklok/toolhive/proxyrunner:$TOOLHIVE_VERSION"
image() {
  build
  local archive="$OUT/images/proxyrunner.tar"
  if [[ -s "$archive" && "$(cat "$OUT/images/.stamp" 2>/dev/null)" == "$STAMP" ]]; then
    return 0
  fi
  local pack root
  pack="$("$(dirname "${BASH_SOURCE[0]}")/cluster.sh" bin-dir)/thv-image"
  [[ -x "$pack" ]] || "$(dirname "${BASH_SOURCE[0]}")/cluster.sh" build-node >/dev/null
  root="$(mktemp -d)"
  install -d -m 0755 "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/home/nonroot" "$OUT/images"
  install -d -m 1777 "$root/tmp"
  install -m 0755 "$OUT/bin/thv-proxyrunner" "$root/usr/local/bin/thv-proxyrunner"
  install -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"
  "$pack" --rootfs "$root" --tag "$RUNNER_IMAGE" --out "$archive" \
    --entrypoint /usr/local/bin/thv-proxyrunner --user 65532:65532 --workdir /home/nonroot \
    --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt --expose 8080/tcp >&2
  rm -rf "$root"
  echo "$STAMP" >"$OUT/images/.stamp"
}

# The module's directory in the Go module cache (downloaded by the build).
module_dir() {
  (go_env && "$GOCMD" mod download -json "$MODULE@$TOOLHIVE_VERSION") \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'
}

case "${1:-}" in
  build) build ;;
  image) image ;;
  env)
    build
    dir="$(module_dir)"
    [[ -d "$dir/deploy/charts/operator-crds/files/crds" ]] \
      || die "no CRDs in the module at '$dir' (deploy/charts/operator-crds/files/crds)"
    printf 'export TOOLHIVE_BIN=%q\n' "$OUT/bin"
    printf 'export TOOLHIVE_CRDS=%q\n' "$dir/deploy/charts/operator-crds/files/crds"
    printf 'export TOOLHIVE_VERSION=%q\n' "$TOOLHIVE_VERSION"
    printf 'export TOOLHIVE_IMAGES=%q\n' "$OUT/images"
    printf 'export TOOLHIVE_RUNNER_IMAGE=%q\n' "$RUNNER_IMAGE"
    ;;
  module)
    dir="$(module_dir)"
    [[ -d "$dir/deploy/charts/operator-crds/files/crds" ]] \
      || die "downloading $MODULE@$TOOLHIVE_VERSION failed (is the Go module proxy reachable?)"
    printf '%s\n' "$dir"
    ;;
  *) die "usage: $0 build|image|env|module" ;;
esac
