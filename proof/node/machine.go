package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Machine-wide places outside the node's folder where its components create things on their
// own: iptables chains and the nftables tables iptables-nft makes for them (kube-proxy, the
// kubelet, kube-router, the CNI plugins), ipsets (kube-router), the kubepods cgroup tree (the
// kubelet's cgroupfs driver) and /var/log/containers (the kubelet). Start reads what is there
// before it changes anything (record.Before), Teardown removes only what was not there, and
// Leftovers compares the machine after Stop with it.

// containerLogsDir is where the kubelet links every container's log file. Unlike podLogsDir
// (which the node points into its folder) it is hard-coded in the kubelet
// (pkg/kubelet: ContainerLogsDir, kuberuntime's legacyContainerLogsDir), which creates it when
// it is missing.
const containerLogsDir = "/var/log/containers"

// kubepods is the cgroup the kubelet's cgroupfs driver creates in every hierarchy, with
// burstable/, besteffort/ and pod<uid>/ below it; runc puts each container in its pod's cgroup.
const kubepods = "kubepods"

// Prefixes of the iptables chains and ipsets the node's components create: kube-proxy and the
// kubelet (KUBE-*), kube-router (KUBE-ROUTER-*, KUBE-POD-FW-*, KUBE-NWPLCY-*, ipsets kube-router-*
// and KUBE-*), the CNI plugins (CNI-*). Only those that did not exist before the node are ours.
var chainPrefixes = []string{"KUBE-", "CNI-"}
var ipsetPrefixes = []string{"KUBE-", "kube-router-", "inet6:KUBE-", "inet6:kube-router-"}

// takeoverChains are chains only a running kube-proxy or kube-router has (or a node that was not
// torn down): the node's own would rewrite them, so Start refuses instead of sharing them.
var takeoverChains = []string{"KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-SVC-", "KUBE-SEP-",
	"KUBE-ROUTER-", "KUBE-NWPLCY-", "KUBE-POD-FW-"}

var iptablesTools = []string{"iptables", "ip6tables"}
var builtinChains = []string{"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}
var iptablesTables = []string{"filter", "nat", "mangle", "raw"}

// machineState is what the machine held before the node started, where the node's components
// create things.
type machineState struct {
	Chains    []string `json:"chains"`    // "iptables nat KUBE-SERVICES": chains with our prefixes
	IPSets    []string `json:"ipsets"`    // ipsets with our prefixes
	NftTables []string `json:"nftTables"` // "ip nat"
	Cgroups   []string `json:"cgroups"`   // every folder below kubepods, in every cgroup hierarchy
	// Missing lists the folders the kubelet creates when absent (/var/log/containers and any
	// missing parent) that did not exist, parents first.
	Missing []string `json:"missing"`
}

func readMachineState(ctx context.Context) *machineState {
	return &machineState{
		Chains:    listChains(ctx),
		IPSets:    listIPSets(ctx),
		NftTables: listNftTables(ctx),
		Cgroups:   listKubepods(),
		Missing:   missingDirs(containerLogsDir),
	}
}

// added returns the entries of now that are not in before.
func added(before, now []string) []string {
	old := map[string]bool{}
	for _, b := range before {
		old[b] = true
	}
	var out []string
	for _, x := range now {
		if !old[x] {
			out = append(out, x)
		}
	}
	return out
}

func hasPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// listChains lists the chains with our prefixes, as "TOOL TABLE CHAIN".
func listChains(ctx context.Context) []string {
	var out []string
	for _, tool := range iptablesTools {
		for _, table := range iptablesTables {
			rules, err := run(ctx, tool, "-w", "-t", table, "-S")
			if err != nil {
				continue
			}
			for _, line := range strings.Split(rules, "\n") {
				if f := strings.Fields(line); len(f) == 2 && f[0] == "-N" && hasPrefix(f[1], chainPrefixes) {
					out = append(out, tool+" "+table+" "+f[1])
				}
			}
		}
	}
	return out
}

// removeChains deletes the chains with our prefixes that are not in before: first every rule
// elsewhere that jumps to one of them (such a rule cannot have existed before its target), then
// their rules, then the chains. Chains that existed before, and their rules, stay.
func removeChains(ctx context.Context, tool string, before []string) error {
	old := map[string]bool{}
	for _, b := range before {
		old[b] = true
	}
	var errs []error
	for _, table := range iptablesTables {
		rules, err := run(ctx, tool, "-w", "-t", table, "-S")
		if err != nil {
			continue
		}
		lines := strings.Split(rules, "\n")
		ours := map[string]bool{}
		var order []string
		for _, line := range lines {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "-N" && hasPrefix(f[1], chainPrefixes) && !old[tool+" "+table+" "+f[1]] {
				ours[f[1]] = true
				order = append(order, f[1])
			}
		}
		for _, line := range lines {
			f := unquoteFields(line)
			if len(f) > 2 && f[0] == "-A" && !ours[f[1]] && ours[jumpTarget(f)] {
				args := append([]string{"-w", "-t", table, "-D"}, f[1:]...)
				if _, err := run(ctx, tool, args...); err != nil {
					errs = append(errs, err)
				}
			}
		}
		for _, c := range order {
			_, _ = run(ctx, tool, "-w", "-t", table, "-F", c)
		}
		for _, c := range order {
			if _, err := run(ctx, tool, "-w", "-t", table, "-X", c); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// jumpTarget is the chain a rule (fields of an `iptables -S` line) jumps or goes to, or "".
func jumpTarget(f []string) string {
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "-j" || f[i] == "-g" {
			return f[i+1]
		}
	}
	return ""
}

// unquoteFields splits an `iptables -S` line, keeping "quoted comments" as one argument.
func unquoteFields(line string) []string {
	var out []string
	var cur strings.Builder
	inQuote, have := false, false
	for _, r := range line {
		switch {
		case r == '"':
			inQuote = !inQuote
			have = true
		case r == ' ' && !inQuote:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

func listIPSets(ctx context.Context) []string {
	out, err := run(ctx, "ipset", "list", "-n")
	if err != nil {
		return nil // no ipset tool: kube-router could not have made any
	}
	var sets []string
	for _, name := range strings.Fields(out) {
		if hasPrefix(name, ipsetPrefixes) {
			sets = append(sets, name)
		}
	}
	return sets
}

// removeIPSets destroys the ipsets with our prefixes that are not in before. A list set holds
// others, so a set may only go in a later pass.
func removeIPSets(ctx context.Context, before []string) error {
	var errs []error
	for pass := 0; pass < 3; pass++ {
		errs = nil
		for _, name := range added(before, listIPSets(ctx)) {
			if _, err := run(ctx, "ipset", "destroy", name); err != nil {
				errs = append(errs, err)
			}
		}
		if len(errs) == 0 {
			break
		}
	}
	return errors.Join(errs...)
}

// nftFamilies and nftTableNames are the nftables tables iptables-nft makes (one per iptables
// table): the only ones the node's components can create. Tables of other programs (firewalld,
// docker's, netdev or bridge families) come and go on their own and are left out.
var nftFamilies = []string{"ip", "ip6", "inet"}
var nftTableNames = []string{"filter", "nat", "mangle", "raw", "security"}

// listNftTables lists nftables tables as "FAMILY NAME" (only those iptables-nft makes). With
// iptables-nft (Debian's default) every iptables table the node's components use becomes one,
// created on first use.
func listNftTables(ctx context.Context) []string {
	if _, err := exec.LookPath("nft"); err != nil {
		return nil
	}
	out, err := run(ctx, "nft", "list", "tables")
	if err != nil {
		return nil
	}
	var tables []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "table" && contains(nftFamilies, f[1]) && contains(nftTableNames, f[2]) {
			tables = append(tables, f[1]+" "+f[2])
		}
	}
	return tables
}

// removeNftTables deletes the iptables-nft tables that did not exist before, once our chains are
// gone, and only while they hold nothing: no rule, set or chain besides built-in ones that
// accept.
func removeNftTables(ctx context.Context, before []string) error {
	var errs []error
	for _, t := range added(before, listNftTables(ctx)) {
		f := strings.Fields(t)
		if len(f) != 2 || (f[0] != "ip" && f[0] != "ip6") || !contains(append(iptablesTables, "security"), f[1]) {
			continue
		}
		out, err := run(ctx, "nft", "list", "table", f[0], f[1])
		if err != nil || !emptyNftTable(out) {
			continue
		}
		if _, err := run(ctx, "nft", "delete", "table", f[0], f[1]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// emptyNftTable reports whether `nft list table` shows only iptables-nft's built-in chains with
// an accept policy.
func emptyNftTable(listing string) bool {
	for _, line := range strings.Split(listing, "\n") {
		l := strings.TrimSpace(line)
		switch {
		case l == "" || l == "}" || strings.HasPrefix(l, "table "):
		case len(strings.Fields(l)) == 3 && strings.Fields(l)[0] == "chain" && strings.Fields(l)[2] == "{" &&
			contains(builtinChains, strings.Fields(l)[1]):
		case strings.HasPrefix(l, "type ") && strings.Contains(l, "policy accept;"):
		default:
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// cgroupMounts lists the mount points of every cgroup hierarchy (v1 controllers, and v2).
func cgroupMounts() []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		left, right, ok := strings.Cut(line, " - ")
		lf, rf := strings.Fields(left), strings.Fields(right)
		if ok && len(lf) > 4 && len(rf) > 0 && (rf[0] == "cgroup" || rf[0] == "cgroup2") {
			out = append(out, unescapeMount(lf[4]))
		}
	}
	return out
}

// listKubepods lists every folder of the kubepods tree in every cgroup hierarchy.
func listKubepods() []string {
	var out []string
	for _, mp := range cgroupMounts() {
		_ = filepath.WalkDir(filepath.Join(mp, kubepods), func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				out = append(out, p)
			}
			return nil
		})
	}
	return out
}

// removeCgroups removes the kubepods cgroups that did not exist before, deepest first. Teardown
// has removed the pods by then; a process still in one of them belongs to one of our pods and is
// killed, since a cgroup with a process cannot be removed.
func removeCgroups(before []string) error {
	ours := added(before, listKubepods())
	sort.Slice(ours, func(i, j int) bool {
		if di, dj := strings.Count(ours[i], "/"), strings.Count(ours[j], "/"); di != dj {
			return di > dj
		}
		return ours[i] > ours[j]
	})
	for _, cg := range ours {
		procs, _ := os.ReadFile(filepath.Join(cg, "cgroup.procs"))
		for _, p := range strings.Fields(string(procs)) {
			var pid int
			if _, err := fmt.Sscan(p, &pid); err == nil && pid > 1 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	// Killed processes leave their cgroup a moment later (EBUSY until then).
	var errs []error
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		errs = nil
		for _, cg := range ours {
			if err := syscall.Rmdir(cg); err != nil && !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("%s: %w", cg, err))
			}
		}
		if len(errs) == 0 || time.Now().After(end) {
			return errors.Join(errs...)
		}
	}
}

// missingDirs returns dir and its parents that do not exist, parents first.
func missingDirs(dir string) []string {
	var out []string
	for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			break
		}
		out = append([]string{d}, out...)
	}
	return out
}

// ourContainerLogLinks lists the kubelet's links in /var/log/containers to log files in dir.
func ourContainerLogLinks(dir string) []string {
	var out []string
	entries, _ := os.ReadDir(containerLogsDir)
	for _, e := range entries {
		p := filepath.Join(containerLogsDir, e.Name())
		if target, err := os.Readlink(p); err == nil && strings.HasPrefix(target, dir+"/") {
			out = append(out, p)
		}
	}
	return out
}

// removeContainerLogs removes the kubelet's links to our pods' logs and, deepest first, the
// folders it created, while they are empty.
func removeContainerLogs(dir string, created []string) error {
	var errs []error
	for _, l := range ourContainerLogLinks(dir) {
		if err := os.Remove(l); err != nil && !os.IsNotExist(err) {
			errs = append(errs, err)
		}
	}
	for i := len(created) - 1; i >= 0; i-- {
		if err := syscall.Rmdir(created[i]); err != nil && !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ENOTEMPTY) {
			errs = append(errs, fmt.Errorf("%s: %w", created[i], err))
		}
	}
	return errors.Join(errs...)
}

// processesMentioning lists, as "PID COMMAND LINE", the processes whose command line names dir
// (the node's components and containerd's shims, which are given our socket's path).
func processesMentioning(dir string) []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if strings.Contains(string(cmd), dir) {
			out = append(out, e.Name()+" "+strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " ")))
		}
	}
	return out
}

// mountsUnder lists the mount points below dir.
func mountsUnder(dir string) []string {
	var out []string
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(unescapeMount(f[4]), dir+"/") {
			out = append(out, unescapeMount(f[4]))
		}
	}
	return out
}

// touchedSysctls are the subtrees of /proc/sys the node and its components can change: the
// node's own sysctls (nodeSysctls), the CNI plugins' and kube-proxy's (net.ipv4, net.ipv6,
// net.bridge, net.netfilter). Leftovers compares these only: elsewhere values change on their
// own (kernel.tainted, hung_task_*, random, ns_last_pid, ...) and would be false alarms.
var touchedSysctls = []string{"net/ipv4/", "net/ipv6/", "net/bridge/", "net/netfilter/", "vm/overcommit_", "vm/panic_on_oom",
	"kernel/panic", "kernel/keys/"}

// volatileSysctls change on their own inside those subtrees: left out of the comparison.
var volatileSysctls = []string{"kernel/tainted", "kernel/hung_task_", "net/netfilter/nf_conntrack_count",
	"net/ipv4/tcp_fastopen_key", "net/ipv4/route/flush", "net/ipv6/route/flush"}

// readAllSysctls reads every writable sysctl of this network namespace in the subtrees the node
// can touch, keyed by its path below /proc/sys.
func readAllSysctls() map[string]string {
	out := map[string]string{}
	root := "/proc/sys"
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		key := strings.TrimPrefix(p, root+"/")
		if !hasPrefix(key, touchedSysctls) || hasPrefix(key, volatileSysctls) {
			return nil
		}
		info, err := d.Info()
		if err != nil || info.Mode().Perm()&0o222 == 0 {
			return nil
		}
		if b, err := os.ReadFile(p); err == nil {
			out[key] = strings.TrimSpace(string(b))
		}
		return nil
	})
	return out
}

// Leftovers lists what the node left on the machine after Stop, compared with what the machine
// held when Start began (read before its first change): a process or mount of its folder, its
// record, the bridge, libcni's cache, a sysctl not back to its value (every writable one of the
// subtrees the node can touch, touchedSysctls, not only those it recorded), a chain, ipset, nftables table, kubepods cgroup or
// /var/log/containers folder that did not exist before, a log link to its pods, a shim socket;
// and a chain, ipset or nftables table that existed before and is gone (teardown must leave what
// is not the node's). Empty means teardown undid everything.
func (n *Node) Leftovers() []string {
	if n.rec == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out []string
	add := func(format string, a ...any) { out = append(out, fmt.Sprintf(format, a...)) }
	dir, rec := n.dir, n.rec

	for _, p := range processesMentioning(dir) {
		add("process still runs: %s", p)
	}
	if m := mountsUnder(dir); len(m) > 0 {
		add("mounts under %s left: %v", dir, m)
	}
	if fileExists(recordPath(dir)) {
		add("record %s left: teardown did not finish", recordPath(dir))
	}
	if _, err := os.Stat("/sys/class/net/" + BridgeName); err == nil {
		add("bridge %s still exists", BridgeName)
	}
	if m, _ := filepath.Glob("/var/lib/cni/results/" + cniNetwork + "-*"); len(m) > 0 {
		add("CNI results left: %v", m)
	}
	for _, ns := range rec.Netns {
		if ns != "" && fileExists(ns) {
			add("network namespace %s left", ns)
		}
	}
	if rec.RunContainerdNew && fileExists(runContainerd) {
		add("%s left (it did not exist before the node)", runContainerd)
	}
	if socks := added(rec.ShimSocketsBefore, listDir(shimSocketDir)); len(socks) > 0 {
		add("shim sockets left in %s: %v", shimSocketDir, socks)
	}

	now := readAllSysctls()
	reported := map[string]bool{}
	for k, v := range rec.Sysctls {
		if cur, err := readSysctl(k); err == nil && cur != v {
			add("sysctl %s is %s, was %s before the node", k, cur, v)
			reported[strings.ReplaceAll(k, ".", "/")] = true
		}
	}
	keys := make([]string, 0, len(n.sysctlsBefore))
	for k := range n.sysctlsBefore {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if cur, ok := now[k]; ok && cur != n.sysctlsBefore[k] && !reported[k] {
			add("sysctl %s is %s, was %s before the node", strings.ReplaceAll(k, "/", "."), cur, n.sysctlsBefore[k])
		}
	}

	before := rec.Before
	if before == nil {
		add("the record has no state from before the node")
		return out
	}
	after := readMachineState(ctx)
	compare := func(what string, before, now []string) {
		for _, x := range added(before, now) {
			add("%s left that did not exist before the node: %s", what, x)
		}
		for _, x := range added(now, before) {
			add("%s that existed before the node is gone: %s", what, x)
		}
	}
	compare("iptables chain", before.Chains, after.Chains)
	compare("ipset", before.IPSets, after.IPSets)
	compare("nftables table", before.NftTables, after.NftTables)
	for _, cg := range added(before.Cgroups, after.Cgroups) {
		add("cgroup left that did not exist before the node: %s", cg)
	}
	for _, l := range ourContainerLogLinks(dir) {
		add("log link to the node's pods left: %s", l)
	}
	for _, d := range before.Missing {
		if entries, err := os.ReadDir(d); err == nil && len(entries) == 0 {
			add("folder left that did not exist before the node: %s", d)
		}
	}
	return out
}
