package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Sysctls the node sets. The kubelet runs with protectKernelDefaults, so it checks the kernel
// values it needs instead of changing them: they are set here, where their old values are
// recorded first and restored by Teardown.
var nodeSysctls = []struct{ key, value string }{
	{"net.ipv4.ip_forward", "1"},
	{"net.bridge.bridge-nf-call-iptables", "1"},
	{"net.bridge.bridge-nf-call-ip6tables", "1"},
	{"vm.overcommit_memory", "1"},
	{"vm.panic_on_oom", "0"},
	{"kernel.panic", "10"},
	{"kernel.panic_on_oops", "1"},
	{"kernel.keys.root_maxkeys", "1000000"},
	{"kernel.keys.root_maxbytes", "25000000"},
}

// Sysctls a component may change on its own (kube-proxy, CNI plugins): recorded and restored too.
var watchedSysctls = []string{"net.ipv4.conf.all.route_localnet", "net.netfilter.nf_conntrack_max",
	"net.ipv4.conf.all.forwarding"}

func sysctlPath(key string) string {
	return filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
}

func readSysctl(key string) (string, error) {
	b, err := os.ReadFile(sysctlPath(key))
	return strings.TrimSpace(string(b)), err
}

func writeSysctl(key, value string) error {
	return os.WriteFile(sysctlPath(key), []byte(value), 0o644)
}

func (s *starter) preflight(ctx context.Context) error {
	n := s.n
	n.rec = newRecord(n.dir)
	// Before any change: what is already there is not the node's, and teardown leaves it.
	n.rec.Before = readMachineState(ctx)
	n.sysctlsBefore = readAllSysctls()
	for _, d := range []string{"logs", "pki", "cni/net.d", "cni/ipam", "containerd", "kubelet", "pod-logs", "volumes"} {
		if err := os.MkdirAll(n.path(d), 0o700); err != nil {
			return err
		}
	}
	if err := n.rec.save(); err != nil {
		return err
	}
	s.bins = map[string]string{}
	var missing []string
	for _, b := range []string{"kubelet", "kube-scheduler", "kube-proxy", "kube-router"} {
		p := filepath.Join(n.opts.BinDir, b)
		if st, err := os.Stat(p); err != nil || st.IsDir() {
			missing = append(missing, b+" (run: make tools)")
			continue
		}
		s.bins[b] = p
	}
	for _, b := range []string{"containerd", "ctr", "runc", "iptables", "ip6tables", "ipset", "ip"} {
		p, err := exec.LookPath(b)
		if err != nil {
			missing = append(missing, b+" (run: hack/deps.sh)")
			continue
		}
		s.bins[b] = p
	}
	for _, plugin := range []string{"bridge", "host-local", "loopback", "portmap"} {
		if _, err := os.Stat(filepath.Join("/usr/lib/cni", plugin)); err != nil {
			missing = append(missing, "CNI plugin "+plugin+" (apt-get install containernetworking-plugins)")
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing: %s", strings.Join(missing, ", "))
	}
	if _, err := net.InterfaceByName(BridgeName); err == nil {
		return fmt.Errorf("bridge %s exists already: a node (or its leftovers) is on this machine; run `infralab-env down` or `ip link del %s`", BridgeName, BridgeName)
	}
	// The kubelet kills the processes of every pod cgroup below kubepods it does not know.
	for _, cg := range n.rec.Before.Cgroups {
		if procs, _ := os.ReadFile(filepath.Join(cg, "cgroup.procs")); len(strings.TrimSpace(string(procs))) > 0 {
			return fmt.Errorf("processes of another kubelet's pods run in cgroup %s: the node's kubelet would kill them as orphans; stop that kubelet first", cg)
		}
	}
	for _, c := range n.rec.Before.Chains {
		if f := strings.Fields(c); len(f) == 3 && hasPrefix(f[2], takeoverChains) {
			return fmt.Errorf("%s already holds chains of a kube-proxy or kube-router (%s in table %s): another node, or the leftovers of one, is on this machine; stop it or run `infralab-env down`", f[0], f[2], f[1])
		}
	}
	return nil
}

func (s *starter) ensureSysctls(context.Context) error {
	rec := s.n.rec
	for _, sc := range nodeSysctls {
		v, err := readSysctl(sc.key)
		if err != nil {
			return fmt.Errorf("sysctl %s: %w (br_netfilter needed for bridge-nf-call)", sc.key, err)
		}
		rec.Sysctls[sc.key] = v
	}
	for _, key := range watchedSysctls {
		if v, err := readSysctl(key); err == nil {
			rec.Sysctls[key] = v
		}
	}
	if err := rec.save(); err != nil {
		return err
	}
	for _, sc := range nodeSysctls {
		if err := writeSysctl(sc.key, sc.value); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", sc.key, sc.value, err)
		}
	}
	return nil
}

// ensureBridge creates the bridge with the node address before anything runs, so the API proxy
// and the kubelet can bind it; the CNI bridge plugin then finds it and attaches pods.
func (s *starter) ensureBridge(ctx context.Context) error {
	rec := s.n.rec
	rec.Bridge = BridgeName
	if err := rec.save(); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"link", "add", BridgeName, "type", "bridge"},
		{"addr", "add", NodeIP + "/24", "dev", BridgeName},
		{"link", "set", BridgeName, "up"},
		// Service addresses go to the bridge, never to the machine's default route: the host's
		// own connections to a ClusterIP then leave from NodeIP and are DNATed to a pod.
		{"route", "add", ServiceCIDR, "dev", BridgeName, "src", NodeIP},
	} {
		if _, err := run(ctx, "ip", args...); err != nil {
			return err
		}
	}
	return writeCNIConfig(s.n.path("cni", "net.d"), s.n.path("cni", "ipam"))
}

// writeCNIConfig: the bridge plugin without IP masquerade (pods have nowhere to go but this
// node) and with hairpin mode (a pod reaching its own Service); host-local keeps its leases in
// our folder instead of /var/lib/cni/networks.
func writeCNIConfig(confDir, ipamDir string) error {
	_, subnet, _ := net.ParseCIDR(PodCIDR)
	conf := map[string]any{
		"cniVersion": "0.4.0",
		"name":       cniNetwork,
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": BridgeName, "isGateway": true, "ipMasq": false, "hairpinMode": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"dataDir": ipamDir,
					"ranges": []any{[]any{map[string]any{
						"subnet": subnet.String(), "gateway": NodeIP, "rangeStart": "10.244.0.10",
					}}},
					// Pods get a route to Services and nothing else: no default route, so no pod
					// can send a packet past this node, whatever NetworkPolicies say.
					"routes": []any{map[string]any{"dst": ServiceCIDR, "gw": NodeIP}},
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	data, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(confDir, "10-infralab.conflist"), data, 0o644)
}
