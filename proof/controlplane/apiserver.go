package controlplane

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/infralab/infralab/cluster/hardening"

	"github.com/infralab/infralab/internal/proc"
)

const (
	serviceCIDR = "10.96.0.0/12"
	serviceIP   = "10.96.0.1" // the kubernetes Service, first address of serviceCIDR
)

// Hardening holds the control-plane hardening files. A nil field leaves that feature off.
type Hardening struct {
	EncryptionConfig     []byte // EncryptionConfiguration: Secrets encrypted at rest in etcd
	AuditPolicy          []byte // audit.k8s.io Policy; the log goes to Dir/logs/audit.log
	AdmissionConfig      []byte // AdmissionConfiguration, e.g. Pod Security defaults
	AuthenticationConfig []byte // AuthenticationConfiguration, e.g. anonymous only on health paths
}

// LabHardening returns the files the `lab` cluster gets (package cluster/hardening), with a
// fresh random encryption key that never leaves the data dir.
func LabHardening() (*Hardening, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	var h Hardening
	var err error
	if h.EncryptionConfig, err = hardening.EncryptionConfig(base64.StdEncoding.EncodeToString(key)); err != nil {
		return nil, err
	}
	if h.AuditPolicy, err = hardening.AuditPolicy(); err != nil {
		return nil, err
	}
	if h.AdmissionConfig, err = hardening.AdmissionConfig(); err != nil {
		return nil, err
	}
	if h.AuthenticationConfig, err = hardening.AuthenticationConfig(); err != nil {
		return nil, err
	}
	return &h, nil
}

type arg struct{ name, value string }

// apiServerArgs starts from loopback-only flags and lays the lab cluster's hardening flags
// (hardening.APIServerArgs) over them, so the embedded plane runs with the same settings.
func apiServerArgs(dir string, p *pki, port int, etcdEndpoint string, h *Hardening) ([]string, error) {
	args := []arg{
		{"bind-address", "127.0.0.1"},
		{"advertise-address", "127.0.0.1"},
		{"secure-port", fmt.Sprint(port)},
		{"etcd-servers", etcdEndpoint},
		{"etcd-cafile", p.EtcdCACert},
		{"etcd-certfile", p.EtcdClientCert},
		{"etcd-keyfile", p.EtcdClientKey},
		{"tls-cert-file", p.ServingCert},
		{"tls-private-key-file", p.ServingKey},
		{"client-ca-file", p.CACert},
		{"kubelet-client-certificate", p.KubeletClientCert},
		{"kubelet-client-key", p.KubeletClientKey},
		{"kubelet-preferred-address-types", "InternalIP"},
		{"service-account-issuer", "https://kubernetes.default.svc.cluster.local"},
		{"service-account-key-file", p.SAPublicKey},
		{"service-account-signing-key-file", p.SAPrivateKey},
		{"service-cluster-ip-range", serviceCIDR},
		{"authorization-mode", "Node,RBAC"},
		{"enable-admission-plugins", "NodeRestriction"},
		{"allow-privileged", "true"}, // as kubeadm; Pod Security admission decides per namespace
		{"profiling", "false"},
		// The default reconciler rewrites the kubernetes Service's endpoints to the advertise
		// address every 10 s and complains that loopback is not allowed there.
		{"endpoint-reconciler-type", "none"},
	}
	if h == nil || h.AuthenticationConfig == nil {
		args = append(args, arg{"anonymous-auth", "false"})
	}
	if h != nil {
		hardArgs, err := writeHardening(dir, h)
		if err != nil {
			return nil, err
		}
		args = merge(args, hardArgs)
	}
	out := make([]string, 0, len(args))
	for _, a := range args {
		out = append(out, "--"+a.name+"="+a.value)
	}
	return out, nil
}

// writeHardening writes the files of h and returns the flags that use them.
func writeHardening(dir string, h *Hardening) ([]arg, error) {
	hdir := filepath.Join(dir, "hardening")
	if err := os.MkdirAll(hdir, 0o700); err != nil {
		return nil, err
	}
	paths := hardening.Paths{
		EncryptionConfig: filepath.Join(hdir, "encryption-config.yaml"),
		AuditPolicy:      filepath.Join(hdir, "audit-policy.yaml"),
		AdmissionConfig:  filepath.Join(hdir, "admission-config.yaml"),
		AuthnConfig:      filepath.Join(hdir, "authentication-config.yaml"),
		AuditLog:         filepath.Join(dir, "logs", "audit.log"),
	}
	files := map[string][]byte{
		paths.EncryptionConfig: h.EncryptionConfig,
		paths.AuditPolicy:      h.AuditPolicy,
		paths.AdmissionConfig:  h.AdmissionConfig,
		paths.AuthnConfig:      h.AuthenticationConfig,
	}
	for path, data := range files {
		if data == nil {
			continue
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, err
		}
	}
	// Flags whose file is absent are dropped, so each Hardening field switches its feature alone.
	needs := map[string][]byte{
		"encryption-provider-config":    h.EncryptionConfig,
		"audit-policy-file":             h.AuditPolicy,
		"audit-log-path":                h.AuditPolicy,
		"audit-log-maxage":              h.AuditPolicy,
		"audit-log-maxbackup":           h.AuditPolicy,
		"audit-log-maxsize":             h.AuditPolicy,
		"admission-control-config-file": h.AdmissionConfig,
		"authentication-config":         h.AuthenticationConfig,
	}
	var args []arg
	for _, a := range hardening.APIServerArgs(paths) {
		if data, ok := needs[a.Name]; ok && data == nil {
			continue
		}
		args = append(args, arg{a.Name, a.Value})
	}
	return args, nil
}

// merge replaces flags of base by name with those of over and appends the rest.
func merge(base, over []arg) []arg {
	idx := map[string]int{}
	for i, a := range base {
		idx[strings.TrimPrefix(a.name, "--")] = i
	}
	for _, a := range over {
		if i, ok := idx[a.name]; ok {
			base[i] = a
			continue
		}
		idx[a.name] = len(base)
		base = append(base, a)
	}
	return base
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
	return p.Stop(10 * time.Second)
}

// StartAPIServer starts kube-apiserver again with the same port, flags and data, and waits
// until it is ready.
func (cp *ControlPlane) StartAPIServer(ctx context.Context) error {
	cp.mu.Lock()
	if old := cp.find("kube-apiserver"); old == nil || !old.Exited() {
		cp.mu.Unlock()
		return errors.New("controlplane: kube-apiserver is running or was never started; call StopAPIServer first")
	}
	cp.mu.Unlock()
	started, err := proc.Start("kube-apiserver", cp.apiBin, cp.apiArgs, filepath.Join(cp.dir, "logs"), nil)
	if err != nil {
		return err
	}
	cp.mu.Lock()
	for i, p := range cp.procs {
		if p.Name == "kube-apiserver" {
			cp.procs[i] = started
		}
	}
	delete(cp.paused, "kube-apiserver")
	cp.mu.Unlock()
	return cp.waitAPIServer(ctx, started)
}
