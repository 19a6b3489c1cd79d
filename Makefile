# ToolHive in Rust: build, test and generate.
# `make test` is the one command CI runs (see .ci/run); `make help` lists the targets.

CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: help build test unit e2e chaos images images-test peers config demo demo-down demo-check bench-operator bench-k8s bench-vs-toolhive lint fmt fmt-check clippy crds bench bench-runconfig

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

build: ## Build every crate (debug)
	$(CARGO) build --workspace --all-targets --locked

test: lint unit e2e demo-check ## Everything CI checks: formatting, clippy, unit/drift tests, e2e on a real control plane, the demo
	@echo "make test: all checks passed"

unit: ## Unit, schema and CRD-drift tests (no cluster)
	$(CARGO) test --workspace --locked --exclude e2e

e2e: images-test cluster-up peers ## End-to-end tests on the local cluster with its real node (or KUBECONFIG with THV_E2E_USE_EXISTING=1)
	$(CLUSTER_SH) load-images
	$(CARGO) test --locked -p e2e

chaos: images-test cluster-up ## Faults, load and attacks on real pods (part of make e2e): one table row per scenario, nothing lost (docs/reliability.md)
	$(CLUSTER_SH) load-images
	$(CARGO) test --locked -p e2e --test chaos -- --nocapture

images: ## Container images of thv-operator, thv-proxyrunner and the test-only mcp-fixture, with no container engine (THV_IMAGES_LOAD=kind|k3d loads them into that cluster)
	scripts/images.sh

images-test: ## The same images from the debug binaries the tests build (what make e2e imports into the real node)
	THV_IMAGES_PROFILE=debug scripts/images.sh

peers: ## Install the non-Rust MCP peers of the proxy e2e tests (e2e/peers: npm and PyPI, pinned)
	scripts/peers.sh >/dev/null

demo: ## Run the operator on a local control plane with examples/ applied; Ctrl-C cleans up
	scripts/demo.sh

demo-down: ## Stop what make demo started
	scripts/demo-down.sh

demo-check: ## make demo, non-interactive: print the objects, then clean up
	THV_DEMO_ONESHOT=1 scripts/demo.sh

lint: fmt-check clippy ## Formatting check and clippy with warnings as errors

fmt: ## Format the code
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

bench: bench-runconfig bench-operator bench-webhook bench-proxy bench-k8s ## Every benchmark (prints numbers; not pass/fail)

BENCH_SERVERS ?= 1000
bench-operator: cluster-up ## Apply BENCH_SERVERS MCPServers; seconds to converge, objects/s, operator peak RSS
	$(CARGO) build --locked --release -p thv-operator
	$(CARGO) run --locked --release -p e2e --bin bench_operator -- $(BENCH_SERVERS)

BENCH_WEBHOOK_RATE ?= 500
BENCH_WEBHOOK_SECONDS ?= 30
bench-webhook: ## Admission webhook at BENCH_WEBHOOK_RATE reviews/s over loopback TLS; server-side p50/p99 (target p99 <= 2 ms)
	$(CARGO) run --locked --release -p thv-operator --example bench_webhook -- $(BENCH_WEBHOOK_RATE) $(BENCH_WEBHOOK_SECONDS)

BENCH_K8S_SECONDS ?= 10
bench-k8s: cluster-up ## The Kubernetes path on the real node: apply->Ready, latency p50/p99 (c=1) and throughput (c=32) through proxy pod + attach vs the same server direct, proxy RSS idle and with 100 sessions
	scripts/images.sh
	$(CLUSTER_SH) load-images
	$(CARGO) run --locked --release -p e2e --bin bench_k8s -- $(BENCH_K8S_SECONDS)

BENCH_ROUNDS ?= 3
bench-vs-toolhive: cluster-up ## ToolHive's operator and proxy side by side with ours (HTTP proxy, stdio on the real node, apply->served on real pods, operator at scale), alternating, BENCH_ROUNDS rounds: medians and ours/theirs (docs/performance.md)
	e2e/cluster/toolhive.sh build
	e2e/cluster/toolhive.sh image
	scripts/images.sh
	$(CLUSTER_SH) load-images
	eval "$$(e2e/cluster/toolhive.sh env)" && $(CLUSTER_SH) load-images "$$TOOLHIVE_IMAGES"
	$(CARGO) build --locked --release -p thv-operator -p thv-proxyrunner -p mcp-fixture
	$(CARGO) build --locked --release -p e2e --bin bench_vs_toolhive
	eval "$$(e2e/cluster/toolhive.sh env)" && BENCH_ROUNDS=$(BENCH_ROUNDS) BENCH_SERVERS=$(BENCH_SERVERS) target/release/bench_vs_toolhive

BENCH_PROXY_SECONDS ?= 5
bench-proxy: ## Proxy cost: direct vs proxied latency/throughput (c=1, c=32), stdio bridge rate, RSS per idle session
	$(CARGO) build --locked --release -p thv-proxyrunner -p mcp-fixture --bins --examples
	target/release/examples/bench_proxy $(BENCH_PROXY_SECONDS)

bench-runconfig: ## Validation latency of a full RunConfig with 50 Cedar policies (target <= 200 us)
	$(CARGO) bench --locked -p runconfig --bench validate

crds: ## Regenerate CRD YAML (charts/, config/) and docs/api-reference.md from api/, then config/ from the chart
	$(CARGO) run --quiet --locked -p crd-gen -- --root .
	scripts/gen-config.sh

config: ## Regenerate config/{rbac,manager,webhook,default} (kustomize) from the chart (after changing charts/toolhive)
	scripts/gen-config.sh

# The real control plane (e2e/cluster) adds cluster-up, cluster-down and friends.
-include e2e/cluster/cluster.mk

# Fuzzing (cargo-fuzz, nightly toolchain): `cargo install cargo-fuzz` once.
FUZZ_SECONDS ?= 600
.PHONY: fuzz-runconfig
fuzz-runconfig: ## Fuzz runconfig::from_json + validate for FUZZ_SECONDS (default 600)
	mkdir -p fuzz/corpus/runconfig_from_json
	cd fuzz && cargo +nightly fuzz run runconfig_from_json corpus/runconfig_from_json seeds/runconfig \
		-- -dict=runconfig.dict -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096

.PHONY: fuzz-attach
fuzz-attach: ## Fuzz what a stdio server's attach stream carries (wiring pings, the bridge's routing) for FUZZ_SECONDS
	mkdir -p fuzz/corpus/attach_stream
	cd fuzz && cargo +nightly fuzz run attach_stream corpus/attach_stream seeds/attach_stream \
		-- -dict=attach.dict -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096

.PHONY: fuzz-session-routing
fuzz-session-routing: ## Fuzz session routing to pods (Mcp-Session-Id headers, ?sessionId= queries, pod changes) for FUZZ_SECONDS
	mkdir -p fuzz/corpus/session_routing
	cd fuzz && cargo +nightly fuzz run session_routing corpus/session_routing seeds/session_routing \
		-- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096

.PHONY: fuzz-admission bench-webhook
fuzz-admission: ## Fuzz the admission webhook handler (parse, dispatch, check) for FUZZ_SECONDS (default 600)
	mkdir -p fuzz/corpus/admission
	cd fuzz && cargo +nightly fuzz run admission corpus/admission seeds/admission \
		-- -dict=admission.dict -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 -max_len=65536
