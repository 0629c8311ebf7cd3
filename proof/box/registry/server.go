package registry

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultAddr is where the box serves images: the box bridge address (docs/box.md), port 5000.
const DefaultAddr = "10.77.0.1:5000"

// Files under Config.StateDir/registry.
const (
	dirName    = "registry"
	configFile = "config.yml"
	certFile   = "tls.crt"
	keyFile    = "tls.key"
	pidFile    = "registry.pid"
	logFile    = "registry.log"
	dataDir    = "data"
)

// Config says where and how the registry runs.
type Config struct {
	// StateDir is the box state dir (/run/infralab-box): the CA lives at its top, the registry's
	// config, certificate, pid, log and storage under StateDir/registry.
	StateDir string
	// DataDir, when set, holds the blobs instead of StateDir/registry/data (so they can outlive a
	// tmpfs state dir).
	DataDir string
	// Addr is host:port to listen on; DefaultAddr when empty. The host must be an IP: it goes
	// into the server certificate.
	Addr string
	// ExtraIPs are further addresses the certificate names (127.0.0.1 is always one, so the
	// host's own clients can push through loopback when Addr's host is the bridge).
	ExtraIPs []net.IP
	// Binary is the distribution registry binary (hack/tools.sh box-registry).
	Binary string
	// StartTimeout bounds the wait for the registry to answer /v2/; default 20 s.
	StartTimeout time.Duration
}

// Registry is a running registry process.
type Registry struct {
	// Addr is host:port it serves on; URL is https://Addr.
	Addr, URL string
	// CA is the box CA that signed its certificate.
	CA  *CA
	dir string
	cmd *exec.Cmd
	// done is closed when the process has exited.
	done chan struct{}
}

// config is distribution's configuration (configuration/configuration.go of
// github.com/distribution/distribution/v3 v3.0.0): filesystem storage, TLS, no delete (a box's
// images are only ever added), access log off (every blob pull would be a line).
const configTemplate = `version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: false
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  draintimeout: 5s
  tls:
    certificate: %s
    key: %s
    minimumtls: tls1.2
`

// Start runs the registry: the box CA (created on first use), a fresh server certificate, the
// config file, then the process, and waits until GET /v2/ answers over verified TLS. A registry
// left running by an earlier start (its pid file) is stopped first. On any error nothing keeps
// running.
func Start(ctx context.Context, c Config) (*Registry, error) {
	if c.StateDir == "" {
		return nil, errors.New("registry: Config.StateDir is empty")
	}
	if c.Binary == "" {
		return nil, errors.New("registry: Config.Binary is empty (build it with hack/tools.sh box-registry)")
	}
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = 20 * time.Second
	}
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return nil, fmt.Errorf("registry: address %q: %w", c.Addr, err)
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return nil, fmt.Errorf("registry: address %q: the host must be an IP address (it is the certificate's SAN)", c.Addr)
	}
	ca, err := EnsureCA(c.StateDir)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(c.StateDir, dirName)
	if err := Stop(c.StateDir); err != nil {
		return nil, err
	}
	data := c.DataDir
	if data == "" {
		data = filepath.Join(dir, dataDir)
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, err
	}
	ips := []net.IP{ip}
	for _, e := range append([]net.IP{net.IPv4(127, 0, 0, 1)}, c.ExtraIPs...) {
		if !e.Equal(ip) {
			ips = append(ips, e)
		}
	}
	if err := ca.IssueServer(dir, certFile, keyFile, ips, nil); err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(configTemplate, data, c.Addr, filepath.Join(dir, certFile), filepath.Join(dir, keyFile))
	if err := writeFile(filepath.Join(dir, configFile), []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(dir, logFile), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	// Not CommandContext: the registry outlives ctx (it serves the box until Stop).
	cmd := exec.Command(c.Binary, "serve", filepath.Join(dir, configFile))
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so a Ctrl-C meant for `make box` does not take it down half-way
	// and Stop can signal it alone. OTEL_TRACES_EXPORTER=none: distribution v3 otherwise tries to
	// export traces to localhost:4318 and logs an error for every batch.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("registry: start %s: %w", c.Binary, err)
	}
	r := &Registry{Addr: c.Addr, URL: "https://" + c.Addr, CA: ca, dir: dir, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(r.done) }()
	if err := writeFile(filepath.Join(dir, pidFile), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		r.Stop()
		return nil, err
	}
	if err := r.waitReady(ctx, c.StartTimeout); err != nil {
		r.Stop()
		return nil, err
	}
	return r, nil
}

// waitReady polls GET /v2/ with the box CA as the only root until it answers 200.
func (r *Registry) waitReady(ctx context.Context, timeout time.Duration) error {
	client := r.Client()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-r.done:
			return fmt.Errorf("registry exited at start: %s", r.logTail())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.URL+"/v2/", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("registry not ready on %s after %s: %v; log: %s", r.URL, timeout, last, r.logTail())
}

// Client is an HTTP client that trusts only the box CA.
func (r *Registry) Client() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: r.Transport()}
}

// Transport is an HTTP transport that trusts only the box CA.
func (r *Registry) Transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: r.CA.Pool(), MinVersion: tls.VersionTLS12}
	// The box registry is local: never go through a proxy from the environment.
	t.Proxy = nil
	return t
}

func (r *Registry) logTail() string {
	b, _ := os.ReadFile(filepath.Join(r.dir, logFile))
	s := strings.TrimSpace(string(b))
	if len(s) > 2000 {
		s = s[len(s)-2000:]
	}
	return s
}

// Stop ends this registry (SIGTERM, then SIGKILL after 10 s) and removes its pid file.
func (r *Registry) Stop() error {
	return stopPID(r.dir, r.cmd.Process.Pid, r.done)
}

// Stop ends the registry whose pid file is in stateDir, if any: what `make box-down` calls from
// another process than the one that started it. No pid file, or a pid that is gone, is success.
func Stop(stateDir string) error {
	dir := filepath.Join(stateDir, dirName)
	b, err := os.ReadFile(filepath.Join(dir, pidFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return fmt.Errorf("registry pid file %s holds %q", filepath.Join(dir, pidFile), b)
	}
	if !isRegistry(pid, dir) {
		// A stale file whose pid now belongs to something else: never signal that.
		return os.Remove(filepath.Join(dir, pidFile))
	}
	return stopPID(dir, pid, nil)
}

// isRegistry reports whether pid runs our registry with this dir's config.
func isRegistry(pid int, dir string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && strings.Contains(string(b), filepath.Join(dir, configFile))
}

// stopPID signals pid's process group. done, when set, closes when our own child exited (it
// must be reaped by Wait, so /proc alone cannot tell); otherwise /proc is polled.
func stopPID(dir string, pid int, done <-chan struct{}) error {
	gone := func() bool {
		if done != nil {
			select {
			case <-done:
				return true
			default:
				return false
			}
		}
		return !isRegistry(pid, dir)
	}
	defer os.Remove(filepath.Join(dir, pidFile))
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		if sig == syscall.SIGKILL {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
		for i := 0; i < 100; i++ {
			if gone() {
				return nil
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return fmt.Errorf("registry pid %d did not exit after SIGKILL", pid)
}

// LogTo copies the registry's log to w (for a failing test).
func (r *Registry) LogTo(w io.Writer) { _, _ = io.WriteString(w, r.logTail()) }
