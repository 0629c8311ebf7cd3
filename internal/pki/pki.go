// Package pki is the small certificate authority the proof environments share: a CA made here
// or loaded from PEM files, leaf certificates it issues with fresh P-256 keys, and PEM files
// written atomically with an exact mode. The embedded control plane (its cluster and etcd CAs),
// the embedded node (its kubelet certificates, signed by the control plane's CA) and the box
// registry (its CA and TLS certificate) all use it, so the three agree on serials, key formats
// and file modes.
//
// It depends only on the standard library: nothing of the program, no Kubernetes client.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// CA is a certificate authority: its certificate and the key that signs with it. The key stays
// inside; Issue signs with it and WriteFiles writes it out.
type CA struct {
	Cert *x509.Certificate
	// CertPEM is Cert as PEM, byte for byte what LoadCA read (or NewCA encoded).
	CertPEM []byte
	key     crypto.Signer
}

// CAOptions describe a new self-signed CA.
type CAOptions struct {
	Subject  pkix.Name
	Lifetime time.Duration
	// MaxPathLenZero lets the CA sign leaves only, never an intermediate CA.
	MaxPathLenZero bool
}

// NewCA makes a self-signed CA with a new P-256 key, valid from a minute ago (clock skew
// between the machine that issues and the one that verifies) for o.Lifetime.
func NewCA(o CAOptions) (*CA, error) {
	if o.Lifetime <= 0 {
		return nil, errors.New("pki: CAOptions.Lifetime must be positive")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          Serial(),
		Subject:               o.Subject,
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(o.Lifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        o.MaxPathLenZero,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("pki: creating CA %q: %w", o.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, CertPEM: CertPEM(der), key: key}, nil
}

// NewCAFromPEM is the CA whose certificate and key are these PEM blocks. The key may be
// PKCS #8 ("PRIVATE KEY"), SEC 1 ("EC PRIVATE KEY") or PKCS #1 ("RSA PRIVATE KEY"); it must be
// the certificate's own key and the certificate a CA's.
func NewCAFromPEM(certPEM, keyPEM []byte) (*CA, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, errors.New("the certificate is not PEM (-----BEGIN CERTIFICATE-----)")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, errors.New("the key is not PEM")
	}
	key, err := parseKey(kb)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
		return nil, errors.New("the key does not belong to the certificate")
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("certificate %q is not a CA", cert.Subject.CommonName)
	}
	return &CA{Cert: cert, CertPEM: certPEM, key: key}, nil
}

func parseKey(b *pem.Block) (crypto.Signer, error) {
	var k any
	var err error
	switch b.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", b.Type)
	}
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("a %T cannot sign", k)
	}
	return s, nil
}

// Pool is a certificate pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Leaf is what a leaf certificate says; Issue adds the serial, the validity and a new key.
type Leaf struct {
	Subject pkix.Name
	// KeyUsage defaults to digital signature.
	KeyUsage    x509.KeyUsage
	ExtKeyUsage []x509.ExtKeyUsage
	IPs         []net.IP
	DNSNames    []string
	Lifetime    time.Duration
}

// Issued is a leaf certificate and its private key.
type Issued struct {
	Cert *x509.Certificate
	DER  []byte
	Key  *ecdsa.PrivateKey
}

// Issue signs a certificate for l with a new P-256 key, valid from a minute ago for l.Lifetime.
func (ca *CA) Issue(l Leaf) (*Issued, error) {
	if l.Lifetime <= 0 {
		return nil, fmt.Errorf("pki: Leaf %q: Lifetime must be positive", l.Subject.CommonName)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	usage := l.KeyUsage
	if usage == 0 {
		usage = x509.KeyUsageDigitalSignature
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: Serial(),
		Subject:      l.Subject,
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(l.Lifetime),
		KeyUsage:     usage,
		ExtKeyUsage:  l.ExtKeyUsage,
		IPAddresses:  l.IPs,
		DNSNames:     l.DNSNames,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.key)
	if err != nil {
		return nil, fmt.Errorf("pki: creating certificate %q: %w", l.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Issued{Cert: cert, DER: der, Key: key}, nil
}

// Serial is a random positive 127-bit serial number, unique in practice (RFC 5280 allows up
// to 20 octets).
func Serial() *big.Int {
	// crypto/rand's reader never fails (since Go 1.24 it aborts the process instead), so
	// rand.Int cannot either.
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}
