package infra

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/infralab/infralab/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHostNATScriptPassesShellcheck(t *testing.T) {
	shellcheck := testenv.Tool(t, "shellcheck")
	// shellcheck finds the repo's .shellcheckrc by walking up from the script.
	cmd := exec.Command(shellcheck, "--severity=style", "scripts/host-nat.sh")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "shellcheck:\n%s", out)
}

// TestHostNATScriptInANetns runs the real script, through the exact command line the remote
// command sends, inside a network namespace this test creates (a stand-in for the Proxmox host:
// a veth uplink and a bridge). It proves the rules land, a rerun changes nothing, and remove
// cleans up. Needs root, ip and iptables; config files go to a scratch folder (INFRALAB_ETC).
func TestHostNATScriptInANetns(t *testing.T) {
	ipBin := testenv.Tool(t, "ip")
	testenv.Tool(t, "iptables")
	if os.Geteuid() != 0 {
		if testenv.Required() {
			t.Fatal("needs root to create a network namespace")
		}
		t.Skip("needs root to create a network namespace")
	}
	ns := fmt.Sprintf("infralab-nat-%d", os.Getpid())
	sh := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(ipBin, append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
		require.NoError(t, err, "%v:\n%s", args, out)
		return string(out)
	}
	out, err := exec.Command(ipBin, "netns", "add", ns).CombinedOutput()
	require.NoError(t, err, "ip netns add: %s", out)
	t.Cleanup(func() { _ = exec.Command(ipBin, "netns", "del", ns).Run() })
	sh("ip", "link", "add", "vmbr0", "type", "veth", "peer", "name", "wan0") // no dummy module here
	sh("ip", "link", "add", "vmbr1", "type", "bridge")

	dir := t.TempDir()
	script := filepath.Join(dir, "lib", "host-nat.sh")
	env := map[string]string{"INFRALAB_BRIDGE": "vmbr1", "INFRALAB_CIDR": "10.10.10.0/24", "INFRALAB_UPLINK": "vmbr0"}
	remote := func(action string) string {
		t.Helper()
		c := exec.Command(ipBin, "netns", "exec", ns, "sh", "-c", natCommand("root", script, env, action))
		c.Env = append(os.Environ(), "INFRALAB_ETC="+filepath.Join(dir, "etc"))
		c.Stdin = strings.NewReader(hostNATScript)
		out, err := c.CombinedOutput()
		require.NoError(t, err, "%s:\n%s", action, out)
		return string(out)
	}
	masquerades := func() int {
		return strings.Count(sh("iptables", "-t", "nat", "-S", "POSTROUTING"), "-s 10.10.10.0/24 -o vmbr0 -m comment --comment infralab-nat -j MASQUERADE")
	}

	first := remote("apply")
	assert.Contains(t, first, "now forwarded and masqueraded")
	assert.Equal(t, 1, masquerades())
	assert.Equal(t, 2, strings.Count(sh("iptables", "-S", "FORWARD"), "infralab-nat"))
	assert.Equal(t, "1", strings.TrimSpace(sh("cat", "/proc/sys/net/ipv4/ip_forward")))
	unit, err := os.ReadFile(filepath.Join(dir, "etc", "systemd", "system", "infralab-nat.service"))
	require.NoError(t, err)
	assert.Contains(t, string(unit), "ExecStart=/bin/sh "+script+" apply")
	installed, err := os.ReadFile(script)
	require.NoError(t, err)
	assert.Equal(t, hostNATScript, string(installed), "the command installs the script from stdin")

	second := remote("apply")
	assert.Contains(t, second, "already forwarded and masqueraded: no change")
	assert.Equal(t, 1, masquerades(), "rerun adds no duplicate rule")

	removed := remote("remove")
	assert.Contains(t, removed, "removed NAT")
	assert.Equal(t, 0, masquerades())
	assert.NotContains(t, sh("iptables", "-S", "FORWARD"), "infralab-nat")
	assert.NoFileExists(t, filepath.Join(dir, "etc", "systemd", "system", "infralab-nat.service"))
}

func TestHostNATScriptRefusesMissingBridge(t *testing.T) {
	shBin := testenv.Tool(t, "sh")
	c := exec.Command(shBin, "scripts/host-nat.sh", "apply")
	c.Env = append(os.Environ(), "INFRALAB_BRIDGE=vmbr-missing", "INFRALAB_CIDR=10.10.10.0/24", "INFRALAB_UPLINK=vmbr0",
		"INFRALAB_ETC="+t.TempDir())
	out, err := c.CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "bridge vmbr-missing does not exist")

	c = exec.Command(shBin, "scripts/host-nat.sh", "apply")
	c.Env = append(os.Environ(), "INFRALAB_BRIDGE=vmbr1;reboot", "INFRALAB_CIDR=10.10.10.0/24", "INFRALAB_UPLINK=vmbr0")
	out, err = c.CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "refusing value")
}
