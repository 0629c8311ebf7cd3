package registry

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/infralab/infralab/internal/pki"
)

// CA file names in the box state dir. The certificate is public (0644: the machines copy it);
// the key never leaves the host (0600).
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key"
)

// caLifetime and serverLifetime bound a box's certificates; a box lives hours, not years.
const (
	caLifetime     = 365 * 24 * time.Hour
	serverLifetime = 90 * 24 * time.Hour
)

// CA is the box certificate authority (Cert, CertPEM and Pool come from pki.CA).
type CA struct {
	*pki.CA
	// CertPath is where CertPEM is on disk.
	CertPath string
}

// EnsureCA loads the box CA from dir, or creates it there when absent. A half-written pair
// (certificate without key, or the reverse) is an error, not silently replaced: something else
// may already trust the old certificate.
func EnsureCA(dir string) (*CA, error) {
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	_, certErr := os.Stat(certPath)
	_, keyErr := os.Stat(keyPath)
	switch {
	case certErr == nil && keyErr == nil:
		return loadCA(certPath, keyPath)
	case errors.Is(certErr, os.ErrNotExist) && errors.Is(keyErr, os.ErrNotExist):
	default:
		return nil, fmt.Errorf("box CA in %s is incomplete (%s: %v, %s: %v); remove both to start over", dir, CACertFile, certErr, CAKeyFile, keyErr)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ca, err := pki.NewCA(pki.CAOptions{Subject: pkix.Name{CommonName: "infralab box CA", Organization: []string{"infralab"}},
		Lifetime: caLifetime, MaxPathLenZero: true})
	if err != nil {
		return nil, err
	}
	// Key first (WriteFiles): a crash between the two writes leaves a key without a
	// certificate, which EnsureCA reports instead of trusting.
	if err := ca.WriteFiles(certPath, keyPath, pki.SEC1); err != nil {
		return nil, err
	}
	return loadCA(certPath, keyPath)
}

func loadCA(certPath, keyPath string) (*CA, error) {
	ca, err := pki.LoadCA(certPath, keyPath)
	if err != nil {
		return nil, fmt.Errorf("box CA: %w", err)
	}
	if time.Now().After(ca.Cert.NotAfter) {
		return nil, fmt.Errorf("box CA %s expired on %s; remove %s and %s to make a new one", certPath, ca.Cert.NotAfter.Format(time.RFC3339), certPath, keyPath)
	}
	return &CA{CA: ca, CertPath: certPath}, nil
}

// IssueServer writes a server certificate for ips (and DNS names) and its key into dir as
// certFile and keyFile (0644, 0600). It is issued anew on every start: cheap, and a changed
// address never meets a stale certificate.
func (ca *CA) IssueServer(dir, certFile, keyFile string, ips []net.IP, names []string) error {
	leaf, err := ca.Issue(pki.Leaf{
		Subject:     pkix.Name{CommonName: "infralab box registry", Organization: []string{"infralab"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IPs: ips, DNSNames: names, Lifetime: serverLifetime,
	})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return leaf.WriteFiles(filepath.Join(dir, certFile), filepath.Join(dir, keyFile), pki.SEC1)
}

// writeFile writes atomically with mode, whatever the umask (server.go's config and pid files).
func writeFile(path string, data []byte, mode os.FileMode) error {
	return pki.WriteFile(path, data, mode)
}
