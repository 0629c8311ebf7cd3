package stacks

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"regexp"
	"strings"
)

// imageRepoRE is host[:port]/path without a scheme, as kubeadm's imageRepository takes it.
var imageRepoRE = regexp.MustCompile(`^([a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?)(/[a-z0-9]+([._-][a-z0-9]+)*)+$`)

// validateImageRepository checks kubernetes.imageRepository and kubernetes.imageRepositoryCa.
func validateImageRepository(k *Kubernetes, c *errs) {
	if k.ImageRepository == "" {
		if k.ImageRepositoryCA != "" {
			c.add("kubernetes.imageRepositoryCa", "is set without kubernetes.imageRepository", "set both (the registry and its CA) or neither")
		}
		return
	}
	if !imageRepoRE.MatchString(k.ImageRepository) {
		c.add("kubernetes.imageRepository", fmt.Sprintf("%q is not host[:port]/path", k.ImageRepository),
			"no scheme, lower case, e.g. 10.77.0.1:5000/k8s (the images must carry the tags `kubeadm config images list` prints)")
	}
	if k.ImageRepositoryCA == "" {
		return
	}
	rest, n := []byte(k.ImageRepositoryCA), 0
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if b.Type != "CERTIFICATE" || err != nil || !cert.IsCA {
			c.add("kubernetes.imageRepositoryCa", fmt.Sprintf("PEM block %d is not a CA certificate", n+1), "give only the CA certificate that signed the registry's TLS certificate, never a key")
			return
		}
		n++
	}
	if n == 0 || strings.TrimSpace(string(rest)) != "" {
		c.add("kubernetes.imageRepositoryCa", "is not PEM certificates", "paste the CA file (-----BEGIN CERTIFICATE-----...)")
	}
}
