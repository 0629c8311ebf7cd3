package node

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"time"

	"github.com/infralab/infralab/internal/pki"
)

const certValidity = 30 * 24 * time.Hour

// ca is the control plane's cluster CA, which signs the node's client and serving certificates
// (the API server trusts it for clients; nothing else trusts the kubelet's serving cert).
type ca struct{ *pki.CA }

func loadCA(certFile, keyFile string) (*ca, error) {
	c, err := pki.LoadCA(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	return &ca{c}, nil
}

// issue writes certFile and keyFile for subject, a client cert unless ips or dns make it a server.
func (c *ca) issue(certFile, keyFile string, subject pkix.Name, ips []net.IP, dns []string) error {
	usage := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if len(ips)+len(dns) > 0 {
		usage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	leaf, err := c.Issue(pki.Leaf{Subject: subject, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: usage, IPs: ips, DNSNames: dns, Lifetime: certValidity})
	if err != nil {
		return err
	}
	return leaf.WriteFiles(certFile, keyFile, pki.PKCS8)
}
