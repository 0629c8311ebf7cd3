#!/usr/bin/env bash
# Runs `pulumi preview` or `pulumi up` of one stack through the policy pack, with the toolchain that
# `make tools` built, and writes a Markdown report (diff plus policy violations) for the PR comment
# or the job summary. Exits with pulumi's status, so a mandatory policy violation fails the job.
#
# Usage: pulumi-stack.sh preview|up STACK
# Environment (from the CI secret store, never the repo):
#   PULUMI_BACKEND_URL        state backend, e.g. s3://bucket?endpoint=minio.example:9000&s3ForcePathStyle=true
#   PULUMI_CONFIG_PASSPHRASE  unlocks the stack's secrets in stacks/Pulumi.STACK.yaml
#   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION  credentials of an S3-compatible backend
#   INFRALAB_REPORT           where to write the Markdown report (default: ./pulumi-STACK.md)
set -euo pipefail

op=${1:-}
stack=${2:-}
case $op in
  preview | up) ;;
  *)
    echo "usage: $0 preview|up STACK" >&2
    exit 2
    ;;
esac
if [ -z "$stack" ]; then
  echo "usage: $0 preview|up STACK (stacks live in stacks/Pulumi.STACK.yaml)" >&2
  exit 2
fi

missing=()
# Stack `local` keeps throwaway state in .infralab (hack/demo.sh), so it needs no CI secrets.
[ "$stack" = local ] || for v in PULUMI_BACKEND_URL PULUMI_CONFIG_PASSPHRASE; do
  if [ -z "${!v:-}" ]; then missing+=("$v"); fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "pulumi-stack: ${missing[*]} not set: add them as secrets of the GitHub environment for stack '$stack'" \
    "(PRs from forks get no secrets, so their preview cannot run)" >&2
  exit 2
fi

repo=$(cd "$(dirname "$0")/../.." && pwd)
report=${INFRALAB_REPORT:-$repo/pulumi-$stack.md}
export PATH="$repo/.tools/bin:$PATH"
export PULUMI_HOME=${PULUMI_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/infralab/pulumi-home}
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DIY_BACKEND_NO_LEGACY_WARNING=true
# Plugins come from PULUMI_HOME, installed by version: kubernetes by `make tools`, proxmoxve and
# command by hack/lab-prepare.sh below. The run itself downloads nothing: the language host reports
# every plugin in go.mod, and the engine would otherwise fetch whichever is missing.
export PULUMI_IGNORE_AMBIENT_PLUGINS=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true

log=$(mktemp)
trap 'rm -f "$log"' EXIT

status=0
if [ "$stack" = local ]; then
  # The local stack is previewed exactly as `make demo` runs it: against a fresh embedded control
  # plane on 127.0.0.1, with generated secrets and a file backend in .infralab (hack/demo.sh).
  echo "==> hack/demo.sh $op (stack local, policy pack on)" >&2
  # A preview runs no pod, and a CI container may not create the node's bridge or set sysctls.
  node=${INFRALAB_NODE:-1}
  if [ "$op" = preview ]; then node=0; fi
  INFRALAB_NODE=$node "$repo/hack/demo.sh" "$op" 2>&1 | tee "$log" || status=$?
  "$repo/hack/demo.sh" stop >&2 || true
else
  # The pinned proxmoxve and command plugins, and the Proxmox hosts' SSH keys pinned where the
  # proxmoxve provider checks them; fails with what to do when the plugins cannot be fetched.
  "$repo/hack/lab-prepare.sh" "$stack" 2>&1 | tee "$log" || status=$?
  args=(--stack "$stack" --policy-pack "$repo/policy" --non-interactive --color never --diff)
  # The stack's policy exceptions, each with its reason, sit next to its config.
  if [ -f "$repo/stacks/policy.$stack.json" ]; then
    args+=(--policy-pack-config "$repo/stacks/policy.$stack.json")
  fi
  if [ "$op" = up ]; then args+=(--yes); fi
  if [ "$status" = 0 ]; then
    echo "==> pulumi $op --stack $stack --policy-pack policy" >&2
    # pipefail makes the pipeline report pulumi's status even though tee succeeds.
    (cd "$repo" && pulumi "$op" "${args[@]}") 2>&1 | tee -a "$log" || status=$?
  fi
fi

{
  if [ "$status" = 0 ]; then
    echo "### \`$stack\`: $op succeeded"
  else
    echo "### \`$stack\`: $op FAILED (exit $status)"
  fi
  if grep -q 'Policies:\|mandatory\|advisory' "$log"; then
    echo
    echo "**Policy violations**"
    echo
    echo '```'
    sed -n '/Policies:/,/^$/p; /\[mandatory\]\|\[advisory\]/p' "$log" | awk '!seen[$0]++'
    echo '```'
  fi
  echo
  echo "<details><summary>pulumi $op output</summary>"
  echo
  echo '```diff'
  cat "$log"
  echo '```'
  echo "</details>"
} >"$report"
echo "==> report written to $report" >&2
exit "$status"
