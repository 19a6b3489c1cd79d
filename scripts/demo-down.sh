#!/usr/bin/env bash
# make demo-down: stop what `make demo` started (operator, namespace, control plane).
set -uo pipefail
cd "$(dirname "$0")/.."
state=$PWD/.demo
namespace=${THV_DEMO_NAMESPACE:-toolhive-demo}
if [[ -f "$state/operator.pid" ]]; then
  pid=$(cat "$state/operator.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$state/operator.pid"
fi
bin=$(e2e/cluster/cluster.sh bin-dir 2>/dev/null || true)
[[ -x "$bin/kubectl" ]] && export PATH="$bin:$PATH"
[[ "${THV_E2E_USE_EXISTING:-}" == 1 ]] || export KUBECONFIG=$PWD/.cluster/kubeconfig
# With the operator gone, a Fail-policy webhook would refuse every apply it covers.
kubectl delete validatingwebhookconfiguration thv-demo --ignore-not-found >/dev/null 2>&1 || true
if [[ "$(cat "$state/started-cluster" 2>/dev/null)" == 1 ]]; then
  e2e/cluster/cluster.sh down
else
  kubectl delete namespace "$namespace" --ignore-not-found --wait=false
fi
rm -f "$state/started-cluster"
