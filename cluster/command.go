package cluster

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/pulumi/pulumi-command/sdk/go/command/remote"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// libScript is prepended to every phase script; it holds log/retry/apt helpers.
const libScript = "lib.sh"

// SSH dial bounds. The provider's defaults (10 errors, i.e. 11 dials of 15 s) would let an
// unreachable jump host hold every command for minutes; the jump host is the Proxmox host that
// the infra layer just talked to, so a few short attempts are enough to tell "down" from "slow".
// The provider dials at most dialErrorLimit+1 times, backing off 0.1 s, 0.15 s, ... in between.
const (
	perDialTimeoutSeconds        = 15
	bastionDialErrorLimit        = 3
	bastionPerDialTimeoutSeconds = 10
)

// What a command runs when an input outside its triggers changes. The command provider (v1.1.0,
// built on pulumi-go-provider v1.0.1) treats every changed input as an update, and only a changed
// `triggers` as a replacement; an update runs `update`, or `create` when `update` is unset
// (provider/pkg/provider/remote/commandController.go). So without an `update` a new SSH key, jump
// host or host key re-ran every phase. The policy per phase, written down so a new phase must
// choose (cluster/rerun_test.go):
//   - checkOnlyOnUpdate: the update dials the new connection and runs connectionCheck, nothing
//     else. Whatever must run the phase again is in its triggers (script, plain inputs, the VM's
//     identity, and for stdinTriggers a digest of stdin), and a trigger change is a replacement,
//     which runs `create`.
//   - rerunOnUpdate: the update runs the phase again, because the provider replaces stdout with
//     the update's output (commandOutputs.go) and these phases' stdout is their result. Re-reading
//     admin.conf is harmless; join-token mints a fresh token, which delete-join-token (a stdin
//     trigger) then deletes in the same run.
//
// ignoreChanges on the connection was the other way to keep it out of the diff. It is not used:
// the engine then keeps the OLD connection in the inputs of every later create, update and
// delete of that command (pkg/resource/deploy/step_generator.go, processIgnoreChanges), so after a
// key rotation the next real run would dial with the revoked key.
var (
	checkOnlyOnUpdate = map[string]bool{
		PhaseWaitSSH: true, PhasePrepareNode: true, PhaseKubeadmInit: true, PhaseJoinWorker: true,
		PhaseCalico: true, PhaseWaitNodesReady: true, PhaseDeleteJoinToken: true,
		// Its renewal runs when its triggers (script, window, the renewal-due generation) change.
		PhaseCertRenewal: true,
		// Its create does nothing; the drain is its delete, which an update only stores.
		PhaseRemoveNode: true,
		// Upgrades: a new version changes their triggers (KUBERNETES_VERSION), which replaces
		// them; a new connection alone upgrades nothing.
		PhaseUpgradePrecheck: true, PhaseUpgradeControlPlane: true, PhaseUpgradeDrain: true,
		PhaseUpgradeNode: true, PhaseUpgradeUncordon: true,
	}
	// node-versions: its stdout is the versions recorded in the state.
	rerunOnUpdate = map[string]bool{PhaseFetchKubeconfig: true, PhaseJoinToken: true, PhaseNodeVersions: true}
	// stdinTriggers are the phases for which stdin is an input of what they do: kubeadm-init
	// writes the encryption config from it (and refuses a changed key), delete-join-token deletes
	// the token it names. join-worker is not here: its stdin holds the token, which only a node that
	// has not joined needs, and such a node's own triggers change (new or replaced VM).
	stdinTriggers = map[string]bool{PhaseKubeadmInit: true, PhaseDeleteJoinToken: true}
)

// connectionCheck is the update of a checkOnlyOnUpdate command: it proves the new login works and
// can still use sudo without a password, as every phase needs.
const connectionCheck = "sudo -n true"

// step is one remote command of a phase.
type step struct {
	name   string // resource name, e.g. "cluster-join-worker-w1"
	phase  string
	node   Node
	script string            // file in scripts/
	libs   []string          // helper files in scripts/ prepended after lib.sh (e.g. seal.sh)
	env    map[string]string // plain values only
	stdin  pulumi.StringInput
	// secretStdout marks stdout secret and turns provider logging off.
	secretStdout bool
	// dialErrorLimit bounds SSH dial attempts (the provider backs off between them).
	dialErrorLimit int
	dependsOn      []pulumi.Resource
	// extraTriggers re-run the command when they change (e.g. other nodes' VM IDs).
	extraTriggers pulumi.Array
	// deleteEnv, when set, makes the script also the command's Delete, run with env plus
	// deleteEnv when the resource leaves the program (pulumi-command runs `delete` from the
	// stored state: provider/pkg/provider/remote/commandController.go, Command.Delete).
	deleteEnv map[string]string
	// fixedTriggers, when set, are the only triggers. A trigger change replaces the command, and
	// a replacement runs the old Delete, so a command with a Delete keeps its triggers to what
	// identifies its target: editing its script then updates the stored commands instead.
	fixedTriggers pulumi.Array
}

// script loads a phase script with the shared helpers in front: lib.sh, then libs.
func loadScript(scripts fs.FS, name string, libs ...string) (string, error) {
	var b strings.Builder
	for i, f := range append(append([]string{libScript}, libs...), name) {
		body, err := fs.ReadFile(scripts, f)
		if err != nil {
			return "", err
		}
		if i > 0 {
			b.WriteString("\n# ---- " + f + " ----\n")
		}
		b.Write(body)
	}
	return b.String(), nil
}

func sha256Hex(b string) string {
	s := sha256.Sum256([]byte(b))
	return hex.EncodeToString(s[:])
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// commandLine runs the script as root with a clean environment holding only env. Values go
// through `env`, not the SSH session's environment, because stock sshd accepts no variables
// (AcceptEnv). Nothing secret is ever put here: secrets travel on stdin.
func commandLine(phase, script string, env map[string]string) string {
	var b strings.Builder
	b.WriteString("sudo -n env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	fmt.Fprintf(&b, " PHASE=%s", shellQuote(phase))
	for _, k := range sortedKeys(env) {
		fmt.Fprintf(&b, " %s=%s", k, shellQuote(env[k]))
	}
	fmt.Fprintf(&b, " bash -c %s %s", shellQuote(script), shellQuote(phase))
	return b.String()
}

// triggers make the command run again when the script or a plain input changes. Long values
// (embedded files) are reduced to their hash so the diff stays readable.
func triggers(scriptName, script string, node Node, env map[string]string) pulumi.Array {
	t := pulumi.Array{
		pulumi.String("script=" + scriptName + "@sha256:" + sha256Hex(script)),
		pulumi.String("node=" + node.Name + "/" + node.IP),
	}
	for _, k := range sortedKeys(env) {
		v := env[k]
		if len(v) > 80 {
			v = "sha256:" + sha256Hex(v)
		}
		t = append(t, pulumi.String(k+"="+v))
	}
	if node.InstanceID != nil {
		t = append(t, node.InstanceID)
	}
	return t
}

func (b *bootstrap) run(s step) (*remote.Command, error) {
	script, err := loadScript(b.scripts, s.script, s.libs...)
	if err != nil {
		return nil, fmt.Errorf("phase %s: %w", s.phase, err)
	}
	dial := s.dialErrorLimit
	if dial == 0 {
		dial = 5
	}
	logging := remote.LoggingStdoutAndStderr
	opts := []pulumi.ResourceOption{pulumi.Parent(b.parent), pulumi.DependsOn(s.dependsOn)}
	if s.secretStdout {
		logging = remote.LoggingNone
		opts = append(opts, pulumi.AdditionalSecretOutputs([]string{"stdout"}))
	} else if s.stdin != nil {
		// The script reads a secret; it never prints it, but keep stdout out of logs anyway.
		logging = remote.LoggingStderr
	}
	conn := remote.ConnectionArgs{
		Host:           pulumi.String(s.node.IP),
		User:           pulumi.String(b.args.SSHUser),
		PrivateKey:     pulumi.ToSecret(b.args.SSHPrivateKey).(pulumi.StringOutput),
		DialErrorLimit: pulumi.Int(dial),
		PerDialTimeout: pulumi.Int(perDialTimeoutSeconds),
	}
	if k := s.node.HostKey; k != "" {
		conn.HostKey = pulumi.String(k)
	}
	if j := b.args.Bastion; j != nil {
		proxy := &remote.ProxyConnectionArgs{
			Host:           pulumi.String(j.Host),
			User:           pulumi.String(j.User),
			PrivateKey:     pulumi.ToSecret(j.PrivateKey).(pulumi.StringOutput),
			DialErrorLimit: pulumi.Int(bastionDialErrorLimit),
			PerDialTimeout: pulumi.Int(bastionPerDialTimeoutSeconds),
		}
		if j.HostKey != "" {
			proxy.HostKey = pulumi.String(j.HostKey)
		}
		conn.Proxy = proxy
	}
	trig := append(triggers(s.script, script, s.node, s.env), s.extraTriggers...)
	if s.stdin != nil && stdinTriggers[s.phase] {
		// Secret, so the digest of a secret never lands in plain state or in the diff.
		trig = append(trig, pulumi.ToSecret(s.stdin.ToStringOutput().ApplyT(
			func(in string) string { return "stdin=sha256:" + sha256Hex(in) })))
	}
	args := &remote.CommandArgs{
		Connection: conn,
		Create:     pulumi.String(commandLine(s.phase, script, s.env)),
		Triggers:   trig,
		Logging:    logging,
		// Previous stdout may be a secret; never hand it back to the next run's environment.
		AddPreviousOutputInEnv: pulumi.Bool(false),
	}
	switch {
	case rerunOnUpdate[s.phase]:
		args.Update = args.Create
	case checkOnlyOnUpdate[s.phase]:
		args.Update = pulumi.String(connectionCheck)
	default:
		return nil, fmt.Errorf("phase %s has no update policy (cluster/command.go)", s.phase)
	}
	if s.stdin != nil {
		args.Stdin = pulumi.ToSecret(s.stdin).(pulumi.StringOutput)
	}
	if s.deleteEnv != nil {
		env := map[string]string{}
		for k, v := range s.env {
			env[k] = v
		}
		for k, v := range s.deleteEnv {
			env[k] = v
		}
		args.Delete = pulumi.String(commandLine(s.phase, script, env))
	}
	if s.fixedTriggers != nil {
		args.Triggers = s.fixedTriggers
	}
	return remote.NewCommand(b.ctx, s.name, args, opts...)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
