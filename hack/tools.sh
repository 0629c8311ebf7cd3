#!/usr/bin/env bash
# Installs the pinned toolchain into a cache outside the clone (keyed by version, so a fresh
# clone reuses it) and links it into .tools/bin. Each of pulumi, the kubernetes plugin and the
# Kubernetes binaries comes from its official release when that can be downloaded and matches
# the sha256 pinned in hack/versions.env (fetch_release), else it is built from source; either
# way the log says which path it took and why.
#
# Usage: hack/tools.sh [all|pulumi|kubernetes-plugin|kube|etcd|langhost|node|containerd2|calico|lab-plugins]...
# containerd2 (not part of all: only make test needs it) builds containerd 2.x for a config test.
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

build_kube() {
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
  for m in $kube_binaries; do link "$dir/$m"; done
  log "kubernetes $("$dir/kube-apiserver" --version)"
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

# build_go_main builds one main package of a module at a version in a throwaway module of its own.
# Usage: build_go_main NAME MODULE VERSION PACKAGE [LDFLAGS]
build_go_main() {
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
      CGO_ENABLED=0 timed "$name" go build -trimpath -o "$dir/$name" -ldflags "-s -w $ldflags" "$pkg"
    )
    touch "$dir/.done"
  fi
  link "$dir/$name"
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
  log "$("$bin/containerd2" --version)"
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
      etcd) ensure_etcd ;;
      langhost) build_langhost ;;
      node) build_node ;;
      containerd2) build_containerd2 ;;
      calico) build_operator && build_calico ;;
      lab-plugins) [ -x "$bin/pulumi" ] || build_pulumi; "$repo/hack/lab-prepare.sh" --plugins-only ;;
      *) echo "tools: unknown target '$t' (want all, pulumi, kubernetes-plugin, kube, etcd, langhost, node, containerd2, calico, lab-plugins)" >&2; exit 2 ;;
    esac
  done
  log "tools ready in $bin (cache: $cache, du: $(du -sh "$cache/tools" | cut -f1))"
}

# Sourced (the tests call fetch_release), it only defines the functions.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
