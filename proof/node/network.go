package node

import (
	"context"
	"encoding/json"
	"errors"
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
	// A previous node whose record still existed was undone before preflight (recoverPrevious);
	// what is found here is another node's, or one whose record is gone: refuse, and say
	// exactly what is left and how to remove it.
	if left := foreignNodeState(ctx, n.rec.Before, n.prevDir); left != "" {
		return errors.New(left)
	}
	return nil
}

// foreignNodeState describes, with the commands that remove it, what stops a node from running
// here: the bridge, processes in kubepods cgroups (the node's kubelet would kill them as
// orphans), chains of a running kube-proxy or kube-router (the node's would rewrite them).
// prevDir, the previous node's folder from the lock file, if known, names its processes and
// mounts. "" means nothing is in the way.
func foreignNodeState(ctx context.Context, before *machineState, prevDir string) string {
	var left, steps []string
	var procs, mounts []string
	if prevDir != "" {
		procs = processesMentioning(prevDir)
		mounts = mountsUnder(prevDir)
	}
	var busy []string
	for _, cg := range before.Cgroups {
		if b, _ := os.ReadFile(filepath.Join(cg, "cgroup.procs")); len(strings.TrimSpace(string(b))) > 0 {
			busy = append(busy, cg)
		}
	}
	var chains []string
	for _, c := range before.Chains {
		if f := strings.Fields(c); len(f) == 3 && hasPrefix(f[2], takeoverChains) {
			chains = append(chains, c)
		}
	}
	_, bridgeErr := net.InterfaceByName(BridgeName)
	bridge := bridgeErr == nil
	if !bridge && len(busy) == 0 && len(chains) == 0 {
		return ""
	}
	if len(procs) > 0 {
		left = append(left, fmt.Sprintf("processes of the previous node of %s (its record is gone): %s", prevDir, strings.Join(procs, "; ")))
		steps = append(steps, "end them: kill -9 PID (containerd shims: their containers are in the kubepods cgroups below)")
	}
	if len(busy) > 0 {
		left = append(left, fmt.Sprintf("processes in kubepods cgroups (a kubelet's pods, an infralab node's if it is the only kubelet): %s", strings.Join(busy, ", ")))
		steps = append(steps, "if no other kubelet runs here: kill -9 $(cat CGROUP/cgroup.procs) for each, then rmdir every kubepods folder deepest first: find /sys/fs/cgroup -depth -type d -path '*/kubepods*' -exec rmdir {} \\;")
	}
	if len(mounts) > 0 {
		left = append(left, "mounts under "+prevDir+": "+strings.Join(mounts, ", "))
		steps = append(steps, "unmount them deepest first: umount -l MOUNTPOINT")
	}
	if bridge {
		left = append(left, "the bridge "+BridgeName)
		steps = append(steps, "ip link del "+BridgeName)
	}
	if len(chains) > 0 {
		left = append(left, "chains of a kube-proxy or kube-router: "+strings.Join(chains, ", "))
		steps = append(steps, "if no other kube-proxy or kube-router runs here: .tools/bin/kube-proxy --cleanup (removes every kube-proxy chain), "+
			"then for each KUBE-* chain left: iptables -t TABLE -S | grep -- '-j CHAIN' (delete each such rule with -D), iptables -t TABLE -F CHAIN, iptables -t TABLE -X CHAIN (ip6tables too), "+
			"and ipset destroy for the kube-router-* and KUBE-* ipsets")
	}
	if prevDir != "" {
		steps = append(steps, "sysctls the node set ("+nodeSysctlKeys()+") keep its values: the old ones were in the lost record, set them back with sysctl -w if they matter")
	}
	who := "another node, or the leftovers of one whose record is gone"
	if prevDir != "" {
		who += " (the last node here used " + prevDir + ")"
	}
	return fmt.Sprintf("%s is on this machine: left: %s. To clean it: %s",
		who, strings.Join(left, "; "), strings.Join(steps, "; "))
}

func nodeSysctlKeys() string {
	var keys []string
	for _, sc := range nodeSysctls {
		keys = append(keys, sc.key)
	}
	return strings.Join(keys, ", ")
}

func (s *starter) ensureSysctls(context.Context) error {
	rec := s.n.rec
	for _, sc := range nodeSysctls {
		v, err := readSysctl(sc.key)
		if err != nil {
			return fmt.Errorf("sysctl %s: %w (br_netfilter needed for bridge-nf-call)", sc.key, err)
		}
		rec.Sysctls[sc.key] = v
		// Recorded before the write: a crash right after it still leaves the value to compare.
		rec.SysctlsWritten[sc.key] = sc.value
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
	// net.ipv4.conf.all.forwarding follows net.ipv4.ip_forward: the node's write changed it.
	return s.n.recordWatchedSysctls()
}

// recordWatchedSysctls records, as written by the node, the current value of every watched
// sysctl that differs from its value before the node: the node's own writes change some of them
// (conf.all.forwarding), its components others (kube-proxy). Start calls it after its sysctls
// and once more when every component runs; a component's change after that, or after a crash
// before it, is left as it is by teardown (it cannot tell it from another program's).
func (n *Node) recordWatchedSysctls() error {
	changed := false
	for _, key := range watchedSysctls {
		old, recorded := n.rec.Sysctls[key]
		if _, known := n.rec.SysctlsWritten[key]; !recorded || known {
			continue
		}
		if cur, err := readSysctl(key); err == nil && cur != old {
			n.rec.SysctlsWritten[key] = cur
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return n.rec.save()
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
