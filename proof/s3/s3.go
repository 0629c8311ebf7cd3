// Package s3 runs SeaweedFS (github.com/seaweedfs/seaweedfs, Apache-2.0, `weed` built by
// hack/tools.sh seaweedfs) as the embedded environment's S3-compatible object store: the
// stand-in for the lab's off-host backup store (Hetzner Object Storage, a NAS). Its master,
// volume server and filer listen on 127.0.0.1 only; the S3 gateway listens on the one address
// Options.Address names, which for the node's pods is the node's bridge address (pods cannot
// reach the host's loopback, docs/node.md). One access key, with admin rights on its buckets.
package s3

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/infralab/infralab/internal/proc"
)

// Options configure one store.
type Options struct {
	Dir     string // data and logs; must be empty or absent
	Weed    string // the weed binary
	Address string // the S3 gateway's listen address (an IP); 127.0.0.1 when empty
	// AccessKey and SecretKey are the one identity's credentials; Buckets are created at start.
	AccessKey, SecretKey string
	Buckets              []string
}

// Server is a running store.
type Server struct {
	// Endpoint is the S3 URL, http://ADDRESS:PORT.
	Endpoint string
	procs    []*proc.Process
}

// Start runs the store and returns once the gateway answers and the buckets exist.
func Start(ctx context.Context, o Options) (*Server, error) {
	if o.AccessKey == "" || o.SecretKey == "" {
		return nil, fmt.Errorf("s3: AccessKey and SecretKey are required")
	}
	if o.Address == "" {
		o.Address = "127.0.0.1"
	}
	if net.ParseIP(o.Address) == nil {
		return nil, fmt.Errorf("s3: Address %q is not an IP address", o.Address)
	}
	if err := proc.FreshDir(o.Dir); err != nil {
		return nil, err
	}
	data := filepath.Join(o.Dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, err
	}
	cfg, err := json.Marshal(map[string]any{"identities": []any{map[string]any{
		"name":        "backup",
		"credentials": []any{map[string]string{"accessKey": o.AccessKey, "secretKey": o.SecretKey}},
		"actions":     []string{"Admin", "Read", "Write", "List", "Tagging"},
	}}})
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(o.Dir, "s3.json")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		return nil, err
	}
	s := &Server{}
	var master, filer string
	var server *proc.Process
	// Ports: master, volume, filer, each with its gRPC port, then the gateway's HTTP and gRPC.
	err = proc.WithFreePorts(6, func(p []int) (*proc.Process, error) {
		master = fmt.Sprintf("127.0.0.1:%d.%d", p[0], p[1])
		filer = fmt.Sprintf("127.0.0.1:%d.%d", p[4], p[5])
		args := []string{"server", "-dir=" + data, "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
			"-master.port=" + strconv.Itoa(p[0]), "-master.port.grpc=" + strconv.Itoa(p[1]),
			"-volume.port=" + strconv.Itoa(p[2]), "-volume.port.grpc=" + strconv.Itoa(p[3]),
			"-filer", "-filer.port=" + strconv.Itoa(p[4]), "-filer.port.grpc=" + strconv.Itoa(p[5]),
			// Small volumes: a backup store for one test database, not 30 GB preallocations.
			"-master.volumeSizeLimitMB=256", "-volume.max=16", "-metricsPort=0"}
		pr, err := proc.Start("weed-server", o.Weed, args, o.Dir, nil)
		if err != nil {
			return nil, err
		}
		server = pr
		return pr, proc.WaitFor(ctx, pr, "serving its filer", func(ctx context.Context) error {
			return get(ctx, fmt.Sprintf("http://127.0.0.1:%d/", p[4]))
		})
	}, func(pr *proc.Process) { _ = pr.Stop(5 * time.Second) })
	if server != nil {
		s.procs = append(s.procs, server)
	}
	if err != nil {
		_ = s.Stop()
		return nil, err
	}
	err = proc.WithFreePorts(2, func(p []int) (*proc.Process, error) {
		s.Endpoint = fmt.Sprintf("http://%s", net.JoinHostPort(o.Address, strconv.Itoa(p[0])))
		args := []string{"s3", "-filer=" + filer, "-ip.bind=" + o.Address, "-port=" + strconv.Itoa(p[0]),
			"-port.grpc=" + strconv.Itoa(p[1]), "-port.iceberg=0", "-port.lance=0", "-config=" + cfgPath}
		pr, err := proc.Start("weed-s3", o.Weed, args, o.Dir, nil)
		if err != nil {
			return nil, err
		}
		s.procs = append(s.procs, pr)
		return pr, proc.WaitFor(ctx, pr, "serving S3", func(ctx context.Context) error { return get(ctx, s.Endpoint) })
	}, func(pr *proc.Process) { _ = pr.Stop(5 * time.Second); s.procs = proc.Without(s.procs, pr) })
	if err != nil {
		_ = s.Stop()
		return nil, err
	}
	for _, b := range o.Buckets {
		// weed shell talks to the master and the filer, where buckets are folders.
		cmd := exec.CommandContext(ctx, o.Weed, "shell", "-master="+master, "-filer="+filer)
		cmd.Stdin = strings.NewReader("s3.bucket.create -name " + b + "\n")
		out, err := cmd.CombinedOutput()
		if err != nil || strings.Contains(string(out), "error") {
			_ = s.Stop()
			return nil, fmt.Errorf("s3: creating bucket %s: %v: %s", b, err, out)
		}
	}
	return s, nil
}

// get succeeds on any HTTP answer: the gateway answers 403 to an unsigned request.
func get(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// Stop ends the gateway, then the server; it is safe to call twice.
func (s *Server) Stop() error {
	var errs []string
	for i := len(s.procs) - 1; i >= 0; i-- {
		if s.procs[i] == nil {
			continue
		}
		if err := s.procs[i].Stop(10 * time.Second); err != nil {
			errs = append(errs, err.Error())
		}
	}
	s.procs = nil
	if len(errs) > 0 {
		return fmt.Errorf("s3: %s", strings.Join(errs, "; "))
	}
	return nil
}
