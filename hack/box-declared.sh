#!/usr/bin/env bash
# Runs the lab program's declared commands on the box (proof/box/declared, via the root package's
# TestBoxDeclared: package main cannot be imported, so the program meets the engine in a test).
#   hack/box-declared.sh plan BOX_JSON [OUT_DIR]   write plan.json and user-data-<vm> (mode 0600)
#   hack/box-declared.sh run  BOX_JSON [OUT_DIR]   run the cluster phases over SSH; writes
#                                                  kubeconfig and phases.json, prints the table
# BOX_JSON is the box description (proof/box/declared.Box) the box writes after first boot.
# This exercises the declared scripts and their order for real, not pulumi-command's lifecycle.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:?usage: box-declared.sh plan|run BOX_JSON [OUT_DIR]}
box=${2:?usage: box-declared.sh plan|run BOX_JSON [OUT_DIR]}
out=${3:-$(dirname "$box")}
case $mode in
plan) run=0 ;;
run) run=1 ;;
*) echo "box-declared: mode must be plan or run, got $mode" >&2; exit 2 ;;
esac
box=$(cd "$(dirname "$box")" && pwd)/$(basename "$box")
(umask 077 && mkdir -p "$out") && out=$(cd "$out" && pwd)
cd "$repo"
# -v streams each command's output as it runs; the last lines are the per-phase table.
INFRALAB_BOX="$box" INFRALAB_BOX_OUT="$out" INFRALAB_BOX_RUN="$run" \
  go test -count=1 -timeout 40m -run '^TestBoxDeclared$' -v . |
  { grep -v -e '^=== RUN' -e '^--- PASS' -e '^PASS$' -e '^ok  ' || true; }
