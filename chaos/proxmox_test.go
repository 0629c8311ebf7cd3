package main

import (
	"context"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const testToken = "root@pam!chaos=3f1c2a9e-secret"

// fakePVE stands in for the Proxmox VE API on loopback (no Proxmox runs here). It answers the
// three calls the experiment makes and records what it was asked.
type fakePVE struct {
	mu     sync.Mutex
	status map[string]string
	calls  []string
	auth   []string
}

func (f *fakePVE) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path)
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	if r.Header.Get("Authorization") != "PVEAPIToken="+testToken {
		// Proxmox echoes nothing secret, but a proxy might: the client must redact it anyway.
		http.Error(w, "authentication failure for "+r.Header.Get("Authorization"), http.StatusUnauthorized)
		return
	}
	parts := strings.Split(r.URL.Path, "/") // /api2/json/nodes/pve/qemu/201/status/stop
	if len(parts) != 9 || parts[3] != "nodes" || parts[5] != "qemu" {
		http.NotFound(w, r)
		return
	}
	vm, action := parts[6], parts[8]
	switch {
	case r.Method == http.MethodPost && action == "stop":
		f.status[vm] = "stopped"
	case r.Method == http.MethodPost && action == "start":
		f.status[vm] = "running"
	case r.Method == http.MethodGet && action == "current":
	default:
		http.Error(w, "bad call", http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, `{"data":{"status":%q}}`, f.status[vm])
}

func startFakePVE(t *testing.T) (*fakePVE, ProxmoxConfig) {
	f := &fakePVE{status: map[string]string{"201": "running"}}
	srv := httptest.NewTLSServer(f)
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f, ProxmoxConfig{URL: srv.URL, Node: "pve", VMs: VMMap{"worker-1": 201}, CAFile: ca}
}

func TestProxmoxStopStartWithToken(t *testing.T) {
	f, cfg := startFakePVE(t)
	p, err := NewProxmox(cfg, testToken)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id, ok := p.VMFor("worker-1")
	if !ok || id != 201 {
		t.Fatalf("VMFor(worker-1) = %d, %v", id, ok)
	}
	if err := p.Stop(ctx, id); err != nil {
		t.Fatal(err)
	}
	if s, _ := p.Status(ctx, id); s != "stopped" {
		t.Errorf("after Stop the VM is %q", s)
	}
	if err := p.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	if s, _ := p.Status(ctx, id); s != "running" {
		t.Errorf("after Start the VM is %q", s)
	}
	want := []string{"POST /api2/json/nodes/pve/qemu/201/status/stop", "GET /api2/json/nodes/pve/qemu/201/status/current",
		"POST /api2/json/nodes/pve/qemu/201/status/start", "GET /api2/json/nodes/pve/qemu/201/status/current"}
	if strings.Join(f.calls, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(f.calls, "\n"), strings.Join(want, "\n"))
	}

	// A wrong token fails with an error that does not carry the token.
	bad, err := NewProxmox(cfg, "root@pam!chaos=wrong-secret-value")
	if err != nil {
		t.Fatal(err)
	}
	err = bad.Stop(ctx, id)
	if err == nil || !strings.Contains(err.Error(), "HTTP 401") || strings.Contains(err.Error(), "wrong-secret-value") {
		t.Errorf("wrong token: %v", err)
	}
}

func TestProxmoxConfigErrorsNameTheFix(t *testing.T) {
	_, err := NewProxmox(ProxmoxConfig{URL: "http://10.0.0.1:8006"}, "")
	for _, want := range []string{"--proxmox-url", "--proxmox-node", "--proxmox-vm", "PROXMOX_API_TOKEN"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %s: %v", want, err)
		}
	}
	var m VMMap
	if err := m.Set("worker-1=99"); err == nil {
		t.Error("VMID 99 accepted (Proxmox ids start at 100)")
	}
	if err := m.Set("worker-1=201"); err != nil || m["worker-1"] != 201 {
		t.Errorf("Set: %v %v", err, m)
	}
}
