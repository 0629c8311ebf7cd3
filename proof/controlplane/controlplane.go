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
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/infralab/infralab/internal/testenv"

	"github.com/infralab/infralab/internal/proc"
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
		bin, err := proc.FindBinary(s.opts.BinDir, name)
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

// Stop ends the processes Start launched, newest first. It is safe to call more than once.
func (cp *ControlPlane) Stop() error {
	cp.stopOnce.Do(func() {
		cp.mu.Lock()
		cp.stopped = true
		procs := append([]*process(nil), cp.procs...)
		cp.mu.Unlock()
		var errs []error
		for i := len(procs) - 1; i >= 0; i-- {
			errs = append(errs, procs[i].Stop(10*time.Second))
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
	return proc.Pids(cp.procs)
}

// Err reports a component that exited while the plane was meant to be running.
func (cp *ControlPlane) Err() error {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.stopped {
		return nil
	}
	return proc.FirstExit(cp.procs, cp.paused)
}

func ensureFreshDir(dir string) error {
	err := proc.FreshDir(dir)
	if errors.Is(err, proc.ErrDirNotEmpty) {
		return fmt.Errorf("controlplane: Options.Dir %s: the control plane needs a fresh folder (remove it or pick another)", err)
	}
	if err != nil {
		return fmt.Errorf("controlplane: Options.Dir: %w", err)
	}
	return nil
}
