#!/usr/bin/env bash
# Loopback Kubernetes control plane for the end-to-end tests (no Docker needed).
#
#   e2e/cluster/cluster.sh build     build etcd, kube-apiserver, kube-controller-manager,
#                                    kube-scheduler, kwok, kubectl, helm (once; cached)
#   e2e/cluster/cluster.sh build-node  build only containerd, runc shim, CNI plugins, pause, thv-image
#   e2e/cluster/cluster.sh up        build if needed, start the cluster (reuses a healthy one)
#   e2e/cluster/cluster.sh up --foreground   same, stay attached; Ctrl-C stops everything
#   e2e/cluster/cluster.sh load-images [DIR]  import image archives into the running real node
#   e2e/cluster/cluster.sh down      stop every component by PID, verify, remove state
#   e2e/cluster/cluster.sh status    show components and health
#   e2e/cluster/cluster.sh restart --components etcd,kube-apiserver [--signal KILL|TERM] [--down 2s]
#                                    kill components and start them again as they ran
#   e2e/cluster/cluster.sh bin-dir   print the directory holding kubectl and helm
#   e2e/cluster/cluster.sh kubeconfig  print the kubeconfig path
#   e2e/cluster/cluster.sh env       print shell exports (eval "$(e2e/cluster/cluster.sh env)")
#
# Environment:
#   THV_E2E_CACHE        cache root (default ~/.cache/thv-e2e); binaries go to
#                        $THV_E2E_CACHE/k8s-v1.36.3/bin
#   THV_E2E_STATE_DIR    state dir (default <repo>/.cluster)
#   THV_E2E_USE_EXISTING=1  don't start anything: up/down are no-ops and the tests
#                        use $KUBECONFIG (kind, k3d, a real cluster...)
#   THV_E2E_NODES        number of kwok fake nodes (default 1)
#   GO                   go command (default: go on PATH, else /usr/local/go/bin/go)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"

# Must match k8s.io/kubernetes in tools/go.mod (and the k8s-openapi v1_36
# feature on the Rust side).
K8S_VERSION=v1.36.3
HELM_VERSION=v3.21.4
# Bump when the build recipe below changes, to invalidate cached binaries.
BUILD_RECIPE=2

CACHE="${THV_E2E_CACHE:-${HOME:-/tmp}/.cache/thv-e2e}"
ROOT="$CACHE/k8s-$K8S_VERSION"
BIN="$ROOT/bin"
STATE="${THV_E2E_STATE_DIR:-$REPO/.cluster}"
KWOK_CONFIG="$ROOT/kwok/kwok.yaml"
TOOLS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok kubectl helm kubelet kube-proxy)
# The real node's container runtime and the image packer, from node/go.mod (a
# module of their own: containerd's dependencies need not agree with Kubernetes').
# kube-network-policies (sigs.k8s.io) enforces NetworkPolicy on the real node.
NODE_TOOLS=(containerd containerd-shim-runc-v2 ctr bridge host-local loopback pause thv-image kube-network-policies)

log() { printf 'cluster.sh: %s\n' "$*" >&2; }
die() { printf 'cluster.sh: ERROR: %s\n' "$*" >&2; exit 1; }

find_go() {
  if [[ -n "${GO:-}" ]]; then echo "$GO"; return; fi
  if command -v go >/dev/null 2>&1; then command -v go; return; fi
  if [[ -x /usr/local/go/bin/go ]]; then echo /usr/local/go/bin/go; return; fi
  die "no Go toolchain found (need Go >= 1.26 on PATH or GO=/path/to/go)"
}

go_env() {
  # Build from go.mod/go.sum exactly as committed, with the local toolchain,
  # statically (like the upstream release builds of these binaries).
  export GOTOOLCHAIN=local GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=0
}

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

tools_stamp() {
  local gov; gov="$("$GOCMD" env GOVERSION)"
  { printf 'recipe=%s go=%s\n' "$BUILD_RECIPE" "$gov"; cat "$HERE/tools/go.mod" "$HERE/tools/go.sum" "$HERE/tools/cmd/etcd/main.go"; } | sha256sum | cut -d' ' -f1
}

launcher_stamp() {
  local gov; gov="$("$GOCMD" env GOVERSION)"
  { printf 'go=%s\n' "$gov"; cat "$HERE/launcher/go.mod" "$HERE"/launcher/*.go; } | sha256sum | cut -d' ' -f1
}

tools_fresh() {
  [[ -f "$BIN/.tools.stamp" && "$(cat "$BIN/.tools.stamp")" == "$(tools_stamp)" && -f "$KWOK_CONFIG" ]] || return 1
  local t; for t in "${TOOLS[@]}"; do [[ -x "$BIN/$t" ]] || return 1; done
}

node_stamp() {
  local gov; gov="$("$GOCMD" env GOVERSION)"
  { printf 'recipe=%s go=%s\n' "$BUILD_RECIPE" "$gov"; cat "$HERE/node/go.mod" "$HERE/node/go.sum" "$HERE"/node/cmd/*/*.go; } | sha256sum | cut -d' ' -f1
}

node_tools_fresh() {
  [[ -f "$BIN/.node.stamp" && "$(cat "$BIN/.node.stamp")" == "$(node_stamp)" ]] || return 1
  local t; for t in "${NODE_TOOLS[@]}"; do [[ -x "$BIN/$t" ]] || return 1; done
}

launcher_fresh() {
  [[ -x "$BIN/thv-e2e-cluster" && -f "$BIN/.launcher.stamp" && "$(cat "$BIN/.launcher.stamp")" == "$(launcher_stamp)" ]]
}

with_lock() {
  mkdir -p "$ROOT"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$ROOT/.build.lock"
    flock 9
  fi
}

# Close the lock fd before starting anything long-lived: an inherited fd 9
# would keep the lock held by the cluster processes.
unlock() { exec 9>&-; }

build_tools() {
  tools_fresh && return 0
  local stamp; stamp="$(tools_stamp)"
  local out="$ROOT/bin.partial" blog="$ROOT/logs/build.log"
  mkdir -p "$BIN" "$ROOT/logs" "$(dirname "$KWOK_CONFIG")"
  rm -rf "$out"; mkdir -p "$out"
  # Version stamping as upstream's hack/lib/version.sh does, so /version,
  # kubectl version and helm's capabilities report the real versions.
  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  local ld="-s -w"
  local pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
    ld+=" -X $pkg.gitCommit=module-proxy-$K8S_VERSION"
  done
  ld+=" -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  ld+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor"
  ld+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor"
  log "building Kubernetes $K8S_VERSION tools (${TOOLS[*]}) into $BIN"
  log "  first build takes ~10 minutes on 2 cores; log: $blog"
  local start=$SECONDS rc=0
  (
    cd "$HERE/tools"
    go_env
    # 'tool' = the tool directives of go.mod: upstream main packages of
    # kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok, helm.
    "$GOCMD" build -trimpath -buildvcs=false -tags selinux,notest,grpcnotrace \
      -ldflags "$ld" -o "$out/" tool ./cmd/etcd
  ) >"$blog" 2>&1 || rc=$?
  local missing=() t
  for t in "${TOOLS[@]}"; do [[ -x "$out/$t" ]] || missing+=("$t"); done
  if [[ $rc -ne 0 || ${#missing[@]} -gt 0 ]]; then
    printf 'cluster.sh: ERROR: building %s failed (go build exit %s); log: %s\n--- last 30 lines of %s ---\n' \
      "${missing[*]:-the tools}" "$rc" "$blog" "$blog" >&2
    tail -n 30 "$blog" >&2
    exit 1
  fi
  # kwok's default "fast" stages, taken from the same module version.
  local kdir
  kdir="$(cd "$HERE/tools" && go_env && "$GOCMD" list -m -f '{{.Dir}}' sigs.k8s.io/kwok)"
  {
    local f first=1
    for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
      pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
      [[ $first == 1 ]] || echo '---'
      first=0
      cat "$kdir/kustomize/stage/$f"
    done
  } >"$KWOK_CONFIG.tmp" || die "reading kwok stages from $kdir failed"
  mv -f "$KWOK_CONFIG.tmp" "$KWOK_CONFIG"
  # rename(2) into place: a running cluster keeps its old inodes.
  for t in "${TOOLS[@]}"; do mv -f "$out/$t" "$BIN/$t"; done
  rm -rf "$out"
  echo "$stamp" >"$BIN/.tools.stamp"
  log "built ${TOOLS[*]} in $((SECONDS - start))s"
}

build_node_tools() {
  node_tools_fresh && return 0
  local stamp; stamp="$(node_stamp)"
  local out="$ROOT/node.partial" blog="$ROOT/logs/build-node.log"
  mkdir -p "$BIN" "$ROOT/logs"
  rm -rf "$out"; mkdir -p "$out"
  log "building the real node's runtime (${NODE_TOOLS[*]}) into $BIN; log: $blog"
  local start=$SECONDS rc=0
  (
    cd "$HERE/node"
    go_env
    # containerd, its runc shim, ctr, the CNI plugins and kube-network-policies
    # (tool directives), the pause process and the image packer.
    "$GOCMD" build -trimpath -buildvcs=false -tags no_btrfs,no_devmapper,no_zfs \
      -ldflags '-s -w' -o "$out/" tool ./cmd/pause ./cmd/thv-image &&
      # Its main package is sigs.k8s.io/kube-network-policies/cmd.
      mv "$out/cmd" "$out/kube-network-policies"
  ) >"$blog" 2>&1 || rc=$?
  local missing=() t
  for t in "${NODE_TOOLS[@]}"; do [[ -x "$out/$t" ]] || missing+=("$t"); done
  if [[ $rc -ne 0 || ${#missing[@]} -gt 0 ]]; then
    printf 'cluster.sh: ERROR: building %s failed (go build exit %s); log: %s\n--- last 30 lines ---\n' \
      "${missing[*]:-the node tools}" "$rc" "$blog" >&2
    tail -n 30 "$blog" >&2
    exit 1
  fi
  for t in "${NODE_TOOLS[@]}"; do mv -f "$out/$t" "$BIN/$t"; done
  rm -rf "$out"
  echo "$stamp" >"$BIN/.node.stamp"
  log "built ${NODE_TOOLS[*]} in $((SECONDS - start))s"
}

build_launcher() {
  launcher_fresh && return 0
  local stamp; stamp="$(launcher_stamp)"
  local blog="$ROOT/logs/build-launcher.log"
  mkdir -p "$BIN" "$ROOT/logs"
  if ! (cd "$HERE/launcher" && go_env && "$GOCMD" build -trimpath -buildvcs=false -ldflags '-s -w' \
      -o "$BIN/thv-e2e-cluster.partial" .) >"$blog" 2>&1; then
    printf 'cluster.sh: ERROR: building the launcher (thv-e2e-cluster) failed; log: %s\n' "$blog" >&2
    tail -n 30 "$blog" >&2
    exit 1
  fi
  mv -f "$BIN/thv-e2e-cluster.partial" "$BIN/thv-e2e-cluster"
  echo "$stamp" >"$BIN/.launcher.stamp"
}

build() {
  GOCMD="$(find_go)"
  with_lock
  build_tools
  build_node_tools
  build_launcher
  unlock
  log "binaries: $BIN"
}

launcher() {
  # exec: in the foreground, Ctrl-C goes straight to the launcher, which
  # stops every component it started.
  exec "$BIN/thv-e2e-cluster" "$1" --state "$STATE" --bin "$BIN" "${@:2}"
}

existing() { [[ "${THV_E2E_USE_EXISTING:-}" == 1 ]]; }

cmd="${1:-}"
[[ -n "$cmd" ]] && shift
case "$cmd" in
  build)
    build
    ;;
  build-node)
    # Only the node runtime and the image packer (make images needs thv-image).
    GOCMD="$(find_go)"; with_lock; build_node_tools; unlock
    ;;
  up)
    if existing; then
      log "THV_E2E_USE_EXISTING=1: not starting a local cluster; tests use KUBECONFIG=${KUBECONFIG:-~/.kube/config}"
      exit 0
    fi
    build
    mkdir -p "$STATE"
    # Image archives imported into the real node at start-up (make images writes them).
    launcher up --kwok-config "$KWOK_CONFIG" --kube-version "$K8S_VERSION" \
      --images "${THV_E2E_IMAGES:-$REPO/target/images}" "$@"
    ;;
  load-images)
    # Import image archives (default: what make images wrote) into the running real node.
    dir="${1:-${THV_E2E_IMAGES:-$REPO/target/images}}"
    sock=/run/thv-e2e/containerd.sock
    if existing; then log "THV_E2E_USE_EXISTING=1: load images with THV_IMAGES_LOAD=kind|k3d make images"; exit 0; fi
    if [[ ! -S "$sock" ]]; then log "no real node is running (no $sock): no images to load"; exit 0; fi
    shopt -s nullglob
    archives=("$dir"/*.tar)
    ((${#archives[@]})) || die "no image archives (*.tar) in $dir; run make images"
    for a in "${archives[@]}"; do
      "$BIN/ctr" --address "$sock" --namespace k8s.io images import "$a" >/dev/null || die "importing $a failed"
      log "imported $(basename "$a") into the real node"
    done
    ;;
  down)
    if existing; then log "THV_E2E_USE_EXISTING=1: nothing to stop"; exit 0; fi
    if [[ ! -d "$STATE" ]]; then log "no cluster state in $STATE"; exit 0; fi
    GOCMD="$(find_go)"; with_lock; build_launcher; unlock
    launcher down "$@"
    ;;
  restart)
    if existing; then die "THV_E2E_USE_EXISTING=1: not restarting components of a cluster we did not start"; fi
    GOCMD="$(find_go)"; with_lock; build_launcher; unlock
    launcher restart "$@"
    ;;
  status)
    [[ -x "$BIN/thv-e2e-cluster" ]] || { log "launcher not built yet; no cluster"; exit 3; }
    launcher status "$@"
    ;;
  bin-dir)
    echo "$BIN"
    ;;
  kubeconfig)
    echo "$STATE/kubeconfig"
    ;;
  env)
    printf 'export KUBECONFIG=%q\nexport THV_E2E_BIN=%q\nexport PATH=%q:"$PATH"\n' "$STATE/kubeconfig" "$BIN" "$BIN"
    ;;
  *)
    sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
