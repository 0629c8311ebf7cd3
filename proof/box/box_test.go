package box_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/infralab/infralab/internal/testenv"
	"github.com/infralab/infralab/proof/box"
	"github.com/infralab/infralab/proof/box/machine"
	"github.com/infralab/infralab/proof/box/network"
	"github.com/infralab/infralab/proof/box/rootfs"
)

// The tests' own network, apart from a `make box` on 10.77.0.0/24 that may be up.
var testNet = network.Config{Bridge: "ilboxt0", Gateway: netip.MustParsePrefix("10.78.0.1/24"), Chain: "ILBOXT-FORWARD"}

// snapshot is every host object a box names: links, namespaces, mounts, iptables rules, cgroups
// and processes. Other helpers' programs change the host at the same time; what is compared is
// what the box could have left behind.
func snapshot(t *testing.T, marks ...string) []string {
	t.Helper()
	keep := func(s string) bool {
		for _, m := range marks {
			if strings.Contains(s, m) {
				return true
			}
		}
		return false
	}
	var out []string
	add := func(kind string, items ...string) {
		for _, it := range items {
			if keep(it) {
				out = append(out, kind+" "+it)
			}
		}
	}
	ls := func(dir string) []string {
		es, _ := os.ReadDir(dir)
		var n []string
		for _, e := range es {
			n = append(n, filepath.Join(dir, e.Name()))
		}
		return n
	}
	add("link", ls("/sys/class/net")...)
	add("netns", ls("/run/netns")...)
	mounts, err := machine.Mounts()
	if err != nil {
		t.Fatal(err)
	}
	add("mount", mounts...)
	for _, ipt := range []string{"iptables-save", "ip6tables-save"} {
		o, _ := exec.Command(ipt).Output()
		add(ipt, strings.Split(string(o), "\n")...)
	}
	cg, _ := filepath.Glob("/sys/fs/cgroup/*/" + machine.CgroupParent + "/ilbox-t-*")
	add("cgroup", cg...)
	procs, _ := filepath.Glob("/proc/[0-9]*/cgroup")
	for _, p := range procs {
		data, _ := os.ReadFile(p)
		if strings.Contains(string(data), "/"+machine.CgroupParent+"/ilbox-t-") {
			out = append(out, "process "+p)
		}
	}
	sort.Strings(out)
	return out
}

func newKey(t *testing.T) (ssh.Signer, string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return signer, string(ssh.MarshalAuthorizedKey(signer.PublicKey()))
}

func dial(addr netip.Addr, hostKey string, auth ssh.AuthMethod) (*ssh.Client, error) {
	pinned, _, _, _, err := ssh.ParseAuthorizedKey([]byte(hostKey))
	if err != nil {
		return nil, err
	}
	return ssh.Dial("tcp", net.JoinHostPort(addr.String(), "22"), &ssh.ClientConfig{
		User: "infralab", Auth: []ssh.AuthMethod{auth}, HostKeyCallback: ssh.FixedHostKey(pinned), Timeout: 10 * time.Second,
		// The server has rsa, ecdsa and ed25519 keys; ask for the pinned one's type, or it
		// presents another key and the pin fails.
		HostKeyAlgorithms: []string{pinned.Type()},
	})
}

// TestBoxThreeMachinesSSHIsolationAndDownLeavesNothing brings up three machines, checks each is
// a machine of its own reachable over key-only SSH with its pinned host key, that the machines
// reach each other and the bridge but nothing outside the box, then that Down leaves no
// container, cgroup, mount, namespace, veth, bridge, iptables rule or process behind.
func TestBoxThreeMachinesSSHIsolationAndDownLeavesNothing(t *testing.T) {
	testenv.RequireRoot(t)
	tree, err := rootfs.Tree(testenv.CacheDir())
	if err != nil {
		if testenv.Required() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	testenv.ExclusiveNode(t)
	dir := t.TempDir()
	stateDir, dataDir := filepath.Join(dir, "state"), filepath.Join(dir, "data")
	marks := []string{testNet.Bridge, testNet.Chain, "ilbox-t", dir}
	before := snapshot(t, marks...)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	signer, authorized := newKey(t)
	var ms []box.MachineConfig
	for i, name := range []string{"ilbox-t-cp", "ilbox-t-w1", "ilbox-t-w2"} {
		addr := netip.MustParseAddr(fmt.Sprintf("10.78.0.%d", 10+i))
		ms = append(ms, box.MachineConfig{Name: name, Address: addr, UserData: box.MinimalUserData(name, "infralab", authorized)})
	}
	var downDone bool
	t.Cleanup(func() {
		if !downDone {
			if err := box.Down(context.Background(), stateDir, nil); err != nil {
				t.Errorf("cleanup down: %v", err)
			}
		}
	})
	var progress strings.Builder
	start := time.Now()
	b, err := box.Up(ctx, box.Config{Machines: ms, RootFS: tree, StateDir: stateDir, DataDir: dataDir, Network: testNet, Progress: &progress})
	t.Logf("box up (3 machines, warm rootfs) in %s:\n%s", time.Since(start).Round(100*time.Millisecond), progress.String())
	if err != nil {
		t.Fatal(err)
	}
	p := b.Provider()
	run := func(name string, args ...string) (string, error) {
		out, err := p.Exec(ctx, name, nil, args...)
		return strings.TrimSpace(string(out)), err
	}

	ids := map[string]string{}
	for _, m := range ms {
		key := b.HostKey(m.Name)
		if key == "" {
			t.Fatalf("%s: no host key collected", m.Name)
		}
		c, err := dial(m.Address, key, ssh.PublicKeys(signer))
		if err != nil {
			t.Fatalf("%s: ssh with the key and the pinned host key: %v", m.Name, err)
		}
		sess, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		out, err := sess.CombinedOutput("hostname; cat /etc/machine-id; ip -4 -o addr show eth0; sudo -n id -u")
		_ = c.Close()
		if err != nil {
			t.Fatalf("%s: %v: %s", m.Name, err, out)
		}
		f := strings.Fields(string(out))
		if len(f) < 3 || f[0] != m.Name {
			t.Errorf("%s: hostname over ssh: %q", m.Name, out)
			continue
		}
		if other, dup := ids[f[1]]; dup {
			t.Errorf("%s and %s share machine-id %s", m.Name, other, f[1])
		}
		ids[f[1]] = m.Name
		if !strings.Contains(string(out), m.Address.String()+"/24") || f[len(f)-1] != "0" {
			t.Errorf("%s: address or passwordless sudo wrong: %q", m.Name, out)
		}
		// Password login is not offered at all (ssh_pwauth false + the drop-in).
		if c, err := dial(m.Address, key, ssh.Password("infralab")); err == nil {
			_ = c.Close()
			t.Errorf("%s: password login succeeded", m.Name)
		} else if !strings.Contains(err.Error(), "no supported methods remain") {
			t.Errorf("%s: password login failed for another reason than being refused: %v", m.Name, err)
		}
		// A wrong pinned key is refused by the client.
		other := b.HostKey(ms[(1+indexOf(ms, m.Name))%len(ms)].Name)
		if c, err := dial(m.Address, other, ssh.PublicKeys(signer)); err == nil {
			_ = c.Close()
			t.Errorf("%s: ssh accepted another machine's host key", m.Name)
		}
	}

	for _, target := range []string{"10.78.0.1", ms[1].Address.String(), ms[2].Address.String()} {
		if out, err := run(ms[0].Name, "ping", "-c1", "-W2", target); err != nil {
			t.Errorf("%s cannot reach %s: %v %s", ms[0].Name, target, err, out)
		}
	}

	// With forwarding on (as a kubelet or another test may leave it), a packet to an address
	// outside the box reaches FORWARD: the box's chain must drop it.
	fwd, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	dropped0, err := b.Network().Dropped(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := run(ms[1].Name, "ping", "-c3", "-W1", "192.0.2.1"); err == nil {
		t.Error("a ping to 192.0.2.1 (outside the box) was answered")
	}
	dropped1, _ := b.Network().Dropped(ctx)
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", fwd, 0o644); err != nil {
		t.Errorf("restore ip_forward: %v", err)
	}
	if dropped1-dropped0 < 3 {
		t.Errorf("the box chain dropped %d packets of 3 sent outside the box", dropped1-dropped0)
	}

	for _, m := range ms {
		t.Logf("%s: memory %s", m.Name, memoryOf(m.Name))
	}

	downDone = true
	if err := box.Down(ctx, stateDir, nil); err != nil {
		t.Fatal(err)
	}
	if after := snapshot(t, marks...); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("down left things behind:\nbefore:\n%s\nafter:\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"))
	}
	for _, d := range []string{stateDir, dataDir} {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("down left %s", d)
		}
	}
	if err := box.Down(ctx, stateDir, nil); err != nil {
		t.Errorf("a second down: %v", err)
	}
}

func indexOf(ms []box.MachineConfig, name string) int {
	for i, m := range ms {
		if m.Name == name {
			return i
		}
	}
	return -1
}

// memoryOf is the machine's memory cgroup usage and the summed RSS of its processes.
func memoryOf(name string) string {
	d := filepath.Join("/sys/fs/cgroup/memory", machine.CgroupParent, name)
	usage, _ := os.ReadFile(filepath.Join(d, "memory.usage_in_bytes"))
	var rss int64
	_ = filepath.Walk(d, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.Name() != "cgroup.procs" {
			return nil
		}
		data, _ := os.ReadFile(p)
		for _, pid := range strings.Fields(string(data)) {
			st, _ := os.ReadFile(filepath.Join("/proc", pid, "statm"))
			var size, res int64
			fmt.Sscan(string(st), &size, &res)
			rss += res * int64(os.Getpagesize())
		}
		return nil
	})
	return fmt.Sprintf("cgroup usage %s bytes, process RSS sum %d MiB", strings.TrimSpace(string(usage)), rss>>20)
}
