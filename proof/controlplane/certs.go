package controlplane

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// certValidity is long enough for any test or demo session and short enough that a leaked
// demo credential expires on its own.
const certValidity = 30 * 24 * time.Hour

// pki holds the paths of every generated credential. Two CAs as kubeadm does: a certificate
// signed for the API server's clients is never accepted by etcd.
type pki struct {
	dir string

	CACert, CAKey                 string // cluster CA: serving cert, client certs, KCM signer
	EtcdCACert                    string
	EtcdServerCert, EtcdServerKey string
	EtcdClientCert, EtcdClientKey string // kube-apiserver -> etcd (also used by tests' etcdctl)
	ServingCert, ServingKey       string
	AdminCert, AdminKey           string
	KCMCert, KCMKey               string
	KubeletClientCert             string
	KubeletClientKey              string
	SAPublicKey, SAPrivateKey     string
}

type issuer struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// generatePKI writes a fresh CA hierarchy and every leaf certificate to dir.
func generatePKI(dir string) (*pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p := &pki{dir: dir}
	ca, err := p.newCA("ca", "infralab-embedded-ca")
	if err != nil {
		return nil, err
	}
	etcdCA, err := p.newCA("etcd-ca", "infralab-embedded-etcd-ca")
	if err != nil {
		return nil, err
	}
	p.CACert, p.CAKey = p.path("ca.crt"), p.path("ca.key")
	p.EtcdCACert = p.path("etcd-ca.crt")

	loopback := []net.IP{net.ParseIP("127.0.0.1")}
	leaves := []struct {
		name    string
		issuer  *issuer
		subject pkix.Name
		usage   []x509.ExtKeyUsage
		ips     []net.IP
		dns     []string
		cert    *string
		key     *string
	}{
		{"etcd-server", etcdCA, pkix.Name{CommonName: "infralab-etcd"},
			[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, loopback, []string{"localhost"},
			&p.EtcdServerCert, &p.EtcdServerKey},
		{"apiserver-etcd-client", etcdCA, pkix.Name{CommonName: "kube-apiserver-etcd-client"},
			[]x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil, nil, &p.EtcdClientCert, &p.EtcdClientKey},
		{"apiserver", ca, pkix.Name{CommonName: "kube-apiserver"},
			[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			append(loopback, net.ParseIP(serviceIP)),
			[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
			&p.ServingCert, &p.ServingKey},
		{"admin", ca, pkix.Name{CommonName: "infralab-admin", Organization: []string{"system:masters"}},
			[]x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil, nil, &p.AdminCert, &p.AdminKey},
		{"controller-manager", ca, pkix.Name{CommonName: "system:kube-controller-manager"},
			[]x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil, nil, &p.KCMCert, &p.KCMKey},
		// For a kubelet added later; kubeadm binds system:kubelet-api-admin to this user name.
		{"apiserver-kubelet-client", ca, pkix.Name{CommonName: "kube-apiserver-kubelet-client"},
			[]x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil, nil, &p.KubeletClientCert, &p.KubeletClientKey},
	}
	for _, l := range leaves {
		tmpl := &x509.Certificate{
			Subject:     l.subject,
			KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			ExtKeyUsage: l.usage,
			IPAddresses: l.ips,
			DNSNames:    l.dns,
		}
		if err := p.issue(l.name, l.issuer, tmpl); err != nil {
			return nil, err
		}
		*l.cert, *l.key = p.path(l.name+".crt"), p.path(l.name+".key")
	}

	// Service-account tokens are signed with RSA, which every token consumer accepts.
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	p.SAPrivateKey, p.SAPublicKey = p.path("sa.key"), p.path("sa.pub")
	if err := writeKey(p.SAPrivateKey, saKey); err != nil {
		return nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, err
	}
	if err := writePEM(p.SAPublicKey, "PUBLIC KEY", pub, 0o644); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *pki) path(name string) string { return filepath.Join(p.dir, name) }

func (p *pki) newCA(name, cn string) (*issuer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if err := writePEM(p.path(name+".crt"), "CERTIFICATE", der, 0o644); err != nil {
		return nil, err
	}
	if err := writeKey(p.path(name+".key"), key); err != nil {
		return nil, err
	}
	return &issuer{cert: cert, key: key}, nil
}

func (p *pki) issue(name string, ca *issuer, tmpl *x509.Certificate) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl.SerialNumber = serial()
	tmpl.NotBefore = time.Now().Add(-time.Minute)
	tmpl.NotAfter = time.Now().Add(certValidity)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return fmt.Errorf("creating certificate %s: %w", name, err)
	}
	if err := writePEM(p.path(name+".crt"), "CERTIFICATE", der, 0o644); err != nil {
		return err
	}
	return writeKey(p.path(name+".key"), key)
}

func serial() *big.Int {
	// crypto/rand's reader never fails (it aborts the process instead), so rand.Int cannot either.
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

func writeKey(path string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(path, "PRIVATE KEY", der, 0o600)
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
}
