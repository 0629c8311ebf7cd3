package controlplane

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"os"
	"path/filepath"
	"time"

	// ipki: this package's own type pki (the credential paths) keeps its name.
	ipki "github.com/infralab/infralab/internal/pki"
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
		issuer  *ipki.CA
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
		leaf, err := l.issuer.Issue(ipki.Leaf{Subject: l.subject, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			ExtKeyUsage: l.usage, IPs: l.ips, DNSNames: l.dns, Lifetime: certValidity})
		if err != nil {
			return nil, err
		}
		*l.cert, *l.key = p.path(l.name+".crt"), p.path(l.name+".key")
		if err := leaf.WriteFiles(*l.cert, *l.key, ipki.PKCS8); err != nil {
			return nil, err
		}
	}

	// Service-account tokens are signed with RSA, which every token consumer accepts.
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	p.SAPrivateKey, p.SAPublicKey = p.path("sa.key"), p.path("sa.pub")
	if err := ipki.WriteKey(p.SAPrivateKey, saKey, ipki.PKCS8); err != nil {
		return nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, err
	}
	if err := ipki.WritePEM(p.SAPublicKey, "PUBLIC KEY", pub, ipki.CertMode); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *pki) path(name string) string { return filepath.Join(p.dir, name) }

func (p *pki) newCA(name, cn string) (*ipki.CA, error) {
	ca, err := ipki.NewCA(ipki.CAOptions{Subject: pkix.Name{CommonName: cn}, Lifetime: certValidity})
	if err != nil {
		return nil, err
	}
	if err := ca.WriteFiles(p.path(name+".crt"), p.path(name+".key"), ipki.PKCS8); err != nil {
		return nil, err
	}
	return ca, nil
}
