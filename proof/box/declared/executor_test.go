package declared

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi-command/sdk/go/command/remote"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/infralab/infralab/internal/testenv"
)

func (l *sshLab) remoteConnection() remote.ConnectionArgs {
	c := l.connection()
	return remote.ConnectionArgs{
		Host: pulumi.String(c.Host), User: pulumi.String(c.User),
		PrivateKey:     pulumi.ToSecret(pulumi.String(c.PrivateKey.Value)).(pulumi.StringOutput),
		DialErrorLimit: pulumi.Int(2), PerDialTimeout: pulumi.Int(5),
		Proxy: &remote.ProxyConnectionArgs{
			Host: pulumi.String(c.Proxy.Host), User: pulumi.String(c.Proxy.User),
			PrivateKey: pulumi.ToSecret(pulumi.String(c.Proxy.PrivateKey.Value)).(pulumi.StringOutput),
			HostKey:    pulumi.String(c.Proxy.HostKey), DialErrorLimit: pulumi.Int(2), PerDialTimeout: pulumi.Int(5),
		},
	}
}

// The executor runs a program's declared commands over real SSH through a real jump host, in the
// engine's order: a command starts after its dependsOn and the commands whose outputs it reads;
// independent ones run at the same time; a failed one stops its dependants and nothing else; an
// earlier stdout reaches a later command through the program's own Apply; secrets are masked.
// This exercises the declared scripts and their order, not pulumi-command's lifecycle.
func TestExecutorRunsDeclaredCommandsInTheEnginesOrderOverRealSSH(t *testing.T) {
	l := newSSHLab(t)
	dir := t.TempDir() // the namespaces share this host's filesystem
	const secretValue = "s3cret-value-never-printed"
	mark := func(name string) string { return filepath.Join(dir, name) }
	out := &testenv.SyncBuffer{}
	mask := &Masker{}
	runner := &SSH{HostKeys: map[string]string{l.NodeAddr: l.NodeHostKey}, Names: map[string]string{l.NodeAddr: "node-1"}, Out: out, Mask: mask}
	eng := &Engine{Phases: []string{"first", "slow", "use-output", "fail", "after-fail", "independent", "secret", "env"}, Runner: runner}

	program := func(ctx *pulumi.Context) error {
		conn := l.remoteConnection()
		cmd := func(name, script string, opts ...pulumi.ResourceOption) (*remote.Command, error) {
			return remote.NewCommand(ctx, name, &remote.CommandArgs{Connection: conn, Create: pulumi.String(script)}, opts...)
		}
		first, err := cmd("cluster-first", "sleep 0.5; touch "+mark("first")+"; echo hello-from-first")
		if err != nil {
			return err
		}
		for _, n := range []string{"a", "b"} {
			// Both wait for first; neither for the other.
			if _, err := cmd("cluster-slow-"+n, "test -f "+mark("first")+" && sleep 1.5 && touch "+mark("slow-"+n),
				pulumi.DependsOn([]pulumi.Resource{first})); err != nil {
				return err
			}
		}
		// Reads first's stdout through an Apply, as the cluster layer reads the kubeconfig.
		if _, err := remote.NewCommand(ctx, "cluster-use-output", &remote.CommandArgs{
			Connection: conn,
			Create:     pulumi.String("cat > " + mark("use-output")),
			Stdin:      first.Stdout.ApplyT(strings.ToUpper).(pulumi.StringOutput),
		}); err != nil {
			return err
		}
		failing, err := cmd("cluster-fail", "echo about to fail: "+secretValue+" >&2; exit 3", pulumi.DependsOn([]pulumi.Resource{first}))
		if err != nil {
			return err
		}
		if _, err := cmd("cluster-after-fail", "touch "+mark("after-fail"), pulumi.DependsOn([]pulumi.Resource{failing})); err != nil {
			return err
		}
		if _, err := cmd("cluster-independent", "sleep 1; touch "+mark("independent")); err != nil {
			return err
		}
		if _, err := remote.NewCommand(ctx, "cluster-secret", &remote.CommandArgs{
			Connection: conn, Create: pulumi.String("cat; echo"),
			Stdin: pulumi.ToSecret(pulumi.String(secretValue)).(pulumi.StringOutput),
		}); err != nil {
			return err
		}
		_, err = remote.NewCommand(ctx, "cluster-env", &remote.CommandArgs{
			Connection: conn, Create: pulumi.String(`printf '%s' "$DECLARED_VALUE" > ` + mark("env")),
			Environment: pulumi.StringMap{"DECLARED_VALUE": pulumi.String("from-the-environment")},
		})
		return err
	}
	start := time.Now()
	err := pulumi.RunErr(program, pulumi.WithMocks("infralab", "test", eng))
	elapsed := time.Since(start)
	t.Logf("output:\n%s", out.String())

	if err == nil || !strings.Contains(err.Error(), "cluster-fail") {
		t.Fatalf("want the run to fail naming cluster-fail, got %v", err)
	}
	for _, f := range []string{"first", "slow-a", "slow-b", "independent", "env", "use-output"} {
		if _, err := os.Stat(mark(f)); err != nil {
			t.Errorf("%s did not run: %v", f, err)
		}
	}
	if _, err := os.Stat(mark("after-fail")); err == nil {
		t.Errorf("cluster-after-fail ran although the command it depends on failed")
	}
	if b, _ := os.ReadFile(mark("use-output")); string(b) != "HELLO-FROM-FIRST" {
		t.Errorf("use-output got %q on stdin, want first's stdout through the Apply (trailing newline trimmed)", b)
	}
	if b, _ := os.ReadFile(mark("env")); string(b) != "from-the-environment" {
		t.Errorf("env got %q", b)
	}

	res := map[string]Result{}
	for _, r := range eng.Results() {
		res[r.Command.Name] = r
	}
	if _, ran := res["cluster-after-fail"]; ran {
		t.Errorf("cluster-after-fail was run")
	}
	a, b, f := res["cluster-slow-a"], res["cluster-slow-b"], res["cluster-first"]
	if a.Start.Before(f.End) || b.Start.Before(f.End) {
		t.Errorf("a slow command started before first ended")
	}
	if !(a.Start.Before(b.End) && b.Start.Before(a.End)) {
		t.Errorf("independent slow-a (%v-%v) and slow-b (%v-%v) did not overlap", a.Start, a.End, b.Start, b.End)
	}
	if ind := res["cluster-independent"]; ind.Start.After(f.End) {
		t.Errorf("cluster-independent waited for cluster-first")
	}
	t.Logf("the whole run took %v (first 0.5 s, then two 1.5 s commands side by side, plus the SSH dials)", elapsed)

	printed := out.String()
	if strings.Contains(printed, secretValue) || strings.Contains(err.Error(), secretValue) {
		t.Errorf("a secret was printed")
	}
	if !strings.Contains(printed, "[node-1/secret] "+Mask) {
		t.Errorf("the secret command's output is not shown masked")
	}
	if !strings.Contains(printed, "[node-1/first] hello-from-first") {
		t.Errorf("output is not streamed with its node/phase prefix")
	}
	if !strings.Contains(err.Error(), "about to fail: "+Mask) {
		t.Errorf("the error does not carry the failed command's masked output: %v", err)
	}

	// The plan holds what was declared, and its JSON no secret.
	p := eng.Plan()
	use := p.Command("cluster-use-output")
	if use == nil || strings.Join(use.InputsFrom["stdin"], ",") != "cluster-first" {
		t.Errorf("use-output's stdin should be recorded as coming from cluster-first: %+v", use)
	}
	if c := p.Command("cluster-slow-a"); c == nil || c.Phase != "slow" || c.Node != "a" || c.Connection.Proxy == nil {
		t.Errorf("slow-a captured as %+v", c)
	}
}

// A host key the program pins must be the machine's: a mismatch fails before any script runs.
func TestExecutorRefusesAHostKeyThatIsNotTheMachines(t *testing.T) {
	l := newSSHLab(t)
	runner := &SSH{HostKeys: map[string]string{l.NodeAddr: l.NodeHostKey}}
	c := &Command{Name: "cluster-x", Connection: l.connection(), Create: "true"}
	c.Connection.Proxy.HostKey = l.NodeHostKey // the node's key for the jump host: wrong
	_, err := runner.Run(t.Context(), c)
	if err == nil || !strings.Contains(err.Error(), "handshake failed") {
		t.Fatalf("want the jump's handshake to fail on the wrong pinned key, got %v", err)
	}
	c = &Command{Name: "cluster-x", Connection: l.connection(), Create: "true"}
	c.Connection.HostKey = l.JumpHostKey
	if _, err = runner.Run(t.Context(), c); err == nil || !strings.Contains(err.Error(), "the program pins host key") {
		t.Fatalf("want a declared key that differs from the machine's refused, got %v", err)
	}
	// The jump login forwards only: a session on the jump host itself is refused.
	c = &Command{Name: "cluster-x", Connection: *l.connection().Proxy, Create: "echo on-the-jump-host"}
	runner.HostKeys[l.JumpAddr] = l.JumpHostKey
	if out, err := runner.Run(t.Context(), c); err == nil && strings.Contains(out, "on-the-jump-host") {
		t.Fatalf("the forwarding-only jump login ran a command")
	}
}
