#!/usr/bin/env bash
# make demo: the operator installed by its Helm chart, running as a real pod, with the
# examples applied.
#
# Starts the local cluster of e2e/cluster (built on first use) with its real node
# (kubelet + containerd), builds the images (scripts/images.sh, no container engine)
# and imports them into the node, `helm install`s charts/toolhive into toolhive-system
# (operator with leader election and its admission webhook, reached through its
# Service), applies examples/ into toolhive-demo and shows what runs. Stays up until
# Ctrl-C, then cleans up. THV_DEMO_ONESHOT=1 cleans up right after printing (CI).
#
# THV_E2E_USE_EXISTING=1 uses the cluster KUBECONFIG points at (kind, k3d): load the
# images into it first (THV_IMAGES_LOAD=kind make images).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
state=$root/.demo
namespace=${THV_DEMO_NAMESPACE:-toolhive-demo}
system=${THV_DEMO_SYSTEM_NAMESPACE:-toolhive-system}
mkdir -p "$state"

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
# Retries a command until it succeeds (for objects that appear a moment later).
# Only the last attempt's errors are shown.
retry() { local n=$1; shift; for _ in $(seq 2 "$n"); do "$@" 2>/dev/null && return 0; sleep 1; done; "$@"; }

if [[ "${THV_E2E_USE_EXISTING:-}" == 1 ]]; then
  say "using the cluster in KUBECONFIG (${KUBECONFIG:-~/.kube/config})"
  started_cluster=0
else
  # A cluster that was already running (e.g. for the tests) is left running.
  if e2e/cluster/cluster.sh status >/dev/null 2>&1; then started_cluster=0; else started_cluster=1; fi
  say "starting the local cluster with a real node (e2e/cluster; the first run builds Kubernetes and containerd, ~10 min)"
  e2e/cluster/cluster.sh up
  export KUBECONFIG=$root/.cluster/kubeconfig
fi
bin=$(e2e/cluster/cluster.sh bin-dir 2>/dev/null || true)
if [[ -x "$bin/kubectl" ]]; then export PATH="$bin:$PATH"; fi
echo "$started_cluster" > "$state/started-cluster"

cleanup() {
  trap - EXIT INT TERM
  say "cleaning up"
  "$root/scripts/demo-down.sh" || true
}
trap cleanup EXIT INT TERM

if [[ "${THV_E2E_USE_EXISTING:-}" != 1 ]]; then
  say "building the images (scripts/images.sh, ${THV_DEMO_IMAGES_PROFILE:-debug} binaries) and importing them into the real node"
  THV_IMAGES_PROFILE=${THV_DEMO_IMAGES_PROFILE:-debug} scripts/images.sh
  e2e/cluster/cluster.sh load-images
fi

# On the local cluster, pods of these namespaces go to the real node (the kwok nodes
# only fake pods); elsewhere the annotations do nothing.
for ns in "$system" "$namespace"; do
  kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  kubectl label namespace "$ns" --overwrite pod-security.kubernetes.io/enforce=restricted >/dev/null
  kubectl annotate namespace "$ns" --overwrite scheduler.alpha.kubernetes.io/node-selector=type=real \
    'scheduler.alpha.kubernetes.io/defaultTolerations=[{"key":"thv-e2e/real-node","operator":"Equal","value":"true","effect":"NoSchedule"}]' >/dev/null
done

say "helm install toolhive charts/toolhive -n $system --set watchNamespace=$namespace"
# --take-ownership: the CRDs may have been applied before (by the tests, or kubectl).
helm upgrade --install toolhive charts/toolhive -n "$system" --set watchNamespace="$namespace" \
  --take-ownership --wait --timeout 180s
kubectl -n "$system" get pods -o wide

say "applying examples/ into namespace $namespace"
# The full example references these Secrets; demo values only.
kubectl -n "$namespace" create secret generic github-token --from-literal=token=demo-token --dry-run=client -o yaml | kubectl apply -f -
kubectl -n "$namespace" create secret generic idp-client --from-literal=client-secret=demo-secret --dry-run=client -o yaml | kubectl apply -f -
# The webhook answers once the operator has issued its certificate and published the CA.
# examples/mcpremoteproxy.yaml fronts a server on the internet, which nothing here may
# reach: the demo points a remote proxy at the fixture below instead.
examples=()
for file in examples/*.yaml; do
  [[ "$file" == examples/mcpremoteproxy.yaml ]] || examples+=(-f "$file")
done
retry 60 kubectl -n "$namespace" apply "${examples[@]}"

say "an invalid manifest is refused at apply time by the webhook in the cluster (examples/invalid/cedar-unknown-action.yaml)"
if kubectl -n "$namespace" apply -f examples/invalid/cedar-unknown-action.yaml; then
  echo "expected the webhook to refuse it" >&2
  exit 1
fi

say "the operator reconciles: RunConfig ConfigMaps, proxy Deployments and Services"
retry 60 kubectl -n "$namespace" get configmap everything-runconfig >/dev/null
kubectl -n "$namespace" wait --for=jsonpath='{.status.observedGeneration}'=1 mcpserver --all --timeout=60s >/dev/null
if ! kubectl -n "$namespace" wait --for=condition=Synced mcpregistry --all --timeout=60s 2>/dev/null; then
  echo "(the MCPRegistry is not synced: see kubectl -n $namespace describe mcpregistry)"
fi
sleep 5
say "kubectl get mcpservers,mcpregistries,deploy,svc,pods -n $namespace"
kubectl -n "$namespace" get mcpservers,mcpregistries,deploy,svc,pods -o wide
say "an MCP server that runs here for real: the test fixture image, over stdio"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
kubectl -n "$namespace" apply -f - <<EOF
apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPServer
metadata:
  name: fixture
spec:
  image: ghcr.io/stacklok/toolhive-rs/mcp-fixture:$version
  transport: stdio
  args: [stdio]
EOF
# The proxy pod applies the server's StatefulSet and attaches to its container; a client
# then talks MCP to the proxy's Service.
mcp() {
  curl -sS -m 10 -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \
    -H 'mcp-protocol-version: 2025-06-18' "$@" "http://$ip:8080/mcp"
}
retry 60 kubectl -n "$namespace" get service mcp-fixture-proxy >/dev/null
ip=$(kubectl -n "$namespace" get service mcp-fixture-proxy -o jsonpath='{.spec.clusterIP}')
init='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"demo","version":"1"}}}'
session=""
for _ in $(seq 1 90); do
  session=$(mcp -D - -o /dev/null -d "$init" 2>/dev/null | tr -d '\r' | sed -n 's/^mcp-session-id: //Ip' || true)
  [[ -n "$session" ]] && break
  sleep 1
done
if [[ -z "$session" ]]; then
  echo "the fixture MCPServer did not answer through its proxy" >&2
  kubectl -n "$namespace" get pods -o wide >&2
  exit 1
fi
mcp -H "mcp-session-id: $session" -d '{"jsonrpc":"2.0","method":"notifications/initialized"}' >/dev/null
say "tools/list through the proxy Service ($ip:8080), answered by the server in pod fixture-0"
# The answer comes as JSON or as an SSE stream; the server (and the proxy) may choose either.
mcp -H "mcp-session-id: $session" -d '{"jsonrpc":"2.0","id":2,"method":"tools/list"}' |
  python3 -c '
import json, sys
body = sys.stdin.read()
lines = [body] if body.lstrip().startswith("{") else [l[5:] for l in body.splitlines() if l.startswith("data:")]
answer = next(m for m in map(json.loads, filter(str.strip, lines)) if m.get("id") == 2)
print("\n".join("  " + t["name"] for t in answer["result"]["tools"]))'

kubectl -n "$namespace" wait --for=jsonpath='{.status.phase}'=Ready mcpserver/fixture --timeout=60s >/dev/null || true

say "an MCPRemoteProxy in front of a server reached by URL (here the fixture's Service, $ip:8080)"
kubectl -n "$namespace" apply -f - <<EOF
apiVersion: toolhive.stacklok.dev/v1beta1
kind: MCPRemoteProxy
metadata:
  name: remote-fixture
spec:
  remoteUrl: http://$ip:8080/mcp
EOF
kubectl -n "$namespace" wait --for=jsonpath='{.status.phase}'=Ready mcpremoteproxy/remote-fixture --timeout=90s >/dev/null || true
say "kubectl get mcpservers,mcpremoteproxies,statefulsets,pods -n $namespace"
kubectl -n "$namespace" get mcpservers,mcpremoteproxies,statefulsets,pods -o wide
cat <<EOF

What you see is real: the operator, the proxies and the MCP server pods run on the node
thv-node. fixture serves: its proxy applied its StatefulSet and attached to its container.
remote-fixture is Ready once the fixture answered initialize through the remote proxy
(TOOLS counts what it lists); nothing else runs for it.
The examples' images (docker.io/mcp/everything, ghcr.io/github/github-mcp-server) cannot
be pulled on a machine without a registry, so their MCP pods wait in ErrImagePull and
those MCPServers are not Ready: their status says ImagePullFailed with the image and the
kubelet's error (kubectl describe mcpserver shows the Events). Where the images can be
pulled they serve the same way, and TOOLS shows what each server lists.
EOF
say "status of mcpserver/fixture"
kubectl -n "$namespace" get mcpserver fixture -o jsonpath='{.status}' | python3 -m json.tool 2>/dev/null || kubectl -n "$namespace" get mcpserver fixture -o yaml
say "operator metrics: kubectl get --raw /api/v1/namespaces/$system/services/thv-operator-metrics:8080/proxy/metrics"

if [[ "${THV_DEMO_ONESHOT:-}" == 1 ]]; then
  exit 0
fi
say "demo running; Ctrl-C uninstalls the chart, deletes $namespace$( [[ $started_cluster == 1 ]] && echo ' and stops the cluster')"
while sleep 3600; do :; done
