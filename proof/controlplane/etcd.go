package controlplane

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// etcdArgs runs a single-member etcd on loopback with mutual TLS for clients and peers, as the
// CIS benchmark asks of a kubeadm cluster's etcd.
func etcdArgs(dir string, p *pki, clientPort, peerPort int) []string {
	client := fmt.Sprintf("https://127.0.0.1:%d", clientPort)
	peer := fmt.Sprintf("https://127.0.0.1:%d", peerPort)
	return []string{
		"--name=infralab",
		"--data-dir=" + filepath.Join(dir, "etcd"),
		"--listen-client-urls=" + client,
		"--advertise-client-urls=" + client,
		"--listen-peer-urls=" + peer,
		"--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=infralab=" + peer,
		"--initial-cluster-state=new",
		"--cert-file=" + p.EtcdServerCert,
		"--key-file=" + p.EtcdServerKey,
		"--client-cert-auth=true",
		"--trusted-ca-file=" + p.EtcdCACert,
		"--peer-cert-file=" + p.EtcdServerCert,
		"--peer-key-file=" + p.EtcdServerKey,
		"--peer-client-cert-auth=true",
		"--peer-trusted-ca-file=" + p.EtcdCACert,
		"--logger=zap",
		"--log-outputs=stderr",
	}
}

// etcdHealthy asks etcd's /health endpoint over mutual TLS.
func etcdHealthy(ctx context.Context, endpoint string, p *pki) error {
	client, err := tlsClient(p.EtcdCACert, p.EtcdClientCert, p.EtcdClientKey)
	if err != nil {
		return err
	}
	body, err := get(ctx, client, endpoint+"/health")
	if err != nil {
		return err
	}
	var h struct {
		Health string `json:"health"`
	}
	if err := json.Unmarshal(body, &h); err != nil || h.Health != "true" {
		return fmt.Errorf("etcd reports %q", body)
	}
	return nil
}

func tlsClient(caFile, certFile, keyFile string) (*http.Client, error) {
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("no certificate in %s", caFile)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
		}},
	}, nil
}

// get returns the body of a 200 response, or an error with the status and body.
func get(ctx context.Context, client *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return body, nil
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
