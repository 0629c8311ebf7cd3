package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
)

// KeyFormat is how a private key is written.
type KeyFormat int

const (
	// PKCS8 is "PRIVATE KEY", what kubeadm writes and every Kubernetes component reads.
	PKCS8 KeyFormat = iota
	// SEC1 is "EC PRIVATE KEY" (ECDSA keys only), what OpenSSL's ecparam writes.
	SEC1
)

// File modes: certificates are public, keys are for their owner only.
const (
	CertMode os.FileMode = 0o644
	KeyMode  os.FileMode = 0o600
)

// CertPEM is der as a PEM CERTIFICATE block.
func CertPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// KeyPEM is key as a PEM block in format f.
func KeyPEM(key crypto.Signer, f KeyFormat) ([]byte, error) {
	switch f {
	case PKCS8:
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
	case SEC1:
		ec, ok := key.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("pki: a %T key has no SEC 1 form", key)
		}
		der, err := x509.MarshalECPrivateKey(ec)
		if err != nil {
			return nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
	}
	return nil, fmt.Errorf("pki: unknown key format %d", f)
}

// WriteKey writes key to path in format f, mode KeyMode.
func WriteKey(path string, key crypto.Signer, f KeyFormat) error {
	b, err := KeyPEM(key, f)
	if err != nil {
		return err
	}
	return WriteFile(path, b, KeyMode)
}

// WritePEM writes one PEM block of type typ to path with mode.
func WritePEM(path, typ string, der []byte, mode os.FileMode) error {
	return WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
}

// WriteFile writes data to path atomically (a temporary file in the same folder, renamed over
// path) with exactly mode, whatever the umask and whatever mode an older file had. A reader never
// sees half a key, and a crash leaves the old file or the new one.
func WriteFile(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// WriteFiles writes the key (KeyMode, format f) and then the certificate (CertMode). Key first:
// a crash between the two leaves a key without its certificate, which LoadCA refuses, never a
// certificate whose key is gone.
func (ca *CA) WriteFiles(certPath, keyPath string, f KeyFormat) error {
	if err := WriteKey(keyPath, ca.key, f); err != nil {
		return err
	}
	return WriteFile(certPath, ca.CertPEM, CertMode)
}

// WriteFiles writes the key (KeyMode, format f) and then the certificate (CertMode).
func (i *Issued) WriteFiles(certPath, keyPath string, f KeyFormat) error {
	if err := WriteKey(keyPath, i.Key, f); err != nil {
		return err
	}
	return WriteFile(certPath, CertPEM(i.DER), CertMode)
}

// LoadCA reads a CA from certPath and keyPath (see NewCAFromPEM for the formats). Errors name
// the file.
func LoadCA(certPath, keyPath string) (*CA, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, err
	}
	ca, err := NewCAFromPEM(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s, %s: %w", certPath, keyPath, err)
	}
	return ca, nil
}
