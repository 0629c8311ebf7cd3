package cluster

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// What the command provider runs for a changed command, from its source (the module is refused by
// the Go proxy; read from github.com/pulumi/pulumi-command at v1.1.0):
//   - the provider is built with github.com/pulumi/pulumi-go-provider v1.0.1, whose default Diff
//     (infer/resource.go, diff) reports every changed input; only fields tagged replaceOnChanges
//     make it a replacement, and of remote.Command's inputs only `triggers` is
//     (provider/pkg/provider/common/inputs.go);
//   - a replacement runs Create, i.e. `create`; an update runs Update
//     (provider/pkg/provider/remote/commandController.go), which runs `update` when it is set and
//     `create` otherwise, and replaces stdout/stderr with that run's output (commandOutputs.go).
//
// providerRun is that rule: the command line the provider runs when a command's inputs go from
// old to new, or "" when nothing changed.
func providerRun(old, new resource.PropertyMap) string {
	changed := map[resource.PropertyKey]bool{}
	for k, v := range new {
		if o, ok := old[k]; !ok || !o.DeepEquals(v) {
			changed[k] = true
		}
	}
	for k := range old {
		if _, ok := new[k]; !ok {
			changed[k] = true
		}
	}
	switch {
	case len(changed) == 0:
		return ""
	case changed["triggers"]:
		return new["create"].StringValue()
	case new.HasValue("update"):
		return new["update"].StringValue()
	default:
		return new["create"].StringValue()
	}
}

func withBastion(a *KubeadmArgs, host, user, key, hostKey string) *KubeadmArgs {
	a.Bastion = &Bastion{Host: host, User: user, HostKey: hostKey,
		PrivateKey: pulumi.ToSecret(pulumi.String(key)).(pulumi.StringOutput)}
	return a
}

// Rotating the node key, moving the jump host or re-keying it changes every command's connection.
// No phase may run its script again for that: each only checks the new connection (and sudo),
// except the two whose stdout is their result and would otherwise be lost.
func TestConnectionChangeRerunsNoPhase(t *testing.T) {
	before := run(t, withBastion(testArgs(), "pve.example.com", "root", fakeSSHKey, ""), Scripts()).m.commands()
	rotated := testArgs()
	rotated.SSHPrivateKey = pulumi.ToSecret(pulumi.String(strings.Replace(fakeSSHKey, "FAKE", "ROTATED", 1))).(pulumi.StringOutput)
	after := run(t, withBastion(rotated, "203.0.113.7", "infralab-jump", "-----BEGIN OPENSSH PRIVATE KEY-----\nJUMP\n-----END OPENSSH PRIVATE KEY-----\n",
		testHostKey), Scripts()).m.commands()
	require.Equal(t, len(before), len(after))

	for name, b := range before {
		a, ok := after[name]
		require.True(t, ok, name)
		assert.False(t, a.args.Inputs["connection"].DeepEquals(b.args.Inputs["connection"]), "%s: the test must change the connection", name)
		got := providerRun(b.args.Inputs, a.args.Inputs)
		create := a.args.Inputs["create"].StringValue()
		if rerunOnUpdate[phaseOf(t, a)] {
			assert.Equal(t, create, got, "%s: its stdout is its result, so an update runs the phase again", name)
		} else {
			assert.Equal(t, connectionCheck, got, "%s: a connection change must run only the connection check, not the phase", name)
		}
	}
}

// Anything but the connection still runs the phase: a script edit changes the triggers (replace,
// so Create), and so does the secret a phase reads on stdin when that secret is its input.
func TestStdinThatIsTheInputRerunsThePhase(t *testing.T) {
	base := run(t, testArgs(), Scripts()).m.commands()
	rekeyed := testArgs()
	rekeyed.EncryptionKey = pulumi.ToSecret(pulumi.String("b3RoZXItc2VjcmV0Ym94LWtleS1mb3ItdGVzdHMtMzI=")).(pulumi.StringOutput)
	after := run(t, rekeyed, Scripts()).m.commands()
	init := "lab-" + PhaseKubeadmInit
	assert.Equal(t, after[init].args.Inputs["create"].StringValue(), providerRun(base[init].args.Inputs, after[init].args.Inputs),
		"a changed encryption key must reach kubeadm-init, which refuses a key change on a running cluster")

	// delete-join-token must run again for every new token; its stdin is the token ID, so a
	// digest of stdin (secret, never the ID in clear) is one of its triggers.
	c := base["lab-"+PhaseDeleteJoinToken]
	id := c.args.Inputs["stdin"].SecretValue().Element.StringValue()
	sum := sha256.Sum256([]byte(id))
	var digests []string
	for _, v := range c.args.Inputs["triggers"].ArrayValue() {
		if v.IsSecret() {
			digests = append(digests, v.SecretValue().Element.StringValue())
		}
	}
	assert.Equal(t, []string{"stdin=sha256:" + hex.EncodeToString(sum[:])}, digests)

	// Phases whose stdin only carries what their triggers already say (join-worker: the token,
	// which matters only to a node that is not joined yet, and such a node's triggers change) do
	// not run again when it changes.
	for name, r := range base {
		if stdinTriggers[phaseOf(t, r)] {
			continue
		}
		for _, v := range r.args.Inputs["triggers"].ArrayValue() {
			assert.False(t, v.IsSecret(), "%s: no secret trigger expected", name)
		}
	}
}

// Every phase has its update policy written down here, so a new phase cannot slip in with the
// provider's default (an update re-runs create).
func TestEveryPhaseHasAnUpdatePolicy(t *testing.T) {
	known := map[string]bool{}
	for _, p := range PhaseNames() {
		known[p] = true
		_, rerun := rerunOnUpdate[p]
		_, noop := checkOnlyOnUpdate[p]
		assert.True(t, rerun != noop, "phase %s must be in exactly one of rerunOnUpdate and checkOnlyOnUpdate", p)
	}
	for p := range stdinTriggers {
		assert.True(t, known[p], "stdinTriggers names unknown phase %s", p)
		assert.True(t, checkOnlyOnUpdate[p], "%s: a stdin trigger only matters for a phase whose update is the check", p)
	}
	for name, c := range run(t, testArgs(), Scripts()).m.commands() {
		assert.True(t, c.args.Inputs.HasValue("update"), "%s has no update command", name)
	}
}

func phaseOf(t *testing.T, r registered) string {
	t.Helper()
	create := r.args.Inputs["create"].StringValue()
	// The upgrade of the workers is one entry of the phase list with three commands per worker.
	for _, p := range append(PhaseNames(), PhaseUpgradeDrain, PhaseUpgradeUncordon) {
		if strings.Contains(create, " PHASE="+shellQuote(p)+" ") {
			return p
		}
	}
	t.Fatalf("no phase in %s", r.args.Name)
	return ""
}
