package node

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/infralab/infralab/internal/proc"
)

const (
	runContainerd = "/run/containerd"
	shimSocketDir = "/run/containerd/s"
)

// Teardown undoes what a node started from dir did, from its record (dir/node-state.json): for
// `infralab-env down` after its supervisor died, or a test that crashed. A missing record means
// nothing to do.
func Teardown(dir string, log io.Writer) error {
	if log == nil {
		log = io.Discard
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	rec, err := loadRecord(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	// A holder that was just killed (a supervisor after SIGKILL) releases the lock only once the
	// kernel has closed its files, a moment after it stopped looking alive: wait briefly for it.
	lock, prevDir, err := waitLock(context.Background(), 15*time.Second, log)
	if err != nil {
		return fmt.Errorf("node: teardown of %s: %w", dir, err)
	}
	defer lock.Close()
	// The lock file names the last node that ran; once it names dir, another node left behind
	// there could no longer be found: undo it first.
	if prevDir != dir {
		if err := recoverPrevious(prevDir, log, teardown); err != nil {
			return err
		}
	}
	if err := claimLock(lock, dir); err != nil {
		return err
	}
	return teardown(dir, rec, nil, log)
}

// teardown runs every step and reports all failures; n is the live node when called by Stop.
func teardown(dir string, rec *record, n *Node, log io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	step := func(format string, a ...any) { fmt.Fprintf(log, "node: teardown: "+format+"\n", a...) }
	var errs []error
	add := func(what string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
			step("%s: %v", what, err)
		}
	}

	// 1. Node components, newest first; containerd stays to tear pods down.
	for _, name := range []string{"kube-router", "kube-proxy", "kube-scheduler", "kubelet"} {
		add("stopping "+name, stopComponent(n, rec, dir, name))
	}
	// 2. Pod sandboxes through the CRI: containerd runs the CNI DEL, removes the network
	// namespaces and ends the shims. After a crash containerd is started again for this.
	if rec.Containerd != "" {
		if n == nil || rec.Pids["containerd"] == 0 || !alive(rec.Pids["containerd"], dir) {
			if p, err := restartContainerd(dir); err == nil {
				defer func() { _ = p.Stop(10 * time.Second) }()
			} else {
				add("restarting containerd to remove pods", err)
			}
		}
		netns, count, err := removeSandboxes(ctx, rec.Containerd)
		add("removing pod sandboxes", err)
		rec.Netns = append(rec.Netns, netns...)
		step("stopped and removed %d pod sandboxes", count)
	}
	add("stopping containerd", stopComponent(n, rec, dir, "containerd"))
	add("ending leftover shims", killShims(rec.Containerd))
	add("removing shim sockets", removeNewEntries(shimSocketDir, rec.ShimSocketsBefore))
	if rec.RunContainerdNew {
		_ = os.Remove(shimSocketDir)
		_ = os.Remove(runContainerd)
	}
	// 3. Network namespaces containerd could not remove.
	for _, ns := range rec.Netns {
		if ns == "" {
			continue
		}
		_ = syscall.Unmount(ns, syscall.MNT_DETACH)
		if err := os.Remove(ns); err != nil && !os.IsNotExist(err) {
			add("removing netns "+ns, err)
		}
	}
	// 4. Sysctls back to what they were, as soon as no pod runs any more (no earlier: the pods
	// need forwarding until they are gone): a teardown that dies or fails in a later step then
	// leaves no changed sysctl for the next node to record as the machine's own value.
	restoreSysctls(rec, step, add)
	// Everything below removes only what did not exist before the node started (rec.Before). A
	// record without that state comes from an older infralab: chains and ipsets with our
	// prefixes are removed as that version did, cgroups and folders are left.
	before := rec.Before
	if before == nil {
		before = &machineState{}
	}
	// 5. The kubelet's cgroups (kubepods/...): with the kubelet stopped nobody removes the pods'.
	if rec.Before != nil {
		add("removing cgroups", removeCgroups(before.Cgroups))
	}
	// 6. The kubelet's links to our pods' logs in /var/log/containers, and that folder if the
	// kubelet created it.
	var created []string
	if rec.Before != nil {
		created = before.Missing
	}
	add("removing container log links", removeContainerLogs(dir, created))
	// 7. iptables and ipsets: the chains that did not exist before and the jumps to them (the
	// node's kube-proxy, kubelet, kube-router and CNI plugins), then the ipsets (kube-router's),
	// then the nftables tables iptables-nft created for them. `kube-proxy --cleanup` is not used:
	// it removes every kube-proxy chain on the machine, ours or not.
	chains, sets := added(before.Chains, listChains(ctx)), added(before.IPSets, listIPSets(ctx))
	for _, tool := range iptablesTools {
		add(tool, removeChains(ctx, tool, before.Chains))
	}
	add("ipsets", removeIPSets(ctx, before.IPSets))
	step("removed %d chains and %d ipsets that did not exist before the node", len(chains), len(sets))
	if rec.Before != nil {
		add("nftables tables", removeNftTables(ctx, before.NftTables))
	}
	// 8. Mounts under our folder (the kubelet's volumes, containerd's snapshots and shm).
	add("unmounting", unmountUnder(dir))
	// 9. The bridge (the pods' veths went with their namespaces).
	if rec.Bridge != "" {
		if _, err := os.Stat("/sys/class/net/" + rec.Bridge); err == nil {
			_, err := run(ctx, "ip", "link", "del", rec.Bridge)
			add("deleting bridge "+rec.Bridge, err)
			if err == nil {
				step("deleted the bridge %s", rec.Bridge)
			}
		}
	}
	// 10. libcni's result cache (its location is fixed) for our network.
	add("CNI cache", removeCNICache())
	if len(errs) == 0 {
		_ = os.Remove(rec.path)
		step("done: no process, pod, cgroup, chain, ipset, log link, mount, link or sysctl of the node is left")
	}
	return errors.Join(errs...)
}

// restoreSysctls sets every sysctl the node recorded back to its value from before the node,
// but only where the node's value is still there: one that something else changed since is
// left as that program set it (logged). One that cannot be read is an error, so the record
// stays and a later teardown tries again.
func restoreSysctls(rec *record, step func(string, ...any), add func(string, error)) {
	keys := make([]string, 0, len(rec.Sysctls))
	for k := range rec.Sysctls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		cur, err := readSysctl(k)
		if err != nil {
			add("reading sysctl "+k+" to restore it", err)
			continue
		}
		written, ok := rec.writtenSysctl(k)
		switch restore, why := sysctlRestore(rec.Sysctls[k], written, ok, cur); {
		case restore:
			if err := writeSysctl(k, rec.Sysctls[k]); err != nil {
				add("restoring sysctl "+k, err)
			} else {
				step("sysctl %s back to %s (was %s)", k, rec.Sysctls[k], cur)
			}
		case why != "":
			step("sysctl %s left at %s: %s", k, cur, why)
		}
	}
}

// sysctlRestore decides whether teardown writes a sysctl's old value back: only when its current
// value is the one the node wrote (written, known when ok); why says why not, "" when there is
// nothing to undo.
func sysctlRestore(old, written string, ok bool, cur string) (restore bool, why string) {
	switch {
	case cur == old:
		return false, ""
	case !ok:
		return false, fmt.Sprintf("the node did not write it (it was %s before the node): another program changed it", old)
	case cur != written:
		return false, fmt.Sprintf("the node wrote %s, another program changed it since (it was %s before the node)", written, old)
	}
	return true, ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func stopComponent(n *Node, rec *record, dir, name string) error {
	if n != nil {
		n.mu.Lock()
		procs := append([]*process(nil), n.procs...)
		n.mu.Unlock()
		for _, p := range procs {
			if p.Name == name {
				return p.Stop(20 * time.Second)
			}
		}
		return nil
	}
	pid := rec.Pids[name]
	if !alive(pid, dir) {
		return nil
	}
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if !alive(pid, dir) {
			return nil
		}
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	time.Sleep(500 * time.Millisecond)
	if alive(pid, dir) {
		return fmt.Errorf("pid %d did not exit", pid)
	}
	return nil
}

// alive reports whether pid runs a command line that mentions dir (so a reused pid is spared).
func alive(pid int, dir string) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	return err == nil && strings.Contains(string(cmdline), dir)
}

func restartContainerd(dir string) (*process, error) {
	bin, err := exec.LookPath("containerd")
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "containerd", "config.toml")
	if !fileExists(cfg) {
		return nil, errors.New("no containerd config: it never started")
	}
	p, err := proc.Start("containerd-teardown", bin, []string{"--config", cfg}, filepath.Join(dir, "logs"), nil)
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "containerd", "containerd.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return p, waitFor(ctx, p, "serving", func(ctx context.Context) error {
		_, err := run(ctx, "ctr", "--address", sock, "version")
		return err
	})
}

// removeSandboxes stops and removes every pod sandbox of our containerd and returns the network
// namespaces they had.
func removeSandboxes(ctx context.Context, socket string) ([]string, int, error) {
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, 0, err
	}
	defer conn.Close()
	rs := runtimeapi.NewRuntimeServiceClient(conn)
	// A containerd started again for teardown serves its socket before the CRI plugin has
	// loaded its state ("server is not initialized yet").
	var list *runtimeapi.ListPodSandboxResponse
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		list, err = rs.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
		if err == nil || !strings.Contains(err.Error(), "not initialized") || time.Now().After(end) {
			break
		}
	}
	if err != nil {
		return nil, 0, err
	}
	var netns []string
	var errs []error
	for _, sb := range list.Items {
		if st, err := rs.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: sb.Id, Verbose: true}); err == nil {
			if p := netnsFromInfo(st.Info["info"]); p != "" {
				netns = append(netns, p)
			}
		}
		if _, err := rs.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			errs = append(errs, err)
		}
		if _, err := rs.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			errs = append(errs, err)
		}
	}
	return netns, len(list.Items), errors.Join(errs...)
}

var netnsPathRE = regexp.MustCompile(`"netNamespacePath":\s*"([^"]*)"`)

// netnsFromInfo picks "netNamespacePath" out of containerd's verbose sandbox info (JSON).
func netnsFromInfo(info string) string {
	if m := netnsPathRE.FindStringSubmatch(info); m != nil {
		return m[1]
	}
	return ""
}

// killShims ends containerd-shim-runc-v2 processes that serve our containerd's address.
func killShims(socket string) error {
	if socket == "" {
		return nil
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if len(args) > 0 && strings.Contains(filepath.Base(args[0]), "containerd-shim") && containsArg(args, "-address", socket) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	return nil
}

func containsArg(args []string, flag, value string) bool {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag && args[i+1] == value {
			return true
		}
	}
	return false
}

func listDir(dir string) []string {
	entries, _ := os.ReadDir(dir)
	out := []string{}
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func removeNewEntries(dir string, before []string) error {
	old := map[string]bool{}
	for _, b := range before {
		old[b] = true
	}
	var errs []error
	for _, name := range listDir(dir) {
		if !old[name] {
			if err := os.Remove(filepath.Join(dir, name)); err != nil && !os.IsNotExist(err) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// unmountUnder detaches every mount point below dir, deepest first.
func unmountUnder(dir string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 {
			mp := unescapeMount(fields[4])
			if strings.HasPrefix(mp, dir+"/") {
				points = append(points, mp)
			}
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	var errs []error
	for _, mp := range points {
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("%s: %w", mp, err))
		}
	}
	return errors.Join(errs...)
}

func unescapeMount(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// removeCNICache removes libcni's cached results for our network (/var/lib/cni/results/NET-*)
// and the folders it made, if it made them empty.
func removeCNICache() error {
	var errs []error
	matches, _ := filepath.Glob(filepath.Join("/var/lib/cni/results", cniNetwork+"-*"))
	for _, m := range matches {
		if err := os.Remove(m); err != nil {
			errs = append(errs, err)
		}
	}
	_ = os.RemoveAll(filepath.Join("/var/lib/cni/networks", cniNetwork))
	for _, d := range []string{"/var/lib/cni/results", "/var/lib/cni/networks", "/var/lib/cni"} {
		_ = os.Remove(d) // only when empty
	}
	return errors.Join(errs...)
}
