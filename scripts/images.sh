#!/usr/bin/env bash
# make images: container images of thv-operator and thv-proxyrunner (and the test-only
# mcp-fixture), built without a container engine.
#
# Each image is one layer laid out by scripts/image-rootfs.sh: the binary, the C
# runtime it links, CA certificates, the nonroot user 65532. No shell, no package
# manager; runs with a read-only root filesystem. The layer and configuration are packed by thv-image (e2e/cluster/node,
# on go-containerregistry) into an archive that `ctr images import`, `docker load`,
# `kind load image-archive` and `k3d image import` read. The Dockerfile at the
# repository root builds the same images with Docker, Podman or buildah; a test keeps
# the two equal (entrypoint, user, ports, labels, files).
#
# Environment:
#   THV_IMAGES_PROFILE  release (default) or debug: debug packages the binaries the
#                       tests already built (same layout; debug info stripped)
#   THV_IMAGES_DIR      output directory (default target/images)
#   THV_IMAGES_REPO     repository prefix (default ghcr.io/stacklok/toolhive-rs)
#   THV_IMAGES_LOAD     kind or k3d: also load the images into that cluster
#   THV_IMAGES_ONLY     space-separated subset of: operator proxyrunner mcp-fixture
#
# The debug profile (make images-test) also packs a test-only Redis image,
# e2e.local/redis:e2e, from Debian's redis-server: the e2e tests' shared session
# storage on the real node.
set -euo pipefail
cd "$(dirname "$0")/.."

PROFILE="${THV_IMAGES_PROFILE:-release}"
OUT="${THV_IMAGES_DIR:-target/images}"
REPO="${THV_IMAGES_REPO:-ghcr.io/stacklok/toolhive-rs}"
ONLY="${THV_IMAGES_ONLY:-operator proxyrunner mcp-fixture}"
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)"
REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
SOURCE="$(sed -n 's/^repository = "\(.*\)"/\1/p' Cargo.toml | head -n 1)"
# Reproducible layers: every file time is the last commit's.
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"

log() { printf 'images: %s\n' "$*" >&2; }
die() { printf 'images: ERROR: %s\n' "$*" >&2; exit 1; }

# name | package | binary | description | exposed ports
IMAGES=(
  "operator|thv-operator|thv-operator|ToolHive operator: MCPServer and MCPRegistry controllers, admission webhook|8080/tcp 9443/tcp"
  "proxyrunner|thv-proxyrunner|thv-proxyrunner|ToolHive proxy runner: runs an MCP server and proxies MCP traffic through the middleware chain|8080/tcp"
  "mcp-fixture|mcp-fixture|mcp-fixture|Test-only MCP servers (conformance fixture, echo) over stdio and streamable HTTP|8080/tcp"
)

e2e/cluster/cluster.sh build-node >/dev/null
BIN="$(e2e/cluster/cluster.sh bin-dir)"
PACK="$BIN/thv-image"

pkgs=()
for spec in "${IMAGES[@]}"; do
  IFS='|' read -r name pkg _ _ _ <<<"$spec"
  [[ " $ONLY " == *" $name "* ]] && pkgs+=(-p "$pkg")
done
((${#pkgs[@]})) || die "THV_IMAGES_ONLY=$ONLY names no image"
case "$PROFILE" in
  release) cargo build --locked --release "${pkgs[@]}" --bins; TARGET=target/release ;;
  # Built the way `make unit` (cargo test --workspace) builds: a plain `cargo build -p`
  # resolves features without the dev-dependencies and would compile everything again.
  debug) cargo build --locked --workspace --exclude e2e --all-targets -q; TARGET=target/debug ;;
  *) die "THV_IMAGES_PROFILE must be release or debug, not $PROFILE" ;;
esac

mkdir -p "$OUT"
for spec in "${IMAGES[@]}"; do
  IFS='|' read -r name pkg bin desc ports <<<"$spec"
  [[ " $ONLY " == *" $name "* ]] || continue
  root="$(mktemp -d)"
  trap 'rm -rf "$root"' EXIT
  scripts/image-rootfs.sh "$TARGET/$bin" "$root"
  tag="$REPO/$name:$VERSION"
  args=(--rootfs "$root" --tag "$tag" --out "$OUT/$name.tar"
    --entrypoint "/usr/local/bin/$bin" --user 65532:65532 --workdir /home/nonroot
    --env PATH=/usr/local/bin --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
    --label "org.opencontainers.image.title=$pkg"
    --label "org.opencontainers.image.description=$desc"
    --label "org.opencontainers.image.source=$SOURCE"
    --label "org.opencontainers.image.version=$VERSION"
    --label "org.opencontainers.image.revision=$REVISION"
    --label "org.opencontainers.image.licenses=Apache-2.0")
  for p in $ports; do args+=(--expose "$p"); done
  line="$("$PACK" "${args[@]}")"
  rm -rf "$root"
  trap - EXIT
  printf '%s\t%s\t(%s archive)\n' "$line" "$(du -h "$OUT/$name.tar" | cut -f1)" "$OUT/$name.tar"
  case "${THV_IMAGES_LOAD:-}" in
    "") ;;
    kind) kind load image-archive "$OUT/$name.tar" ;;
    k3d) k3d image import "$OUT/$name.tar" ;;
    *) die "THV_IMAGES_LOAD must be kind or k3d, not $THV_IMAGES_LOAD" ;;
  esac
done

# Test-only: Debian's redis-server, laid out as the product images are.
if [[ "$PROFILE" == debug && -z "${THV_IMAGES_ONLY:-}" ]]; then
  redis="$(command -v redis-server || true)"
  [[ -n "$redis" ]] || die "redis-server not found: apt-get install redis-server (the e2e tests' session storage)"

  root="$(mktemp -d)"
  trap 'rm -rf "$root"' EXIT
  scripts/image-rootfs.sh "$redis" "$root"
  line="$("$PACK" --rootfs "$root" --tag e2e.local/redis:e2e --out "$OUT/redis.tar" \
    --entrypoint /usr/local/bin/redis-server --user 65532:65532 --workdir /home/nonroot \
    --env PATH=/usr/local/bin --expose 6379/tcp \
    --label "org.opencontainers.image.title=redis-server (Debian, test-only)")"
  rm -rf "$root"
  trap - EXIT
  printf '%s\t%s\t(%s archive)\n' "$line" "$(du -h "$OUT/redis.tar" | cut -f1)" "$OUT/redis.tar"
fi
