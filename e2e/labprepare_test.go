package e2e

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/infralab/infralab/internal/testenv"
)

// hack/lab-prepare.sh, the step the lab deploy path runs before `pulumi preview/up`: it installs
// the pinned proxmoxve and command plugins and pins the Proxmox hosts' SSH keys where the
// proxmoxve provider checks them. The real plugins cannot be downloaded here, so the install runs
// from release-shaped archives (INFRALAB_PLUGIN_DIR) holding the stand-in provider, and the
// offline failure against a closed loopback port (INFRALAB_PLUGIN_SERVER).
type labPrepare struct {
	t                    *testing.T
	project, home, hosts string
	env                  []string
	pulumi, script, pve1 string
	hostKey              ssh.PublicKey
}

func newLabPrepare(t *testing.T) *labPrepare {
	t.Helper()
	root := testenv.RepoRoot()
	lp := &labPrepare{t: t, pulumi: testenv.Tool(t, "pulumi"), script: filepath.Join(root, "hack", "lab-prepare.sh")}
	dir := t.TempDir()
	lp.project, lp.home, lp.hosts = filepath.Join(dir, "project"), filepath.Join(dir, "home"), filepath.Join(dir, "ssh", "known_hosts")
	// A copy of the project and the shipped lab stack file: stack init writes into the stack file.
	for src, dst := range map[string]string{"Pulumi.yaml": "Pulumi.yaml", "stacks/Pulumi.lab.yaml": "stacks/Pulumi.lab.yaml"} {
		data, err := os.ReadFile(filepath.Join(root, src))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(lp.project, dst)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(lp.project, dst), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PULUMI_") && !strings.HasPrefix(kv, "INFRALAB_") {
			lp.env = append(lp.env, kv)
		}
	}
	lp.env = append(lp.env,
		"PATH="+filepath.Dir(lp.pulumi)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"PULUMI_HOME="+lp.home, "PULUMI_BACKEND_URL=file://"+filepath.Join(dir, "state"),
		"PULUMI_CONFIG_PASSPHRASE=lab-prepare-test", "PULUMI_SKIP_UPDATE_CHECK=true",
		"PULUMI_DIY_BACKEND_NO_LEGACY_WARNING=true", "NO_COLOR=1",
		"INFRALAB_PROJECT="+lp.project, "INFRALAB_KNOWN_HOSTS="+lp.hosts,
	)
	if err := os.MkdirAll(filepath.Join(dir, "state"), 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(lp.pulumi, "stack", "init", "lab", "--non-interactive")
	cmd.Dir, cmd.Env = lp.project, lp.env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("stack init: %v\n%s", err, out)
	}
	// The shipped example host, with a key made for this test.
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	lp.hostKey, _ = ssh.NewPublicKey(pub)
	lp.pve1 = "pve.example.com"
	lp.config("infralab:proxmox.nodes[0].sshHostKey", strings.TrimSpace(string(ssh.MarshalAuthorizedKey(lp.hostKey)))+" root@pve1")
	return lp
}

func (lp *labPrepare) config(path, value string) {
	lp.t.Helper()
	cmd := exec.Command(lp.pulumi, "config", "set", "--stack", "lab", "--path", path, value)
	cmd.Dir, cmd.Env = lp.project, lp.env
	if out, err := cmd.CombinedOutput(); err != nil {
		lp.t.Fatalf("config set %s: %v\n%s", path, err, out)
	}
}

func (lp *labPrepare) run(extra ...string) (string, error) {
	lp.t.Helper()
	cmd := exec.Command(lp.script, "lab")
	cmd.Env = append(append([]string(nil), lp.env...), extra...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	lp.t.Logf("$ hack/lab-prepare.sh lab %v\n%s", extra, out.String())
	return out.String(), err
}

// pluginArchives writes release-shaped archives of the stand-in provider under both names.
func pluginArchives(t *testing.T) string {
	t.Helper()
	bin, dir := t.TempDir(), t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "pulumi-resource-command"), "./e2e/testdata/stubprovider")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the stand-in: %v\n%s", err, out)
	}
	if err := os.Link(filepath.Join(bin, "pulumi-resource-command"), filepath.Join(bin, "pulumi-resource-proxmoxve")); err != nil {
		t.Fatal(err)
	}
	v := testenv.PinnedVersions(t)
	for name, version := range map[string]string{"command": v["COMMAND_PLUGIN_VERSION"], "proxmoxve": v["PROXMOXVE_PLUGIN_VERSION"]} {
		tgz := filepath.Join(dir, "pulumi-resource-"+name+"-v"+version+"-linux-amd64.tar.gz")
		if out, err := exec.Command("tar", "-C", bin, "-czf", tgz, "pulumi-resource-"+name).CombinedOutput(); err != nil {
			t.Fatalf("tar: %v\n%s", err, out)
		}
	}
	return dir
}

func TestLabPrepareInstallsThePinnedPlugins(t *testing.T) {
	lp := newLabPrepare(t)
	if _, err := lp.run("INFRALAB_PLUGIN_DIR=" + pluginArchives(t)); err != nil {
		t.Fatal(err)
	}
	v := testenv.PinnedVersions(t)
	for _, dir := range []string{"resource-proxmoxve-v" + v["PROXMOXVE_PLUGIN_VERSION"], "resource-command-v" + v["COMMAND_PLUGIN_VERSION"]} {
		if !isDir(filepath.Join(lp.home, "plugins", dir)) {
			t.Errorf("PULUMI_HOME lacks plugins/%s", dir)
		}
	}
	// A second run installs nothing: no archive needed.
	out, err := lp.run()
	if err != nil || strings.Count(out, "already installed") != 2 {
		t.Errorf("second run: %v, want both plugins already installed", err)
	}
}

func isDir(p string) bool { fi, err := os.Stat(p); return err == nil && fi.IsDir() }

// Offline (here: a closed loopback port as the plugin server) the step fails, quickly, saying
// what to do on a machine with internet.
func TestLabPrepareOfflineFailsWithTheInstallCommand(t *testing.T) {
	lp := newLabPrepare(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	_ = l.Close()
	start := time.Now()
	out, err := lp.run("INFRALAB_PLUGIN_SERVER=http://" + closed)
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("want a failed run, got %v", err)
	}
	v := testenv.PinnedVersions(t)
	for _, want := range []string{
		"could not install plugin proxmoxve " + v["PROXMOXVE_PLUGIN_VERSION"],
		"pulumi plugin install resource proxmoxve " + v["PROXMOXVE_PLUGIN_VERSION"] + " --server github://api.github.com/muhlba91/pulumi-proxmoxve",
		"INFRALAB_PLUGIN_DIR",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if d := time.Since(start); d > 60*time.Second {
		t.Errorf("took %s", d)
	}
	if _, err := os.Stat(lp.hosts); err == nil {
		t.Error("known_hosts was written although the plugins are missing")
	}
}

// The pinned key lands where the provider looks, and the provider's own check then accepts that
// key and rejects any other: bpg uses golang.org/x/crypto/ssh/knownhosts (through
// skeema/knownhosts) and fails on a changed key (proxmox/ssh/client.go, openNodeShell).
func TestLabPreparePinsTheHostKeyTheProviderChecks(t *testing.T) {
	lp := newLabPrepare(t)
	archives := "INFRALAB_PLUGIN_DIR=" + pluginArchives(t)
	for i := 0; i < 2; i++ { // the second run adds no duplicate
		if _, err := lp.run(archives); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(lp.hosts)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "\n"); n != 1 {
		t.Errorf("known_hosts has %d lines, want 1:\n%s", n, data)
	}
	check, err := knownhosts.New(lp.hosts)
	if err != nil {
		t.Fatal(err)
	}
	addr := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 10), Port: 22}
	if err := check(lp.pve1+":22", addr, lp.hostKey); err != nil {
		t.Errorf("the pinned key is not accepted: %v", err)
	}
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := ssh.NewPublicKey(otherPub)
	var keyErr *knownhosts.KeyError
	if err := check(lp.pve1+":22", addr, other); !errors.As(err, &keyErr) || len(keyErr.Want) == 0 {
		t.Errorf("another key must be a changed key, got %v", err)
	}

	// A known_hosts that already trusts another key for the host stops the run.
	if err := os.WriteFile(lp.hosts, append([]byte(lp.pve1+" "), ssh.MarshalAuthorizedKey(other)...), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := lp.run(archives)
	if err == nil || !strings.Contains(out, "holds another ssh-ed25519 key for "+lp.pve1) || !strings.Contains(out, "ssh-keygen -R "+lp.pve1) {
		t.Errorf("want a refusal naming ssh-keygen -R, got %v", err)
	}
}
