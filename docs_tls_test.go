package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 13.7: the provider verifies the API's certificate, and Proxmox serves one from its own
// cluster CA, so a newcomer's first `up` fails with an x509 error unless the README's first run
// says how to get past it. The README must name the three ways.
func TestReadmeFirstRunSaysHowToTrustTheProxmoxCertificate(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	lab := section(t, string(readme), "## Run the lab stack")
	for _, want := range []string{"pvenode acme", "SSL_CERT_FILE", "pve-root-ca.pem", "insecure: true", "proxmox-insecure-tls"} {
		assert.True(t, strings.Contains(lab, want), "README, \"Run the lab stack\", never says %q", want)
	}
}

// section is the text from heading to the next heading of the same level.
func section(t *testing.T, md, heading string) string {
	t.Helper()
	i := strings.Index(md, "\n"+heading+"\n")
	require.GreaterOrEqual(t, i, 0, "no %q heading", heading)
	rest := md[i+1+len(heading):]
	level := heading[:strings.Index(heading, " ")+1]
	if j := strings.Index(rest, "\n"+level); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// The SSL_CERT_FILE way, proven with Go's own TLS stack as the provider uses it
// (bpg/terraform-provider-proxmox v0.95.0 proxmox/api/client.go: an http.Transport whose
// tls.Config sets only MinVersion and InsecureSkipVerify, so verification uses the system pool;
// Go's crypto/x509 on Linux reads the file named by SSL_CERT_FILE for it, root_unix.go
// loadSystemRoots). A CA and a server certificate shaped like Proxmox's (pve-cluster
// src/PVE/Cluster/Setup.pm gen_pve_ssl_cert: the node's IP and name as SANs) serve on loopback;
// a fresh process (the pool is loaded once per process) connects: refused without the CA,
// accepted with SSL_CERT_FILE naming it, and refused for a host name the certificate does not
// list, which is why the endpoint must use the node's IP or name (or an ACME certificate).
func TestSSLCertFileLetsGoTrustAProxmoxStyleCA(t *testing.T) {
	if url := os.Getenv("INFRALAB_TLS_CHILD_URL"); url != "" {
		tr := &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}}
		resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(url)
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(0)
		}
		_ = resp.Body.Close()
		fmt.Println("OK", resp.StatusCode)
		os.Exit(0)
	}

	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Proxmox Virtual Environment", OrganizationalUnit: []string{"PVE Cluster Manager CA"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	caFile := filepath.Join(dir, "pve-root-ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600))

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "pve1", OrganizationalUnit: []string{"PVE Cluster Node"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"pve1"}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	require.NoError(t, err)

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: key}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	port := srv.Listener.Addr().(*net.TCPAddr).Port

	child := func(url string, env ...string) string {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=^TestSSLCertFileLetsGoTrustAProxmoxStyleCA$")
		cmd.Env = append(append(withoutEnv(os.Environ(), "SSL_CERT_FILE", "SSL_CERT_DIR"), "INFRALAB_TLS_CHILD_URL="+url), env...)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		return string(out)
	}
	byIP := fmt.Sprintf("https://127.0.0.1:%d/api2/json/version", port)
	assert.Contains(t, child(byIP), "x509: certificate signed by unknown authority", "without the CA")
	assert.Contains(t, child(byIP, "SSL_CERT_FILE="+caFile), "OK 200", "with SSL_CERT_FILE naming pve-root-ca.pem")
	assert.Contains(t, child(fmt.Sprintf("https://localhost:%d/", port), "SSL_CERT_FILE="+caFile),
		"certificate is valid for pve1, not localhost", "a host name the certificate does not list")
}

func withoutEnv(env []string, names ...string) []string {
	var out []string
	for _, kv := range env {
		keep := true
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				keep = false
			}
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}
