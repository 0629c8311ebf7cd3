#!/usr/bin/env bash
# `make demo` / `make demo-down`: the local stack on an embedded control plane on 127.0.0.1 and,
# when this machine can run one (root, containerd, `make tools`), a real node that runs its pods
# (docs/node.md). INFRALAB_NODE=0 keeps it to the control plane only.
#
#   up    start the control plane (if not running), `pulumi up` the local stack with the policy
#         pack on a local file backend, print a summary
#   preview  the same, but `pulumi preview --diff` only (the PR gate of stack local)
#   down  destroy the stack, stop the control plane, remove nothing else
#   stop  stop the control plane only
#   timings  where the last `up` spent its time: each step, and inside `pulumi up` the engine's
#         events (program ready, the resources that finished last and their awaits)
#
# Everything lives in .infralab/ (gitignored): state/, cluster/, passphrase, secrets/.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
# INFRALAB_DEMO_DIR: another folder for all of it (hack/bench.sh measures a demo from nothing there).
work="${INFRALAB_DEMO_DIR:-$repo/.infralab}"
stack=local

log() { printf '\n==> demo: %s\n' "$*" >&2; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

# Every step's start and end, in seconds since this run began, go to $timings (NAME, start, end),
# so `hack/demo.sh timings` (and make bench) can show where the time went.
now_us() { echo "${EPOCHREALTIME/./}"; }
t0=$(now_us)
timings="$work/timings.tsv"
secs() {
  local d=$((($1 - t0) / 100000))
  printf '%d.%d' $((d / 10)) $((d % 10))
}
# step NAME CMD...: runs CMD as one named step: logs its start and how long it took, records it.
step() {
  local name=$1 begin
  shift
  begin=$(now_us)
  log "[$(secs "$begin")s] $name"
  "$@"
  record "$name" "$begin"
}
record() {
  local end
  end=$(now_us)
  printf '%s\t%s\t%s\n' "$1" "$(secs "$2")" "$(secs "$end")" >>"$timings"
  printf '    (%s: %ss)\n' "$1" "$(awk -v a="$(secs "$2")" -v b="$(secs "$end")" 'BEGIN { printf "%.1f", b - a }')" >&2
}

export PULUMI_BACKEND_URL="file://$work/state"
# Where `make tools` installed the kubernetes plugin, also when this script runs without make.
cache=${INFRALAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/infralab}
export PULUMI_HOME=${PULUMI_HOME:-$cache/pulumi-home}
export PULUMI_CONFIG_PASSPHRASE_FILE="$work/passphrase"
# Pulumi prefers PULUMI_CONFIG_PASSPHRASE, even when empty (as CI sets an undefined secret), over
# the file: the demo's state is only ever under its own passphrase.
unset PULUMI_CONFIG_PASSPHRASE
export PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DIY_BACKEND_NO_LEGACY_WARNING=true
# Plugins come from PULUMI_HOME (installed by version) and the language host from next to the
# pulumi binary (make tools); nothing is looked up on PATH or downloaded. The language host also
# reports proxmoxve and command (go.mod), which the local stack never loads: no download attempt.
export PULUMI_IGNORE_AMBIENT_PLUGINS=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PATH="$repo/.tools/bin:$PATH"
export KUBECONFIG="$work/cluster/kubeconfig"
# The demo's stack config: the shipped stacks/Pulumi.local.yaml plus the demo's secrets, kept out
# of the tracked file so a demo never dirties the clone.
config_file="$work/Pulumi.$stack.yaml"

# ensure_secret_file keeps one random value per secret, generated once, readable only by you.
ensure_secret_file() {
  local f="$work/secrets/$1"
  if [ ! -s "$f" ]; then
    (umask 077 && openssl rand -base64 24 | tr -d '\n' >"$f")
  fi
}

ensure_env() {
  mkdir -p "$work/state" "$work/secrets" "$work/bin"
  chmod 700 "$work" "$work/secrets"
  if [ ! -s "$work/passphrase" ]; then
    (umask 077 && openssl rand -base64 32 >"$work/passphrase")
    log "generated the state passphrase once: $work/passphrase (keep it; it decrypts the demo's secrets)"
  fi
  command -v pulumi >/dev/null || die "pulumi not found: run 'make tools'"
  # Our language host's build cache (tools/langhost prebuild.go): while the module's sources are
  # unchanged this only hashes them, where `go build` would link again into a new folder.
  if command -v pulumi-language-go >/dev/null; then
    pulumi-language-go prebuild -pkg ./cmd/infralab-env -o "$work/bin/infralab-env" "$repo"
  else
    go build -o "$work/bin/infralab-env" ./cmd/infralab-env
  fi
}

# start_prebuild builds the program and the policy pack into the language host's cache in the
# background, while the control plane starts; `pulumi up` then finds both built. Its lines
# (with progress every 10 s on a first build) are prefixed "prebuild:".
start_prebuild() {
  prebuild_pid=""
  command -v pulumi-language-go >/dev/null || return 0
  (step "program + policy pack build (background)" pulumi-language-go prebuild "$repo" "$repo/policy" 2>&1 |
    sed -u 's/^/    prebuild: /' >&2) &
  prebuild_pid=$!
}

wait_prebuild() {
  [ -n "$prebuild_pid" ] || return 0
  # A failed prebuild is not the end: pulumi up builds again and reports the error itself.
  wait "$prebuild_pid" || log "the prebuild failed; pulumi up builds the program itself and reports why"
}

images_dir="${INFRALAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/infralab}/images"

# node_wanted: a real node needs root, containerd and the node's tools; else the demo stays a
# control plane only, as before.
node_wanted() {
  [ "${INFRALAB_NODE:-auto}" != 0 ] || return 1
  [ "$(id -u)" = 0 ] || return 1
  command -v containerd >/dev/null && command -v runc >/dev/null || return 1
  local t
  for t in kubelet kube-scheduler kube-proxy kube-router coredns; do
    [ -x "$repo/.tools/bin/$t" ] || return 1
  done
}

# A node already running (from an earlier `make demo`) decides, not what this machine could do.
node_running() {
  grep -q '"node":' "$work/cluster/state.json" 2>/dev/null
}

ensure_images() {
  log "building the local images from Debian packages (cached in $images_dir)"
  go run ./cmd/infralab-images build --out "$images_dir" >"$work/images.txt"
}

# start_images: when this run will start a node, the images (cached: a few seconds of checks)
# are made in the background from the start, next to infralab-env's build; wait_images joins.
start_images() {
  images_pid=""
  if ! node_running && node_wanted; then
    (step "local images (cached), background" ensure_images) &
    images_pid=$!
  fi
}

wait_images() {
  if [ -n "${images_pid:-}" ]; then
    wait "$images_pid" || die "building the local images failed (output above)"
  else
    step "local images (cached)" ensure_images
  fi
}

ensure_control_plane() {
  if node_running || { ! "$work/bin/infralab-env" status --dir "$work/cluster" >/dev/null 2>&1 && node_wanted; }; then
    with_node=1
    wait_images
    log "starting the embedded control plane on 127.0.0.1 and a real node (containerd, kubelet, kube-proxy, kube-router, CoreDNS)"
    step "env start: control plane + node" "$work/bin/infralab-env" up --dir "$work/cluster" --node --images "$images_dir/images.json"
  else
    log "starting the embedded control plane (etcd, kube-apiserver, kube-controller-manager on 127.0.0.1)"
    step "env start: control plane" "$work/bin/infralab-env" up --dir "$work/cluster"
  fi
}

with_node=0

# image_ref NAME prints the reference infralab-images built for NAME.
image_ref() {
  local ref
  ref=$(cut -f1 "$work/images.txt" | grep -m1 "^infralab.local/$1:") || die "no $1 image in $work/images.txt"
  echo "$ref"
}

# node_config points the demo's copy of the stack config at the running node: await readiness,
# the exact image tags just built, and the Postgres volume in a folder of the demo.
node_config() {
  local cfg=(-s "$stack" --config-file "$config_file")
  mkdir -p "$work/volumes/postgres"
  pulumi config set "${cfg[@]}" --path apps.skipAwait false
  pulumi config set "${cfg[@]}" --path apps.api.image "$(image_ref healthcare-api)"
  pulumi config set "${cfg[@]}" --path apps.postgres.image "$(image_ref postgres)"
  pulumi config set "${cfg[@]}" --path apps.postgres.exporterImage "$(image_ref postgres-exporter)"
  pulumi config set "${cfg[@]}" --path apps.monitoring.prometheusImage "$(image_ref prometheus)"
  local img
  for img in kube-state-metrics node-exporter alertmanager; do
    pulumi config set "${cfg[@]}" --path "apps.monitoring.$(echo "$img" | sed -E 's/-(.)/\U\1/g')Image" "$(image_ref "$img")"
  done
  pulumi config set "${cfg[@]}" --path apps.postgres.localVolume.path "$work/volumes/postgres"
}

# stack_salt prints the stack's "encryptionsalt:" line. `pulumi stack init` writes it into the
# stack's config file, which would be the tracked stacks/Pulumi.local.yaml: so a new stack is made in
# a scratch copy of the project, and an existing one's salt comes from the demo config or the state.
stack_salt() {
  local line state="$work/state/.pulumi/stacks/infralab/$stack.json"
  if [ -f "$config_file" ] && line=$(grep -m1 '^encryptionsalt:' "$config_file"); then
    echo "$line"
  elif [ -f "$state" ] && line=$(grep -m1 -o '"salt": *"[^"]*"' "$state"); then
    echo "encryptionsalt: $(echo "$line" | cut -d'"' -f4)"
  else
    local scratch="$work/scratch"
    rm -rf "$scratch" && mkdir -p "$scratch" && cp Pulumi.yaml "$scratch/"
    pulumi --non-interactive -C "$scratch" stack init "$stack" >/dev/null
    grep -h -m1 '^encryptionsalt:' -r "$scratch"
  fi
}

ensure_stack_config() {
  local key
  for key in postgresPassword apiDbPassword exporterDbPassword; do ensure_secret_file "$key"; done
  # Rebuilt only when one of its inputs changed (each `pulumi config set --secret` is ~1 s).
  local inputs
  inputs=$(cat "stacks/Pulumi.$stack.yaml" "$work"/secrets/* "$work/images.txt" 2>/dev/null | sha256sum | cut -c1-64)
  inputs="$inputs $with_node $KUBECONFIG"
  if [ -s "$config_file" ] && [ "$(cat "$work/config.key" 2>/dev/null)" = "$inputs" ]; then
    echo "    stack config unchanged: $config_file" >&2
    return 0
  fi
  rm -f "$work/config.key"
  local salt
  salt=$(stack_salt)
  cp "stacks/Pulumi.$stack.yaml" "$config_file"
  printf '%s\n' "$salt" >>"$config_file"
  # The shipped file names .infralab/cluster/kubeconfig; a demo in another folder (INFRALAB_DEMO_DIR,
  # as make bench runs it) has its own control plane.
  [ "$KUBECONFIG" = "$repo/.infralab/cluster/kubeconfig" ] || pulumi config set -s "$stack" --config-file "$config_file" kubeconfig "$KUBECONFIG"
  for key in postgresPassword apiDbPassword exporterDbPassword; do
    pulumi config set --secret -s "$stack" --config-file "$config_file" "$key" <"$work/secrets/$key"
  done
  [ "$with_node" = 0 ] || node_config
  printf '%s\n' "$inputs" >"$work/config.key"
}

up() {
  mkdir -p "$work"
  : >"$timings"
  start_prebuild
  start_images
  step "demo folder, infralab-env build" ensure_env
  ensure_control_plane
  step "stack config" ensure_stack_config
  step "wait for the program + policy pack build" wait_prebuild
  log "[$(secs "$(now_us)")s] pulumi up -s $stack --policy-pack policy (builds the program and the policy pack, then applies)"
  local out="$work/last-up.txt" rc=0 begin
  begin=$(now_us)
  start_event_log
  # The stack's policy exceptions (node-exporter's namespace), each with its reason.
  # PULUMI_DEBUG_COMMANDS=true: the CLI defines --event-log only then (cmd/pulumi/operations/up.go).
  PULUMI_DEBUG_COMMANDS=true pulumi up -s "$stack" --config-file "$config_file" --policy-pack policy \
    --policy-pack-config "stacks/policy.$stack.json" --yes --skip-preview \
    --non-interactive --event-log "$work/up-events.fifo" {event_fd}>&- 2>&1 | tee "$out" {event_fd}>&- || rc=$?
  record "pulumi up" "$begin"
  stop_event_log
  up_changed=0
  ! grep -qE '^ +[-+~]? *[0-9]+ (to )?(create|update|delete|replace)' "$out" || up_changed=1
  step "summary: checks through the Services and Prometheus" summary "$out" "$rc"
  timings
  return "$rc"
}

# start_event_log: `pulumi up --event-log` writes one JSON engine event per line, stamped only to
# the second; a FIFO read by a stamper gives each line its arrival time (s since this run began,
# to the millisecond) in $work/up-events.txt. Secrets are masked in those events by the CLI.
start_event_log() {
  local fifo="$work/up-events.fifo"
  rm -f "$fifo" && mkfifo -m 600 "$fifo"
  python3 -u -c '
import sys, time
t0 = int(sys.argv[1]) / 1e6
for line in sys.stdin:
    sys.stdout.write("%.3f %s" % (time.time() - t0, line))' "$t0" <"$fifo" >"$work/up-events.txt" &
  stamper=$!
  # Our own write end opens the FIFO for the stamper at once and keeps it open until
  # stop_event_log, whether or not pulumi gets as far as opening it.
  exec {event_fd}<>"$fifo"
}

stop_event_log() {
  exec {event_fd}>&-
  wait "$stamper" || true
  rm -f "$work/up-events.fifo"
}

# timings prints where this folder's last `make demo` spent its time: each step (timings.tsv)
# and, inside `pulumi up`, the engine's events (up-events.txt): policy pack and program ready,
# the first and last resource, and the resources that finished last with how long each took
# (create to ready: the provider's await).
timings() {
  [ -s "$timings" ] || die "no timings in $work (run hack/demo.sh up first)"
  python3 - "$timings" "$work/up-events.txt" <<'PY'
import json, os, sys

steps = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
print("Timings:        s since start (end - start = step)")
for name, a, b in steps:
    print("  %-46s %6.1f - %6.1f = %5.1f s" % (name, float(a), float(b), float(b) - float(a)))
events = []
if os.path.exists(sys.argv[2]):
    for line in open(sys.argv[2]):
        t, _, js = line.partition(" ")
        try:
            events.append((float(t), json.loads(js)))
        except ValueError:
            pass
if not events:
    sys.exit(0)
def short(urn):
    return urn.split("::")[-1]
pre, done, marks = {}, {}, []
for t, e in events:
    d = e.get("diagnosticEvent")
    if d and ("built Go program" in d["message"] or "unchanged since its last build" in d["message"]):
        marks.append((t, "langhost: " + d["message"].strip().split("\n")[0][:90]))
    for kind in ("resourcePreEvent", "resOutputsEvent", "resOpFailedEvent"):
        m = (e.get(kind) or {}).get("metadata")
        if not m or m["type"].startswith("pulumi:providers:") or e.get(kind, {}).get("planning"):
            continue
        if kind == "resourcePreEvent":
            pre.setdefault(m["urn"], (t, m["op"], m["type"]))
        else:
            done[m["urn"]] = (t, "failed" if kind == "resOpFailedEvent" else "")
    if "summaryEvent" in e:
        marks.append((t, "summary (engine done)"))
res = [(done[u][0], u, pre[u]) for u in pre if u in done]
stack = [r for r in res if r[2][2] == "pulumi:pulumi:Stack"]
res = [r for r in res if r[2][2] != "pulumi:pulumi:Stack"]
marks.append((events[0][0], "first engine event"))
if stack:
    marks.append((stack[0][2][0], "program running (Stack registered)"))
if res:
    marks.append((min(r[2][0] for r in res), "first resource step"))
    marks.append((max(r[0] for r in res), "last resource done"))
print("  inside pulumi up:")
for t, what in sorted(marks):
    print("    %6.1f  %s" % (t, what))
ops = {}
for r in res:
    ops[r[2][1]] = ops.get(r[2][1], 0) + 1
print("    steps: " + ", ".join("%d %s" % (n, op) for op, n in sorted(ops.items())))
print("    finished last (end, step start -> ready):")
for end, urn, (begin, op, typ) in sorted(res, reverse=True)[:8]:
    print("    %6.1f  %-7s %-40s %5.1f s  %s" % (end, op, short(urn)[:40], end - begin, typ.split(":")[-1] + (" FAILED" if done[urn][1] else "")))
PY
}

summary() {
  local out=$1 rc=$2
  log "summary"
  if [ "$rc" -ne 0 ]; then
    echo "pulumi up FAILED (exit $rc); the full output is in $out"
  fi
  echo "Resources:      $(grep -E '^ +[-+~]? *[0-9]+ (created|unchanged|updated|deleted|replaced)' "$out" | tr -s ' ' | paste -sd, - || true)"
  echo "Policy pack:    $(sed -n '/^Policies:/,/^$/p' "$out" | sed '1d;/^$/d' | sed 's/^ *//' | paste -sd';' -)"
  if grep -qE '\[(mandatory|advisory)\]' "$out"; then
    grep -E '\[(mandatory|advisory)\]' "$out" | sed 's/^/                /'
  fi
  # The verdict is per workload: the API server creates a pod only if Pod Security admits it,
  # so pods created == replicas desired means every pod passed "restricted".
  echo "Pod Security:   workloads in namespaces enforcing restricted (pods admitted / desired):"
  local ns
  for ns in $(kubectl get namespaces -l pod-security.kubernetes.io/enforce=restricted --no-headers -o custom-columns=NAME:.metadata.name 2>/dev/null); do
    kubectl -n "$ns" get deployments,statefulsets --no-headers \
      -o custom-columns=KIND:.kind,NAME:.metadata.name,CREATED:.status.replicas,DESIRED:.spec.replicas 2>/dev/null |
      awk -v ns="$ns" '{c = ($3 == "<none>") ? 0 : $3; printf "                  %-12s %-11s %-24s %s/%s %s\n", ns, $1, $2, c, $4, (c == $4) ? "admitted" : "NOT ALL ADMITTED"}'
  done
  local failed warnings
  failed=$(kubectl get events -A --field-selector reason=FailedCreate --no-headers 2>/dev/null | wc -l)
  warnings=$(grep -c 'PodSecurity' "$out" || true)
  echo "                FailedCreate events: $failed; Pod Security warnings during up: $warnings"
  if [ "$with_node" = 0 ]; then
    echo "                (pods stay Pending: the embedded control plane has no kubelet)"
  else
    node_summary
  fi
  echo "Kubeconfig:     export KUBECONFIG=$KUBECONFIG"
  echo "State:          $PULUMI_BACKEND_URL (passphrase in $PULUMI_CONFIG_PASSPHRASE_FILE)"
  echo "Next:           kubectl get all -A; make demo-down to remove it"
}

# node_summary shows what runs on the node and proves the api answers with data from Postgres.
node_summary() {
  local ns_api ns_mon api_svc prom_svc ip port
  echo "Node:           $(kubectl get nodes --no-headers 2>/dev/null | awk '{print $1" "$2}') (one real node, local images; docs/node.md)"
  kubectl get pods -A -o wide --no-headers 2>/dev/null | awk '{printf "                  %-12s %-40s %-8s %s\n", $1, $2, $3, $4}'
  ns_api=$(pulumi config get -s "$stack" --config-file "$config_file" --path apps.namespaces.api)
  ns_mon=$(pulumi config get -s "$stack" --config-file "$config_file" --path apps.namespaces.monitoring)
  # By name label, not the namespace's first Service: the monitoring namespace also holds
  # alertmanager (which sorts first, and whose port answers no /api/v1/targets: the summary
  # then waited its whole bound for "every target up") and kube-state-metrics.
  api_svc=$(kubectl -n "$ns_api" get svc -l app.kubernetes.io/name=healthcare-api -o jsonpath='{.items[0].metadata.name}' 2>/dev/null || true)
  prom_svc=$(kubectl -n "$ns_mon" get svc -l app.kubernetes.io/name=prometheus -o jsonpath='{.items[0].metadata.name}' 2>/dev/null || true)
  if [ -n "$api_svc" ]; then
    ip=$(kubectl -n "$ns_api" get svc "$api_svc" -o jsonpath='{.spec.clusterIP}')
    port=$(kubectl -n "$ns_api" get svc "$api_svc" -o jsonpath='{.spec.ports[0].port}')
    echo "API readiness:  GET http://$ip:$port/readyz (through its Service, from this node) -> $(curl -s -m 5 "http://$ip:$port/readyz" || echo unreachable)"
    echo "Reach them:     kubectl -n $ns_api port-forward svc/$api_svc 8080:$port   # then: curl localhost:8080/patients"
  fi
  if [ -n "$prom_svc" ]; then
    ip=$(kubectl -n "$ns_mon" get svc "$prom_svc" -o jsonpath='{.spec.clusterIP}')
    port=$(kubectl -n "$ns_mon" get svc "$prom_svc" -o jsonpath='{.spec.ports[0].port}')
    echo "                kubectl -n $ns_mon port-forward svc/$prom_svc 9090:$port   # then: open localhost:9090/targets"
    # A new pod's first scrape can land before kube-router has let its address through the
    # NetworkPolicy, so after an `up` that changed something wait (bounded, polling every second)
    # for a scrape that sees every target up. After an `up` that changed nothing there is nothing
    # to wait for: the targets are shown as they are.
    local targets="" i tries=60
    [ "${up_changed:-1}" = 1 ] || tries=1
    for i in $(seq 1 "$tries"); do
      targets=$(prom_targets "http://$ip:$port")
      case "$targets" in *=down* | *=unknown* | "none yet" | unreachable | unknown*) ;; *) break ;; esac
      [ "$i" != 1 ] || [ "$tries" = 1 ] || echo "                (waiting up to ${tries} s for Prometheus to scrape every target)"
      [ "$i" = "$tries" ] || sleep 1
    done
    [ "$tries" = 1 ] || echo "                (after ${i} s)"
    echo "Prometheus:     targets $targets"
    key_figures "http://$ip:$port"
  fi
}

# prom_figure URL LABEL PROMQL [FORMAT] prints one figure, or "no data".
prom_figure() {
  curl -s -m 5 -G "$1/api/v1/query" --data-urlencode "query=$3" | python3 -c '
import json, sys
label, fmt = sys.argv[1], sys.argv[2]
try:
    r = json.load(sys.stdin)["data"]["result"]
    print("                %-26s %s" % (label, (fmt % float(r[0]["value"][1])) if r else "no data"))
except Exception as e:
    print("                %-26s unknown (%s)" % (label, e))' "$2" "${4:-%g}" 2>/dev/null || echo "                $2 unreachable"
}

# key_figures prints what the dashboards would show first, read from Prometheus at $1 (Grafana
# does not run here): the same queries as apps/dashboards and the alerts.
key_figures() {
  echo "Key figures:    read from Prometheus"
  prom_figure "$1" "nodes Ready" 'sum(kube_node_status_condition{condition="Ready",status="true"})' '%.0f'
  prom_figure "$1" "pods not running" 'sum(kube_pod_status_phase{phase!~"Running|Succeeded"})' '%.0f'
  prom_figure "$1" "database up" 'max(pg_up)' '%.0f'
  prom_figure "$1" "database connections" 'sum(pg_stat_activity_count)' '%.0f'
  prom_figure "$1" "max_connections" 'max(pg_settings_max_connections)' '%.0f'
  prom_figure "$1" "api requests/s (5m)" 'sum(rate(healthcare_api_http_requests_total[5m]))' '%.2f'
  prom_figure "$1" "alerts firing" 'count(ALERTS{alertstate="firing"}) or vector(0)' '%.0f'
}

# prom_targets prints job=health for every target Prometheus at $1 scrapes.
prom_targets() {
  curl -s -m 5 "$1/api/v1/targets" | python3 -c '
import json, sys
try:
    ts = json.load(sys.stdin)["data"]["activeTargets"]
    print(", ".join("%s=%s" % (t["labels"]["job"], t["health"]) for t in ts) or "none yet")
except Exception as e:
    print("unknown (%s)" % e)' 2>/dev/null || echo unreachable
}

preview() {
  ensure_env
  ensure_control_plane
  ensure_stack_config
  log "pulumi preview -s $stack --policy-pack policy --diff"
  pulumi preview -s "$stack" --config-file "$config_file" --policy-pack policy \
    --policy-pack-config "stacks/policy.$stack.json" --diff --non-interactive
}

stop() {
  [ ! -x "$work/bin/infralab-env" ] || "$work/bin/infralab-env" down --dir "$work/cluster"
}

down() {
  if [ -f "$config_file" ] && [ -s "$work/passphrase" ] && command -v pulumi >/dev/null; then
    if [ -x "$work/bin/infralab-env" ] && "$work/bin/infralab-env" status --dir "$work/cluster" >/dev/null 2>&1; then
      log "pulumi destroy -s $stack"
      pulumi destroy -s "$stack" --config-file "$config_file" --yes --skip-preview --non-interactive
    fi
  fi
  if [ -x "$work/bin/infralab-env" ]; then
    log "stopping the embedded control plane"
    "$work/bin/infralab-env" down --dir "$work/cluster"
  fi
  log "done; state, passphrase and secrets stay in $work (rm -rf it to start from scratch)"
}

case ${1:-} in
  up) up ;;
  preview) preview ;;
  down) down ;;
  stop) stop ;;
  timings) timings ;;
  *) die "usage: $0 up|preview|down|stop|timings" ;;
esac
