#!/usr/bin/env bash
# Installs the pinned toolchain into a cache outside the clone (keyed by version, so a fresh
# clone reuses it) and links it into .tools/bin. Each of pulumi, the kubernetes plugin and the
# Kubernetes binaries comes from its official release when that can be downloaded and matches
# the sha256 pinned in hack/versions.env (fetch_release), else it is built from source; either
# way the log says which path it took and why.
#
# Usage: hack/tools.sh [all|pulumi|kubernetes-plugin|kube|kube-previous|etcd|langhost|node|containerd2|calico|cnpg|seaweedfs|box|box-registry|box-packages|lab-plugins]...
# cnpg and seaweedfs (not part of all: only the database tests use them): the CloudNativePG manager and the S3 server.
# box (not part of all: only the box needs it) builds the box machines' root filesystem.
# containerd2 (not part of all: only make test needs it) builds containerd 2.x for a config test.
# box-registry (not part of all) builds the box's OCI registry and the etcd and CoreDNS kubeadm pulls.
# kube-previous (not part of all: only the upgrade tests need it) builds the previous minor's
# kube binaries (KUBERNETES_PREVIOUS_VERSION) into their own cache folder, not linked.
# calico (not part of all) builds tigera/operator and Calico's binaries from their git tags.
#   INFRALAB_GIT_MIRROR: a folder of bare clones (<owner>+<name>/repo) to use instead of GitHub.
# lab-plugins (not part of all: it needs internet) installs the proxmoxve and command plugins the
# lab stack needs, at the versions in versions.env (hack/lab-prepare.sh, which the deploy path runs).
# Environment: INFRALAB_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/infralab);
#   INFRALAB_TOOLS_FROM=auto (default: release if pinned and reachable, else source) | release
#   (fail instead of building) | source (never download);
#   INFRALAB_RELEASE_BASE_URL replaces every release base URL (a mirror; the tests' loopback server).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=versions.env
. "$repo/hack/versions.env"
tools_from=${INFRALAB_TOOLS_FROM:-auto}
case $tools_from in auto | release | source) ;; *)
  echo "tools: INFRALAB_TOOLS_FROM=$tools_from: want auto, release or source" >&2
  exit 2
  ;;
esac
if [ -n "${INFRALAB_RELEASE_BASE_URL:-}" ]; then
  PULUMI_RELEASE_BASE_URL=$INFRALAB_RELEASE_BASE_URL
  KUBERNETES_RELEASE_BASE_URL=$INFRALAB_RELEASE_BASE_URL
  KUBERNETES_PLUGIN_RELEASE_BASE_URL=$INFRALAB_RELEASE_BASE_URL
fi

cache=${INFRALAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/infralab}
bin="$repo/.tools/bin"
export PULUMI_HOME=${PULUMI_HOME:-$cache/pulumi-home}
mkdir -p "$cache/tools" "$bin" "$PULUMI_HOME"

log() { printf '==> tools: %s\n' "$*" >&2; }

# A tool's folder holds a .done file only after its build succeeded.
built() { [ -f "$1/.done" ]; }

# lock serialises builds of one tool when several `make` runs start at once.
lock() {
  exec {lockfd}>"$1.lock"
  flock "$lockfd"
}

# timed NAME CMD...: runs a long `go build` (CMD must accept -v after its first two words, as
# `go build` does) and reports progress every 20 s: elapsed time, packages compiled so far and
# the last one, instead of a silent wait.
timed() {
  local name=$1 start=$SECONDS
  shift
  local out
  out=$(mktemp)
  "$1" "$2" -v "${@:3}" 2>"$out" &
  local pid=$! rc=0
  while kill -0 "$pid" 2>/dev/null; do
    for _ in $(seq 1 20); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 1
    done
    kill -0 "$pid" 2>/dev/null || break
    log "$name: building, $((SECONDS - start))s elapsed, $(grep -c . "$out" || true) packages compiled (last: $(tail -n1 "$out"))"
  done
  wait "$pid" || rc=$?
  if [ "$rc" -ne 0 ]; then
    grep -v '^[a-zA-Z0-9._/-]*$' "$out" >&2 || cat "$out" >&2
    rm -f "$out"
    return "$rc"
  fi
  rm -f "$out"
  log "$name: built in $((SECONDS - start))s"
}

die() {
  echo "tools: $*" >&2
  exit 1
}

# fetch_release NAME URL SHA256 OUT: the official release at URL into OUT, only if SHA256 (from
# hack/versions.env) is set and the download matches it. Returns 1, saying why, when the release
# path is not taken (INFRALAB_TOOLS_FROM=source, no pinned sha256, download failed): the caller
# then builds from source. With INFRALAB_TOOLS_FROM=release those are errors instead. A download
# whose sha256 differs is always an error: a wrong or tampered file is never used, and never
# quietly replaced by a build either.
fetch_release() {
  local name=$1 url=$2 want=$3 out=$4 why
  if [ "$tools_from" = source ]; then
    log "$name: building from source (INFRALAB_TOOLS_FROM=source)"
    return 1
  fi
  if [ -z "$want" ]; then
    why="no sha256 pinned for $url in hack/versions.env"
  elif ! [[ $want =~ ^[0-9a-f]{64}$ ]]; then
    die "$name: the sha256 pinned in hack/versions.env ('$want') is not 64 lowercase hex digits"
  elif [ "$(uname -sm)" != "Linux x86_64" ]; then
    why="the pinned release is linux-amd64, this is $(uname -sm)"
  else
    local err
    err=$(curl -fsSL --connect-timeout 5 --retry 2 --retry-delay 1 -o "$out.part" "$url" 2>&1) || why="cannot download $url (${err:-curl failed})"
  fi
  if [ -n "${why:-}" ]; then
    rm -f "$out.part"
    [ "$tools_from" != release ] || die "$name: INFRALAB_TOOLS_FROM=release, but $why"
    log "$name: building from source: $why"
    return 1
  fi
  local got
  got=$(sha256sum "$out.part" | cut -d' ' -f1)
  if [ "$got" != "$want" ]; then
    rm -f "$out.part"
    die "$name: refusing $url: its sha256 is $got, hack/versions.env pins $want (a wrong or tampered download; check upstream's checksum file before changing the pin, or INFRALAB_TOOLS_FROM=source)"
  fi
  mv "$out.part" "$out"
  log "$name: using the official release $url (sha256 verified)"
}

# pulumi_on_path prints a pulumi on PATH (not ours) that reports exactly the pinned version.
pulumi_on_path() {
  local p
  p=$(PATH=${PATH//$bin:/} command -v pulumi) || return 1
  [ "$(readlink -f "$p")" != "$(readlink -f "$bin/pulumi" 2>/dev/null)" ] || return 1
  [ "$("$p" version 2>/dev/null)" = "v$PULUMI_VERSION" ] || return 1
  echo "$p"
}

link() { ln -sfn "$1" "$bin/$(basename "$1")"; }

ensure_go() {
  if ! command -v go >/dev/null; then
    echo "tools: go is not installed; install Go >= $GO_MIN_VERSION (https://go.dev/dl) and re-run" >&2
    exit 1
  fi
  local have
  have=$(go env GOVERSION | sed 's/^go//')
  if [ "$(printf '%s\n%s\n' "$GO_MIN_VERSION" "$have" | sort -V | head -n1)" != "$GO_MIN_VERSION" ]; then
    echo "tools: go $have is older than $GO_MIN_VERSION (needed by pulumi/pkg/v3); upgrade Go" >&2
    exit 1
  fi
}

build_pulumi() {
  local dir="$cache/tools/pulumi-v$PULUMI_VERSION"
  lock "$dir"
  local found
  if ! built "$dir" && found=$(pulumi_on_path) && [ "$tools_from" != source ]; then
    # A copy, not a link: our language host is found next to the real binary (build_langhost).
    rm -rf "$dir" && mkdir -p "$dir" && cp "$found" "$dir/pulumi"
    log "pulumi: using $found from PATH (v$PULUMI_VERSION, the pinned version)"
    touch "$dir/.done"
  fi
  if ! built "$dir"; then
    rm -rf "$dir" && mkdir -p "$dir"
    if fetch_release pulumi "$PULUMI_RELEASE_BASE_URL/pulumi-v$PULUMI_VERSION-linux-x64.tar.gz" \
      "$PULUMI_RELEASE_SHA256_LINUX_AMD64" "$dir/release.tar.gz"; then
      tar -xzf "$dir/release.tar.gz" -C "$dir" --strip-components=1 pulumi/pulumi
      rm -f "$dir/release.tar.gz"
      touch "$dir/.done"
    fi
  fi
  if ! built "$dir"; then
    log "building the pulumi CLI v$PULUMI_VERSION from source (cold: ~9 min, 2.3 GB RAM)"
    rm -rf "$dir" && mkdir -p "$dir/src"
    (
      cd "$dir/src"
      go mod init infralab.local/pulumi-build >/dev/null 2>&1
      # pkg/v3's own go.mod replaces the clipboard module; a dependency's replace is ignored, so repeat it.
      local pkgmod clip
      pkgmod=$(go mod download -json "github.com/pulumi/pulumi/pkg/v3@v$PULUMI_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
      clip=$(sed -n 's#^replace github.com/atotto/clipboard => \(.*\) \(.*\)#\1@\2#p' "$pkgmod")
      [ -z "$clip" ] || go mod edit -replace "github.com/atotto/clipboard=$clip"
      go get "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@v$PULUMI_VERSION" >/dev/null
      timed "pulumi CLI" go build -trimpath -o "$dir/pulumi" \
        -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
        github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
    )
    touch "$dir/.done"
  fi
  link "$dir/pulumi"
  log "pulumi $("$dir/pulumi" version)"
}

build_kubernetes_plugin() {
  local dir="$cache/tools/pulumi-resource-kubernetes-v$KUBERNETES_PLUGIN_VERSION"
  lock "$dir"
  local plugin_file="$dir/pulumi-resource-kubernetes"
  if ! built "$dir"; then
    rm -rf "$dir" && mkdir -p "$dir"
    # The tarball as released; `pulumi plugin install --file` below unpacks it into PULUMI_HOME.
    if fetch_release "kubernetes plugin" \
      "$KUBERNETES_PLUGIN_RELEASE_BASE_URL/pulumi-resource-kubernetes-v$KUBERNETES_PLUGIN_VERSION-linux-amd64.tar.gz" \
      "$KUBERNETES_PLUGIN_SHA256_LINUX_AMD64" "$dir/release.tar.gz"; then
      touch "$dir/.done"
    fi
  fi
  [ ! -f "$dir/release.tar.gz" ] || plugin_file="$dir/release.tar.gz"
  if ! built "$dir"; then
    log "building the kubernetes provider plugin v$KUBERNETES_PLUGIN_VERSION from source (cold: ~8 min, 5 GB RAM)"
    rm -rf "$dir" && mkdir -p "$dir/src"
    (
      cd "$dir/src"
      go mod init infralab.local/kubernetes-plugin-build >/dev/null 2>&1
      local mod=github.com/pulumi/pulumi-kubernetes/provider/v4
      go get "$mod@$KUBERNETES_PROVIDER_MODULE_VERSION" >/dev/null
      local src
      src=$(go list -m -f '{{.Dir}}' "$mod")/cmd/pulumi-resource-kubernetes
      # The module zip lacks the files `go generate` makes; rebuild them from the shipped inputs.
      cp "$src/main.go" main.go
      chmod u+w main.go
      sed "0,/^{/s//{\n    \"version\": \"$KUBERNETES_PLUGIN_VERSION\",/" "$src/schema.json" >schema-embed.json
      cp "$src/terraform-mapping.json" terraform-mapping-embed.json
      go mod tidy >/dev/null
      timed "kubernetes plugin" go build -trimpath -o "$dir/pulumi-resource-kubernetes" \
        -ldflags "-s -w -X $mod/pkg/version.Version=$KUBERNETES_PLUGIN_VERSION" .
    )
    touch "$dir/.done"
  fi
  [ -x "$bin/pulumi" ] || build_pulumi
  if ! "$bin/pulumi" plugin ls 2>/dev/null | grep -Eq "^kubernetes +resource +$KUBERNETES_PLUGIN_VERSION"; then
    log "installing plugin kubernetes $KUBERNETES_PLUGIN_VERSION into PULUMI_HOME=$PULUMI_HOME"
    "$bin/pulumi" plugin install resource kubernetes "$KUBERNETES_PLUGIN_VERSION" \
      --file "$plugin_file" >/dev/null
  fi
  log "plugin kubernetes $KUBERNETES_PLUGIN_VERSION installed"
}

kube_binaries="kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet kubeadm kubectl"

build_kube() { build_kube_at "$KUBERNETES_VERSION" "$KUBERNETES_SERVER_SHA256_LINUX_AMD64" link; }

# build_kube_previous builds the previous minor's binaries (KUBERNETES_PREVIOUS_VERSION) for the
# upgrade tests only (make test-tools; not make tools or make demo). They are not linked into
# .tools/bin, where the current version's names live: tests find them in
# $cache/tools/kubernetes-v$KUBERNETES_PREVIOUS_VERSION (internal/testenv).
build_kube_previous() { build_kube_at "$KUBERNETES_PREVIOUS_VERSION" "$KUBERNETES_PREVIOUS_SERVER_SHA256_LINUX_AMD64" nolink; }

# build_kube_at VERSION RELEASE_SHA256 link|nolink: the kube binaries of VERSION, from the official
# release when its sha256 is pinned, else from source, cached per version.
build_kube_at() {
  local KUBERNETES_VERSION=$1 KUBERNETES_SERVER_SHA256_LINUX_AMD64=$2 linking=$3
  local dir="$cache/tools/kubernetes-v$KUBERNETES_VERSION"
  lock "$dir"
  if ! built "$dir"; then
    rm -rf "$dir" && mkdir -p "$dir"
    if fetch_release "Kubernetes v$KUBERNETES_VERSION" \
      "$KUBERNETES_RELEASE_BASE_URL/v$KUBERNETES_VERSION/kubernetes-server-linux-amd64.tar.gz" \
      "$KUBERNETES_SERVER_SHA256_LINUX_AMD64" "$dir/release.tar.gz"; then
      local members=() m
      for m in $kube_binaries; do members+=("kubernetes/server/bin/$m"); done
      tar -xzf "$dir/release.tar.gz" -C "$dir" --strip-components=3 "${members[@]}"
      rm -f "$dir/release.tar.gz"
      touch "$dir/.done"
    fi
  fi
  if ! built "$dir"; then
    log "building Kubernetes v$KUBERNETES_VERSION binaries from source: $kube_binaries (cold: ~8 min)"
    rm -rf "$dir" && mkdir -p "$dir/src"
    (
      # A long build on cores other work shares: lower priority for it and every child.
      renice -n 10 -p "$BASHPID" >/dev/null 2>&1 || true
      cd "$dir/src"
      go mod init infralab.local/kubernetes-build >/dev/null 2>&1
      local gomod
      gomod=$(go mod download -json "k8s.io/kubernetes@v$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
      # The module zip has no staging/ folder and requires its staging modules as v0.0.0:
      # point each at its published release instead.
      local staging="v0.${KUBERNETES_VERSION#1.}"
      local m
      while read -r m; do
        go mod edit -replace "$m=$m@$staging"
      done < <(sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$gomod")
      local pkgs=()
      for m in $kube_binaries; do
        pkgs+=("k8s.io/kubernetes/cmd/$m")
      done
      go get "${pkgs[@]/%/@v$KUBERNETES_VERSION}" 2>&1 | grep -v '^go: \(added\|downloading\|upgraded\)' >&2 || true
      local v="k8s.io/component-base/version"
      CGO_ENABLED=0 timed "Kubernetes binaries" go build -trimpath -o "$dir/" -ldflags "-s -w \
        -X $v.gitVersion=v$KUBERNETES_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2) \
        -X $v.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=v$KUBERNETES_VERSION" "${pkgs[@]}"
    )
    touch "$dir/.done"
  fi
  if [ "$linking" = link ]; then
    for m in $kube_binaries; do link "$dir/$m"; done
  fi
  log "kubernetes $("$dir/kube-apiserver" --version) in $dir"
}

ensure_etcd() {
  if ! command -v etcd >/dev/null; then
    log "installing etcd-server from Debian"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq etcd-server etcd-client >/dev/null
  fi
  local have
  have=$(etcd --version | sed -n 's/^etcd Version: \([0-9]*\.[0-9]*\).*/\1/p')
  if [ "$have" != "$ETCD_MINOR" ]; then
    echo "tools: etcd $have is installed, hack/versions.env pins $ETCD_MINOR.x (Debian 12's etcd-server); install that or update ETCD_MINOR after testing" >&2
    exit 1
  fi
  ln -sfn "$(command -v etcd)" "$bin/etcd"
  if command -v etcdctl >/dev/null; then ln -sfn "$(command -v etcdctl)" "$bin/etcdctl"; fi
  log "etcd $(etcd --version | head -n1)"
}

# build_go_main builds one main package of a module at a version in a throwaway module of its own
# and links it into .tools/bin.
# Usage: build_go_main NAME MODULE VERSION PACKAGE [LDFLAGS]
build_go_main() {
  build_go_cached "$@"
  link "$cache/tools/$1-v$3/$1"
}

# build_go_cached is build_go_main without the link, for binaries that only go into images and
# must not shadow a tool of the same name (CoreDNS at kubeadm's version next to the node's).
build_go_cached() {
  local name=$1 mod=$2 version=$3 pkg=$4 ldflags=${5:-}
  local dir="$cache/tools/$name-v$version"
  lock "$dir"
  if ! built "$dir"; then
    log "building $name v$version from the Go proxy ($mod)"
    rm -rf "$dir" && mkdir -p "$dir/src"
    (
      cd "$dir/src"
      go mod init "infralab.local/$name-build" >/dev/null 2>&1
      go get "$pkg@v$version" 2>&1 | grep -v '^go: \(added\|downloading\|upgraded\|finding\)' >&2 || true
      # Slow builds share the machine: lower this subshell's (and so the build's) priority.
      renice -n 10 "$BASHPID" >/dev/null 2>&1 || true
      CGO_ENABLED=0 timed "$name" go build -trimpath -o "$dir/$name" -ldflags "-s -w $ldflags" "$pkg"
    )
    touch "$dir/.done"
  fi
}

# build_node builds what the embedded node needs besides the kube binaries: CoreDNS for cluster
# DNS, kube-router, of which the node runs only the iptables NetworkPolicy controller, and
# kube-state-metrics, which proof/images packs into the local stack's image.
build_node() {
  build_go_main coredns github.com/coredns/coredns "$COREDNS_VERSION" github.com/coredns/coredns
  local kr=github.com/cloudnativelabs/kube-router/v2
  build_go_main kube-router "$kr" "$KUBE_ROUTER_VERSION" "$kr/cmd/kube-router" \
    "-X $kr/pkg/version.Version=v$KUBE_ROUTER_VERSION"
  # Its `version` command prints prometheus/common's version variables (pkg/options/options.go:
  # version.Print("kube-state-metrics")); stamp them or it prints no version.
  local ksm=k8s.io/kube-state-metrics/v2 pv=github.com/prometheus/common/version
  build_go_main kube-state-metrics "$ksm" "$KUBE_STATE_METRICS_VERSION" "$ksm" \
    "-X $pv.Version=v$KUBE_STATE_METRICS_VERSION -X $pv.Revision=v$KUBE_STATE_METRICS_VERSION -X $pv.Branch=release"
  log "$("$bin/coredns" -version | head -n1); kube-router $("$bin/kube-router" --version 2>&1 | head -n1); $("$bin/kube-state-metrics" version 2>&1 | head -n1)"
}

# build_containerd2 builds the containerd 2.x the lab's nodes install (cluster.DefaultContainerdVersion),
# only so that cluster/containerd_test.go can load the config prepare-node generates into the real
# daemon. Named containerd2 so it never shadows Debian's containerd 1.6, which the embedded node runs.
build_containerd2() {
  build_go_main containerd2 github.com/containerd/containerd/v2 "$CONTAINERD_VERSION" \
    github.com/containerd/containerd/v2/cmd/containerd
  # Its shim and ctr, for proof/box/machine's nested-container test (Debian's 1.6 shim cannot
  # serve a 2.x daemon: "type with url ...: not found").
  build_go_main containerd2-shim-runc-v2 github.com/containerd/containerd/v2 "$CONTAINERD_VERSION" \
    github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2
  build_go_main ctr2 github.com/containerd/containerd/v2 "$CONTAINERD_VERSION" \
    github.com/containerd/containerd/v2/cmd/ctr
  log "$("$bin/containerd2" --version)"
}

# build_box_registry builds what the box's OCI registry serves besides the kube binaries
# (proof/box/registry, proof/images control-plane images): the registry itself (distribution v3),
# etcd at the version kubeadm pulls (constants.DefaultEtcdVersion of kubeadm v$KUBERNETES_VERSION)
# and CoreDNS at kubeadm's constants.CoreDNSVersion. None is linked into .tools/bin: the images
# builder and the registry read them from the cache by version.
build_box_registry() {
  local d=github.com/distribution/distribution/v3
  build_go_cached registry "$d" "$DISTRIBUTION_VERSION" "$d/cmd/registry" "-X $d/version.version=v$DISTRIBUTION_VERSION"
  build_go_cached etcd go.etcd.io/etcd/server/v3 "$KUBEADM_ETCD_VERSION" go.etcd.io/etcd/server/v3
  build_go_cached coredns github.com/coredns/coredns "$KUBEADM_COREDNS_VERSION" github.com/coredns/coredns
  log "registry $("$cache/tools/registry-v$DISTRIBUTION_VERSION/registry" --version); $("$cache/tools/etcd-v$KUBEADM_ETCD_VERSION/etcd" --version | head -n1); $("$cache/tools/coredns-v$KUBEADM_COREDNS_VERSION/coredns" -version | head -n1)"
}

# build_cnpg builds the CloudNativePG manager (operator and, copied into each instance pod by the
# operator's bootstrap init container, the instance manager), stamped like upstream's Makefile
# (LDFLAGS: pkg/versions.buildVersion).
build_cnpg() {
  local m=github.com/cloudnative-pg/cloudnative-pg
  build_go_main cnpg-manager "$m" "$CNPG_VERSION" "$m/cmd/manager" \
    "-X $m/pkg/versions.buildVersion=$CNPG_VERSION -X $m/pkg/versions.buildCommit=v$CNPG_VERSION"
  render_cnpg_manifest
  log "cnpg-manager $("$bin/cnpg-manager" version 2>&1 | head -n1); manifest $repo/.tools/manifests/cnpg-$CNPG_VERSION.yaml"
}

# render_cnpg_manifest renders the operator's install manifest (CRDs, RBAC, webhooks, Deployment)
# from the pinned module's own kustomize sources (config/default), as upstream's `make
# generate-manifest` does, with the operator image set to the one proof/images builds
# (infralab.local/cnpg-operator:VERSION), never pulled: the CRDs and RBAC are never hand-written.
# Upstream's debug-only env_override patch (log level debug, pprof) is left out.
render_cnpg_manifest() {
  local dir="$cache/tools/cnpg-manifest-v$CNPG_VERSION" out
  lock "$dir"
  out="$dir/cnpg-$CNPG_VERSION.yaml"
  if ! built "$dir"; then
    [ -x "$bin/kubectl" ] || build_kube
    rm -rf "$dir" && mkdir -p "$dir/src"
    local mod
    mod=$(cd "$dir" && go mod download -json "github.com/cloudnative-pg/cloudnative-pg@v$CNPG_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
    [ -n "$mod" ] || die "cnpg: cannot download github.com/cloudnative-pg/cloudnative-pg@v$CNPG_VERSION"
    cp -r "$mod/config" "$dir/src/config" && chmod -R u+w "$dir/src"
    # What `kustomize edit set image controller=IMAGE` writes into config/manager.
    printf 'images:\n- name: controller\n  newName: infralab.local/cnpg-operator\n  newTag: "%s"\n' \
      "$CNPG_VERSION" >>"$dir/src/config/manager/kustomization.yaml"
    mkdir -p "$dir/src/infralab"
    cat >"$dir/src/infralab/kustomization.yaml" <<'EOF'
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- ../config/default
patches:
# Images are loaded into the node, never pulled (docs/node.md).
- patch: |-
    - op: replace
      path: /spec/template/spec/containers/0/imagePullPolicy
      value: Never
  target:
    kind: Deployment
    name: cnpg-controller-manager
EOF
    "$bin/kubectl" kustomize "$dir/src/infralab" >"$out.part"
    grep -q "image: infralab.local/cnpg-operator:$CNPG_VERSION" "$out.part" || die "cnpg: the rendered manifest does not use the local operator image"
    mv "$out.part" "$out"
    rm -rf "$dir/src"
    touch "$dir/.done"
  fi
  mkdir -p "$repo/.tools/manifests"
  ln -sfn "$out" "$repo/.tools/manifests/cnpg-$CNPG_VERSION.yaml"
}

# build_seaweedfs builds `weed`, the S3 server the embedded environment's backups go to.
build_seaweedfs() {
  build_go_main weed github.com/seaweedfs/seaweedfs "$SEAWEEDFS_VERSION" github.com/seaweedfs/seaweedfs/weed
  log "weed $("$bin/weed" version 2>&1 | head -n1)"
}

# build_box_packages builds what the box's apt repository (proof/box/aptrepo) packages besides the
# kube binaries: containerd v$CONTAINERD_VERSION's ctr and containerd-shim-runc-v2 (the cached
# containerd2 also builds the shim and ctr), runc at the version that containerd pins
# (script/setup/runc-version), crictl (cri-tools) and the CNI plugins (kubernetes-cni).
# runc needs cgo (libcontainer/nsenter) and libseccomp (the seccomp build tag: Pod Security's
# RuntimeDefault profile), as Docker's containerd.io build does; it links libseccomp2 dynamically,
# which the package then depends on.
build_box_packages() {
  build_containerd2 # the daemon, containerd2-shim-runc-v2 and ctr2
  local c=github.com/containerd/containerd/v2
  local runc_version
  runc_version=$(cat "$(go env GOMODCACHE)/$c@v$CONTAINERD_VERSION/script/setup/runc-version")
  runc_version=${runc_version#v}
  [ "$runc_version" = "$BOX_RUNC_VERSION" ] || die "box: containerd v$CONTAINERD_VERSION pins runc $runc_version, hack/versions.env BOX_RUNC_VERSION=$BOX_RUNC_VERSION"
  local dir="$cache/tools/runc-v$runc_version"
  lock "$dir"
  if ! built "$dir"; then
    pkg-config --exists libseccomp || die "box: runc needs libseccomp-dev (make deps installs hack/apt-packages.txt)"
    log "building runc v$runc_version from the Go proxy (cgo, seccomp)"
    rm -rf "$dir" && mkdir -p "$dir/src"
    (
      cd "$dir/src"
      go mod init infralab.local/runc-build >/dev/null 2>&1
      go get "github.com/opencontainers/runc@v$runc_version" 2>&1 | grep -v '^go: \(added\|downloading\|upgraded\|finding\)' >&2 || true
      CGO_ENABLED=1 timed runc go build -trimpath -tags seccomp -o "$dir/runc" \
        -ldflags "-s -w -X main.version=$runc_version" github.com/opencontainers/runc
    )
    touch "$dir/.done"
  fi
  build_go_main crictl sigs.k8s.io/cri-tools "$BOX_CRI_TOOLS_VERSION" sigs.k8s.io/cri-tools/cmd/crictl \
    "-X sigs.k8s.io/cri-tools/pkg/version.Version=v$BOX_CRI_TOOLS_VERSION"
  local cni=github.com/containernetworking/plugins d="$cache/tools/cni-plugins-v$BOX_CNI_PLUGINS_VERSION" p
  lock "$d"
  if ! built "$d"; then
    log "building the CNI plugins v$BOX_CNI_PLUGINS_VERSION from the Go proxy"
    rm -rf "$d" && mkdir -p "$d/src" "$d/bin"
    (
      cd "$d/src"
      go mod init infralab.local/cni-build >/dev/null 2>&1
      go get "$cni/plugins/...@v$BOX_CNI_PLUGINS_VERSION" 2>&1 | grep -v '^go: \(added\|downloading\|upgraded\|finding\)' >&2 || true
      # The plugins the release tarball holds (plugins/main, ipam, meta), not the sample.
      for p in $(go list "$cni/plugins/..." | grep -v -e /sample -e /windows); do
        [ -n "$(go list -f '{{if eq .Name "main"}}main{{end}}' "$p" 2>/dev/null)" ] || continue
        CGO_ENABLED=0 go build -trimpath -o "$d/bin/$(basename "$p")" \
          -ldflags "-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=v$BOX_CNI_PLUGINS_VERSION" "$p"
      done
    )
    touch "$d/.done"
  fi
  log "box packages: $("$dir/runc" --version | head -n1); crictl $BOX_CRI_TOOLS_VERSION; CNI plugins $(find "$d/bin" -type f | wc -l) binaries"
}

# git_source SLUG TAG COMMIT DEST: the tree of TAG of github.com/SLUG into DEST, refused unless the tag
# names COMMIT (pinned in hack/versions.env). From $INFRALAB_GIT_MIRROR/<owner>+<name>/repo (a bare
# clone) when that is set, else a shallow clone from GitHub. Used where the Go proxy refuses the
# module (Calico, tigera/operator's api submodule): a git commit pins the bytes as a go.sum would.
git_source() {
  local slug=$1 tag=$2 commit=$3 dest=$4 gitdir got
  if [ -n "${INFRALAB_GIT_MIRROR:-}" ]; then
    gitdir="$INFRALAB_GIT_MIRROR/${slug/\//+}/repo"
    [ -d "$gitdir" ] || die "$slug: no bare clone at $gitdir (INFRALAB_GIT_MIRROR=$INFRALAB_GIT_MIRROR)"
  else
    gitdir="$dest.git"
    rm -rf "$gitdir"
    log "$slug: cloning tag $tag from https://github.com/$slug"
    git clone -q --bare --depth 1 --branch "$tag" "https://github.com/$slug.git" "$gitdir" ||
      die "$slug: cannot clone tag $tag from GitHub; set INFRALAB_GIT_MIRROR to a folder of bare clones (<owner>+<name>/repo)"
  fi
  got=$(git --git-dir="$gitdir" rev-parse --verify -q "$tag^{commit}") || die "$slug: no tag $tag in $gitdir"
  [ "$got" = "$commit" ] || die "$slug: tag $tag is commit $got, hack/versions.env pins $commit (a moved tag or another repository; check upstream before changing the pin)"
  mkdir -p "$dest"
  # The commit's date, for build stamps that stay the same on every rebuild.
  source_date=$(git --git-dir="$gitdir" log -1 --format=%cI "$commit")
  git --git-dir="$gitdir" archive "$commit" | tar -x -C "$dest"
  [ -n "${INFRALAB_GIT_MIRROR:-}" ] || rm -rf "$gitdir"
  log "$slug: source of $tag ($commit)"
}

# calico_binaries are the main packages of Calico's images for the lab's Installation (the paths
# upstream's Makefiles build: node/Makefile, cni-plugin/Makefile, kube-controllers/Makefile,
# typha/Makefile). calico-ipam is a link to calico, as upstream's cni-plugin Makefile makes it.
calico_binaries="node/cmd/calico-node cni-plugin/cmd/calico cni-plugin/cmd/install
  kube-controllers/cmd/kube-controllers kube-controllers/cmd/check-status kube-controllers/cmd/wrapper
  typha/cmd/calico-typha"

# build_calico builds Calico's Go binaries from the git tag (the Go proxy refuses the module at
# every v3 tag), with CGO_ENABLED=0 as upstream builds them for its architectures without cgo:
# felix then links its libbpf stub, so the iptables/nftables dataplanes work and the eBPF one
# does not (docs/box.md, "Calico", says why that is what the lab runs).
build_calico() {
  local dir="$cache/tools/calico-$CALICO_VERSION"
  lock "$dir"
  if ! built "$dir"; then
    log "building Calico $CALICO_VERSION from source (cold: ~10 min)"
    rm -rf "$dir" && mkdir -p "$dir/bin"
    git_source projectcalico/calico "$CALICO_VERSION" "$CALICO_GIT_COMMIT" "$dir/src"
    (
      cd "$dir/src"
      local pkgs=() p bi=github.com/projectcalico/calico/pkg/buildinfo
      for p in $calico_binaries; do pkgs+=("./$p"); done
      CGO_ENABLED=0 timed "Calico $CALICO_VERSION" go build -trimpath -o "$dir/bin/" -ldflags "-s -w \
        -X $bi.Version=$CALICO_VERSION -X $bi.GitRevision=$CALICO_GIT_COMMIT -X $bi.BuildDate=$source_date" "${pkgs[@]}"
    )
    ln -sfn calico "$dir/bin/calico-ipam"
    calico_share "$dir/src" "$dir/share"
    rm -rf "$dir/src"
    touch "$dir/.done"
  fi
  ln -sfn "$dir" "$repo/.tools/calico"
  log "calico-node $("$dir/bin/calico-node" -v 2>&1 | head -n1) in $repo/.tools/calico"
}

# calico_share SRC OUT keeps what the images and the box need from Calico's tree besides the
# binaries: calico/node's start scripts and runit services (node/filesystem, without BIRD's and
# confd's: BGP is off), typha.cfg, the license, and the two release manifests, each checked
# against the sha256 the lab pins for the download (hack/versions.env), so the box applies the
# same bytes the lab downloads.
calico_share() {
  local src=$1 out=$2 f want got
  mkdir -p "$out/manifests" "$out/typha"
  cp -a "$src/node/filesystem" "$out/node-filesystem"
  rm -rf "$out/node-filesystem/etc/service/available/"{bird,bird6,confd,calico-bgp-daemon} \
    "$out/node-filesystem/etc/calico/confd"
  cp "$src/typha/docker-image/typha.cfg" "$out/typha/typha.cfg"
  cp "$src/LICENSE.md" "$out/LICENSE"
  for f in tigera-operator.yaml:$CALICO_OPERATOR_MANIFEST_SHA256 operator-crds.yaml:$CALICO_CRDS_MANIFEST_SHA256; do
    want=${f#*:} f=${f%%:*}
    got=$(sha256sum "$src/manifests/$f" | cut -d' ' -f1)
    [ "$got" = "$want" ] || die "calico: manifests/$f of $CALICO_VERSION has sha256 $got, hack/versions.env pins $want"
    cp "$src/manifests/$f" "$out/manifests/$f"
  done
  log "calico: manifests/tigera-operator.yaml and operator-crds.yaml match the pinned sha256"
}

# build_operator builds tigera/operator, the version tigera-operator.yaml of CALICO_VERSION runs.
# The Go proxy serves github.com/tigera/operator@TIGERA_OPERATOR_VERSION but refuses its api
# submodule (which its go.mod replaces with ./api), so the whole tree comes from the git tag; its
# files other than api/ are the module zip's (docs/box.md, "Calico").
build_operator() {
  local dir="$cache/tools/tigera-operator-$TIGERA_OPERATOR_VERSION"
  lock "$dir"
  if ! built "$dir"; then
    log "building tigera/operator $TIGERA_OPERATOR_VERSION from source (cold: ~6 min)"
    rm -rf "$dir" && mkdir -p "$dir"
    git_source tigera/operator "$TIGERA_OPERATOR_VERSION" "$TIGERA_OPERATOR_GIT_COMMIT" "$dir/src"
    (
      cd "$dir/src"
      # Upstream's Makefile: TAGS=osusergo,netgo, version stamped into version.VERSION.
      CGO_ENABLED=0 timed "tigera/operator $TIGERA_OPERATOR_VERSION" go build -trimpath -tags osusergo,netgo \
        -o "$dir/operator" -ldflags "-s -w -X github.com/tigera/operator/version.VERSION=$TIGERA_OPERATOR_VERSION" ./cmd
    )
    rm -rf "$dir/src"
    touch "$dir/.done"
  fi
  link "$dir/operator"
  log "tigera/operator $("$dir/operator" --version 2>/dev/null | head -n1)"
}

# The language host is our own code, so its cache key is a hash of its sources and the module pins.
build_langhost() {
  local key
  key=$(cd "$repo" && cat go.mod go.sum tools/langhost/*.go | sha256sum | cut -c1-16)
  local dir="$cache/tools/pulumi-language-go-$key"
  lock "$dir"
  if ! built "$dir"; then
    log "building our Go language host (tools/langhost)"
    rm -rf "$dir" && mkdir -p "$dir"
    (cd "$repo" && timed "language host" go build -o "$dir/pulumi-language-go" ./tools/langhost)
    touch "$dir/.done"
  fi
  link "$dir/pulumi-language-go"
  # The CLI looks for language hosts next to the real pulumi binary (symlinks resolved); there the
  # host is found even with PULUMI_IGNORE_AMBIENT_PLUGINS=true and without a PATH warning.
  ln -sfn "$dir/pulumi-language-go" "$cache/tools/pulumi-v$PULUMI_VERSION/pulumi-language-go"
}

# build_box_rootfs builds the box machines' Debian 12 root filesystem (proof/box/rootfs/build.sh,
# mmdebstrap from Debian apt; cold ~4 min) into $cache/box/rootfs-<hash of its recipe and package
# list>, the path proof/box/rootfs computes from the same files. Built in a temporary directory
# and renamed into place, so an interrupted build leaves no half tree under the final name.
build_box_rootfs() {
  local src="$repo/proof/box/rootfs" key
  key=$(cat "$src/packages.txt" "$src/build.sh" "$src/customize.sh" | sha256sum | cut -c1-16)
  local dir="$cache/box/rootfs-$key"
  mkdir -p "$cache/box"
  lock "$dir"
  if [ ! -f "$dir/.done" ]; then
    command -v mmdebstrap >/dev/null || die "box: mmdebstrap is missing (make deps installs hack/apt-packages.txt)"
    [ "$(id -u)" = 0 ] || die "box: building the machines' root filesystem needs root: mmdebstrap --mode=root"
    log "box: building the machines' Debian 12 root filesystem (mmdebstrap, cold ~4 min) into $dir"
    local tmp="$dir.tmp.$$" start=$SECONDS
    rm -rf "$dir" "$dir".tmp.*
    mkdir -p "$tmp"
    "$src/build.sh" "$tmp/tree" >"$cache/box/rootfs-$key.log" 2>&1 || {
      tail -n 30 "$cache/box/rootfs-$key.log" >&2
      rm -rf "$tmp"
      die "box: mmdebstrap failed (log: $cache/box/rootfs-$key.log)"
    }
    touch "$tmp/.done"
    mv "$tmp" "$dir"
    log "box: root filesystem built in $((SECONDS - start))s ($(du -sh "$dir/tree" | cut -f1))"
  fi
  log "box: root filesystem $dir/tree"
}

main() {
  ensure_go
  local targets=("$@")
  [ ${#targets[@]} -gt 0 ] || targets=(all)
  for t in "${targets[@]}"; do
    case $t in
      all) build_pulumi && build_kubernetes_plugin && build_kube && ensure_etcd && build_langhost && build_node ;;
      pulumi) build_pulumi ;;
      kubernetes-plugin) build_kubernetes_plugin ;;
      kube) build_kube ;;
      kube-previous) build_kube_previous ;;
      etcd) ensure_etcd ;;
      langhost) build_langhost ;;
      node) build_node ;;
      containerd2) build_containerd2 ;;
      box) build_box_rootfs ;;
      box-registry) build_box_registry ;;
      box-packages) build_box_packages ;;
      calico) build_operator && build_calico ;;
      cnpg) build_cnpg ;;
      seaweedfs) build_seaweedfs ;;
      lab-plugins) [ -x "$bin/pulumi" ] || build_pulumi; "$repo/hack/lab-prepare.sh" --plugins-only ;;
      *) echo "tools: unknown target '$t' (want all, pulumi, kubernetes-plugin, kube, kube-previous, etcd, langhost, node, containerd2, calico, cnpg, seaweedfs, box, box-registry, box-packages, lab-plugins)" >&2; exit 2 ;;
    esac
  done
  log "tools ready in $bin (cache: $cache, du: $(du -sh "$cache/tools" | cut -f1))"
}

# Sourced (the tests call fetch_release), it only defines the functions.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
