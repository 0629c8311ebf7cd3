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
	if j := b.args.Bastion; j != nil {
		conn.Proxy = &remote.ProxyConnectionArgs{
			Host:           pulumi.String(j.Host),
			User:           pulumi.String(j.User),
			PrivateKey:     pulumi.ToSecret(j.PrivateKey).(pulumi.StringOutput),
			DialErrorLimit: pulumi.Int(bastionDialErrorLimit),
			PerDialTimeout: pulumi.Int(bastionPerDialTimeoutSeconds),
		}
	}
	args := &remote.CommandArgs{
		Connection: conn,
		Create:     pulumi.String(commandLine(s.phase, script, s.env)),
		Triggers:   append(triggers(s.script, script, s.node, s.env), s.extraTriggers...),
		Logging:    logging,
		// Previous stdout may be a secret; never hand it back to the next run's environment.
		AddPreviousOutputInEnv: pulumi.Bool(false),
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
