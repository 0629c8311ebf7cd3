package infra

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infralab/infralab/internal/testenv"
	"github.com/stretchr/testify/require"
)

// natLab is a stand-in for a Proxmox host on the internet, built from three network namespaces
// this test creates and deletes:
//
//	wan  (203.0.113.1, an outsider on the uplink's segment; routes 10.10.10.0/24 at the host)
//	 │ veth
//	host: vmbr0 203.0.113.2/24 (uplink, default route via 203.0.113.1)
//	      vmbr1 10.10.10.1/24 (the private bridge the provider would create)
//	 │ veth port of vmbr1
//	vm   (10.10.10.10/24, default route via 10.10.10.1)
type natLab struct {
	t           *testing.T
	ip          string
	host, wan   string
	vm          string
	etc, script string
}

var natLabSeq atomic.Int32

func newNATLab(t *testing.T) *natLab {
	t.Helper()
	testenv.RequireRoot(t)
	l := &natLab{t: t, ip: testenv.Tool(t, "ip")}
	testenv.Tool(t, "iptables")
	id := fmt.Sprintf("%d-%d", os.Getpid(), natLabSeq.Add(1))
	l.host, l.wan, l.vm = "infralab-nat-"+id, "infralab-wan-"+id, "infralab-vm-"+id
	for _, ns := range []string{l.host, l.wan, l.vm} {
		l.run("netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command(l.ip, "netns", "del", ns).Run() })
	}
	h, w, v := l.host, l.wan, l.vm
	for _, args := range [][]string{
		{"-n", h, "link", "add", "vmbr0", "type", "veth", "peer", "name", "wan0", "netns", w}, // no dummy module here
		{"-n", h, "link", "add", "vmbr1", "type", "bridge"},
		{"-n", h, "link", "add", "vm0p", "type", "veth", "peer", "name", "eth0", "netns", v},
		{"-n", h, "link", "set", "vm0p", "master", "vmbr1"},
		{"-n", h, "addr", "add", "203.0.113.2/24", "dev", "vmbr0"},
		{"-n", h, "addr", "add", "10.10.10.1/24", "dev", "vmbr1"},
		{"-n", w, "addr", "add", "203.0.113.1/24", "dev", "wan0"},
		{"-n", v, "addr", "add", "10.10.10.10/24", "dev", "eth0"},
	} {
		l.run(args...)
	}
	for ns, links := range map[string][]string{h: {"lo", "vmbr0", "vmbr1", "vm0p"}, w: {"lo", "wan0"}, v: {"lo", "eth0"}} {
		for _, link := range links {
			l.run("-n", ns, "link", "set", link, "up")
		}
	}
	// A new namespace copies forwarding from the root one (devconf_inherit_init_net=0), which other
	// suites on this machine may have switched on: start from a stock host's 0.
	l.in("sh", "-c", "echo 0 >/proc/sys/net/ipv4/ip_forward")
	l.run("-n", h, "route", "add", "default", "via", "203.0.113.1")
	// Anyone on the uplink's segment can send packets for the private network to the host's MAC.
	l.run("-n", w, "route", "add", "10.10.10.0/24", "via", "203.0.113.2")
	l.run("-n", v, "route", "add", "default", "via", "10.10.10.1")
	dir := t.TempDir()
	l.etc, l.script = filepath.Join(dir, "etc"), filepath.Join(dir, "lib", "host-nat.sh")
	return l
}

func (l *natLab) run(args ...string) string {
	l.t.Helper()
	out, err := exec.Command(l.ip, args...).CombinedOutput()
	require.NoError(l.t, err, "ip %v:\n%s", args, out)
	return string(out)
}

// in runs a command inside the host namespace.
func (l *natLab) in(args ...string) string {
	l.t.Helper()
	return l.run(append([]string{"netns", "exec", l.host}, args...)...)
}

// nat runs the script on the host namespace through the exact command line the remote command
// sends, script on stdin, config files under the lab's scratch folder.
func (l *natLab) nat(action string) (string, error) {
	l.t.Helper()
	env := map[string]string{"INFRALAB_BRIDGE": "vmbr1", "INFRALAB_CIDR": "10.10.10.0/24", "INFRALAB_UPLINK": "vmbr0"}
	c := exec.Command(l.ip, "netns", "exec", l.host, "sh", "-c", natCommand("root", l.script, env, action))
	c.Env = append(os.Environ(), "INFRALAB_ETC="+l.etc)
	c.Stdin = strings.NewReader(hostNATScript)
	out, err := c.CombinedOutput()
	return string(out), err
}

func (l *natLab) mustNAT(action string) string {
	l.t.Helper()
	out, err := l.nat(action)
	require.NoError(l.t, err, "%s:\n%s", action, out)
	return out
}

// rules is the host's whole ruleset as iptables prints it, both tables, without counters.
func (l *natLab) rules() string {
	l.t.Helper()
	return l.in("iptables", "-w", "-S") + l.in("iptables", "-w", "-t", "nat", "-S")
}

// TestMain lets the test binary double as natLab's TCP endpoints: `ip netns exec NS <this
// binary>` with INFRALAB_NATLAB_HELPER set serves or dials inside that namespace and exits.
func TestMain(m *testing.M) {
	if mode := os.Getenv("INFRALAB_NATLAB_HELPER"); mode != "" {
		os.Exit(natLabHelper(mode, os.Getenv("INFRALAB_NATLAB_ADDR")))
	}
	os.Exit(m.Run())
}

func natLabHelper(mode, addr string) int {
	switch mode {
	case "serve": // answer every connection with the peer address it sees
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println("ready")
		for {
			c, err := ln.Accept()
			if err != nil {
				return 1
			}
			_, _ = io.WriteString(c, c.RemoteAddr().String())
			_ = c.Close()
		}
	case "dial": // print the address the server saw us as
		c, err := net.DialTimeout("tcp", addr, natLabDialTimeout)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		_ = c.SetDeadline(time.Now().Add(natLabDialTimeout))
		b, err := io.ReadAll(c)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Print(string(b))
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
	return 2
}

// natLabDialTimeout bounds every connection attempt; a dropped SYN would otherwise retry for minutes.
const natLabDialTimeout = 2 * time.Second

func (l *natLab) helper(ns, mode, addr string) *exec.Cmd {
	c := exec.Command(l.ip, "netns", "exec", ns, os.Args[0])
	c.Env = append(os.Environ(), "INFRALAB_NATLAB_HELPER="+mode, "INFRALAB_NATLAB_ADDR="+addr)
	return c
}

// serve listens on addr inside ns until the test ends.
func (l *natLab) serve(ns, addr string) {
	l.t.Helper()
	c := l.helper(ns, "serve", addr)
	stdout, err := c.StdoutPipe()
	require.NoError(l.t, err)
	var stderr strings.Builder
	c.Stderr = &stderr
	require.NoError(l.t, c.Start())
	l.t.Cleanup(func() { _ = c.Process.Kill(); _ = c.Wait() })
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("unexpected %q", line)
		}
		ready <- err
	}()
	select {
	case err := <-ready:
		require.NoError(l.t, err, "listener on %s in %s: %s", addr, ns, stderr.String())
	case <-time.After(10 * time.Second):
		l.t.Fatalf("listener on %s in %s not ready after 10s: %s", addr, ns, stderr.String())
	}
}

// dial connects from inside ns (bounded by natLabDialTimeout) and returns the host address the
// server saw us as.
func (l *natLab) dial(ns, addr string) (string, error) {
	out, err := l.helper(ns, "dial", addr).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%w: %s", err, out)
	}
	host, _, err := net.SplitHostPort(string(out))
	return host, err
}
