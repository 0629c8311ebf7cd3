package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/infralab/infralab/internal/testenv"
	"github.com/infralab/infralab/proof/controlplane"

	"github.com/infralab/infralab/internal/proc"
)

// Fixed addresses of the node's own network. They are the same for every run, so only one node
// runs on a machine at a time (Start refuses a second one).
const (
	DefaultNodeName = "infralab-node"
	BridgeName      = "infralab0"
	PodCIDR         = "10.244.0.0/24"
	NodeIP          = "10.244.0.1"   // host side of the bridge: kubelet, API proxy
	ServiceCIDR     = "10.96.0.0/12" // the control plane's --service-cluster-ip-range
	ClusterDNS      = "10.96.0.10"
	// APIProxyPort is where pods reach the API server: NodeIP:6443 forwards to 127.0.0.1.
	APIProxyPort = 6443
	cniNetwork   = "infralab"
	lockPath     = "/run/infralab-node.lock"
)

// ControlPlane is what the node needs from the control plane.
type ControlPlane struct {
	ServerURL       string // https://127.0.0.1:PORT
	CACert, CAKey   string // cluster CA: signs the node's certificates
	AdminKubeconfig string
}

// FromControlPlane reads the connection details of a running embedded control plane.
func FromControlPlane(cp *controlplane.ControlPlane) ControlPlane {
	pki := filepath.Join(cp.Dir(), "pki")
	return ControlPlane{
		ServerURL: cp.ServerURL(), CACert: filepath.Join(pki, "ca.crt"), CAKey: filepath.Join(pki, "ca.key"),
		AdminKubeconfig: cp.KubeconfigPath(),
	}
}

// Options configure Start.
type Options struct {
	// Dir receives containerd's and the kubelet's data, certificates, configs, logs and the
	// record of side effects. It must be empty or absent.
	Dir string
	// BinDir holds kubelet, kube-scheduler, kube-proxy and kube-router; default .tools/bin.
	// containerd, ctr and runc come from PATH (Debian).
	BinDir       string
	ControlPlane ControlPlane
	// ImagesIndex is proof/images' images.json; every image in it is imported. It must hold
	// pause and coredns.
	ImagesIndex string
	NodeName    string // default DefaultNodeName; a local PersistentVolume's node affinity names it
	Log         io.Writer
	Timeout     time.Duration // default 3 minutes
	// WaitForLock is how long Start waits while another node runs on this machine (only one
	// can: the bridge, addresses and iptables chains are machine-wide). 0 fails at once; tests
	// of several packages running in parallel wait their turn.
	WaitForLock time.Duration
}

// Node is a running node.
type Node struct {
	opts   Options
	dir    string
	rec    *record
	client kubernetes.Interface
	proxy  *apiProxy
	lock   *os.File

	mu       sync.Mutex
	procs    []*process
	stopped  bool
	stopOnce sync.Once
	stopErr  error
	Timings  map[string]time.Duration // phase durations of Start
	// every sysctl of the subtrees the node touches before Start changed anything, for Leftovers
	sysctlsBefore map[string]string
	// the folder of the previous node on this machine (from the lock file), if not dir
	prevDir string
}

// Start brings the node up as ordered phases and returns once the node is Ready and CoreDNS
// answers. On error everything done so far is undone.
func Start(ctx context.Context, opts Options) (*Node, error) {
	if opts.Dir == "" {
		return nil, errors.New("node: Options.Dir is empty: give a fresh folder")
	}
	if opts.ControlPlane.ServerURL == "" || opts.ControlPlane.CAKey == "" || opts.ControlPlane.AdminKubeconfig == "" {
		return nil, errors.New("node: Options.ControlPlane needs ServerURL, CACert, CAKey and AdminKubeconfig (use FromControlPlane)")
	}
	if opts.ImagesIndex == "" {
		return nil, errors.New("node: Options.ImagesIndex is empty: build images with `infralab-images build --out DIR` and pass DIR/images.json")
	}
	if opts.BinDir == "" {
		opts.BinDir = testenv.BinDir()
	}
	if opts.NodeName == "" {
		opts.NodeName = DefaultNodeName
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if opts.Timeout == 0 {
		opts.Timeout = 3 * time.Minute
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("node: needs root (containerd, the kubelet, iptables and the bridge)")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	if err := ensureFreshDir(dir); err != nil {
		return nil, err
	}
	n := &Node{opts: opts, dir: dir, Timings: map[string]time.Duration{}}
	var prevDir string
	if n.lock, prevDir, err = waitLock(ctx, opts.WaitForLock, opts.Log); err != nil {
		return nil, err
	}
	// Before preflight records the machine's state: see recoverPrevious.
	if err := recoverPrevious(prevDir, opts.Log, teardown); err != nil {
		_ = n.lock.Close()
		return nil, err
	}
	if err := claimLock(n.lock, dir); err != nil {
		_ = n.lock.Close()
		return nil, err
	}
	if prevDir != dir {
		n.prevDir = prevDir // for preflight's message when that node's leftovers are still there
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	s := &starter{n: n, begin: time.Now()}
	phases := []struct {
		name string
		run  func(context.Context) error
	}{
		{"preflight", s.preflight},
		{"certificates", s.ensureCertificates},
		{"sysctls", s.ensureSysctls},
		{"bridge", s.ensureBridge},
		{"containerd", s.startContainerd},
		{"images", s.importImages},
		{"api-proxy", s.startAPIProxy},
		{"rbac", s.ensureRBAC},
		{"kubelet", s.startKubelet},
		{"kube-scheduler", s.startScheduler},
		{"kube-proxy", s.startKubeProxy},
		{"kube-router", s.startKubeRouter},
		{"coredns", s.ensureCoreDNS},
	}
	for _, ph := range phases {
		t := time.Now()
		if err := ph.run(ctx); err != nil {
			s.progress("%s failed; undoing what the node did", ph.name)
			_ = n.Stop()
			return nil, fmt.Errorf("node: %s: %w", ph.name, err)
		}
		n.Timings[ph.name] = time.Since(t)
		s.progress("%s ready (%.1fs)", ph.name, time.Since(t).Seconds())
	}
	// What the components changed on their own (kube-proxy), for teardown to restore.
	if err := n.recordWatchedSysctls(); err != nil {
		_ = n.Stop()
		return nil, fmt.Errorf("node: recording sysctls: %w", err)
	}
	return n, nil
}

type starter struct {
	n      *Node
	begin  time.Time
	bins   map[string]string
	images map[string]imageEntry
	// set by later phases
	kubeletKubeconfig string
}

func (s *starter) progress(format string, a ...any) {
	fmt.Fprintf(s.n.opts.Log, "node: [%5.1fs] %s\n", time.Since(s.begin).Seconds(), fmt.Sprintf(format, a...))
}

func (n *Node) path(elem ...string) string { return filepath.Join(append([]string{n.dir}, elem...)...) }

// forget drops a process that exited before it was ready, so Err does not report it.
func (n *Node) forget(dead *process) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.procs = proc.Without(n.procs, dead)
}

func (n *Node) launch(name, bin string, args []string, env ...string) (*process, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return nil, errors.New("node is stopping")
	}
	p, err := proc.Start(name, bin, args, n.path("logs"), env)
	if err != nil {
		return nil, err
	}
	n.procs = append(n.procs, p)
	n.rec.Pids[name] = p.Pid()
	_ = n.rec.save()
	return p, nil
}

// Stop stops every process Start launched and undoes every side effect (see Teardown). It is
// safe to call more than once.
func (n *Node) Stop() error {
	n.stopOnce.Do(func() {
		n.mu.Lock()
		n.stopped = true
		n.mu.Unlock()
		var errs []error
		if n.proxy != nil {
			n.proxy.close()
		}
		if n.rec != nil {
			errs = append(errs, teardown(n.dir, n.rec, n, n.opts.Log))
		}
		if n.lock != nil {
			_ = n.lock.Close()
		}
		n.stopErr = errors.Join(errs...)
	})
	return n.stopErr
}

// Dir is the node's data folder.
func (n *Node) Dir() string { return n.dir }

// Name is the node's name in the API.
func (n *Node) Name() string { return n.opts.NodeName }

// LogPath is a component's log ("containerd", "kubelet", "kube-scheduler", "kube-proxy", "kube-router").
func (n *Node) LogPath(component string) string { return n.path("logs", component+".log") }

// ContainerdSocket is the CRI endpoint of the node's containerd.
func (n *Node) ContainerdSocket() string { return n.path("containerd", "containerd.sock") }

// Pids maps each running component to its process id.
func (n *Node) Pids() map[string]int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return proc.Pids(n.procs)
}

// Err reports a component that exited while the node was meant to run.
func (n *Node) Err() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return nil
	}
	return proc.FirstExit(n.procs, nil)
}

func ensureFreshDir(dir string) error {
	err := proc.FreshDir(dir)
	if errors.Is(err, proc.ErrDirNotEmpty) {
		return fmt.Errorf("node: Options.Dir %s: the node needs a fresh folder", err)
	}
	return err
}

func waitLock(ctx context.Context, wait time.Duration, log io.Writer) (*os.File, string, error) {
	deadline := time.Now().Add(wait)
	for said := false; ; {
		f, prev, err := takeLock(lockPath)
		if err == nil || time.Now().After(deadline) {
			return f, prev, err
		}
		if !said {
			fmt.Fprintf(log, "node: waiting up to %s for another node on this machine to stop\n", wait)
			said = true
		}
		select {
		case <-ctx.Done():
			return nil, "", ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// takeLock makes sure one node at a time runs on this machine: the bridge, addresses and
// iptables chains are machine-wide. It also returns the folder the lock file names (claimLock):
// the previous holder's, which is dead now that the lock is ours (flock is released only when
// its holder closes the file or dies), so a record left there is a node nobody will tear down
// but us (recoverPrevious). The file's content is left as it is until claimLock: if recovering
// the previous node fails, the next attempt still finds its folder.
func takeLock(path string) (*os.File, string, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, "", err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		holder, _ := os.ReadFile(path)
		pid, dir := parseLock(string(holder))
		if dir == "" {
			dir = "unknown"
		}
		return nil, "", fmt.Errorf("node: another infralab node runs on this machine (pid %d holds %s, node folder %s); stop it first (make demo-down, or `infralab-env down` for its --dir)",
			pid, path, dir)
	}
	content, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, "", err
	}
	_, prev := parseLock(string(content))
	return f, prev, nil
}

// claimLock writes this process and the node's folder into the lock file it holds, for a
// later Start to find if this process dies before its teardown.
func claimLock(f *os.File, dir string) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(fmt.Sprintf("pid %d\ndir %s\n", os.Getpid(), dir)), 0)
	return err
}

// parseLock reads what claimLock wrote ("pid N\ndir DIR\n"). Older versions wrote only
// "pid N": their folder is unknown ("").
func parseLock(content string) (pid int, dir string) {
	for _, line := range strings.Split(content, "\n") {
		key, value, _ := strings.Cut(line, " ")
		switch key {
		case "pid":
			pid, _ = strconv.Atoi(strings.TrimSpace(value))
		case "dir":
			dir = strings.TrimSpace(value)
		}
	}
	return pid, dir
}

// teardownFunc is teardown's signature, so that recoverPrevious can be tested without touching
// the machine.
type teardownFunc func(dir string, rec *record, n *Node, log io.Writer) error

// recoverPrevious undoes the node of prevDir if its record is still there: its process died
// without a teardown (a test binary killed by `go test -timeout`, a supervisor killed by
// SIGKILL). Its components died with it (Pdeathsig), but shims and containers run on, and its
// chains, cgroups, bridge and changed sysctls stay. This must run before preflight reads the
// machine's state: otherwise that state, leftovers included, becomes the new node's "before"
// and is kept forever, and the sysctls it changed are recorded as the machine's own values.
// The caller holds the lock, so the previous holder is dead and nothing else tears it down.
func recoverPrevious(prevDir string, log io.Writer, td teardownFunc) error {
	if prevDir == "" {
		return nil
	}
	rec, err := loadRecord(prevDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil // torn down; if its folder went without a teardown, preflight names what is left
	}
	if err != nil {
		return fmt.Errorf("node: the previous node on this machine left its record %s, which cannot be read: %w; remove what it lists by hand (docs/node.md, Side effects and teardown), then the record",
			recordPath(prevDir), err)
	}
	fmt.Fprintf(log, "node: the previous node on this machine (%s) ended without its teardown; undoing what its record %s lists first\n",
		prevDir, rec.path)
	if err := td(prevDir, rec, nil, log); err != nil {
		return fmt.Errorf("node: undoing the previous node of %s failed (its record %s stays; the next start tries again): %w",
			prevDir, rec.path, err)
	}
	fmt.Fprintf(log, "node: the previous node of %s is undone\n", prevDir)
	return nil
}
