package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infralab/infralab/internal/testenv"
)

// pulumiCLI runs the real pulumi CLI for one project folder, with a private file backend,
// passphrase and PULUMI_HOME, and never the caller's ambient PULUMI_* settings.
type pulumiCLI struct {
	bin   string
	dir   string // project folder (pulumi -C)
	stack string
	// configFile is the stack's config (--config-file); the tracked stacks/ files are never written.
	configFile string
	env        []string
	// secrets are values that must never show up in any output.
	secrets *secretSet
}

// secretSet collects secret values and every output seen, so a test can prove none leaked.
type secretSet struct {
	mu      sync.Mutex
	values  []string
	outputs []string
}

func (s *secretSet) add(v string) { s.mu.Lock(); s.values = append(s.values, v); s.mu.Unlock() }
func (s *secretSet) saw(out string) {
	s.mu.Lock()
	s.outputs = append(s.outputs, out)
	s.mu.Unlock()
}

// leaks returns a description of every output that contains a secret value.
func (s *secretSet) leaks() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var found []string
	for i, out := range s.outputs {
		for j, v := range s.values {
			if strings.Contains(out, v) {
				found = append(found, fmt.Sprintf("secret #%d in output #%d", j, i))
			}
		}
	}
	return found
}

// pulumiWorkspace is what several pulumiCLI share: one backend, one passphrase, one PULUMI_HOME.
type pulumiWorkspace struct {
	bin     string
	env     []string
	dir     string
	secrets *secretSet
}

// newPulumiWorkspace finds the CLI, our language host and the kubernetes plugin, and prepares a
// file backend and a generated passphrase under a temp folder.
func newPulumiWorkspace(t *testing.T, kubeconfig string) *pulumiWorkspace {
	t.Helper()
	bin := testenv.Tool(t, "pulumi")
	host := testenv.Tool(t, "pulumi-language-go")
	home := kubernetesPluginHome(t)
	dir := t.TempDir()
	pass := filepath.Join(dir, "passphrase")
	if err := os.WriteFile(pass, []byte(randomHex(t)+randomHex(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "state"), 0o700); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PULUMI_") || strings.HasPrefix(kv, "KUBECONFIG=") || strings.HasPrefix(kv, "PATH=") {
			continue
		}
		env = append(env, kv)
	}
	sep := string(os.PathListSeparator)
	path := os.Getenv("PATH")
	// The CLI looks for the language host next to its own (resolved) binary first, and warns
	// when it takes one from PATH instead.
	if real, err := filepath.EvalSymlinks(bin); err != nil || !isFile(filepath.Join(filepath.Dir(real), "pulumi-language-go")) {
		path = filepath.Dir(host) + sep + path
	}
	env = append(env,
		"PATH="+path,
		"PULUMI_HOME="+home,
		"PULUMI_BACKEND_URL=file://"+filepath.Join(dir, "state"),
		"PULUMI_CONFIG_PASSPHRASE_FILE="+pass,
		"PULUMI_SKIP_UPDATE_CHECK=true",
		"PULUMI_DIY_BACKEND_NO_LEGACY_WARNING=true",
		// The language host reports proxmoxve and command too (go.mod): never download them.
		"PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true",
		"KUBECONFIG="+kubeconfig,
		"NO_COLOR=1",
	)
	return &pulumiWorkspace{bin: bin, env: env, dir: dir, secrets: &secretSet{}}
}

// kubernetesPluginHome is the PULUMI_HOME holding the kubernetes provider 4.32.0 that `make tools`
// installs; the SDK asks for exactly that version and there is no network to download it.
func kubernetesPluginHome(t *testing.T) string {
	t.Helper()
	home := os.Getenv("PULUMI_HOME")
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			t.Fatal(err)
		}
		home = filepath.Join(h, ".cache", "infralab", "pulumi-home")
	}
	if _, err := os.Stat(filepath.Join(home, "plugins", "resource-kubernetes-v4.32.0")); err != nil {
		msg := "the kubernetes plugin 4.32.0 is not installed in PULUMI_HOME=" + home + "; run `make tools`"
		if testenv.Required() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return home
}

// project returns a CLI bound to one project folder and stack, whose config lives in a copy
// of baseConfig (or an empty file) inside the workspace.
func (w *pulumiWorkspace) project(t *testing.T, dir, stack, baseConfig string) *pulumiCLI {
	t.Helper()
	var data []byte
	if baseConfig != "" {
		var err error
		if data, err = os.ReadFile(baseConfig); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(w.dir, fmt.Sprintf("Pulumi.%s.%s.yaml", filepath.Base(dir), stack))
	if err := os.WriteFile(cfg, data, 0o600); err != nil {
		t.Fatal(err)
	}
	p := &pulumiCLI{bin: w.bin, dir: dir, stack: stack, configFile: cfg, env: w.env, secrets: w.secrets}
	p.initStack(t)
	return p
}

// initStack creates the stack. `pulumi stack init` takes no --config-file and writes the
// stack's encryption salt into the project's stack file (for the repo: the tracked
// stacks/Pulumi.<stack>.yaml), so it runs in a scratch copy of Pulumi.yaml and the salt is
// carried over into the config file this test uses.
func (p *pulumiCLI) initStack(t *testing.T) {
	t.Helper()
	scratch := t.TempDir()
	project, err := os.ReadFile(filepath.Join(p.dir, "Pulumi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(scratch, "Pulumi.yaml"), project, 0o600); err != nil {
		t.Fatal(err)
	}
	init := &pulumiCLI{bin: p.bin, dir: scratch, stack: p.stack, env: p.env, secrets: p.secrets}
	init.must(t, "stack", "init", p.stack)
	var salt string
	_ = filepath.WalkDir(scratch, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == "Pulumi."+p.stack+".yaml" {
			data, _ := os.ReadFile(path)
			for _, line := range strings.Split(string(data), "\n") {
				if strings.HasPrefix(line, "encryptionsalt:") {
					salt = line
				}
			}
		}
		return nil
	})
	if salt == "" {
		t.Fatalf("pulumi stack init wrote no encryptionsalt under %s", scratch)
	}
	f, err := os.OpenFile(p.configFile, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("\n" + salt + "\n"); err != nil {
		t.Fatal(err)
	}
}

// setConfig sets a plain config value in the stack's config file.
func (p *pulumiCLI) setConfig(t *testing.T, key, value string) {
	t.Helper()
	p.must(t, p.stackArgs("config", "set", key, value)...)
}

// setSecret sets a config secret, passing the value on stdin (never on a command line).
func (p *pulumiCLI) setSecret(t *testing.T, key, value string) {
	t.Helper()
	p.secrets.add(value)
	cmd := p.command(p.stackArgs("config", "set", "--secret", key)...)
	cmd.Stdin = strings.NewReader(value)
	out, err := cmd.CombinedOutput()
	p.secrets.saw(string(out))
	if err != nil {
		t.Fatalf("pulumi config set --secret %s: %v\n%s", key, err, out)
	}
}

func (p *pulumiCLI) command(args ...string) *exec.Cmd {
	full := append([]string{"-C", p.dir}, args...)
	full = append(full, "--non-interactive", "--color=never")
	cmd := exec.Command(p.bin, full...)
	cmd.Env = p.env
	return cmd
}

// stackArgs are the flags every stack operation needs.
func (p *pulumiCLI) stackArgs(args ...string) []string {
	return append(args, "--stack", p.stack, "--config-file", p.configFile)
}

// run runs one CLI command and logs it with its duration and output.
func (p *pulumiCLI) run(t *testing.T, args ...string) (string, time.Duration, error) {
	t.Helper()
	return p.runWithin(t, 5*time.Minute, args...)
}

// errHung is returned by runWithin when the command had to be interrupted.
var errHung = errors.New("interrupted: still running at the time limit")

// runWithin runs one CLI command and interrupts it (SIGINT, then SIGKILL) at the limit, so a
// hung operation fails the test promptly instead of holding it for the provider's timeouts.
func (p *pulumiCLI) runWithin(t *testing.T, limit time.Duration, args ...string) (string, time.Duration, error) {
	t.Helper()
	cmd := p.command(args...)
	out := &testenv.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	begin := time.Now()
	err := cmd.Start()
	if err == nil {
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err = <-done:
		case <-time.After(limit):
			_ = cmd.Process.Signal(os.Interrupt)
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
			err = errHung
		}
	}
	took := time.Since(begin)
	p.secrets.saw(out.String())
	t.Logf("$ pulumi %s   (%.1fs, err=%v)\n%s", strings.Join(args, " "), took.Seconds(), err, indent(out.String()))
	return out.String(), took, err
}

func (p *pulumiCLI) must(t *testing.T, args ...string) string {
	t.Helper()
	out, _, err := p.run(t, args...)
	if err != nil {
		t.Fatalf("pulumi %s failed: %v", strings.Join(args, " "), err)
	}
	return out
}

// start runs one CLI command in the background, its output collected in a buffer safe to read
// while it runs.
func (p *pulumiCLI) start(t *testing.T, args ...string) (*exec.Cmd, *testenv.SyncBuffer) {
	t.Helper()
	cmd := p.command(args...)
	buf := &testenv.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = buf, buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("$ pulumi %s   (started in the background)", strings.Join(args, " "))
	return cmd, buf
}

// stateResource is one resource of `pulumi stack export`.
type stateResource struct {
	URN     string         `json:"urn"`
	Type    string         `json:"type"`
	ID      string         `json:"id"`
	Custom  bool           `json:"custom"`
	Outputs map[string]any `json:"outputs"`
}

// export returns the stack's resources and the raw export (secrets stay encrypted).
func (p *pulumiCLI) export(t *testing.T) ([]stateResource, string) {
	t.Helper()
	cmd := p.command("stack", "export", "--stack", p.stack) // takes no --config-file
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pulumi stack export: %v\n%s", err, stderr.String())
	}
	p.secrets.saw(string(out))
	var doc struct {
		Deployment struct {
			Resources         []stateResource `json:"resources"`
			PendingOperations []any           `json:"pending_operations"`
		} `json:"deployment"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("pulumi stack export: %v", err)
	}
	if n := len(doc.Deployment.PendingOperations); n > 0 {
		t.Errorf("the state holds %d pending operation(s): an interrupted step was not resolved", n)
	}
	return doc.Deployment.Resources, string(out)
}

// kubernetesObjects are the state's Kubernetes objects (not the provider or components).
func kubernetesObjects(rs []stateResource) []stateResource {
	var out []stateResource
	for _, r := range rs {
		if r.Custom && strings.HasPrefix(r.Type, "kubernetes:") && !strings.HasPrefix(r.Type, "pulumi:providers:") {
			out = append(out, r)
		}
	}
	return out
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
