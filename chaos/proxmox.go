package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// VMPower stops and starts the VM behind a Kubernetes node. The Proxmox API is the real one;
// tests use a loopback stand-in because no Proxmox VE runs here.
type VMPower interface {
	// VMFor returns the VM of a Kubernetes node, or false when none is configured.
	VMFor(node string) (int, bool)
	Stop(ctx context.Context, vmid int) error
	Start(ctx context.Context, vmid int) error
	Status(ctx context.Context, vmid int) (string, error)
}

// VMMap maps Kubernetes node names to Proxmox VM ids (--proxmox-vm NODE=VMID, repeatable).
type VMMap map[string]int

func (m *VMMap) String() string { return fmt.Sprint(map[string]int(*m)) }

func (m *VMMap) Set(v string) error {
	node, id, ok := strings.Cut(v, "=")
	n, err := strconv.Atoi(id)
	if !ok || node == "" || err != nil || n < 100 {
		return fmt.Errorf("want KUBE_NODE=VMID with VMID >= 100, got %q", v)
	}
	if *m == nil {
		*m = VMMap{}
	}
	(*m)[node] = n
	return nil
}

// ProxmoxConfig is where the Proxmox API is; the token comes from PROXMOX_API_TOKEN only.
type ProxmoxConfig struct {
	URL    string
	Node   string
	VMs    VMMap
	CAFile string
}

// Configured reports whether node failures go through Proxmox (else: cordon and drain).
func (c ProxmoxConfig) Configured() bool { return c.URL != "" }

// Proxmox talks to the Proxmox VE API with an API token.
type Proxmox struct {
	cfg    ProxmoxConfig
	base   *url.URL
	token  string
	client *http.Client
}

// NewProxmox validates the config. token is "USER@REALM!TOKENID=SECRET"; it is sent only in the
// Authorization header and never printed.
func NewProxmox(cfg ProxmoxConfig, token string) (*Proxmox, error) {
	var errs []error
	u, err := url.Parse(strings.TrimSuffix(cfg.URL, "/"))
	if err != nil || u.Scheme != "https" || u.Host == "" {
		errs = append(errs, fmt.Errorf("--proxmox-url: %q is not an https URL like https://10.0.0.1:8006", cfg.URL))
	}
	if cfg.Node == "" {
		errs = append(errs, errors.New("--proxmox-node: required with --proxmox-url (the PVE node name, e.g. pve)"))
	}
	if len(cfg.VMs) == 0 {
		errs = append(errs, errors.New("--proxmox-vm: map at least one Kubernetes node to its VM id, e.g. --proxmox-vm worker-1=201"))
	}
	if !strings.Contains(token, "!") || !strings.Contains(token, "=") {
		errs = append(errs, errors.New("PROXMOX_API_TOKEN: set it to USER@REALM!TOKENID=SECRET (a token with VM.PowerMgmt on the worker VMs)"))
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		pool := x509.NewCertPool()
		if err != nil || !pool.AppendCertsFromPEM(pem) {
			errs = append(errs, fmt.Errorf("--proxmox-ca: cannot read a PEM CA bundle from %s", cfg.CAFile))
		}
		tlsCfg.RootCAs = pool
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Proxmox{cfg: cfg, base: u, token: token, client: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: tlsCfg, Proxy: http.ProxyFromEnvironment},
	}}, nil
}

func (p *Proxmox) VMFor(node string) (int, bool) {
	id, ok := p.cfg.VMs[node]
	return id, ok
}

func (p *Proxmox) do(ctx context.Context, method string, vmid int, action string) ([]byte, error) {
	path := fmt.Sprintf("/api2/json/nodes/%s/qemu/%d/status/%s", url.PathEscape(p.cfg.Node), vmid, action)
	req, err := http.NewRequestWithContext(ctx, method, p.base.String()+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "PVEAPIToken="+p.token)
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, p.redact(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("proxmox %s %s: HTTP %d: %s", method, path, resp.StatusCode, p.redact(errors.New(strings.TrimSpace(string(b)))))
	}
	return b, nil
}

// redact keeps the token out of any error text, whatever the server echoes back.
func (p *Proxmox) redact(err error) error {
	if p.token == "" || !strings.Contains(err.Error(), p.token) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), p.token, "[redacted]"))
}

func (p *Proxmox) Stop(ctx context.Context, vmid int) error {
	_, err := p.do(ctx, http.MethodPost, vmid, "stop")
	return err
}

func (p *Proxmox) Start(ctx context.Context, vmid int) error {
	_, err := p.do(ctx, http.MethodPost, vmid, "start")
	return err
}

func (p *Proxmox) Status(ctx context.Context, vmid int) (string, error) {
	b, err := p.do(ctx, http.MethodGet, vmid, "current")
	if err != nil {
		return "", err
	}
	var r struct {
		Data struct {
			Status string `json:"status"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return "", fmt.Errorf("proxmox status of VM %d: %w", vmid, err)
	}
	return r.Data.Status, nil
}
