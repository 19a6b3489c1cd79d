#!/usr/bin/env bash
# make demo: the operator on a local control plane, with the examples applied.
#
# Uses the cluster KUBECONFIG points at when THV_E2E_USE_EXISTING=1 (kind, k3d, ...);
# otherwise starts the loopback control plane of e2e/cluster (built on first use).
# Installs the CRDs, runs thv-operator on this machine, applies examples/ into the
# namespace toolhive-demo, waits for the objects and prints them. Stays up until
# Ctrl-C, then cleans up. THV_DEMO_ONESHOT=1 cleans up right after printing (CI).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
state=$root/.demo
namespace=${THV_DEMO_NAMESPACE:-toolhive-demo}
metrics_addr=${THV_DEMO_METRICS_ADDR:-127.0.0.1:18080}
webhook_addr=${THV_DEMO_WEBHOOK_ADDR:-127.0.0.1:19443}
mkdir -p "$state"

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

if [[ "${THV_E2E_USE_EXISTING:-}" == 1 ]]; then
  say "using the cluster in KUBECONFIG (${KUBECONFIG:-~/.kube/config})"
  started_cluster=0
else
  # A control plane that was already running (e.g. for the tests) is left running.
  if e2e/cluster/cluster.sh status >/dev/null 2>&1; then started_cluster=0; else started_cluster=1; fi
  say "starting the local control plane (e2e/cluster; the first run builds Kubernetes, ~10 min)"
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

say "installing the CRDs"
kubectl apply --server-side --force-conflicts -f charts/toolhive/crds/
kubectl wait --for=condition=Established --timeout=60s crd -l toolhive.stacklok.dev/auto-migrate-storage-version=true

kubectl create namespace "$namespace" --dry-run=client -o yaml | kubectl apply -f -

say "building and starting thv-operator with its admission webhook (log: .demo/operator.log)"
cargo build --locked --quiet -p thv-operator
# Out of the cluster, the API server reaches the webhook by URL on loopback; the
# configuration is scoped to the demo namespace (--namespace) and removed by demo-down.
target/debug/thv-operator --metrics-addr "$metrics_addr" --namespace "$namespace" \
  --proxy-image "${THV_DEMO_PROXY_IMAGE:-ghcr.io/stacklok/toolhive-rs/proxyrunner:latest}" \
  --webhook --webhook-addr "$webhook_addr" --webhook-url-base "https://$webhook_addr" \
  --webhook-namespace "$namespace" --webhook-configuration-name thv-demo \
  > "$state/operator.log" 2>&1 &
echo $! > "$state/operator.pid"
for _ in $(seq 1 100); do
  curl -fsS "http://$metrics_addr/readyz" >/dev/null 2>&1 && kubectl get validatingwebhookconfiguration thv-demo >/dev/null 2>&1 && break
  kill -0 "$(cat "$state/operator.pid")" 2>/dev/null || { echo "thv-operator exited; last lines of .demo/operator.log:" >&2; tail -20 "$state/operator.log" >&2; exit 1; }
  sleep 0.2
done

say "applying examples/ into namespace $namespace"
# The full example references these Secrets; demo values only.
kubectl -n "$namespace" create secret generic github-token --from-literal=token=demo-token --dry-run=client -o yaml | kubectl apply -f -
kubectl -n "$namespace" create secret generic idp-client --from-literal=client-secret=demo-secret --dry-run=client -o yaml | kubectl apply -f -
kubectl -n "$namespace" apply -f examples/

say "an invalid manifest is refused at apply time (examples/invalid/cedar-unknown-action.yaml)"
if kubectl -n "$namespace" apply -f examples/invalid/cedar-unknown-action.yaml; then
  echo "expected the webhook to refuse it" >&2
  exit 1
fi

say "waiting for the MCPServers to be Ready"
kubectl -n "$namespace" wait --for=jsonpath='{.status.phase}'=Ready mcpserver --all --timeout=120s
if ! kubectl -n "$namespace" wait --for=condition=Synced mcpregistry --all --timeout=60s 2>/dev/null; then
  echo "(the MCPRegistry is not synced: see kubectl -n $namespace describe mcpregistry)"
fi

say "kubectl get mcpservers,mcpregistries,deploy,svc,cm -n $namespace"
kubectl -n "$namespace" get mcpservers,mcpregistries,deploy,svc,cm
say "status of mcpserver/github"
kubectl -n "$namespace" get mcpserver github -o jsonpath='{.status}' | python3 -m json.tool 2>/dev/null || kubectl -n "$namespace" get mcpserver github -o yaml
say "operator metrics: curl http://$metrics_addr/metrics"

if [[ "${THV_DEMO_ONESHOT:-}" == 1 ]]; then
  exit 0
fi
say "demo running; Ctrl-C stops the operator, deletes $namespace$( [[ $started_cluster == 1 ]] && echo ' and stops the control plane')"
wait "$(cat "$state/operator.pid")"
