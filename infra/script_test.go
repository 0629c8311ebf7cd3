package infra

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/infralab/infralab/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every script the infra layer sends to a Proxmox host passes shellcheck (the repo's
// .shellcheckrc is found by walking up from each file).
func TestHostScriptsPassShellcheck(t *testing.T) {
	shellcheck := testenv.Tool(t, "shellcheck")
	scripts, err := filepath.Glob("scripts/*.sh")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(scripts), 3, "host-nat, host-preflight, snippet-cleanup")
	out, err := exec.Command(shellcheck, append([]string{"--severity=style"}, scripts...)...).CombinedOutput()
	require.NoError(t, err, "shellcheck:\n%s", out)
}

// TestHostNATScriptInANetns runs the real script, through the exact command line the remote
// command sends, on a stand-in Proxmox host in network namespaces (natLab). It proves the rules
// land, a rerun changes nothing, and remove takes away exactly what apply added: a rule of
// someone else's survives, and the ruleset afterwards is the one from before.
func TestHostNATScriptInANetns(t *testing.T) {
	l := newNATLab(t)
	l.in("iptables", "-w", "-A", "FORWARD", "-i", "vmbr0", "-p", "udp", "--dport", "51820", "-j", "ACCEPT") // not ours
	before := l.rules()
	masquerades := func() int {
		return strings.Count(l.in("iptables", "-w", "-t", "nat", "-S", "POSTROUTING"), "-s 10.10.10.0/24 -o vmbr0 -m comment --comment infralab-nat -j MASQUERADE")
	}

	first := l.mustNAT("apply")
	assert.Contains(t, first, "now forwarded and masqueraded")
	assert.Equal(t, 1, masquerades())
	forward := l.in("iptables", "-w", "-S", "FORWARD")
	assert.Equal(t, 3, strings.Count(forward, "infralab-nat"), forward)
	assert.Equal(t, "1", strings.TrimSpace(l.in("cat", "/proc/sys/net/ipv4/ip_forward")))
	unit, err := os.ReadFile(filepath.Join(l.etc, "systemd", "system", "infralab-nat.service"))
	require.NoError(t, err)
	assert.Contains(t, string(unit), "ExecStart=/bin/sh "+l.script+" apply")
	installed, err := os.ReadFile(l.script)
	require.NoError(t, err)
	assert.Equal(t, hostNATScript, string(installed), "the command installs the script from stdin")
	applied := l.rules()

	second := l.mustNAT("apply")
	assert.Contains(t, second, "already forwarded and masqueraded: no change")
	assert.Equal(t, applied, l.rules(), "a rerun changes no rule")

	removed := l.mustNAT("remove")
	assert.Contains(t, removed, "removed NAT")
	assert.Equal(t, 0, masquerades())
	assert.Equal(t, before, l.rules(), "remove deletes exactly the rules apply added")
	assert.NoFileExists(t, filepath.Join(l.etc, "systemd", "system", "infralab-nat.service"))
	assert.NoFileExists(t, filepath.Join(l.etc, "default", "infralab-nat"))
	assert.Contains(t, l.mustNAT("remove"), "removed NAT", "a second remove is harmless")
}

// Issue 13.4: with FORWARD policy ACCEPT, an ACCEPT-only NAT forwards anything that reaches the
// host for the private network (an outsider routing 10.10.10.0/24 at the host's public address)
// to the VMs' SSH, 6443 and kubelet ports. After apply, a new connection from the uplink side to
// a VM is dropped by our rule, even behind someone's earlier permissive ACCEPT; the VM's own
// outbound connection works and is masqueraded; a port the host admin forwards with DNAT on
// purpose still reaches the VM (which also proves the dropped path is routable).
func TestHostNATDropsInboundFromTheUplink(t *testing.T) {
	l := newNATLab(t)
	l.serve(l.vm, "10.10.10.10:6443")
	l.serve(l.wan, "203.0.113.1:8080")
	// Someone's blanket accept, appended before ours: appending our drop behind it would be useless.
	l.in("iptables", "-w", "-A", "FORWARD", "-i", "vmbr0", "-j", "ACCEPT")
	l.mustNAT("apply")

	seen, err := l.dial(l.vm, "203.0.113.1:8080")
	require.NoError(t, err, "the VM reaches the internet side")
	assert.Equal(t, "203.0.113.2", seen, "masqueraded behind the uplink address")

	_, err = l.dial(l.wan, "10.10.10.10:6443")
	require.Error(t, err, "a new connection from the uplink to a VM must not get through")
	assert.Positive(t, dropped(t, l), "dropped by infralab-nat's rule, not lost on the way")

	l.in("iptables", "-w", "-t", "nat", "-A", "PREROUTING", "-i", "vmbr0", "-d", "203.0.113.2", "-p", "tcp",
		"--dport", "16443", "-j", "DNAT", "--to-destination", "10.10.10.10:6443")
	seen, err = l.dial(l.wan, "203.0.113.2:16443")
	require.NoError(t, err, "a deliberate port forward (DNAT) still reaches the VM")
	assert.Equal(t, "203.0.113.1", seen)
}

// dropped is the packet count of infralab-nat's DROP rule in FORWARD.
func dropped(t *testing.T, l *natLab) int {
	t.Helper()
	for _, line := range strings.Split(l.in("iptables", "-w", "-L", "FORWARD", "-v", "-x", "-n"), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[2] == "DROP" && strings.Contains(line, "infralab-nat") {
			n, err := strconv.Atoi(f[0])
			require.NoError(t, err, line)
			return n
		}
	}
	t.Fatalf("no infralab-nat DROP rule in FORWARD:\n%s", l.in("iptables", "-w", "-S", "FORWARD"))
	return 0
}

// Issue 13.15: MASQUERADE -o <uplink> does nothing when the traffic leaves through another
// interface, as in a routed Hetzner setup where the NIC itself holds the default route. The
// script refuses before changing anything (no rule, no file, forwarding still off) and names
// the interface that carries the default route.
func TestHostNATRefusesAnUplinkWithoutTheDefaultRoute(t *testing.T) {
	l := newNATLab(t)
	before := l.rules()
	l.run("-n", l.host, "link", "add", "enp0s31f6", "type", "veth", "peer", "name", "enp0s31f6p")
	l.run("-n", l.host, "addr", "add", "198.51.100.2/24", "dev", "enp0s31f6")
	l.run("-n", l.host, "link", "set", "enp0s31f6", "up")
	l.run("-n", l.host, "link", "set", "enp0s31f6p", "up")
	l.run("-n", l.host, "route", "replace", "default", "via", "198.51.100.1", "dev", "enp0s31f6")

	out, err := l.nat("apply")
	require.Error(t, err, out)
	assert.Contains(t, out, "vmbr0 does not carry the IPv4 default route (it leaves through enp0s31f6)")
	assert.Contains(t, out, "set network.uplink to enp0s31f6")
	assert.Equal(t, before, l.rules(), "nothing added")
	assert.NoDirExists(t, l.etc, "no file written")
	assert.Equal(t, "0", strings.TrimSpace(l.in("cat", "/proc/sys/net/ipv4/ip_forward")), "forwarding stays off")

	l.run("-n", l.host, "route", "del", "default")
	out, err = l.nat("apply")
	require.Error(t, err, out)
	assert.Contains(t, out, "no IPv4 default route")

	l.run("-n", l.host, "route", "add", "default", "via", "203.0.113.1", "dev", "vmbr0")
	l.mustNAT("apply")
}

// Issue 13.15: VMs start at boot from pve-guests.service; NAT (and the inbound drop) must be in
// place before the first one does. Forwarding is switched on by the unit itself, after the
// rules, never by a sysctl file at boot: if the unit fails, the VMs stay unreachable instead of
// being forwarded without the drop rule.
func TestHostNATUnitRunsBeforeGuestsStart(t *testing.T) {
	l := newNATLab(t)
	l.mustNAT("apply")
	unit, err := os.ReadFile(filepath.Join(l.etc, "systemd", "system", "infralab-nat.service"))
	require.NoError(t, err)
	lines := strings.Split(string(unit), "\n")
	assert.Contains(t, lines, "Before=pve-guests.service")
	assert.Contains(t, lines, "WantedBy=multi-user.target")
	assert.NoDirExists(t, filepath.Join(l.etc, "sysctl.d"), "forwarding is not switched on at boot before the rules")
	// systemd's own parser, where this machine has it (it is not a test dependency): an unknown
	// or misspelt key is only a warning to systemd, so any output is a failure here.
	if analyze, err := exec.LookPath("systemd-analyze"); err == nil {
		out, err := exec.Command(analyze, "verify", filepath.Join(l.etc, "systemd", "system", "infralab-nat.service")).CombinedOutput()
		assert.NoError(t, err)
		assert.Empty(t, string(out), "systemd-analyze verify")
	}
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
