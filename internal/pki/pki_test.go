package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func newTestCA(t *testing.T) *CA {
	t.Helper()
	ca, err := NewCA(CAOptions{Subject: pkix.Name{CommonName: "test CA"}, Lifetime: time.Hour, MaxPathLenZero: true})
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// A server leaf verifies against the CA's pool for its IP and name, and only for server auth.
func TestIssueServerLeafVerifies(t *testing.T) {
	ca := newTestCA(t)
	if !ca.Cert.IsCA || !ca.Cert.MaxPathLenZero || ca.Cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Fatalf("CA certificate: IsCA %v MaxPathLenZero %v KeyUsage %v", ca.Cert.IsCA, ca.Cert.MaxPathLenZero, ca.Cert.KeyUsage)
	}
	leaf, err := ca.Issue(Leaf{Subject: pkix.Name{CommonName: "srv"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPs: []net.IP{net.ParseIP("10.77.0.1")}, DNSNames: []string{"registry.box"}, Lifetime: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"10.77.0.1", "registry.box"} {
		if _, err := leaf.Cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: host, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("verify for %s: %v", host, err)
		}
	}
	if _, err := leaf.Cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("a server-only certificate verified for client auth")
	}
	if leaf.Cert.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("default KeyUsage = %v, want digital signature", leaf.Cert.KeyUsage)
	}
	if d := leaf.Cert.NotAfter.Sub(leaf.Cert.NotBefore); d < 2*time.Hour || d > 2*time.Hour+2*time.Minute {
		t.Errorf("validity %v, want the 2h lifetime plus the minute of skew", d)
	}
	if leaf.Cert.SerialNumber.Sign() <= 0 || leaf.Cert.SerialNumber.Cmp(ca.Cert.SerialNumber) == 0 {
		t.Errorf("serials: CA %v leaf %v", ca.Cert.SerialNumber, leaf.Cert.SerialNumber)
	}
}

func TestLifetimeIsRequired(t *testing.T) {
	if _, err := NewCA(CAOptions{Subject: pkix.Name{CommonName: "x"}}); err == nil {
		t.Error("NewCA without a lifetime succeeded")
	}
	if _, err := newTestCA(t).Issue(Leaf{Subject: pkix.Name{CommonName: "x"}}); err == nil || !strings.Contains(err.Error(), `"x"`) {
		t.Errorf("Issue without a lifetime: %v, want an error naming the leaf", err)
	}
}

// Written in either key format, a CA loads back with the same certificate bytes and its
// certificates still verify; the issued pair is what crypto/tls accepts.
func TestWriteFilesAndLoadCARoundTrip(t *testing.T) {
	for name, f := range map[string]KeyFormat{"pkcs8": PKCS8, "sec1": SEC1} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			ca := newTestCA(t)
			certPath, keyPath := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
			if err := ca.WriteFiles(certPath, keyPath, f); err != nil {
				t.Fatal(err)
			}
			assertMode(t, certPath, CertMode)
			assertMode(t, keyPath, KeyMode)
			again, err := LoadCA(certPath, keyPath)
			if err != nil {
				t.Fatal(err)
			}
			if string(again.CertPEM) != string(ca.CertPEM) {
				t.Error("LoadCA's CertPEM differs from what was written")
			}
			leaf, err := again.Issue(Leaf{Subject: pkix.Name{CommonName: "c"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, Lifetime: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := leaf.Cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Errorf("a leaf of the loaded CA does not verify against the original: %v", err)
			}
			lc, lk := filepath.Join(dir, "leaf.crt"), filepath.Join(dir, "leaf.key")
			if err := leaf.WriteFiles(lc, lk, f); err != nil {
				t.Fatal(err)
			}
			if _, err := tls.LoadX509KeyPair(lc, lk); err != nil {
				t.Errorf("crypto/tls refuses the written pair: %v", err)
			}
		})
	}
}

func TestLoadCARefusesWhatIsNotItsCA(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	certPath, keyPath := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	if err := ca.WriteFiles(certPath, keyPath, PKCS8); err != nil {
		t.Fatal(err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherKey := filepath.Join(dir, "other.key")
	if err := WriteKey(otherKey, other, PKCS8); err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(Leaf{Subject: pkix.Name{CommonName: "leaf"}, Lifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	leafCert, leafKey := filepath.Join(dir, "leaf.crt"), filepath.Join(dir, "leaf.key")
	if err := leaf.WriteFiles(leafCert, leafKey, SEC1); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "junk")
	if err := os.WriteFile(notPEM, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, cert, key, want string }{
		{"another key", certPath, otherKey, "does not belong"},
		{"a leaf", leafCert, leafKey, "is not a CA"},
		{"no PEM certificate", notPEM, keyPath, "not PEM"},
		{"no PEM key", certPath, notPEM, "not PEM"},
		{"a certificate as key", certPath, certPath, "not a private key"},
		{"missing", filepath.Join(dir, "none.crt"), keyPath, "no such file"},
	} {
		_, err := LoadCA(c.cert, c.key)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: LoadCA = %v, want an error with %q", c.name, err, c.want)
		}
	}
}

// RSA keys load (PKCS #1 and #8) and have no SEC 1 form.
func TestRSAKeys(t *testing.T) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := KeyPEM(k, SEC1); err == nil {
		t.Error("an RSA key was written as SEC 1")
	}
	b, err := KeyPEM(k, PKCS8)
	if err != nil || !strings.HasPrefix(string(b), "-----BEGIN PRIVATE KEY-----") {
		t.Fatalf("PKCS8: %v %.30q", err, b)
	}
}

// The mode is exact: an older file's mode and the umask change nothing, and no temporary file
// is left behind.
func TestWriteFileModeIsExact(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("old"), 0o666); err != nil {
		t.Fatal(err)
	}
	old := syscall.Umask(0o077)
	err := WriteFile(p, []byte("new"), 0o644)
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	assertMode(t, p, 0o644)
	if b, _ := os.ReadFile(p); string(b) != "new" {
		t.Errorf("content %q", b)
	}
	if err := WriteFile(p, []byte("key"), KeyMode); err != nil {
		t.Fatal(err)
	}
	assertMode(t, p, KeyMode)
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("%d entries in the folder, want only f (a temporary file was left)", len(ents))
	}
	if err := WriteFile(filepath.Join(dir, "missing", "f"), nil, 0o644); err == nil {
		t.Error("WriteFile into a missing folder succeeded")
	}
}

func assertMode(t *testing.T, p string, want os.FileMode) {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != want {
		t.Errorf("%s mode %v, want %v", filepath.Base(p), st.Mode().Perm(), want)
	}
}
