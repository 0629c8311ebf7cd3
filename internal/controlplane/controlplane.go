// Package controlplane runs a real Kubernetes control plane on 127.0.0.1: etcd,
// kube-apiserver and kube-controller-manager from the binaries `make tools` builds, with
// generated certificates, RBAC and Node authorization, Pod Security admission and, when asked,
// the same hardening files (package cluster/hardening) the `lab` cluster gets.
//
// It exists so that the apps layer, the policy pack and `make demo` meet a real API server
// without Proxmox. There is no scheduler and no kubelet: Pods are admitted and stay Pending.
// Start brings the plane up as an ordered list of small phases and waits until it is usable;
// Stop ends only the processes Start launched.
package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/infralab/infralab/internal/testenv"
)

// Options configure Start.
type Options struct {
	// Dir receives etcd's data, certificates, kubeconfigs and logs. It must be empty or absent.
	Dir string
	// BinDir holds kube-apiserver, kube-controller-manager and optionally etcd; PATH is searched
	// next. Default: the project's .tools/bin (testenv.BinDir).
	BinDir string
	// Log receives one progress line per phase. Default: discard.
	Log io.Writer
	// Hardening files for kube-apiserver; nil runs without them.
	Hardening *Hardening
	// Timeout bounds the whole start, readiness included. Default: 2 minutes.
	Timeout time.Duration
}

// ControlPlane is a running control plane.
type ControlPlane struct {
	dir            string
	pki            *pki
	etcdEndpoint   string
	serverURL      string
	kubeconfig     []byte
	kubeconfigPath string

	apiBin  string
	apiArgs []string

	mu       sync.Mutex
	procs    []*process // in start order
	paused   map[string]bool
	stopped  bool
	stopErr  error
	stopOnce sync.Once
}

// Start launches etcd, kube-apiserver and kube-controller-manager and returns once the API
// server is ready and the default ServiceAccount exists (so Pods can be admitted). On error,
// everything already started is stopped again and the error quotes the failing component's log.
func Start(ctx context.Context, opts Options) (*ControlPlane, error) {
	if opts.Dir == "" {
		return nil, errors.New("controlplane: Options.Dir is empty: give a fresh folder for data, certificates and logs")
	}
	if opts.BinDir == "" {
		opts.BinDir = testenv.BinDir()
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if opts.Timeout == 0 {
		opts.Timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()

	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	if err := ensureFreshDir(dir); err != nil {
		return nil, err
	}
	cp := &ControlPlane{dir: dir, kubeconfigPath: filepath.Join(dir, "kubeconfig"), paused: map[string]bool{}}
	s := &starter{cp: cp, opts: opts, log: opts.Log, begin: time.Now()}
	phases := []struct {
		name string
		run  func(context.Context) error
	}{
		{"certificates", s.ensureCertificates},
		{"etcd", s.startEtcd},
		{"kube-apiserver", s.startAPIServer},
		{"kubeconfig", s.writeKubeconfigs},
		{"kube-controller-manager", s.startControllerManager},
	}
	for _, ph := range phases {
		if err := ph.run(ctx); err != nil {
			_ = cp.Stop()
			return nil, fmt.Errorf("controlplane: %s: %w", ph.name, err)
		}
		s.progress("%s ready", ph.name)
	}
	return cp, nil
}

// starter carries the state of one Start between its phases.
type starter struct {
	cp    *ControlPlane
	opts  Options
	log   io.Writer
	begin time.Time
	bins  map[string]string
}

func (s *starter) progress(format string, a ...any) {
	fmt.Fprintf(s.log, "controlplane: [%5.1fs] %s\n", time.Since(s.begin).Seconds(), fmt.Sprintf(format, a...))
}

func (s *starter) ensureCertificates(context.Context) error {
	s.bins = map[string]string{}
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager"} {
		bin, err := findBinary(s.opts.BinDir, name)
		if err != nil {
			return err
		}
		s.bins[name] = bin
	}
	if err := os.MkdirAll(filepath.Join(s.cp.dir, "logs"), 0o700); err != nil {
		return err
	}
	p, err := generatePKI(filepath.Join(s.cp.dir, "pki"))
	if err != nil {
		return err
	}
	s.cp.pki = p
	return nil
}

func (s *starter) startEtcd(ctx context.Context) error {
	return s.withFreePorts(2, func(ports []int) (*process, error) {
		s.cp.etcdEndpoint = fmt.Sprintf("https://127.0.0.1:%d", ports[0])
		// A failed attempt may have left a member with the old peer URL behind.
		if err := os.RemoveAll(filepath.Join(s.cp.dir, "etcd")); err != nil {
			return nil, err
		}
		proc, err := s.cp.launch("etcd", s.bins["etcd"], etcdArgs(s.cp.dir, s.cp.pki, ports[0], ports[1]))
		if err != nil {
			return nil, err
		}
		return proc, waitFor(ctx, proc, "healthy", func(ctx context.Context) error {
			return etcdHealthy(ctx, s.cp.etcdEndpoint, s.cp.pki)
		})
	})
}

func (s *starter) startAPIServer(ctx context.Context) error {
	return s.withFreePorts(1, func(ports []int) (*process, error) {
		s.cp.serverURL = fmt.Sprintf("https://127.0.0.1:%d", ports[0])
		args, err := apiServerArgs(s.cp.dir, s.cp.pki, ports[0], s.cp.etcdEndpoint, s.opts.Hardening)
		if err != nil {
			return nil, err
		}
		s.cp.apiBin, s.cp.apiArgs = s.bins["kube-apiserver"], args
		proc, err := s.cp.launch("kube-apiserver", s.cp.apiBin, args)
		if err != nil {
			return nil, err
		}
		return proc, s.cp.waitAPIServer(ctx, proc)
	})
}

// withFreePorts runs start with n free ports. A port is only free until the component binds it,
// and other tests on the machine pick ports too: when the component lost that race, it is
// started again with new ports.
func (s *starter) withFreePorts(n int, start func(ports []int) (*process, error)) error {
	for attempt := 1; ; attempt++ {
		ports, err := freePorts(n)
		if err != nil {
			return err
		}
		proc, err := start(ports)
		if err == nil || attempt == 3 || proc == nil || !proc.exited() ||
			!strings.Contains(tail(proc.logPath, logTailLines), "address already in use") {
			return err
		}
		s.progress("%s lost a free port to another process; retrying with new ports", proc.name)
		s.cp.forget(proc)
	}
}

func (cp *ControlPlane) waitAPIServer(ctx context.Context, proc *process) error {
	client, err := tlsClient(cp.pki.CACert, cp.pki.AdminCert, cp.pki.AdminKey)
	if err != nil {
		return err
	}
	return waitFor(ctx, proc, "ready (/readyz)", func(ctx context.Context) error {
		_, err := get(ctx, client, cp.serverURL+"/readyz")
		return err
	})
}

// StopAPIServer stops kube-apiserver alone, leaving etcd and its data, so a test can break a
// deployment half-way. StartAPIServer brings it back.
func (cp *ControlPlane) StopAPIServer() error {
	cp.mu.Lock()
	p := cp.find("kube-apiserver")
	if p == nil {
		cp.mu.Unlock()
		return errors.New("controlplane: kube-apiserver was never started")
	}
	cp.paused["kube-apiserver"] = true
	cp.mu.Unlock()
	return p.stop(10 * time.Second)
}

// StartAPIServer starts kube-apiserver again with the same port, flags and data, and waits
// until it is ready.
func (cp *ControlPlane) StartAPIServer(ctx context.Context) error {
	cp.mu.Lock()
	if old := cp.find("kube-apiserver"); old == nil || !old.exited() {
		cp.mu.Unlock()
		return errors.New("controlplane: kube-apiserver is running or was never started; call StopAPIServer first")
	}
	cp.mu.Unlock()
	proc, err := startProcess("kube-apiserver", cp.apiBin, cp.apiArgs, filepath.Join(cp.dir, "logs"))
	if err != nil {
		return err
	}
	cp.mu.Lock()
	for i, p := range cp.procs {
		if p.name == "kube-apiserver" {
			cp.procs[i] = proc
		}
	}
	delete(cp.paused, "kube-apiserver")
	cp.mu.Unlock()
	return cp.waitAPIServer(ctx, proc)
}

// forget drops a process that exited during a failed start attempt.
func (cp *ControlPlane) forget(proc *process) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	for i, p := range cp.procs {
		if p == proc {
			cp.procs = append(cp.procs[:i], cp.procs[i+1:]...)
			return
		}
	}
}

// find returns the newest process of a component; callers hold mu.
func (cp *ControlPlane) find(name string) *process {
	for _, p := range cp.procs {
		if p.name == name {
			return p
		}
	}
	return nil
}

func (s *starter) writeKubeconfigs(context.Context) error {
	p := s.cp.pki
	admin, err := renderKubeconfig(s.cp.serverURL, p.CACert, p.AdminCert, p.AdminKey, "infralab-admin")
	if err != nil {
		return err
	}
	kcm, err := renderKubeconfig(s.cp.serverURL, p.CACert, p.KCMCert, p.KCMKey, "system:kube-controller-manager")
	if err != nil {
		return err
	}
	if err := os.WriteFile(s.cp.kubeconfigPath, admin, 0o600); err != nil {
		return err
	}
	s.cp.kubeconfig = admin
	return os.WriteFile(filepath.Join(s.cp.dir, "controller-manager.kubeconfig"), kcm, 0o600)
}

func (s *starter) startControllerManager(ctx context.Context) error {
	kubeconfig := filepath.Join(s.cp.dir, "controller-manager.kubeconfig")
	proc, err := s.cp.launch("kube-controller-manager", s.bins["kube-controller-manager"],
		controllerManagerArgs(kubeconfig, s.cp.pki))
	if err != nil {
		return err
	}
	client, err := tlsClient(s.cp.pki.CACert, s.cp.pki.AdminCert, s.cp.pki.AdminKey)
	if err != nil {
		return err
	}
	// The ServiceAccount admission plugin rejects Pods until the controller creates "default".
	return waitFor(ctx, proc, "creating the default ServiceAccount", func(ctx context.Context) error {
		_, err := get(ctx, client, s.cp.serverURL+"/api/v1/namespaces/default/serviceaccounts/default")
		return err
	})
}

func (cp *ControlPlane) launch(name, bin string, args []string) (*process, error) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.stopped {
		return nil, errors.New("control plane is stopping")
	}
	p, err := startProcess(name, bin, args, filepath.Join(cp.dir, "logs"))
	if err != nil {
		return nil, err
	}
	cp.procs = append(cp.procs, p)
	return p, nil
}

// waitFor polls check until it passes, the process exits, or ctx ends.
func waitFor(ctx context.Context, p *process, what string, check func(context.Context) error) error {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		last = check(cctx)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-p.done:
			return p.exitError()
		case <-ctx.Done():
			return p.failure(fmt.Sprintf("not %s in time (%v; last check: %v)", what, ctx.Err(), last))
		case <-tick.C:
		}
	}
}

// Stop ends the processes Start launched, newest first. It is safe to call more than once.
func (cp *ControlPlane) Stop() error {
	cp.stopOnce.Do(func() {
		cp.mu.Lock()
		cp.stopped = true
		procs := append([]*process(nil), cp.procs...)
		cp.mu.Unlock()
		var errs []error
		for i := len(procs) - 1; i >= 0; i-- {
			errs = append(errs, procs[i].stop(10*time.Second))
		}
		cp.stopErr = errors.Join(errs...)
	})
	return cp.stopErr
}

// KubeconfigPath is the admin kubeconfig (user in system:masters), mode 0600.
func (cp *ControlPlane) KubeconfigPath() string { return cp.kubeconfigPath }

// Kubeconfig returns the admin kubeconfig's bytes.
func (cp *ControlPlane) Kubeconfig() []byte { return append([]byte(nil), cp.kubeconfig...) }

// ServerURL is the API server's https URL on 127.0.0.1.
func (cp *ControlPlane) ServerURL() string { return cp.serverURL }

// EtcdEndpoint is etcd's client URL; it requires the client certificate from EtcdClientTLS.
func (cp *ControlPlane) EtcdEndpoint() string { return cp.etcdEndpoint }

// EtcdClientTLS returns the CA, certificate and key files of etcd's client (as etcdctl's
// --cacert, --cert and --key take them).
func (cp *ControlPlane) EtcdClientTLS() (caFile, certFile, keyFile string) {
	return cp.pki.EtcdCACert, cp.pki.EtcdClientCert, cp.pki.EtcdClientKey
}

// Dir is the control plane's data folder.
func (cp *ControlPlane) Dir() string { return cp.dir }

// AuditLogPath is where kube-apiserver writes audit events when Hardening has an AuditPolicy.
func (cp *ControlPlane) AuditLogPath() string { return filepath.Join(cp.dir, "logs", "audit.log") }

// LogPath is the log file of a component ("etcd", "kube-apiserver", "kube-controller-manager").
func (cp *ControlPlane) LogPath(component string) string {
	return filepath.Join(cp.dir, "logs", component+".log")
}

// Pids maps each running component to its process id (also its process group id).
func (cp *ControlPlane) Pids() map[string]int {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	out := map[string]int{}
	for _, p := range cp.procs {
		if !p.exited() {
			out[p.name] = p.pid()
		}
	}
	return out
}

// Err reports a component that exited while the plane was meant to be running.
func (cp *ControlPlane) Err() error {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.stopped {
		return nil
	}
	for _, p := range cp.procs {
		if p.exited() && !cp.paused[p.name] {
			return p.failure("exited unexpectedly")
		}
	}
	return nil
}

func ensureFreshDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return os.MkdirAll(dir, 0o700)
	}
	if err != nil {
		return fmt.Errorf("controlplane: Options.Dir: %w", err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("controlplane: Options.Dir %s is not empty: the control plane needs a fresh folder (remove it or pick another)", dir)
	}
	return nil
}

func findBinary(binDir, name string) (string, error) {
	p := filepath.Join(binDir, name)
	if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
		return p, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found in %s or on PATH: run `make tools`", name, binDir)
}

// freePorts asks the kernel for n distinct free ports on loopback.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
