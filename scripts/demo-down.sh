#!/usr/bin/env bash
# make demo-down: undo what `make demo` did (the chart, the demo namespace, the cluster
# if the demo started it).
set -uo pipefail
cd "$(dirname "$0")/.."
state=$PWD/.demo
namespace=${THV_DEMO_NAMESPACE:-toolhive-demo}
system=${THV_DEMO_SYSTEM_NAMESPACE:-toolhive-system}
bin=$(e2e/cluster/cluster.sh bin-dir 2>/dev/null || true)
[[ -x "$bin/kubectl" ]] && export PATH="$bin:$PATH"
[[ "${THV_E2E_USE_EXISTING:-}" == 1 ]] || export KUBECONFIG=$PWD/.cluster/kubeconfig
if [[ "$(cat "$state/started-cluster" 2>/dev/null)" == 1 ]]; then
  e2e/cluster/cluster.sh down
else
  # The chart's webhook configuration goes with the release (CRDs are kept).
  helm uninstall toolhive -n "$system" --wait >/dev/null 2>&1 || true
  kubectl delete namespace "$namespace" "$system" --ignore-not-found --wait=false
fi
rm -f "$state/started-cluster"
