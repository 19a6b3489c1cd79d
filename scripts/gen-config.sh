#!/usr/bin/env bash
# Generates config/{rbac,manager,webhook,default}, the plain manifests for kustomize
# users (`kubectl apply --server-side -k config/default`), from charts/toolhive with its
# default values, so they install exactly what
# `helm install toolhive charts/toolhive -n toolhive-system` installs and cannot drift
# from it (e2e/tests/chart.rs checks). config/crd is crd-gen's (`make crds`).
#
#   scripts/gen-config.sh [OUTPUT_DIR]   default OUTPUT_DIR: config/ of this repository
#
# Environment:
#   HELM   helm binary (default: the e2e harness's, from `e2e/cluster/cluster.sh bin-dir`,
#          else helm on PATH)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/config}"
release=toolhive
namespace=toolhive-system

die() { printf 'gen-config.sh: ERROR: %s\n' "$*" >&2; exit 1; }

helm="${HELM:-$("$root/e2e/cluster/cluster.sh" bin-dir)/helm}"
if [[ ! -x "$helm" ]]; then
  helm="$(command -v helm)" || die "no helm: run e2e/cluster/cluster.sh build, or set HELM"
fi

# Where each chart template goes in config/.
declare -A target=(
  [serviceaccount.yaml]=rbac/service_account.yaml
  [rbac.yaml]=rbac/role.yaml
  [deployment.yaml]=manager/manager.yaml
  [service.yaml]=manager/metrics_service.yaml
  [webhook.yaml]=webhook/webhook.yaml
  # Empty placeholders of the Lease and certificate Secret the operator writes, there
  # so that `helm uninstall` removes them. Applied with kubectl they would fight the
  # operator: a server-side re-apply conflicts on the Secret's data, or, forced, empties it.
  [runtime-state.yaml]=-
)

header="# Generated from charts/toolhive by scripts/gen-config.sh. Do not edit: change the chart and rerun it."

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# CRDs come from config/crd/bases (crd-gen), not from the chart.
"$helm" template "$release" "$root/charts/toolhive" --namespace "$namespace" \
  --set crds.install=false >"$work/rendered.yaml"

# One file per template, without the labels that only make sense for a Helm release.
mkdir "$work/templates"
awk -v dir="$work/templates" '
  /^---$/ { file = ""; next }
  /^# Source: / { sub(/^# Source: [^\/]+\/templates\//, ""); file = dir "/" $0; if (seen[file]++) print "---" > file; next }
  /^ +helm\.sh\/chart: / || /^ +app\.kubernetes\.io\/managed-by: Helm$/ { next }
  file != "" { print > file }
' "$work/rendered.yaml"

rm -rf "$out/rbac" "$out/manager" "$out/webhook" "$out/default"
mkdir -p "$out/rbac" "$out/manager" "$out/webhook" "$out/default"
for rendered in "$work/templates"/*; do
  template="$(basename "$rendered")"
  path="${target[$template]:-}"
  [[ -n "$path" ]] || die "charts/toolhive/templates/$template: say where it goes in config/ (scripts/gen-config.sh)"
  [[ "$path" == - ]] && continue
  { echo "$header"; cat "$rendered"; } >"$out/$path"
done

kustomization() { # folder resource...
  local folder="$1"; shift
  {
    echo "$header"
    printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n'
    printf '  - %s\n' "$@"
  } >"$out/$folder/kustomization.yaml"
}
for folder in rbac manager webhook; do
  mapfile -t files < <(cd "$out/$folder" && ls -- *.yaml)
  kustomization "$folder" "${files[@]}"
done

{
  echo "$header"
  printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n' "$namespace"
} >"$out/default/namespace.yaml"
kustomization default namespace.yaml ../crd ../rbac ../manager ../webhook
