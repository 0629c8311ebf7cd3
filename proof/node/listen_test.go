package node

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// listeners returns the TCP addresses the given processes listen on, read from /proc: a socket
// belongs to a process when one of its fds links to socket:[inode].
func listeners(t *testing.T, pids map[string]int) map[string][]netip.AddrPort {
	t.Helper()
	byInode := map[string]string{}
	for name, pid := range pids {
		fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
		for _, fd := range fds {
			if l, err := os.Readlink(fd); err == nil && strings.HasPrefix(l, "socket:[") {
				byInode[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = name
			}
		}
	}
	out := map[string][]netip.AddrPort{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			// sl local rem st tx:rx tr:when retrnsmt uid timeout inode
			if len(fields) < 10 || fields[3] != "0A" { // 0A = LISTEN
				continue
			}
			name, ours := byInode[fields[9]]
			if !ours {
				continue
			}
			ap, err := parseProcAddr(fields[1])
			if err != nil {
				t.Fatalf("%s: %v", table, err)
			}
			out[name] = append(out[name], ap)
		}
		_ = f.Close()
	}
	return out
}

// parseProcAddr decodes /proc/net/tcp's "0100007F:1F90": the address in host byte order per
// 32-bit word, the port in hex.
func parseProcAddr(s string) (netip.AddrPort, error) {
	host, port, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", s)
	}
	raw, err := hex.DecodeString(host)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", s)
	}
	for i := 0; i < len(raw); i += 4 { // little-endian words on amd64 and arm64
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	var p uint16
	if _, err := fmt.Sscanf(port, "%X", &p); err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad port in %q", s)
	}
	addr, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(addr.Unmap(), p), nil
}

// assertOnlyOwnAddresses fails for any listener of ours outside loopback and the node's bridge:
// a wildcard bind would expose the component on the machine's external address.
func assertOnlyOwnAddresses(t *testing.T, pids map[string]int) {
	t.Helper()
	bridge := netip.MustParseAddr(NodeIP)
	got := listeners(t, pids)
	if len(got["kubelet"]) == 0 {
		t.Fatalf("found no kubelet listener among %v: the /proc scan is broken", got)
	}
	for name, aps := range got {
		for _, ap := range aps {
			if a := ap.Addr(); !a.IsLoopback() && a != bridge {
				t.Errorf("%s listens on %s: only loopback and %s (the node's bridge) are allowed", name, ap, NodeIP)
			}
		}
	}
	t.Logf("listeners: %v", got)
}

func TestParseProcAddr(t *testing.T) {
	for in, want := range map[string]string{
		"0100007F:1F90":                         "127.0.0.1:8080",
		"00000000:277A":                         "0.0.0.0:10106",
		"0100F40A:280A":                         "10.244.0.1:10250",
		"00000000000000000000000001000000:0016": "[::1]:22",
	} {
		got, err := parseProcAddr(in)
		if err != nil || got.String() != want {
			t.Errorf("parseProcAddr(%s) = %v, %v; want %s", in, got, err, want)
		}
	}
}
