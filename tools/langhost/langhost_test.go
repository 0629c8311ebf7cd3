package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/infralab/infralab/internal/testenv"
)

// The tests run the real pulumi CLI against this language host, with a local file backend.

const testProgram = `package main

import (
	"errors"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
)

func main() {
	pulumi.Run(func(ctx *pulumi.Context) error {
		cfg := config.New(ctx, "")
		if cfg.Get("fail") == "true" {
			return errors.New("boom: the program failed on purpose")
		}
		token, err := cfg.TrySecret("token")
		if err != nil {
			return err
		}
		ctx.Export("greeting", pulumi.Sprintf("hello from %s/%s", ctx.Project(), ctx.Stack()))
		ctx.Export("token", token)
		ctx.Export("tokenLength", token.ApplyT(func(s string) int { return len(s) }))
		ctx.Export("dryRun", pulumi.Bool(ctx.DryRun()))
		return nil
	})
}
`

const tokenValue = "s3cr3t-value-that-must-not-leak"

type project struct {
	t   *testing.T
	cli string
	dir string
	env []string
}

// newProject writes a Go Pulumi project that uses the repo's module pins and a DIY backend in a
// temp dir, with a freshly built language host first on PATH.
func newProject(t *testing.T, program string) *project {
	t.Helper()
	cli := testenv.Tool(t, "pulumi")
	hostDir := buildHost(t)

	dir := t.TempDir()
	writeModule(t, dir, "langhosttest", map[string]string{
		"main.go":     program,
		"Pulumi.yaml": "name: langhosttest\nruntime: go\n",
	})
	backend := t.TempDir()
	home := t.TempDir()
	p := &project{t: t, cli: cli, dir: dir, env: append(os.Environ(),
		"PATH="+hostDir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"PULUMI_BACKEND_URL=file://"+backend,
		"PULUMI_HOME="+home,
		"PULUMI_CONFIG_PASSPHRASE=langhost-test-passphrase",
		"PULUMI_SKIP_UPDATE_CHECK=true",
		"PULUMI_DIY_BACKEND_NO_LEGACY_WARNING=true",
		"PULUMI_SKIP_CONFIRMATIONS=true",
		// The test module pins the repo's SDKs, so the host reports their plugins: never download.
		"PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true",
		"NO_COLOR=1",
	)}
	p.mustRun("stack", "init", "dev")
	return p
}

// writeModule writes a Go module that pins exactly what the repo's go.mod pins, so the build
// needs nothing beyond the module cache.
func writeModule(t *testing.T, dir, name string, files map[string]string) {
	t.Helper()
	root := testenv.RepoRoot()
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	gosum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	files["go.mod"] = regexp.MustCompile(`(?m)^module .*$`).ReplaceAllString(string(gomod), "module "+name)
	files["go.sum"] = string(gosum)
	for file, data := range files {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func buildHost(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "pulumi-language-go"), ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the language host: %v\n%s", err, out)
	}
	return dir
}

func (p *project) run(args ...string) (string, error) {
	p.t.Helper()
	cmd := exec.Command(p.cli, append(args, "--non-interactive")...)
	cmd.Dir = p.dir
	cmd.Env = p.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	p.t.Logf("$ pulumi %s\n%s", strings.Join(args, " "), out.String())
	return out.String(), err
}

func (p *project) mustRun(args ...string) string {
	p.t.Helper()
	out, err := p.run(args...)
	if err != nil {
		p.t.Fatalf("pulumi %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func TestUpWithOutputsAndSecretConfig(t *testing.T) {
	p := newProject(t, testProgram)
	p.mustRun("config", "set", "--secret", "token", tokenValue)

	preview := p.mustRun("preview")
	if !strings.Contains(preview, "building Go program") {
		t.Errorf("preview output shows no build progress")
	}
	up := p.mustRun("up", "--yes", "--skip-preview")
	if strings.Contains(up, tokenValue) {
		t.Errorf("`pulumi up` printed the secret config value")
	}

	outputs := map[string]string{
		"greeting":    "hello from langhosttest/dev",
		"tokenLength": "[secret]", // derived from a secret, so secret too
		"dryRun":      "false",
		"token":       "[secret]",
	}
	for name, want := range outputs {
		if got := strings.TrimSpace(p.mustRun("stack", "output", name)); got != want {
			t.Errorf("stack output %s = %q, want %q", name, got, want)
		}
	}
	if got := strings.TrimSpace(p.mustRun("stack", "output", "token", "--show-secrets")); got != tokenValue {
		t.Errorf("stack output token --show-secrets = %q, want the configured secret", got)
	}
	if got := strings.TrimSpace(p.mustRun("stack", "output", "tokenLength", "--show-secrets")); got != "31" {
		t.Errorf("stack output tokenLength --show-secrets = %q, want 31", got)
	}
	state := p.mustRun("stack", "export")
	if strings.Contains(state, tokenValue) {
		t.Errorf("the secret appears in plaintext in the stack state")
	}
	if !strings.Contains(state, "ciphertext") {
		t.Errorf("the stack state holds no encrypted value; was the output not marked secret?")
	}

	// Running the unchanged program again must report no changes.
	again := p.mustRun("preview", "--expect-no-changes")
	if strings.Contains(again, tokenValue) {
		t.Errorf("preview printed the secret")
	}
}

func TestFailingProgramFailsUp(t *testing.T) {
	p := newProject(t, testProgram)
	p.mustRun("config", "set", "fail", "true")
	out, err := p.run("up", "--yes", "--skip-preview")
	if err == nil {
		t.Fatal("`pulumi up` of a failing program succeeded")
	}
	if !strings.Contains(out, "boom: the program failed on purpose") {
		t.Errorf("`pulumi up` output does not carry the program's error")
	}
}

func TestCompileErrorFailsUp(t *testing.T) {
	p := newProject(t, strings.Replace(testProgram, "return nil\n\t})", "return undefinedThing\n\t})", 1))
	out, err := p.run("up", "--yes", "--skip-preview")
	if err == nil {
		t.Fatal("`pulumi up` of a program that does not compile succeeded")
	}
	if !strings.Contains(out, "undefined: undefinedThing") {
		t.Errorf("`pulumi up` output does not show the compiler's error")
	}
}

func TestEngineAddress(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"127.0.0.1:1234"}, "127.0.0.1:1234"},
		{[]string{"--logtostderr", "-v=9", "127.0.0.1:1"}, "127.0.0.1:1"},
		{[]string{"--tracing", "http://x", "127.0.0.1:2"}, "127.0.0.1:2"},
		{[]string{"-root=/p", "127.0.0.1:3"}, "127.0.0.1:3"},
		{nil, ""},
	}
	for _, tt := range tests {
		if got := engineAddress(tt.args); got != tt.want {
			t.Errorf("engineAddress(%q) = %q, want %q", tt.args, got, tt.want)
		}
	}
}

const testPolicyPack = `package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/blang/semver"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/policyx"
)

func main() {
	err := policyx.Main(func(*pulumi.Context) (policyx.PolicyPack, error) {
		return policyx.NewPolicyPack("langhost-test-pack", semver.MustParse("0.1.0"), policyx.EnforcementLevelMandatory,
			[]policyx.Policy{policyx.NewResourceValidationPolicy("no-dev-stack", policyx.ResourceValidationPolicyArgs{
				Description:      "Stacks named dev are refused (test rule).",
				EnforcementLevel: policyx.EnforcementLevelMandatory,
				ValidateResource: func(_ context.Context, args policyx.ResourceValidationArgs) error {
					if args.Resource.Type == "pulumi:pulumi:Stack" && strings.HasSuffix(args.Resource.Name, "-dev") {
						args.Manager.ReportViolation("the test pack refuses stack "+args.Resource.Name, "")
					}
					return nil
				},
			})})
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
`

// A Go policy pack runs through RunPlugin: the host builds it, starts it, and streams its output.
func TestGoPolicyPackGatesPreview(t *testing.T) {
	p := newProject(t, testProgram)
	p.mustRun("config", "set", "--secret", "token", tokenValue)
	pack := t.TempDir()
	writeModule(t, pack, "langhostpolicytest", map[string]string{
		"main.go":           testPolicyPack,
		"PulumiPolicy.yaml": "runtime: go\nversion: 0.1.0\ndescription: langhost test pack\n",
	})
	out, err := p.run("preview", "--policy-pack", pack)
	if err == nil {
		t.Fatal("preview passed although the mandatory test policy is violated")
	}
	for _, want := range []string{"no-dev-stack", "the test pack refuses stack langhosttest-dev"} {
		if !strings.Contains(out, want) {
			t.Errorf("preview output lacks %q", want)
		}
	}
}
