#!/usr/bin/env bash
# `make bench`: one run, one table (docs/benchmarks.md explains it).
#
#   1. the local stack on a fresh embedded control plane (hardened like `lab`):
#      pulumi preview / up / no-op up / destroy, with and without the policy pack;
#   2. the very same objects (rendered by the kubernetes provider's renderYamlToDirectory through
#      the stack's infralab:renderYamlTo key) with `kubectl apply --server-side`, then again (no-op);
#   3. the whole program's evaluation under Pulumi's mocks with 3, 30 and 300 workers
#      (BenchmarkLabProgram in the root package).
#
# Everything runs in a temp folder that is removed at the end, the control plane included.
# Env: PULUMI_HOME (default ~/.cache/infralab/pulumi-home), BENCH_KEEP=1 keeps the temp folder.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
export PATH="$repo/.tools/bin:$PATH"
export PULUMI_HOME="${PULUMI_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/infralab/pulumi-home}"
export PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DIY_BACKEND_NO_LEGACY_WARNING=true NO_COLOR=1
# The language host reports proxmoxve and command too (go.mod); the local stack never loads them.
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
unset PULUMI_BACKEND_URL PULUMI_CONFIG_PASSPHRASE PULUMI_ACCESS_TOKEN

work=$(mktemp -d "${TMPDIR:-/tmp}/infralab-bench.XXXXXX")
chmod 700 "$work"
export PULUMI_BACKEND_URL="file://$work/state"
export PULUMI_CONFIG_PASSPHRASE_FILE="$work/passphrase"
export KUBECONFIG="$work/cluster/kubeconfig"
namespaces=(healthcare database monitoring)
rows=()

log() { printf '==> bench: %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

cleanup() {
  if [ -x "$work/bin/infralab-env" ]; then
    "$work/bin/infralab-env" down --dir "$work/cluster" >/dev/null 2>&1 || true
  fi
  if [ "${BENCH_KEEP:-0}" = 1 ]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# measure NAME OBJECTS CMD...: runs CMD with its output in $work/logs, records wall time and
# the largest resident set of any one process it waited for.
measure() {
  local name=$1 objects=$2 logf
  shift 2
  logf="$work/logs/$(printf '%02d' "${#rows[@]}").log"
  log "$name"
  local begin end rc=0
  begin=$(date +%s.%N)
  /usr/bin/time -f 'maxrss_kib=%M' -o "$logf.time" "$@" >"$logf" 2>&1 || rc=$?
  end=$(date +%s.%N)
  if [ "$rc" -ne 0 ]; then
    tail -n 30 "$logf" >&2
    die "'$name' failed (exit $rc); full output: $logf (run with BENCH_KEEP=1 to keep it)"
  fi
  local secs rss
  secs=$(awk -v a="$begin" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
  rss=$(sed -n 's/^maxrss_kib=//p' "$logf.time" | awk '{ printf "%d", $1 / 1024 }')
  rows+=("$name|$objects|$secs s|$rss MiB")
}


ensure_tools() {
  local t
  for t in pulumi pulumi-language-go kubectl kube-apiserver kube-controller-manager etcd; do
    command -v "$t" >/dev/null || die "$t not found: run 'make tools'"
  done
  [ -d "$PULUMI_HOME/plugins/resource-kubernetes-v4.32.0" ] || die "kubernetes plugin 4.32.0 not in $PULUMI_HOME: run 'make tools'"
}

# new_stack NAME: a stack on the temp backend whose config is a copy of stacks/Pulumi.local.yaml
# (never the tracked file) with the control plane's kubeconfig and generated secrets. It sets
# `on` to the flags that select it.
new_stack() {
  stack=$1
  config_file="$work/Pulumi.$stack.yaml"
  on=(--non-interactive --color=never --stack "$stack" --config-file "$config_file")
  cp stacks/Pulumi.local.yaml "$config_file"
  # `stack init` takes no --config-file and writes the encryption salt into the project's stack
  # file, the tracked stacks/Pulumi.local.yaml: run it on a scratch copy and carry the salt over.
  local scratch="$work/scratch-$stack"
  mkdir -p "$scratch"
  cp Pulumi.yaml "$scratch/"
  pulumi --non-interactive -C "$scratch" stack init "$stack" >/dev/null
  grep -h '^encryptionsalt:' -r "$scratch" >>"$config_file"
  pulumi config set "${on[@]}" kubeconfig "$KUBECONFIG"
  local key
  for key in postgresPassword apiDbPassword exporterDbPassword; do
    openssl rand -base64 24 | tr -d '\n' | pulumi config set "${on[@]}" --secret "$key"
  done
}

count_objects() { pulumi stack export --non-interactive --stack "$stack" | grep -c '"type": "kubernetes:[a-z0-9.]*/' || true; }

wait_namespaces_gone() {
  local ns
  for ns in "${namespaces[@]}"; do
    kubectl wait --for=delete "namespace/$ns" --timeout=180s >/dev/null 2>&1 || true
  done
}

machine() {
  printf 'machine:  %s cores (nproc), %s GiB RAM, CPU %s\n' "$(nproc)" \
    "$(awk '/MemTotal/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)" \
    "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
  printf 'load:     %s (1/5/15 min at the start; the cores are shared)\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
  printf 'versions: %s, kubectl %s, go %s\n' "$(pulumi version)" \
    "$(kubectl version --client -o json | sed -n 's/.*"gitVersion": "\(.*\)".*/\1/p' | head -n1)" "$(go env GOVERSION)"
}

main() {
  ensure_tools
  mkdir -p "$work/logs" "$work/bin" "$work/manifests" "$work/state"
  (umask 077 && openssl rand -base64 32 >"$work/passphrase")
  local load_at_start
  load_at_start=$(machine)
  go build -o "$work/bin/infralab-env" ./cmd/infralab-env
  measure "control plane cold start (infralab-env up; RSS: its launcher)" "-" \
    "$work/bin/infralab-env" up --dir "$work/cluster"

  new_stack local
  local pack="$repo/policy" n
  measure "pulumi preview, empty stack, first of this run" "-" \
    pulumi preview "${on[@]}" --policy-pack "$pack"
  measure "pulumi preview, empty stack (builds cached)" "-" pulumi preview "${on[@]}" --policy-pack "$pack"
  measure "pulumi up, empty -> all, with policy pack" "?" pulumi up "${on[@]}" --policy-pack "$pack" --yes --skip-preview
  n=$(count_objects)
  rows[-1]=${rows[-1]/|\?|/|$n|}
  measure "pulumi up, no-op, with policy pack" "$n" pulumi up "${on[@]}" --policy-pack "$pack" --yes --skip-preview --expect-no-changes
  measure "pulumi preview, no changes, with policy pack" "$n" pulumi preview "${on[@]}" --policy-pack "$pack" --expect-no-changes
  measure "pulumi destroy" "$n" pulumi destroy "${on[@]}" --yes --skip-preview
  wait_namespaces_gone
  measure "pulumi up, empty -> all, no policy pack" "$n" pulumi up "${on[@]}" --yes --skip-preview
  measure "pulumi up, no-op, no policy pack" "$n" pulumi up "${on[@]}" --yes --skip-preview --expect-no-changes
  measure "pulumi destroy" "$n" pulumi destroy "${on[@]}" --yes --skip-preview
  wait_namespaces_gone

  new_stack render
  pulumi config set "${on[@]}" renderYamlTo "$work/manifests"
  # The provider takes KUBECONFIG from the environment, and a kubeconfig excludes rendering.
  measure "render the same manifests (renderYamlTo, no cluster)" "$n" \
    env -u KUBECONFIG pulumi up "${on[@]}" --yes --skip-preview
  local files
  files=$(find "$work/manifests" -name '*.yaml' | wc -l)
  [ "$files" -gt 0 ] || die "renderYamlTo wrote no manifests to $work/manifests"
  [ "$files" -eq "$n" ] || log "warning: $files rendered manifests, but the stack holds $n Kubernetes objects"
  # kubectl applies files in path order and does not order by dependency: the namespaces go
  # into a folder that sorts first (the provider writes 0-crd/ and 1-manifest/).
  mkdir -p "$work/manifests/0-namespaces"
  find "$work/manifests" -path "$work/manifests/0-namespaces" -prune -o -name '*.yaml' -print0 |
    xargs -0 -r grep -lZ '^kind: Namespace$' | xargs -0 -r mv -t "$work/manifests/0-namespaces"
  measure "kubectl apply --server-side, empty -> all" "$files" \
    kubectl apply --server-side --field-manager=bench -R -f "$work/manifests"
  measure "kubectl apply --server-side, no-op" "$files" \
    kubectl apply --server-side --field-manager=bench -R -f "$work/manifests"

  log "BenchmarkLabProgram under mocks (3, 30, 300 workers)"
  local gobench="$work/logs/gobench.txt"
  go test -run XXX -bench BenchmarkLabProgram -benchtime 3x -count 1 . >"$gobench" 2>&1 || {
    cat "$gobench" >&2
    die "BenchmarkLabProgram failed"
  }

  printf '\n%s\n\n' "$load_at_start"
  {
    echo "operation|objects|wall time|max RSS (one process)"
    printf '%s\n' "${rows[@]}"
    awk '/^BenchmarkLabProgram\// {
      name = $1; sub(/^BenchmarkLabProgram\//, "", name); sub(/-[0-9]+$/, "", name)
      for (i = 3; i < NF; i++) { if ($(i+1) == "ns/op") ns = $i; if ($(i+1) == "resources") r = $i; if ($(i+1) == "B/op") b = $i; if ($(i+1) == "peak-heap-MiB") h = $i }
      printf "program under mocks, %s (3 runs)|%d|%.2f s/op|%.0f MiB peak live heap, %.0f MiB/op allocated\n", name, r, ns / 1e9, h, b / 1048576
    }' "$gobench"
  } | column -t -s '|'
  echo
  echo "(logs of each step: BENCH_KEEP=1 make bench keeps $work)"
}

main "$@"
