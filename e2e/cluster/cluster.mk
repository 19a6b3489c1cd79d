# Loopback Kubernetes cluster for the e2e tests. Include from the repo-root
# Makefile:   include e2e/cluster/cluster.mk
# See e2e/cluster/README.md.

# Directory of this fragment, as the including Makefile sees it (evaluated now,
# while this file is the last one read).
CLUSTER_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
CLUSTER_SH := $(CLUSTER_DIR)/cluster.sh
E2E_REPO_ROOT := $(abspath $(CLUSTER_DIR)/../..)

# Must match K8S_VERSION in cluster.sh and k8s.io/kubernetes in tools/go.mod.
E2E_K8S_VERSION := v1.36.3

# Cache of the built binaries (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kwok, kubectl, helm), reused across runs and checkouts.
THV_E2E_CACHE ?= $(HOME)/.cache/thv-e2e
E2E_BIN := $(THV_E2E_CACHE)/k8s-$(E2E_K8S_VERSION)/bin
E2E_KUBECTL := $(E2E_BIN)/kubectl
E2E_HELM := $(E2E_BIN)/helm

# Cluster state: kubeconfig, certificates, etcd data, logs/, pids/.
THV_E2E_STATE_DIR ?= $(E2E_REPO_ROOT)/.cluster
KUBECONFIG_E2E := $(THV_E2E_STATE_DIR)/kubeconfig

export THV_E2E_CACHE THV_E2E_STATE_DIR

.PHONY: cluster-build cluster-up cluster-up-fg cluster-down cluster-status cluster-smoke cluster-selftest cluster-env

## Build (once, cached in $(E2E_BIN)) the control-plane binaries, kwok, kubectl and helm.
cluster-build:
	$(CLUSTER_SH) build

## Start the loopback cluster in the background (reuses a healthy one); kubeconfig: $(KUBECONFIG_E2E).
cluster-up:
	$(CLUSTER_SH) up

## Start it in the foreground; Ctrl-C stops it.
cluster-up-fg:
	$(CLUSTER_SH) up --foreground

## Stop every component by PID, verify none is left, remove the state (logs are kept).
cluster-down:
	$(CLUSTER_SH) down

cluster-status:
	$(CLUSTER_SH) status

## Harness smoke check against the running cluster (started if needed); leaves it running.
cluster-smoke: cluster-up
	KUBECONFIG_E2E=$(KUBECONFIG_E2E) $(CLUSTER_DIR)/smoke.sh

## Smoke check, then `down`, verifying no process is left behind.
cluster-selftest: cluster-up
	KUBECONFIG_E2E=$(KUBECONFIG_E2E) $(CLUSTER_DIR)/smoke.sh --down

## Print shell exports: eval "$$(make -s cluster-env)"
cluster-env:
	@$(CLUSTER_SH) env
