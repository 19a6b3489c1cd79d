#!/usr/bin/env bash
# Smoke check of the loopback e2e cluster: proves the harness, not the operator.
#
#   e2e/cluster/smoke.sh          check the running cluster (KUBECONFIG_E2E, else
#                                 <repo>/.cluster/kubeconfig); leaves it running
#   e2e/cluster/smoke.sh --down   afterwards run `cluster.sh down` and verify that no
#                                 process of the cluster's binaries is left
#
# Checks: API/version and node; garbage collection of an owned ConfigMap; a
# Deployment's pod scheduled onto the kwok node and Running/Ready; PodSecurity
# refusing a privileged pod in an enforce=restricted namespace (and admitting a
# compliant one); server-side apply of a CRD, `kubectl explain` on it and a
# custom object; a helm install/uninstall of a local chart.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CLUSTER="$HERE/cluster.sh"
DOWN=0
[[ "${1:-}" == "--down" ]] && DOWN=1

BIN="$("$CLUSTER" bin-dir)"
KC="${KUBECONFIG_E2E:-$("$CLUSTER" kubeconfig)}"
if [[ "${THV_E2E_USE_EXISTING:-}" == 1 ]]; then KC="${KUBECONFIG:-$HOME/.kube/config}"; fi
KUBECTL="$BIN/kubectl"
HELM="$BIN/helm"
[[ -x "$KUBECTL" ]] || { echo "smoke: kubectl not built; run: $CLUSTER build" >&2; exit 1; }
[[ -f "$KC" ]] || { echo "smoke: no kubeconfig at $KC; run: $CLUSTER up" >&2; exit 1; }

k() { "$KUBECTL" --kubeconfig "$KC" "$@"; }
SUFFIX="$$-$RANDOM"
NS="thv-smoke-$SUFFIX"
NS_RESTRICTED="thv-smoke-restricted-$SUFFIX"
CRD=widgets.smoke.thv.test
TMP="$(mktemp -d)"
PASSED=0
FAILED=0

cleanup() {
  k delete namespace "$NS" "$NS_RESTRICTED" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  k delete crd "$CRD" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT

step() { printf '\n=== %s\n' "$*"; }
ok() { printf 'ok: %s\n' "$*"; PASSED=$((PASSED + 1)); }
fail() { printf 'FAIL: %s\n' "$*" >&2; FAILED=$((FAILED + 1)); }

# retry SECONDS CMD...: run CMD every second until it succeeds.
retry() {
  local t=$1; shift
  local end=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < end)) || return 1
    sleep 1
  done
}

wait_sa() { retry 60 k get serviceaccount default -n "$1"; }

step "API server and nodes"
k version
k get nodes -o wide
if k get nodes -o jsonpath='{.items[*].status.conditions[?(@.type=="Ready")].status}' | grep -q True; then
  ok "a node is Ready"
else
  fail "no Ready node"
fi

step "namespace $NS"
k create namespace "$NS"
wait_sa "$NS" && ok "namespace created, default ServiceAccount present" || fail "no default ServiceAccount in $NS"

step "garbage collection (ownerReference between ConfigMaps)"
k -n "$NS" create configmap gc-owner --from-literal=role=owner
OWNER_UID="$(k -n "$NS" get configmap gc-owner -o jsonpath='{.metadata.uid}')"
cat >"$TMP/child.yaml" <<EOF
apiVersion: v1
kind: ConfigMap
metadata:
  name: gc-child
  namespace: $NS
  ownerReferences:
  - apiVersion: v1
    kind: ConfigMap
    name: gc-owner
    uid: $OWNER_UID
data:
  role: child
EOF
k apply -f "$TMP/child.yaml"
k -n "$NS" delete configmap gc-owner
gone() { ! k -n "$NS" get configmap gc-child >/dev/null 2>&1; }
if retry 60 gone; then ok "owned ConfigMap collected after its owner was deleted"; else fail "gc-child still exists 60s after its owner was deleted"; fi

step "Deployment -> ReplicaSet -> Pod scheduled onto the kwok node, Running and Ready"
cat >"$TMP/deploy.yaml" <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: smoke
  namespace: $NS
spec:
  replicas: 1
  selector:
    matchLabels: {app: smoke}
  template:
    metadata:
      labels: {app: smoke}
    spec:
      containers:
      - name: app
        image: registry.k8s.io/pause:3.10
EOF
k apply -f "$TMP/deploy.yaml"
if k -n "$NS" rollout status deployment/smoke --timeout=120s; then
  k -n "$NS" get pods -o wide
  PHASE="$(k -n "$NS" get pods -l app=smoke -o jsonpath='{.items[0].status.phase}')"
  READY="$(k -n "$NS" get pods -l app=smoke -o jsonpath='{.items[0].status.conditions[?(@.type=="Ready")].status}')"
  NODE="$(k -n "$NS" get pods -l app=smoke -o jsonpath='{.items[0].spec.nodeName}')"
  if [[ "$PHASE" == Running && "$READY" == True && -n "$NODE" ]]; then
    ok "pod Running/Ready on node $NODE"
  else
    fail "pod phase=$PHASE ready=$READY node=$NODE"
  fi
else
  fail "deployment did not roll out"
  k -n "$NS" get deploy,rs,pods -o wide || true
  k -n "$NS" get events || true
fi

step "PodSecurity: privileged pod refused in an enforce=restricted namespace"
k create namespace "$NS_RESTRICTED"
k label namespace "$NS_RESTRICTED" pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/enforce-version=latest
wait_sa "$NS_RESTRICTED" || true
cat >"$TMP/priv.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: privileged
  namespace: $NS_RESTRICTED
spec:
  containers:
  - name: app
    image: registry.k8s.io/pause:3.10
    securityContext:
      privileged: true
EOF
if k apply -f "$TMP/priv.yaml" >"$TMP/priv.out" 2>&1; then
  fail "privileged pod was admitted into a restricted namespace"
elif grep -q 'violates PodSecurity "restricted' "$TMP/priv.out"; then
  ok "refused: $(grep -o 'violates PodSecurity.*' "$TMP/priv.out" | head -1 | cut -c1-160)..."
else
  fail "privileged pod refused for another reason: $(cat "$TMP/priv.out")"
fi
cat >"$TMP/restricted.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: compliant
  namespace: $NS_RESTRICTED
spec:
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    seccompProfile: {type: RuntimeDefault}
  containers:
  - name: app
    image: registry.k8s.io/pause:3.10
    securityContext:
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL]}
EOF
if k apply -f "$TMP/restricted.yaml" && k -n "$NS_RESTRICTED" wait pod/compliant --for=condition=Ready --timeout=60s; then
  ok "restricted-compliant pod admitted and Ready"
else
  fail "restricted-compliant pod not admitted/Ready"
fi

step "CRD: server-side apply, explain, custom object"
cat >"$TMP/crd.yaml" <<EOF
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: $CRD
spec:
  group: smoke.thv.test
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        description: A Widget proves the e2e harness serves CRDs.
        properties:
          spec:
            type: object
            description: Desired state of the widget.
            properties:
              size:
                type: integer
                minimum: 1
                description: Size of the widget in furlongs.
EOF
k apply --server-side --field-manager=thv-smoke -f "$TMP/crd.yaml"
k wait --for=condition=Established "crd/$CRD" --timeout=60s
explain() { k explain widgets.spec --api-version=smoke.thv.test/v1 >"$TMP/explain.out" 2>&1 && grep -q 'furlongs' "$TMP/explain.out"; }
if retry 60 explain; then
  cat "$TMP/explain.out"
  ok "kubectl explain shows the CRD schema"
else
  fail "kubectl explain widgets.spec: $(cat "$TMP/explain.out")"
fi
cat >"$TMP/widget.yaml" <<EOF
apiVersion: smoke.thv.test/v1
kind: Widget
metadata: {name: w1, namespace: $NS}
spec: {size: 3}
EOF
if k apply --server-side --field-manager=thv-smoke -f "$TMP/widget.yaml"; then ok "custom object applied"; else fail "custom object apply"; fi
sed 's/size: 3/size: 0/' "$TMP/widget.yaml" >"$TMP/widget-bad.yaml"
if k apply --server-side --field-manager=thv-smoke -f "$TMP/widget-bad.yaml" >"$TMP/bad.out" 2>&1; then
  fail "schema validation did not reject size: 0"
else
  ok "schema validation rejected size: 0"
fi

step "helm install/uninstall of a local chart"
mkdir -p "$TMP/chart/templates"
cat >"$TMP/chart/Chart.yaml" <<EOF
apiVersion: v2
name: smoke
version: 0.1.0
kubeVersion: ">=1.36.0-0"
EOF
cat >"$TMP/chart/templates/cm.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-cm
data:
  kube: {{ .Capabilities.KubeVersion.Version | quote }}
EOF
export HELM_CACHE_HOME="$TMP/helm/cache" HELM_CONFIG_HOME="$TMP/helm/config" HELM_DATA_HOME="$TMP/helm/data"
if "$HELM" --kubeconfig "$KC" install smoke "$TMP/chart" -n "$NS" --wait --timeout 60s &&
  [[ "$(k -n "$NS" get configmap smoke-cm -o jsonpath='{.data.kube}')" == v1.36.* ]] &&
  "$HELM" --kubeconfig "$KC" uninstall smoke -n "$NS"; then
  ok "helm $("$HELM" version --short) installed and uninstalled a chart"
else
  fail "helm install/uninstall"
fi

if k get node thv-node >/dev/null 2>&1; then
  step "a pod runs for real on the real node (thv-node)"
  k create namespace "$NS-real" >/dev/null
  k annotate namespace "$NS-real" scheduler.alpha.kubernetes.io/node-selector=type=real \
    'scheduler.alpha.kubernetes.io/defaultTolerations=[{"key":"thv-e2e/real-node","operator":"Exists","effect":"NoSchedule"}]' >/dev/null
  wait_sa "$NS-real" || true
  # The pause image is always there: a real process in a real sandbox.
  k -n "$NS-real" run real --image=localhost/thv-e2e/pause:1 --image-pull-policy=Never --restart=Never >/dev/null
  if k -n "$NS-real" wait --for=condition=Ready pod/real --timeout=60s >/dev/null &&
    [[ "$(k -n "$NS-real" get pod real -o jsonpath='{.spec.nodeName}')" == thv-node ]] &&
    [[ "$(k -n "$NS-real" get pod real -o jsonpath='{.status.podIP}')" == 10.244.0.* ]]; then
    ok "pod Running on thv-node with an IP on the bridge"
  else
    fail "pod on the real node: $(k -n "$NS-real" get pod real -o wide 2>&1 | tail -1)"
  fi
  k delete namespace "$NS-real" --wait=false >/dev/null
fi

if [[ $DOWN == 1 ]]; then
  step "down leaves no process behind"
  trap - EXIT
  cleanup
  "$CLUSTER" down
  LEFT="$(for p in /proc/[0-9]*; do e="$(readlink "$p/exe" 2>/dev/null)" || continue; [[ "$e" == "$BIN/"* ]] && echo "${p#/proc/} $e"; done || true)"
  if [[ -z "$LEFT" ]]; then ok "no process of $BIN is running"; else fail "still running: $LEFT"; fi
  # The real node's traces (down itself also checks these and fails on any).
  NODE_LEFT="$( { ip -o link show thv0 2>/dev/null; grep -E ' /run/thv-e2e| [^ ]*/\.cluster/node' /proc/self/mountinfo;
    iptables-save 2>/dev/null | grep -E 'KUBE-|THV-E2E'; ls -d /sys/fs/cgroup/*/kubepods 2>/dev/null; } | head -5 || true)"
  if [[ -z "$NODE_LEFT" ]]; then ok "no bridge, mount, iptables rule or cgroup of the real node is left"; else fail "real node left: $NODE_LEFT"; fi
fi

echo
echo "smoke: $PASSED passed, $FAILED failed"
[[ $FAILED == 0 ]]
