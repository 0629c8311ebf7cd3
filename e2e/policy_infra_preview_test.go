package e2e

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/infralab/infralab/internal/testenv"
)

// The Proxmox and remote-command rules of the policy pack gating `pulumi preview` under the real
// CLI (the same setup as TestPolicyPackGatesPreview: our Go language host, a file backend).
//
// THE PROVIDERS ARE STAND-INS. The real pulumi-command (v1.1.0) and proxmoxve (v7.13.0) provider
// plugins cannot be built or downloaded on the build machine, and the engine will not run a
// program whose resources have no provider plugin. So the fixture's Pulumi.yaml points both
// plugin names (plugins.providers) at e2e/testdata/stubprovider, built by this test into the
// temp copy of the project: it reports the SDKs' versions, returns the inputs of CheckConfig and
// Check exactly as the engine sent them, reports no diff, and refuses to create, update or
// delete anything. It is never installed into PULUMI_HOME (the test checks that too).
//
// What is under test is real: the pulumi CLI v3.274.1 and its engine, the inputs the real Go
// SDKs (github.com/pulumi/pulumi-command/sdk, github.com/muhlba91/pulumi-proxmoxve/sdk/v7)
// declare for the resource types the infra and cluster layers use, and the policy pack.
// What is not: the real providers' Check, which could normalise or re-mark inputs before the
// pack sees them (as the kubernetes provider does for Secrets, see TestPolicyPackGatesPreview).
//
// What it found, pinned below so a change in an SDK fails the test:
//   - remote.NewCommand (and CopyToRemote, CopyFile) wraps the whole connection in a secret, so
//     a plaintext key written in the program reaches the pack as a secret and
//     remote-command-credentials-secret cannot fire for anything declared with the SDK. It fires
//     for a command:remote:Command registered without the SDK (variant unwrapped).
//   - proxmoxve.NewProvider wraps apiToken, password, authTicket and csrfPreventionToken, but not
//     ssh.privateKey or ssh.password: proxmox-credentials-secret fires on the explicit provider's
//     plaintext ssh.privateKey, and on the default provider's apiToken taken from plain stack
//     config (pulumi config set proxmoxve:apiToken without --secret).

// infraFinding is one policy violation as the CLI prints it.
type infraFinding struct{ level, rule, resource, message string }

// policyFindings parses the "Policies:" block of a preview's output: each violation is
// "- [level]  rule  (type: name)", the rule's description, then the message.
func policyFindings(out string) []infraFinding {
	re := regexp.MustCompile(`- \[(mandatory|advisory)\]\s+(\S+)\s+\(([^)\n]*)\)\n[^\n]*\n\s*([^\n]*)`)
	var fs []infraFinding
	for _, m := range re.FindAllStringSubmatch(out, -1) {
		fs = append(fs, infraFinding{level: m[1], rule: m[2], resource: m[3], message: m[4]})
	}
	return fs
}

// policyInfraProject copies e2e/testdata/policyinfra into a temp folder with the program's module
// pins, and builds the stand-in provider into its plugins/ folder under both names.
func policyInfraProject(t *testing.T) string {
	t.Helper()
	root := testenv.RepoRoot()
	dir := t.TempDir()
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	// The fixture uses the program's module pins but is not part of the module.
	gomod = regexp.MustCompile(`(?m)^module .*$`).ReplaceAll(gomod, []byte("module policyinfra"))
	gomod = regexp.MustCompile(`(?m)^(require|replace) github.com/infralab/infralab/policy .*$`).ReplaceAll(gomod, nil)
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), gomod, 0o644); err != nil {
		t.Fatal(err)
	}
	for dst, src := range map[string]string{
		"go.sum":      "go.sum",
		"main.go":     "e2e/testdata/policyinfra/main.go",
		"Pulumi.yaml": "e2e/testdata/policyinfra/Pulumi.yaml",
	} {
		data, err := os.ReadFile(filepath.Join(root, src))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, dst), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("building the stand-in provider needs the go command: %v", err)
	}
	plugins := filepath.Join(dir, "plugins") // Pulumi.yaml: plugins.providers[*].path: ./plugins
	first := filepath.Join(plugins, "pulumi-resource-command")
	build := exec.Command(goBin, "build", "-o", first, "./e2e/testdata/stubprovider")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./e2e/testdata/stubprovider: %v\n%s", err, out)
	}
	second := filepath.Join(plugins, "pulumi-resource-proxmoxve")
	if err := os.Link(first, second); err != nil {
		data, rerr := os.ReadFile(first)
		if rerr != nil {
			t.Fatal(rerr)
		}
		if err := os.WriteFile(second, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// installedPlugins lists PULUMI_HOME/plugins.
func installedPlugins(t *testing.T, home string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(home, "plugins"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestPolicyPackGatesInfraPreview(t *testing.T) {
	ws := newPulumiWorkspace(t, filepath.Join(t.TempDir(), "no-kubeconfig"))
	var home string
	for _, kv := range ws.env {
		if v, ok := strings.CutPrefix(kv, "PULUMI_HOME="); ok {
			home = v
		}
	}
	before := installedPlugins(t, home)
	t.Cleanup(func() {
		after := installedPlugins(t, home)
		for _, name := range after {
			if strings.Contains(name, "command") || strings.Contains(name, "proxmoxve") {
				t.Errorf("PULUMI_HOME %s now holds plugin %s: the stand-in must never be installed there", home, name)
			}
		}
		if !slices.Equal(before, after) {
			t.Errorf("PULUMI_HOME plugins changed from %v to %v", before, after)
		}
	})

	dir := policyInfraProject(t)
	p := ws.project(t, dir, "dev", "")
	stubLog := filepath.Join(t.TempDir(), "stub.log")
	baseEnv := append(slices.Clone(p.env), "INFRALAB_STUB_PROVIDER_LOG="+stubLog)
	p.env = baseEnv
	pack := filepath.Join(testenv.RepoRoot(), "policy")

	// preview sets the variant and the default provider's API token (plain or secret config),
	// runs `pulumi preview --policy-pack policy`, and returns the output, whether it passed, and
	// what the stand-in logged about the inputs it was sent.
	preview := func(t *testing.T, variant string, plainToken bool) (string, bool, string) {
		t.Helper()
		p.setConfig(t, "variant", variant)
		// The default provider's settings come from stack config (proxmox-provider-explicit).
		p.setConfig(t, "proxmoxve:insecure", "false")
		p.setConfig(t, "proxmoxve:minTls", "1.3")
		p.must(t, p.stackArgs("config", "set", "--path", "proxmoxve:ssh.agent", "false")...)
		p.must(t, p.stackArgs("config", "set", "--path", "proxmoxve:ssh.agentForwarding", "false")...)
		p.must(t, p.stackArgs("config", "set", "--path", "proxmoxve:ssh.password", "")...)
		p.must(t, p.stackArgs("config", "set", "--path", "proxmoxve:ssh.socks5Server", "")...)
		if plainToken {
			p.setConfig(t, "proxmoxve:apiToken", "root@pam!default=11111111-1111-1111-1111-111111111111")
		} else {
			// setSecret also records the value: no CLI output may contain it (checked at the end).
			p.setSecret(t, "proxmoxve:apiToken", "root@pam!default=22222222-2222-2222-2222-222222222222")
		}
		_ = os.Remove(stubLog)
		out, _, err := p.run(t, p.stackArgs("preview", "--policy-pack", pack)...)
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("preview did not run: %v", err)
		}
		log, _ := os.ReadFile(stubLog)
		t.Logf("stand-in provider log:\n%s", indent(string(log)))
		if !strings.Contains(out, "infralab@v0.1.0") {
			t.Errorf("the output does not show that the pack ran")
		}
		return out, err == nil, string(log)
	}

	t.Run("broken: mandatory rules fail the preview, insecure TLS only warns", func(t *testing.T) {
		out, ok, log := preview(t, "broken", true)
		if ok {
			t.Fatal("the preview passed with plaintext credentials, a cloud-init password and insecure TLS")
		}
		want := []infraFinding{
			{"mandatory", "cloud-init-no-password", "proxmoxve:Storage:File: user-data-node-1",
				`File "user-data-node-1", field sourceRaw.data: cloud-init user data sets a password ("lock_passwd: false")`},
			{"mandatory", "cloud-init-no-password", "proxmoxve:VM:VirtualMachine: vm-node-1",
				`VirtualMachine "vm-node-1", field initialization.userAccount.password: cloud-init sets a password for the VM's user`},
			{"mandatory", "proxmox-credentials-secret", "pulumi:providers:proxmoxve: proxmox",
				`provider proxmoxve "proxmox", field ssh.privateKey: the Proxmox provider's ssh.privateKey is a plaintext value, so it is stored unencrypted in the Pulumi state`},
			{"mandatory", "proxmox-credentials-secret", "pulumi:providers:proxmoxve: default_",
				`field apiToken: the Proxmox provider's apiToken is a plaintext value, so it is stored unencrypted in the Pulumi state`},
			{"advisory", "proxmox-insecure-tls", "pulumi:providers:proxmoxve: proxmox",
				`provider proxmoxve "proxmox", field insecure: insecure is true: the provider skips TLS verification of the Proxmox API`},
			{"mandatory", "proxmox-provider-explicit", "pulumi:providers:proxmoxve: proxmox",
				`provider proxmoxve "proxmox", field ssh.agent: true: any key loaded in the SSH agent`},
		}
		got := policyFindings(out)
		for _, w := range want {
			if !slices.ContainsFunc(got, func(g infraFinding) bool {
				return g.level == w.level && g.rule == w.rule && strings.HasPrefix(g.resource, w.resource) && strings.Contains(g.message, w.message)
			}) {
				t.Errorf("the output lacks [%s] %s on %s with %q", w.level, w.rule, w.resource, w.message)
			}
		}
		if len(got) != len(want) {
			t.Errorf("the pack reported %d violations, want exactly %d: %+v", len(got), len(want), got)
		}
		// Pinned SDK behaviour (see the top of this file): the plaintext API token of the explicit
		// provider and the plaintext SSH key of remote.NewCommand arrive as secrets.
		for _, g := range got {
			if g.rule == "remote-command-credentials-secret" {
				t.Errorf("remote.NewCommand no longer marks its connection secret (%s): "+
					"remote-command-credentials-secret now gates SDK-declared commands; update this test and docs/policy.md", g.message)
			}
			if g.resource == "pulumi:providers:proxmoxve: proxmox" && strings.Contains(g.message, "field apiToken") {
				t.Errorf("proxmoxve.NewProvider no longer marks apiToken secret (%s); update this test and docs/policy.md", g.message)
			}
		}
		if !strings.Contains(log, "command Check command:remote:Command urn:pulumi:dev::policy-infra::command:remote:Command::host-nat secret=connection\n") {
			t.Error("the engine did not hand the command provider's Check a secret connection")
		}
	})

	t.Run("clean: every credential secret, no password, TLS verified", func(t *testing.T) {
		out, ok, log := preview(t, "clean", false)
		if !ok || len(policyFindings(out)) > 0 {
			t.Fatalf("the clean program failed or warned: %+v", policyFindings(out))
		}
		for _, typ := range []string{"pulumi:providers:proxmoxve", "proxmoxve:Storage/file:File", "proxmoxve:VM/virtualMachine:VirtualMachine",
			"pulumi:providers:command", "command:remote:Command"} {
			if !strings.Contains(log, " "+typ+" ") {
				t.Errorf("the stand-in provider was never asked to check a %s: the preview did not go through it", typ)
			}
		}
	})

	t.Run("unwrapped: a command registered without the SDK fails on its plaintext key", func(t *testing.T) {
		out, ok, _ := preview(t, "unwrapped", false)
		if ok {
			t.Fatal("the preview passed with a plaintext SSH key in a remote command's connection")
		}
		got := policyFindings(out)
		want := infraFinding{"mandatory", "remote-command-credentials-secret", "command:remote:Command: host-nat-unwrapped",
			`Command "host-nat-unwrapped", field connection.privateKey: the SSH connection's privateKey is a plaintext value, so it is stored unencrypted in the Pulumi state`}
		if len(got) != 1 || got[0].level != want.level || got[0].rule != want.rule || got[0].resource != want.resource ||
			!strings.Contains(got[0].message, want.message) {
			t.Errorf("want exactly %+v, got %+v", want, got)
		}
	})

	// Negative control: the stand-in's Check drops the secret markers, as a provider that does
	// not keep secrets would. The clean program's remote command then reaches the pack with a
	// plaintext key and fails, so the pack judges the secret flag the provider's Check returns.
	t.Run("secret flag comes from the provider's Check", func(t *testing.T) {
		p.env = append(slices.Clone(baseEnv), "INFRALAB_STUB_PROVIDER_STRIP_SECRETS=1")
		defer func() { p.env = baseEnv }()
		out, ok, _ := preview(t, "clean", false)
		if ok {
			t.Fatal("the clean program passed although the provider's Check returned its connection as plaintext")
		}
		got := policyFindings(out)
		if len(got) != 1 || got[0].rule != "remote-command-credentials-secret" || got[0].resource != "command:remote:Command: host-nat" ||
			!strings.Contains(got[0].message, "field connection.privateKey") {
			t.Errorf("want only remote-command-credentials-secret on host-nat's connection.privateKey, got %+v", got)
		}
	})

	// The stand-in must never look like a deployment: `pulumi up` reaches its Create and fails.
	t.Run("the stand-in refuses to deploy", func(t *testing.T) {
		p.setConfig(t, "variant", "clean")
		out, _, err := p.run(t, p.stackArgs("up", "--yes", "--skip-preview")...)
		if err == nil {
			t.Fatal("pulumi up succeeded against the stand-in providers")
		}
		if !strings.Contains(out, "is the infralab test stand-in for the") || !strings.Contains(out, "cannot create anything") {
			t.Error("pulumi up did not fail with the stand-in's refusal")
		}
	})

	if leaks := p.secrets.leaks(); len(leaks) > 0 {
		t.Errorf("the secret API token shows up in the CLI's output: %v", leaks)
	}
}
