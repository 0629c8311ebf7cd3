package cluster

import (
	"strconv"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// defaultDrainTimeoutSeconds bounds `kubectl drain` when a worker is removed.
const defaultDrainTimeoutSeconds = 300

// ensureNodeRemoval declares, per worker, a command on the control plane whose Delete drains the
// worker and deletes its Node object (scripts/remove-node.sh): without it, a worker removed from
// the stack lost its VM but its Node stayed, NotReady, with its pods bound to it.
//
// pulumi-command runs `delete` from the stored state when the resource leaves the program
// (provider/pkg/provider/remote/commandController.go, Command.Delete), and triggers are
// replaceOnChanges (provider/pkg/provider/common/inputs.go), where a replacement runs the old
// Delete. So the triggers hold only the worker's name: a script edit, a changed connection or a
// replaced VM updates the stored commands (the create runs again, it only registers), and only a
// worker leaving the stack drains it.
//
// Each depends on its worker's join (so it goes before the join, the prepare and the VM), and
// wait-nodes-ready depends on all of them: on a destroy, the apps, whose kubeconfig waits for
// wait-nodes-ready, are deleted first, and no PodDisruptionBudget of theirs blocks the drains.
func (b *bootstrap) ensureNodeRemoval() error {
	for i, w := range b.args.Workers {
		c, err := b.run(step{
			name: b.resName(PhaseRemoveNode, &w), phase: PhaseRemoveNode, node: b.args.ControlPlane, script: "remove-node.sh",
			env: map[string]string{
				"ACTION": "register", "TARGET_NODE": w.Name,
				"DRAIN_TIMEOUT": strconv.Itoa(b.args.drainTimeout()),
			},
			deleteEnv:     map[string]string{"ACTION": "delete"},
			fixedTriggers: pulumi.Array{pulumi.String(PhaseRemoveNode + "=" + w.Name)},
			dependsOn:     []pulumi.Resource{b.joins[i]},
		})
		if err != nil {
			return err
		}
		b.removals = append(b.removals, c)
	}
	return nil
}
