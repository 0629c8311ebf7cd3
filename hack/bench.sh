#!/usr/bin/env bash
# `make bench`: one run, one table (docs/benchmarks.md explains it).
#
#   1. the local stack on a fresh embedded control plane (hardened like `lab`):
#      pulumi preview / up / no-op up / destroy, with and without the policy pack;
#   2. the very same objects (rendered by the kubernetes provider's renderYamlToDirectory through
#      the stack's infralab:renderYamlTo key) with `kubectl apply --server-side`, then again (no-op);
#   3. the large case: the same stack with the apps layer declared BENCH_COPIES times (default 10,
#      stack key infralab:benchCopies), pulumi create / no-op / preview side by side with
#      kubectl apply --server-side / again / kubectl diff --server-side of the same rendered
#      objects, with a CPU profile per process (where the time goes: CLI, language host, program,
#      policy pack, provider, kube-apiserver, etcd);
#   0. hack/demo.sh up from nothing (tools built) and again with no changes, in a demo folder of
#      its own (INFRALAB_DEMO_DIR), with the real node when this machine can run one; then down;
#   4. the whole program's evaluation under Pulumi's mocks with 3, 30 and 300 workers
#      (BenchmarkLabProgram in the root package).
#
# Everything runs in a temp folder that is removed at the end, the control plane included.
# Env: PULUMI_HOME (default ~/.cache/infralab/pulumi-home), BENCH_KEEP=1 keeps the temp folder,
# BENCH_COPIES (default 10; 0 skips the large case), BENCH_DEMO=0 skips the `make demo` rows.
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
copies=${BENCH_COPIES:-10}
rows=()

log() { printf '==> bench: %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

cleanup() {
  if [ -x "$work/demo/bin/infralab-env" ]; then
    "$work/demo/bin/infralab-env" down --dir "$work/demo/cluster" >/dev/null 2>&1 || true
  fi
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
  rows+=("$name|$objects|$secs s|$rss MiB|$(cut -d' ' -f1 /proc/loadavg)")
  printf '%s\n' "${rows[-1]}" >"$work/logs/last-row"
}

# CPU profile: while a measured command runs, sample every process's CPU ticks (utime+stime of
# /proc/PID/stat) every 0.2 s, so processes that exit in between (CLI, plugins, program) count
# too; afterwards sum them per component by executable. Processes already running at the first
# sample (kube-apiserver, etcd) count only what they used during the command. Only this run's
# processes count (cwd this clone, or a command line naming this run's folder): the machine's
# other builds and control planes do not.
profile_start() {
  prof_dir="$work/logs/profile-${#rows[@]}"
  mkdir -p "$prof_dir"
  rm -f "$work/profile.stop"
  (
    while [ ! -e "$work/profile.stop" ]; do
      echo TICK
      { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk '{ print $1, $14 + $15 }'
      for d in /proc/[0-9]*; do
        [ -e "$prof_dir/exe.${d#/proc/}" ] ||
          echo "$(readlink "$d/exe" 2>/dev/null) $(readlink "$d/cwd" 2>/dev/null) $(tr '\0' ' ' <"$d/cmdline" 2>/dev/null | grep -c "$work")" >"$prof_dir/exe.${d#/proc/}"
      done
      sleep 0.2
    done >"$prof_dir/samples"
  ) &
  prof_pid=$!
}

# profile_stop: ends the sampler and appends "component seconds, ..." to the last row.
profile_stop() {
  touch "$work/profile.stop"
  wait "$prof_pid" || true
  local line
  line=$(for f in "$prof_dir"/exe.*; do printf '%s %s\n' "${f##*.}" "$(cat "$f")"; done |
    awk -v hz="$(getconf CLK_TCK)" -v repo="$repo" '
      FNR == NR { exe[$1] = $2; cwd[$1] = $3; ours[$1] = ($4 > 0 || $3 == repo || $3 == repo "/policy"); next }
      $1 == "TICK" { tick++; next }
      { pid = $1; if (!(pid in last)) { base[pid] = (tick == 1) ? $2 : 0 } last[pid] = $2 }
      END {
        for (pid in last) {
          e = exe[pid]
          if (!ours[pid]) continue
          if (e ~ /pulumi-resource-kubernetes/) k = "provider"
          else if (e ~ /pulumi-language-go/) k = "language host"
          else if (e ~ /\/pulumi$/) k = "CLI"
          else if (e ~ /\/run-[^\/]*$/ && cwd[pid] ~ /\/policy$/) k = "policy pack"
          else if (e ~ /\/run-[^\/]*$/) k = "program"
          else if (e ~ /kube-apiserver/) k = "apiserver"
          else if (e ~ /etcd/) k = "etcd"
          else if (e ~ /kubectl/) k = "kubectl"
          else if (e ~ /\/(go|compile|link)$/) k = "go"
          else continue
          cpu[k] += last[pid] - base[pid]
        }
        for (k in cpu) if (cpu[k] > 0) printf "%s %.1f, ", k, cpu[k] / hz
      }' - "$prof_dir/samples")
  rows[-1]="${rows[-1]}|${line%, }"
}

# profiled NAME OBJECTS CMD...: measure with the CPU profile.
profiled() {
  profile_start
  measure "$@"
  profile_stop
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

# demo_case: `make demo` from nothing and with no changes, in a folder of this run, each with its
# steps (hack/demo.sh records them) as rows of their own and its `hack/demo.sh timings` (inside
# `pulumi up`: program ready, the resources that finished last, their awaits) kept for the end.
# The node lock (internal/testenv.ExclusiveNode's file) is held from the first up to the down, so
# no node test of another clone starts in between. A failure (e.g. another infralab node already
# runs on this machine) is a row saying so, not the end.
demo_case() {
  export INFRALAB_DEMO_DIR="$work/demo"
  local name lock=/run/infralab-node-tests.lock
  # The lock is held by this shell's descriptor alone: every command below runs with it closed
  # ({node_lock}>&-), so no child (pulumi's plugins, the node's daemons) can outlive the run
  # holding it.
  if [ -w "$(dirname "$lock")" ]; then
    exec {node_lock}>>"$lock"
    log "waiting for the node lock $lock (other clones' node tests)"
    flock "$node_lock"
  else
    exec {node_lock}>/dev/null
  fi
  for name in "make demo (hack/demo.sh up), from nothing, tools built" "make demo, no changes"; do
    if ! (measure "$name" "-" hack/demo.sh up) {node_lock}>&-; then
      rows+=("$name|-|FAILED: $(grep -m1 -E 'another infralab node|FAILED|error' "$work/logs/$(printf '%02d' "${#rows[@]}").log" | cut -c1-90)|-|-")
      break
    fi
    # measure ran in a subshell: record its row again here, then one row per step.
    rows+=("$(cat "$work/logs/last-row")")
    local step a b
    while IFS=$'\t' read -r step a b; do
      rows+=("    step: $step|-|$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.1f s (at %.1f-%.1f)", b - a, a, b }')|-|-")
    done <"$work/demo/timings.tsv"
    { echo "== $name (uptime: $(cut -d' ' -f1-3 /proc/loadavg))"; hack/demo.sh timings; } >>"$work/logs/demo-timings.txt" 2>&1 {node_lock}>&- || true
    cp "$work/demo/up-events.txt" "$work/logs/demo-events-${#rows[@]}.txt" 2>/dev/null || true
  done
  if (measure "make demo-down" "-" hack/demo.sh down) {node_lock}>&-; then rows+=("$(cat "$work/logs/last-row")"); fi
  exec {node_lock}>&-
  unset INFRALAB_DEMO_DIR
}

# large_case PACK: the apps layer $copies times (stack key benchCopies), pulumi and kubectl side
# by side on the same, again empty, cluster, each step with its CPU profile.
large_case() {
  local pack=$1 n files i
  for i in $(seq 2 "$copies"); do namespaces+=("healthcare-$i" "database-$i" "monitoring-$i"); done
  new_stack large
  pulumi config set "${on[@]}" benchCopies "$copies"
  profiled "large: pulumi preview, empty stack, with policy pack" "-" pulumi preview "${on[@]}" --policy-pack "$pack" --policy-pack-config stacks/policy.local.json
  profiled "large: pulumi up, empty -> all, with policy pack" "?" pulumi up "${on[@]}" --policy-pack "$pack" --policy-pack-config stacks/policy.local.json --yes --skip-preview
  n=$(count_objects)
  rows[-1]=${rows[-1]/|\?|/|$n|}
  profiled "large: pulumi up, no-op, with policy pack" "$n" pulumi up "${on[@]}" --policy-pack "$pack" --policy-pack-config stacks/policy.local.json --yes --skip-preview --expect-no-changes
  profiled "large: pulumi preview, no changes, with policy pack" "$n" pulumi preview "${on[@]}" --policy-pack "$pack" --policy-pack-config stacks/policy.local.json --expect-no-changes
  profiled "large: pulumi up, no-op, no policy pack" "$n" pulumi up "${on[@]}" --yes --skip-preview --expect-no-changes
  measure "large: pulumi destroy" "$n" pulumi destroy "${on[@]}" --yes --skip-preview
  wait_namespaces_gone
  # The file backend rewrites the whole state after every step (O(n^2) at this size, all of it
  # in the CLI); PULUMI_SKIP_CHECKPOINTS writes it once at the end. Measured, not the default:
  # a crash in the middle of an `up` would then lose what that `up` had created.
  local skip="PULUMI_SKIP_CHECKPOINTS=true"
  profiled "large: pulumi up, empty -> all, with policy pack, $skip" "$n" env "$skip" pulumi up "${on[@]}" --policy-pack "$pack" --policy-pack-config stacks/policy.local.json --yes --skip-preview
  profiled "large: pulumi up, no-op, with policy pack, $skip" "$n" env "$skip" pulumi up "${on[@]}" --policy-pack "$pack" --policy-pack-config stacks/policy.local.json --yes --skip-preview --expect-no-changes
  measure "large: pulumi destroy, $skip" "$n" env "$skip" pulumi destroy "${on[@]}" --yes --skip-preview
  wait_namespaces_gone

  new_stack large-render
  pulumi config set "${on[@]}" benchCopies "$copies"
  pulumi config set "${on[@]}" renderYamlTo "$work/manifests-large"
  measure "large: render the same manifests (renderYamlTo, $skip)" "$n" env -u KUBECONFIG "$skip" pulumi up "${on[@]}" --yes --skip-preview
  files=$(find "$work/manifests-large" -name '*.yaml' | wc -l)
  [ "$files" -eq "$n" ] || log "warning: $files rendered manifests, but the large stack holds $n Kubernetes objects"
  mkdir -p "$work/manifests-large/0-namespaces"
  find "$work/manifests-large" -path "$work/manifests-large/0-namespaces" -prune -o -name '*.yaml' -print0 |
    xargs -0 -r grep -lZ '^kind: Namespace$' | xargs -0 -r mv -t "$work/manifests-large/0-namespaces"
  local k=(kubectl --field-manager=bench -R -f "$work/manifests-large")
  profiled "large: kubectl apply --server-side, empty -> all" "$files" "${k[0]}" apply --server-side "${k[@]:1}"
  profiled "large: kubectl apply --server-side, no-op" "$files" "${k[0]}" apply --server-side "${k[@]:1}"
  # kubectl's preview: a server-side dry-run diff; exit 1 means differences, which is an error here.
  profiled "large: kubectl diff --server-side, no changes" "$files" "${k[0]}" diff --server-side "${k[@]:1}"
}

main() {
  ensure_tools
  mkdir -p "$work/logs" "$work/bin" "$work/manifests" "$work/state"
  (umask 077 && openssl rand -base64 32 >"$work/passphrase")
  local load_at_start
  load_at_start=$(machine)
  [ "${BENCH_DEMO:-1}" = 0 ] || demo_case
  go build -o "$work/bin/infralab-env" ./cmd/infralab-env
  measure "control plane cold start (infralab-env up; RSS: its launcher)" "-" \
    "$work/bin/infralab-env" up --dir "$work/cluster"

  new_stack local
  local pack="$repo/policy" n
  measure "pulumi preview, empty stack, first of this run" "-" \
    pulumi preview "${on[@]}" --policy-pack "$pack" --policy-pack-config stacks/policy.local.json
  measure "pulumi preview, empty stack (builds cached)" "-" pulumi preview "${on[@]}" --policy-pack "$pack" --policy-pack-config stacks/policy.local.json
  measure "pulumi up, empty -> all, with policy pack" "?" pulumi up "${on[@]}" --policy-pack "$pack" --policy-pack-config stacks/policy.local.json --yes --skip-preview
  n=$(count_objects)
  rows[-1]=${rows[-1]/|\?|/|$n|}
  measure "pulumi up, no-op, with policy pack" "$n" pulumi up "${on[@]}" --policy-pack "$pack" --policy-pack-config stacks/policy.local.json --yes --skip-preview --expect-no-changes
  measure "pulumi preview, no changes, with policy pack" "$n" pulumi preview "${on[@]}" --policy-pack "$pack" --policy-pack-config stacks/policy.local.json --expect-no-changes
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

  if [ "$copies" != 0 ]; then
    # The large case starts from an empty cluster again.
    kubectl delete --wait=true --ignore-not-found -R -f "$work/manifests" >/dev/null 2>&1 || true
    wait_namespaces_gone
    large_case "$pack"
  fi

  log "BenchmarkLabProgram under mocks (3, 30, 300 workers)"
  local gobench="$work/logs/gobench.txt"
  go test -run XXX -bench BenchmarkLabProgram -benchtime 3x -count 1 . >"$gobench" 2>&1 || {
    cat "$gobench" >&2
    die "BenchmarkLabProgram failed"
  }

  printf '\n%s\n\n' "$load_at_start"
  {
    echo "operation|objects|wall time|max RSS (one process)|load at end|CPU s by process (large case)"
    printf '%s\n' "${rows[@]}"
    awk '/^BenchmarkLabProgram\// {
      name = $1; sub(/^BenchmarkLabProgram\//, "", name); sub(/-[0-9]+$/, "", name)
      for (i = 3; i < NF; i++) { if ($(i+1) == "ns/op") ns = $i; if ($(i+1) == "resources") r = $i; if ($(i+1) == "B/op") b = $i; if ($(i+1) == "peak-heap-MiB") h = $i }
      printf "program under mocks, %s (3 runs)|%d|%.2f s/op|%.0f MiB peak live heap, %.0f MiB/op allocated\n", name, r, ns / 1e9, h, b / 1048576
    }' "$gobench"
  } | column -t -s '|'
  echo
  [ ! -s "$work/logs/demo-timings.txt" ] || { echo "Inside the make demo rows (hack/demo.sh timings):"; cat "$work/logs/demo-timings.txt"; echo; }
  box_rebuild_time
  echo "(logs of each step: BENCH_KEEP=1 make bench keeps $work)"
}

# box_rebuild_time prints the last box run's per-phase times (hack/box-run.sh writes them; the
# bench does not bring up the box itself: it needs the node lock and ~10 minutes).
box_rebuild_time() {
  local f=${INFRALAB_BOX_STATE:-/run/infralab-box}/declared/phases.json
  if [ ! -s "$f" ]; then
    echo "box rebuild time: no box run on this machine yet (hack/box-run.sh writes $f)"
    return
  fi
  echo "box rebuild time, the lab's declared phases on the box's machines ($f, $(date -r "$f" -u +%FT%TZ)):"
  jq -r '(.phases[] | "\(.phase)|\(.wall / 1e9 | floor) s|\(.nodes | to_entries | map("\(.key) \(.value / 1e9 | floor) s") | join(", "))|\(.failed // [] | if length > 0 then "FAILED on " + join(", ") else "" end)"),
         "total|\(.total / 1e9 | floor) s||"' "$f" | column -t -s '|'
  echo
}

main "$@"
