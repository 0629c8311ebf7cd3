package cluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/infralab/infralab/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The containerd version is exact, 2.x, and not below what containerd supports for the
// Kubernetes minor; the default passes for every supported minor; every node's prepare-node
// gets it and kubeadm's pause image.
func TestContainerdVersionIsCheckedAndReachesPrepareNode(t *testing.T) {
	for v, want := range map[string]string{
		"2.3":    "must be an exact containerd 2.x version",
		"1.7.28": "must be an exact containerd 2.x version",
		"2.1.4":  "older than 2.1.5, the oldest containerd 2.x supported with Kubernetes 1.35",
	} {
		a := testArgs()
		a.ContainerdVersion = v
		err := a.Validate()
		require.Error(t, err, v)
		assert.Contains(t, err.Error(), "cluster.containerdVersion: ", v)
		assert.Contains(t, err.Error(), want, v)
	}
	for _, k := range []string{"1.34.4", "1.35.4"} {
		assert.Empty(t, checkContainerdVersion(DefaultContainerdVersion, k), k)
	}

	r := run(t, testArgs(), Scripts())
	for _, n := range testArgs().nodes() {
		create := r.m.get(t, "lab-prepare-node-"+n.Name).args.Inputs["create"].StringValue()
		assert.Contains(t, create, "CONTAINERD_VERSION="+shellQuote(DefaultContainerdVersion), n.Name)
		assert.Contains(t, create, "SANDBOX_IMAGE="+shellQuote("registry.k8s.io/pause:3.10.1"), n.Name)
	}
}

// containerdBinary is a containerd 2.x to check the generated config with: $INFRALAB_CONTAINERD,
// else one on PATH (Debian 12's own containerd is 1.6 and does not count).
func containerdBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("INFRALAB_CONTAINERD")
	if bin == "" {
		// make test builds it (hack/tools.sh containerd2) into .tools/bin.
		bin, _ = exec.LookPath("containerd2")
	}
	if bin == "" {
		bin, _ = exec.LookPath("containerd")
	}
	if bin != "" {
		if out, err := exec.Command(bin, "--version").Output(); err == nil && strings.Contains(string(out), " 2.") {
			return bin
		}
	}
	if testenv.Required() {
		t.Fatal("no containerd 2.x: run hack/tools.sh containerd2 (make test does), or set INFRALAB_CONTAINERD")
	}
	t.Skip("no containerd 2.x (set INFRALAB_CONTAINERD to one)")
	return ""
}

// A real containerd loads the config prepare-node writes and ends up with its own defaults plus
// exactly our two keys: the runc runtime keeps its defaults (runtime_type io.containerd.runc.v2)
// and gets SystemdCgroup = true, and the sandbox image is kubeadm's.
func TestContainerdConfigTakesEffectInARealContainerd(t *testing.T) {
	bin := containerdBinary(t)
	lib, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "cluster", "scripts", libScript))
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, os.Symlink(bin, filepath.Join(dir, "containerd")))
	libPath := filepath.Join(dir, "lib.sh")
	require.NoError(t, os.WriteFile(libPath, lib, 0o600))
	cmd := exec.Command("bash", "-c", `source "$1"; containerd_config "$2"`, "test", libPath, sandboxImage)
	cmd.Env = []string{"PATH=" + dir + ":/usr/bin:/bin", "PHASE=test"}
	cfg, err := cmd.Output()
	require.NoError(t, err)
	cfgPath := filepath.Join(dir, "config.toml")
	require.NoError(t, os.WriteFile(cfgPath, cfg, 0o600))

	dump, err := exec.Command(bin, "--config", cfgPath, "config", "dump").Output()
	require.NoError(t, err)
	def, err := exec.Command(bin, "config", "default").Output()
	require.NoError(t, err)
	var changed []string
	defLines := strings.Split(string(def), "\n")
	for i, l := range strings.Split(string(dump), "\n") {
		if i >= len(defLines) || l != defLines[i] {
			changed = append(changed, strings.TrimSpace(l))
		}
	}
	assert.Equal(t, []string{"sandbox = 'registry.k8s.io/pause:3.10.1'", "SystemdCgroup = true"}, changed,
		"the effective config is containerd's default with our two keys")
	assert.Contains(t, string(dump), "runtime_type = 'io.containerd.runc.v2'")
}

// The containerd make test builds (hack/versions.env CONTAINERD_VERSION) is the one the nodes
// install by default, so the config check above runs against the daemon the lab gets.
func TestContainerdPinIsTheNodesDefault(t *testing.T) {
	assert.Equal(t, DefaultContainerdVersion, testenv.PinnedVersions(t)["CONTAINERD_VERSION"])
}
