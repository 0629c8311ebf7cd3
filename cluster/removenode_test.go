package cluster

import (
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func triggerStrings(r registered) []string {
	var out []string
	for _, v := range r.args.Inputs["triggers"].ArrayValue() {
		out = append(out, v.StringValue())
	}
	return out
}

// Every worker has a command on the control plane whose Delete drains and deletes its Node: the
// engine runs it when the worker leaves the stack. It is deleted before its worker's join and
// VM (it depends on them), and after the apps on a destroy (wait-nodes-ready, which the apps'
// kubeconfig waits for, depends on it), so PodDisruptionBudgets are gone by then.
func TestEveryWorkerHasACommandThatDrainsAndDeletesItsNode(t *testing.T) {
	r := run(t, testArgs(), Scripts())
	for _, w := range []string{"worker-1", "worker-2", "worker-3"} {
		c := r.m.get(t, "lab-"+PhaseRemoveNode+"-"+w)
		assert.Equal(t, "lab", c.parent)
		assert.Equal(t, []string{"lab-join-worker-" + w}, depSet(c))
		assert.Equal(t, "10.10.10.10", c.args.Inputs["connection"].SecretValue().Element.ObjectValue()["host"].StringValue(), "runs on the control plane")

		del := c.args.Inputs["delete"].StringValue()
		assert.Contains(t, del, "ACTION='delete'")
		assert.Contains(t, del, "TARGET_NODE='"+w+"'")
		assert.Contains(t, del, "kubectl drain", "the script is the one sent")
		assert.Contains(t, del, "sudo -n env -i ", "runs as root with a clean environment")
		assert.Contains(t, c.args.Inputs["create"].StringValue(), "ACTION='register'", "the create only registers the node")
		assert.NotContains(t, c.args.Inputs["create"].StringValue(), "ACTION='delete'")
		assert.Equal(t, []string{"remove-node=" + w}, triggerStrings(c), "only the node it removes")
	}
	waits := depSet(r.m.get(t, "lab-wait-nodes-ready"))
	for _, w := range []string{"worker-1", "worker-2", "worker-3"} {
		assert.Contains(t, waits, "lab-"+PhaseRemoveNode+"-"+w)
	}
}

// A trigger change would replace the command, and a replacement runs the old Delete: the node
// would be drained and deleted while it stays in the stack. Neither a script edit nor a replaced
// VM may change its triggers; a script edit changes the stored commands (an update).
func TestRemoveNodeIsNeverReplacedWhileTheWorkerStays(t *testing.T) {
	base := run(t, testArgs(), Scripts())
	edited := copyScripts(t)
	edited["remove-node.sh"].Data = append(edited["remove-node.sh"].Data, []byte("\n# an edit\n")...)
	a := testArgs()
	a.Workers[0].InstanceID = pulumi.String("vm-201")
	a.ControlPlane.InstanceID = pulumi.String("vm-200")
	after := run(t, a, edited)
	for _, w := range []string{"worker-1", "worker-2", "worker-3"} {
		name := "lab-" + PhaseRemoveNode + "-" + w
		b, n := base.m.get(t, name), after.m.get(t, name)
		assert.Equal(t, triggerStrings(b), triggerStrings(n), "%s must not be replaced", name)
		assert.NotEqual(t, b.args.Inputs["delete"].StringValue(), n.args.Inputs["delete"].StringValue(), "%s stores the edited script", name)
	}
}

// Removing a worker from the stack drops exactly its commands; the engine deletes them, and the
// Delete of its remove-node command drains and deletes its Node. The other workers' remove-node
// commands are unchanged, so their nodes stay.
func TestRemovingAWorkerRemovesOnlyItsCommands(t *testing.T) {
	base := run(t, testArgs(), Scripts())
	a := testArgs()
	a.Workers = a.Workers[:2]
	after := run(t, a, Scripts())
	before, now := base.m.commands(), after.m.commands()
	for name, c := range before {
		n, stays := now[name]
		if strings.HasSuffix(name, "-worker-3") {
			assert.False(t, stays, "%s must leave the program", name)
			continue
		}
		require.True(t, stays, "%s must stay", name)
		if strings.HasPrefix(name, "lab-"+PhaseRemoveNode+"-") {
			assert.True(t, c.args.Inputs.DeepEquals(n.args.Inputs), "%s must not change", name)
		}
	}
	gone := base.m.get(t, "lab-"+PhaseRemoveNode+"-worker-3")
	assert.Contains(t, gone.args.Inputs["delete"].StringValue(), "TARGET_NODE='worker-3'", "what the engine runs on delete")
}

// The Delete as registered, run on a stubbed control plane: a Node that exists is drained, then
// deleted; a Node already gone counts as removed; a drain that does not finish fails and says
// how to go on, without deleting the Node.
func TestRemoveNodeScriptDrainsThenDeletesAndIsIdempotent(t *testing.T) {
	r := run(t, testArgs(), Scripts())
	c := r.m.get(t, "lab-"+PhaseRemoveNode+"-worker-2")
	del, create := c.args.Inputs["delete"].StringValue(), c.args.Inputs["create"].StringValue()
	// kubectl: the Node exists until `delete node`; drain obeys ${FAKE}/drain.
	const kubectl = `cat >/usr/local/bin/kubectl <<'STUB'
#!/usr/bin/env bash
f=FAKEDIR
echo "kubectl $*" >>"${f}/calls"
case "$1" in
get)
	[[ "$2" == --raw=/readyz ]] && exit 0
	[[ -e "${f}/node-deleted" ]] && { echo "Error from server (NotFound): nodes \"$3\" not found" >&2; exit 1; }
	echo "node/$3" ;;
drain) [[ "$(cat "${f}/drain" 2>/dev/null)" == stuck ]] && { echo "error: timed out waiting for the condition" >&2; exit 1; }; exit 0 ;;
delete) touch "${f}/node-deleted" ;;
esac
STUB
sed -i "s#FAKEDIR#${FAKE}#" /usr/local/bin/kubectl
chmod 0755 /usr/local/bin/kubectl
mkdir -p /etc/kubernetes && echo admin >/etc/kubernetes/admin.conf
`
	n := newFakeNode(t)
	out, log, _, err := n.runCommandLine(create, "", kubectl)
	require.NoError(t, err, log)
	assert.Contains(t, out, "worker-2")
	assert.NotContains(t, n.calls(), "drain", "create only registers")

	n.set("drain", "stuck")
	_, log, _, err = n.runCommandLine(del, "", kubectl)
	require.Error(t, err)
	assert.Contains(t, log, "draining worker-2 did not finish")
	assert.Contains(t, log, "PodDisruptionBudget")
	assert.Contains(t, log, "kubectl delete node worker-2")
	assert.NotContains(t, n.calls(), "kubectl delete", "a Node that was not drained is not deleted")

	n.set("drain", "ok")
	out, log, _, err = n.runCommandLine(del, "", kubectl)
	require.NoError(t, err, log)
	calls := n.calls()
	drain := strings.Index(calls, "kubectl drain worker-2 --ignore-daemonsets --delete-emptydir-data --force")
	require.GreaterOrEqual(t, drain, 0, calls)
	assert.Contains(t, calls, "--timeout=300s")
	assert.Greater(t, strings.Index(calls, "kubectl delete node worker-2"), drain, "deleted after the drain:\n%s", calls)
	assert.Equal(t, "worker-2 removed\n", out)

	out, log, _, err = n.runCommandLine(del, "", kubectl)
	require.NoError(t, err, "a Node already gone counts as removed:\n%s", log)
	assert.Equal(t, "worker-2 removed\n", out)
	assert.NotContains(t, n.calls(), "drain")
	assert.Contains(t, log, "already gone")
}
