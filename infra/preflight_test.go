package infra

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/infralab/infralab/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func commandsNamed(m *mocks, part string) []registered {
	var out []registered
	for _, c := range m.ofType(typeCommand) {
		if strings.Contains(c.name, part) {
			out = append(out, c)
		}
	}
	return out
}

// Issue 13.11: creating (and updating, and deleting) the bridge makes the provider reload the
// node's whole network configuration, staged changes included (bpg/terraform-provider-proxmox
// v0.95.0 fwprovider/nodes/network/resource_linux_bridge.go: Create, Update and Delete each end
// in ReloadNetworkConfiguration, proxmox/nodes/network.go: PUT /nodes/{node}/network). So every
// node with an SSH address gets a read-only pre-flight the bridge waits for: it runs once before
// the bridge is created (create: pending changes, name taken) and again before the bridge is
// changed (update: pending changes).
func TestBridgeWaitsForAReadOnlyPreflight(t *testing.T) {
	a := fixture(t, 2, 1)
	a.Proxmox.Nodes[1].Address = "10.0.0.2"
	a.Network.MTU = 1400
	m, _, err := run(t, a)
	require.NoError(t, err)
	checks := commandsNamed(m, "host-preflight")
	require.Len(t, checks, 2, "one pre-flight per node")
	hosts := map[string]string{"pve1": "pve1.example.org", "pve2": "10.0.0.2"}
	for _, c := range checks {
		node := strings.TrimPrefix(c.name, "lab-host-preflight-")
		require.Contains(t, hosts, node, c.name)
		assert.Equal(t, hosts[node], str(c.inputs, "connection", "host"))
		assert.True(t, isSecretAt(c.inputs, "connection"), "the connection holds the key")
		assert.Equal(t, hostPreflightScript, str(c.inputs, "stdin"))
		create, update := str(c.inputs, "create"), str(c.inputs, "update")
		for _, want := range []string{"INFRALAB_BRIDGE='vmbr1'", "INFRALAB_NODE='" + node + "'", "sh -s create"} {
			assert.Contains(t, create, want)
		}
		assert.Contains(t, update, "sh -s update")
		assert.Contains(t, update, "mtu=1400", "a changed bridge setting re-runs the check before the bridge update")
		assert.NotContains(t, create, "sudo", "read-only: no privilege needed")
		assert.Equal(t, []string{node, "vmbr1"}, strs(c.inputs, "triggers"),
			"replaced (name check again) exactly when the bridge is: a new name or node")
		assert.Empty(t, str(c.inputs, "delete"), "nothing to undo")
	}
	for _, b := range m.ofType(typeBridge) {
		node := str(b.inputs, "nodeName")
		assert.True(t, slices.ContainsFunc(b.rpc.GetDependencies(), func(u string) bool { return strings.HasSuffix(u, "::lab-host-preflight-"+node) }),
			"bridge on %s waits for its pre-flight: %v", node, b.rpc.GetDependencies())
	}

	// Every node has an SSH address (validation requires one beyond the first), so every node
	// gets its pre-flight.
	a = fixture(t, 2, 1)
	m, _, err = run(t, a)
	require.NoError(t, err)
	assert.Len(t, commandsNamed(m, "host-preflight"), 2)
}

// The pre-flight script itself, on a scratch /etc (INFRALAB_ETC) inside a network namespace.
func TestHostPreflightScript(t *testing.T) {
	testenv.RequireRoot(t)
	ipBin := testenv.Tool(t, "ip")
	script, err := os.ReadFile("scripts/host-preflight.sh")
	require.NoError(t, err)
	ns := "infralab-pf-" + strings.ReplaceAll(t.Name(), "/", "-")
	out, err := exec.Command(ipBin, "netns", "add", ns).CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Cleanup(func() { _ = exec.Command(ipBin, "netns", "del", ns).Run() })

	interfaces := "auto lo\niface lo inet loopback\n\nauto vmbr0\niface vmbr0 inet static\n\taddress 203.0.113.2/24\n\tbridge-ports enp0s31f6\n"
	check := func(t *testing.T, action string, files map[string]string) (string, error) {
		t.Helper()
		etc := t.TempDir()
		for name, body := range files {
			p := filepath.Join(etc, "network", name)
			require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
			require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
		}
		c := exec.Command(ipBin, "netns", "exec", ns, "env", "INFRALAB_BRIDGE=vmbr1", "INFRALAB_NODE=pve1", "INFRALAB_ETC="+etc, "sh", "-s", action)
		c.Stdin = strings.NewReader(string(script))
		out, err := c.CombinedOutput()
		return string(out), err
	}

	t.Run("clean host", func(t *testing.T) {
		out, err := check(t, "create", map[string]string{"interfaces": interfaces})
		require.NoError(t, err, out)
		assert.Contains(t, out, "vmbr1 is free and no network change is pending on pve1")
	})
	t.Run("staged copy identical to the live file", func(t *testing.T) {
		out, err := check(t, "create", map[string]string{"interfaces": interfaces, "interfaces.new": interfaces})
		require.NoError(t, err, out)
	})
	t.Run("pending changes", func(t *testing.T) {
		out, err := check(t, "create", map[string]string{"interfaces": interfaces, "interfaces.new": interfaces + "\nauto vmbr9\niface vmbr9 inet manual\n"})
		require.Error(t, err)
		assert.Contains(t, out, "pending network changes on pve1")
		assert.Contains(t, out, "diff -u /etc/network/interfaces /etc/network/interfaces.new")
		assert.Contains(t, out, "pvesh delete /nodes/pve1/network")
		out, err = check(t, "update", map[string]string{"interfaces": interfaces, "interfaces.new": interfaces + "\n# edited\n"})
		require.Error(t, err, "an update reloads too")
		assert.Contains(t, out, "pending network changes on pve1")
	})
	t.Run("name taken in the config", func(t *testing.T) {
		out, err := check(t, "create", map[string]string{"interfaces": interfaces + "\nauto vmbr1\niface vmbr1 inet manual\n\tbridge-ports none\n"})
		require.Error(t, err)
		assert.Contains(t, out, "vmbr1 already exists on pve1 (/etc/network/interfaces)")
		assert.Contains(t, out, "set network.bridge to a free name")
		out, err = check(t, "update", map[string]string{"interfaces": interfaces + "\nauto vmbr1\niface vmbr1 inet manual\n"})
		require.NoError(t, err, "update: the bridge is ours by then\n%s", out)
	})
	t.Run("name taken in interfaces.d", func(t *testing.T) {
		out, err := check(t, "create", map[string]string{"interfaces": interfaces, "interfaces.d/extra": "iface vmbr1 inet manual\n"})
		require.Error(t, err)
		assert.Contains(t, out, "vmbr1 already exists on pve1 (/etc/network/interfaces.d/extra)")
	})
	t.Run("name taken by a live link, and every problem at once", func(t *testing.T) {
		out, err := exec.Command(ipBin, "-n", ns, "link", "add", "vmbr1", "type", "bridge").CombinedOutput()
		require.NoError(t, err, "%s", out)
		defer func() { _ = exec.Command(ipBin, "-n", ns, "link", "del", "vmbr1").Run() }()
		got, err := check(t, "create", map[string]string{"interfaces": interfaces, "interfaces.new": interfaces + "# x\n"})
		require.Error(t, err)
		assert.Contains(t, got, "vmbr1 already exists on pve1 (a live network interface)")
		assert.Contains(t, got, "pending network changes on pve1")
	})
	t.Run("bad value", func(t *testing.T) {
		etc := t.TempDir()
		c := exec.Command("sh", "-s", "create")
		c.Env = append(os.Environ(), "INFRALAB_BRIDGE=vmbr1;reboot", "INFRALAB_NODE=pve1", "INFRALAB_ETC="+etc)
		c.Stdin = strings.NewReader(string(script))
		out, err := c.CombinedOutput()
		require.Error(t, err)
		assert.Contains(t, string(out), "refusing value")
	})
}
