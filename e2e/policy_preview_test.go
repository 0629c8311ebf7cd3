package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/infralab/infralab/internal/testenv"
)

// The policy pack gating `pulumi preview` under the real CLI, our Go language host and the real
// kubernetes provider (rendering YAML to a directory, so no cluster). The fixture program is
// policy/testdata/fixture; its config key `violate` breaks one thing per name.

// mandatoryViolations maps each fixture violation to the rule that must stop the preview and a
// piece of that rule's message.
var mandatoryViolations = []struct{ violate, rule, message string }{
	{"run-as-root", "pod-run-as-non-root", "runAsNonRoot is false at pod level"},
	{"run-as-user-0", "pod-run-as-user-group", `container "api", field spec.template.spec.containers[0].securityContext.runAsUser: runAsUser is 0`},
	{"escalation", "pod-privilege-escalation", `initContainer "migrate", field spec.template.spec.initContainers[0].securityContext.allowPrivilegeEscalation`},
	{"cronjob-escalation", "pod-privilege-escalation", "spec.jobTemplate.spec.template.spec.initContainers[0].securityContext.allowPrivilegeEscalation"},
	{"privileged", "pod-privileged", "privileged is true"},
	{"capabilities", "pod-capabilities", "capabilities.add contains SYS_ADMIN"},
	{"seccomp", "pod-seccomp", "no seccomp profile is set"},
	{"writable-root", "pod-read-only-root-filesystem", "readOnlyRootFilesystem is not true"},
	{"host-network", "pod-host-access", "hostNetwork is true"},
	{"nfs-volume", "pod-volume-types", `volume "tmp" has type nfs`},
	{"proc-mount", "pod-security-baseline", "procMount is Unmasked"},
	{"no-requests", "pod-resources", "resources.requests.cpu is not set"},
	{"latest", "pod-image-tag", "uses the tag latest"},
	{"automount", "pod-service-account-token", "automountServiceAccountToken is not set"},
	{"default-sa", "workload-service-account", "default ServiceAccount"},
	{"env-password", "env-credentials-from-secret", "env var DB_PASSWORD looks like a credential"},
	{"configmap-credential", "configmap-no-credentials", "ConfigMap key API_TOKEN looks like a credential"},
	{"no-default-deny", "namespace-default-deny", `namespace "fixture" has no default-deny NetworkPolicy`},
	{"namespace-baseline", "namespace-pod-security", `enforces Pod Security "baseline"`},
}

type fixture struct {
	t    *testing.T
	cli  string
	dir  string
	pack string
	env  []string
}

func pulumiHome(t *testing.T) string {
	home := os.Getenv("PULUMI_HOME")
	if home == "" {
		userHome, err := os.UserHomeDir()
		if err != nil {
			t.Fatal(err)
		}
		home = filepath.Join(userHome, ".cache", "infralab", "pulumi-home")
	}
	if _, err := os.Stat(filepath.Join(home, "plugins", "resource-kubernetes-v4.32.0")); err != nil {
		msg := "kubernetes plugin 4.32.0 is not installed in PULUMI_HOME " + home + "; run `make tools`"
		if testenv.Required() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return home
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	cli := testenv.Tool(t, "pulumi")
	host := testenv.Tool(t, "pulumi-language-go")
	home := pulumiHome(t)
	root := testenv.RepoRoot()

	dir := t.TempDir()
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	// The fixture uses the program's module pins but is not part of the module.
	gomod = regexp.MustCompile(`(?m)^module .*$`).ReplaceAll(gomod, []byte("module policyfixture"))
	gomod = regexp.MustCompile(`(?m)^(require|replace) github.com/infralab/infralab/policy .*$`).ReplaceAll(gomod, nil)
	files := map[string]string{"go.mod": "", "go.sum": filepath.Join(root, "go.sum"),
		"main.go": filepath.Join(root, "policy", "testdata", "fixture", "main.go")}
	for name, src := range files {
		data := gomod
		if src != "" {
			if data, err = os.ReadFile(src); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "Pulumi.yaml"), []byte("name: policy-fixture\nruntime: go\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, cli: cli, dir: dir, pack: filepath.Join(root, "policy"), env: append(os.Environ(),
		"PATH="+filepath.Dir(host)+string(os.PathListSeparator)+filepath.Dir(cli)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"PULUMI_BACKEND_URL=file://"+t.TempDir(),
		"PULUMI_HOME="+home,
		"PULUMI_CONFIG_PASSPHRASE=policy-e2e-passphrase",
		"PULUMI_SKIP_UPDATE_CHECK=true",
		"PULUMI_DIY_BACKEND_NO_LEGACY_WARNING=true",
		"PULUMI_SKIP_CONFIRMATIONS=true",
		"PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true",
		"NO_COLOR=1",
	)}
	f.must("stack", "init", "dev")
	f.must("config", "set", "renderDir", t.TempDir())
	return f
}

func (f *fixture) run(args ...string) (string, error) {
	f.t.Helper()
	cmd := exec.Command(f.cli, append(args, "--non-interactive")...)
	cmd.Dir, cmd.Env = f.dir, f.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	f.t.Logf("$ pulumi %s\n%s", strings.Join(args, " "), out.String())
	return out.String(), err
}

func (f *fixture) must(args ...string) string {
	f.t.Helper()
	out, err := f.run(args...)
	if err != nil {
		f.t.Fatalf("pulumi %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// preview runs `pulumi preview --policy-pack policy` with the given violations and optional
// pack config, and returns the output and whether the preview passed.
func (f *fixture) preview(violate []string, packConfig string) (string, bool) {
	f.t.Helper()
	f.must("config", "set", "violate", strings.Join(violate, ","))
	args := []string{"preview", "--policy-pack", f.pack}
	if packConfig != "" {
		file := filepath.Join(f.t.TempDir(), "policy-config.json")
		if err := os.WriteFile(file, []byte(packConfig), 0o644); err != nil {
			f.t.Fatal(err)
		}
		args = append(args, "--policy-pack-config", file)
	}
	out, err := f.run(args...)
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		f.t.Fatalf("preview did not run: %v", err)
	}
	return out, err == nil
}

// mandatoryReported lists the mandatory rules the output reports.
func mandatoryReported(out string) []string {
	var rules []string
	for _, m := range regexp.MustCompile(`\[mandatory\]\s+(\S+)`).FindAllStringSubmatch(out, -1) {
		rules = append(rules, m[1])
	}
	return rules
}

func TestPolicyPackGatesPreview(t *testing.T) {
	f := newFixture(t)

	t.Run("hardened program passes", func(t *testing.T) {
		f.t = t
		out, ok := f.preview(nil, "")
		if !ok || len(mandatoryReported(out)) > 0 {
			t.Fatalf("the hardened fixture failed the pack (mandatory: %v)", mandatoryReported(out))
		}
		if !strings.Contains(out, "infralab@v0.1.0") {
			t.Errorf("the output does not show that the pack ran")
		}
	})

	t.Run("advisory violation only warns", func(t *testing.T) {
		f.t = t
		out, ok := f.preview([]string{"no-cpu-limit"}, "")
		if !ok {
			t.Fatal("an advisory violation failed the preview")
		}
		if !regexp.MustCompile(`\[advisory\]\s+pod-cpu-limit`).MatchString(out) || !strings.Contains(out, "resources.limits.cpu is not set") {
			t.Error("the advisory violation is not shown")
		}
	})

	t.Run("unknown value is listed, not failed", func(t *testing.T) {
		f.t = t
		out, ok := f.preview([]string{"unknown-image"}, "")
		if !ok || len(mandatoryReported(out)) > 0 {
			t.Fatalf("an image unknown during preview failed the preview (mandatory: %v)", mandatoryReported(out))
		}
		if !regexp.MustCompile(`\[advisory\]\s+preview-unknown-values`).MatchString(out) ||
			!strings.Contains(out, `pod-image-tag: Deployment "api", container "api", field spec.template.spec.containers[0].image: value is unknown during preview`) {
			t.Error("the unknown image is not listed by preview-unknown-values")
		}
	})

	t.Run("every mandatory violation fails the preview", func(t *testing.T) {
		f.t = t
		var all []string
		for _, v := range mandatoryViolations {
			all = append(all, v.violate)
		}
		out, ok := f.preview(all, "")
		if ok {
			t.Fatal("the preview passed with every violation in the program")
		}
		for _, v := range mandatoryViolations {
			if !regexp.MustCompile(`\[mandatory\]\s+`+regexp.QuoteMeta(v.rule)+`\b`).MatchString(out) || !strings.Contains(out, v.message) {
				t.Errorf("violation %s: the output lacks rule %s with %q", v.violate, v.rule, v.message)
			}
		}
	})

	for _, v := range mandatoryViolations {
		if testing.Short() && v.violate != "privileged" && v.violate != "env-password" && v.violate != "no-default-deny" {
			continue
		}
		t.Run("alone/"+v.violate, func(t *testing.T) {
			f.t = t
			out, ok := f.preview([]string{v.violate}, "")
			if ok {
				t.Fatalf("the preview passed with violation %s", v.violate)
			}
			got := mandatoryReported(out)
			for _, r := range got {
				if r != v.rule {
					t.Errorf("violation %s also tripped rule %s", v.violate, r)
				}
			}
			if len(got) == 0 || !strings.Contains(out, v.message) {
				t.Errorf("the output lacks rule %s with %q", v.rule, v.message)
			}
		})
	}

	// The kubernetes provider (4.32) marks a Secret's data and stringData secret in its Check, and
	// analyzers see the checked inputs: a plaintext literal in the program is already encrypted in
	// the state, so secret-data-is-secret cannot fire in a preview. The program's mock run catches
	// the literal instead (rules.EvaluateStack over pulumi.WithMocks inputs). If the provider ever
	// stops doing this, this test fails and the rule takes over the gate.
	t.Run("plaintext Secret literal is already secret when the pack sees it", func(t *testing.T) {
		f.t = t
		out, ok := f.preview([]string{"plaintext-secret"}, "")
		if !ok || strings.Contains(out, "secret-data-is-secret") {
			t.Fatalf("the provider no longer marks Secret data secret before analysis (mandatory: %v); "+
				"move secret-data-is-secret into mandatoryViolations", mandatoryReported(out))
		}
	})

	t.Run("exception with a reason lets the rule pass", func(t *testing.T) {
		f.t = t
		out, ok := f.preview([]string{"writable-root"}, `{"exceptions": {"allow": [
			{"rules": ["pod-read-only-root-filesystem"], "resource": "api", "reason": "legacy image writes to /app/cache"}]}}`)
		if !ok {
			t.Fatalf("the excepted violation still failed the preview (mandatory: %v)", mandatoryReported(out))
		}
	})

	t.Run("exception without a reason is a violation", func(t *testing.T) {
		f.t = t
		out, ok := f.preview([]string{"writable-root"}, `{"exceptions": {"allow": [
			{"rules": ["pod-read-only-root-filesystem"], "resource": "api"}]}}`)
		if ok {
			t.Fatal("an exception without a reason passed")
		}
		if !strings.Contains(out, "exceptions.allow[0].reason: an exception needs a reason") {
			t.Error("the output does not explain the missing reason")
		}
		if !strings.Contains(strings.Join(mandatoryReported(out), " "), "pod-read-only-root-filesystem") {
			t.Error("the reason-less exception was applied")
		}
	})
}
