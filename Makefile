# infralab: `make demo` and `make test` are the two commands a newcomer needs (README.md).
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

include hack/versions.env

export INFRALAB_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/infralab
export PULUMI_HOME ?= $(INFRALAB_CACHE)/pulumi-home
export PATH := $(CURDIR)/.tools/bin:$(PATH)
export PULUMI_SKIP_UPDATE_CHECK := true
export PULUMI_DIY_BACKEND_NO_LEGACY_WARNING := true
export PULUMI_IGNORE_AMBIENT_PLUGINS := true
# The language host reports the proxmoxve and command plugins too (go.mod); the local stack never
# loads them, and nothing may be downloaded (hack/lab-prepare.sh installs them for the lab stack).
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION := true

GO_MODULES := . policy
TEST_TIMEOUT ?= 40m

.PHONY: help
help: ## list targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s "$$(printf '\t')"

.PHONY: deps
deps: ## install missing Debian packages; check Go
	@hack/deps.sh

.PHONY: tools
tools: deps ## build the pinned toolchain into $(INFRALAB_CACHE) (cold ~32 min on 2 cores, then seconds)
	@hack/tools.sh all

.PHONY: lint
lint: ## gofmt, go vet and shellcheck
	@echo "==> gofmt"; out=$$(gofmt -l $$(git ls-files '*.go')); [ -z "$$out" ] || { echo "gofmt would change: $$out"; exit 1; }
	@for m in $(GO_MODULES); do echo "==> go vet ($$m)"; (cd $$m && go vet ./...); done
	@echo "==> shellcheck"; shellcheck $$(git ls-files '*.sh' .ci/run)

.PHONY: unit
unit: ## tests of both modules; tests that need a built tool fail if it is missing
	@for m in $(GO_MODULES); do echo "==> go test ($$m)"; (cd $$m && INFRALAB_REQUIRE_TOOLS=1 go test -count=1 -timeout $(TEST_TIMEOUT) ./...); done
	@[ "$$(id -u)" = 0 ] || echo "==> note: not root, so the suites that need root (embedded node, node scripts, image runs) were skipped; sudo -E env \"PATH=$$PATH\" make test runs everything, as CI does"

.PHONY: test-tools
test-tools: tools ## tools only the tests use (containerd 2.x for the containerd config check; the previous minor's kube binaries for the upgrade tests; tigera/operator and Calico from their git tags; the box root filesystem; the box registry, etcd and CoreDNS at kubeadm's versions; the CloudNativePG manager and SeaweedFS)
	@hack/tools.sh containerd2 kube-previous calico box box-registry cnpg seaweedfs

.PHONY: test
test: tools test-tools lint unit ## everything CI runs (.ci/run)

.PHONY: demo
demo: tools ## embedded control plane on 127.0.0.1 + `pulumi up` of the local stack with the policy pack
	@hack/demo.sh up

.PHONY: demo-down
demo-down: ## destroy the demo stack and stop the embedded control plane
	@hack/demo.sh down

.PHONY: cluster-up
cluster-up: tools ## only the embedded control plane on 127.0.0.1 (kubeconfig: .infralab/cluster/kubeconfig)
	@go run ./cmd/infralab-env up --dir .infralab/cluster

.PHONY: cluster-down
cluster-down: ## stop the embedded control plane (only the processes it started)
	@go run ./cmd/infralab-env down --dir .infralab/cluster

.PHONY: bench
bench: tools ## pulumi up vs kubectl apply, and program evaluation at 3/30/300 workers (docs/benchmarks.md)
	@hack/bench.sh

BOX_FLAGS ?=
.PHONY: box
box: ## the lab's 3 VMs as real machines on this host (runc + systemd + cloud-init, bridge ilbox0 10.77.0.0/24; docs/box.md)
	@hack/deps.sh && hack/tools.sh box
	@go run ./cmd/infralab-box up $(BOX_FLAGS)

.PHONY: box-down
box-down: ## remove the box: machines, their disks, namespaces, bridge, iptables chain, state
	@go run ./cmd/infralab-box down
