package cluster

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"regexp"
	"strings"
)

// Images from a registry of one's own (KubeadmArgs.ImageRepository), for clusters that cannot
// reach registry.k8s.io (the box; a lab behind a restricted network). Two things make that work:
//   - kubeadm's ClusterConfiguration.imageRepository: kubeadm then names every control-plane
//     image, the pause image and CoreDNS as <repository>/<name>:<tag> (cmd/kubeadm/app/images
//     images.go of k8s.io/kubernetes v1.35.4: GetGenericImage, GetDNSImage, GetPauseImage), and
//     its preflight pulls them from there;
//   - containerd's hosts.toml for the repository's host (registry config_path
//     /etc/containerd/certs.d, containerd v2 docs/hosts.md), with the registry's CA
//     (ImageRepositoryCA), so the pulls are TLS-verified against that CA and never "insecure".
// The sandbox image containerd pins follows the repository, so kubeadm's preflight finds the
// pause image it names and no pull goes to registry.k8s.io.

// registryCertsDir is containerd's hosts directory (one folder per host[:port]).
const registryCertsDir = "/etc/containerd/certs.d"

// imageRepositoryRE is host[:port]/path: a registry host (DNS name or IPv4, optional port) and a
// repository path of lower-case components, as kubeadm and the OCI distribution spec accept.
var imageRepositoryRE = regexp.MustCompile(`^([a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?)(/[a-z0-9]+([._-][a-z0-9]+)*)+$`)

// checkImageRepository says what is wrong with repo and its CA, or "" (field, message pairs).
func checkImageRepository(repo, caPEM string) [][2]string {
	var p [][2]string
	if repo == "" {
		if caPEM != "" {
			p = append(p, [2]string{"imageRepositoryCa", "is set without imageRepository; set both or neither"})
		}
		return p
	}
	if !imageRepositoryRE.MatchString(repo) {
		p = append(p, [2]string{"imageRepository", fmt.Sprintf("%q must be host[:port]/path without a scheme, e.g. 10.77.0.1:5000/k8s", repo)})
	}
	if caPEM != "" {
		if err := checkCAPEM(caPEM); err != nil {
			p = append(p, [2]string{"imageRepositoryCa", err.Error()})
		}
	}
	return p
}

// checkCAPEM accepts one or more PEM certificates, each a CA.
func checkCAPEM(s string) error {
	rest := []byte(s)
	n := 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return fmt.Errorf("holds a %s block; want only CERTIFICATE blocks (the registry's CA, never a key)", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return fmt.Errorf("certificate %d does not parse: %v", n+1, err)
		}
		if !c.IsCA {
			return fmt.Errorf("certificate %d (%s) is not a CA certificate; give the CA that signed the registry's certificate", n+1, c.Subject.CommonName)
		}
		n++
	}
	if n == 0 || strings.TrimSpace(string(rest)) != "" {
		return fmt.Errorf("is not PEM certificates (-----BEGIN CERTIFICATE-----)")
	}
	return nil
}

// imageRegistryHost is the host[:port] part of ImageRepository ("" when unset).
func (a *KubeadmArgs) imageRegistryHost() string {
	host, _, _ := strings.Cut(a.ImageRepository, "/")
	return host
}

// sandboxImageRef is the pause image containerd pins: kubeadm's, from ImageRepository when set.
func (a *KubeadmArgs) sandboxImageRef() string {
	if a.ImageRepository == "" {
		return sandboxImage
	}
	return a.ImageRepository + "/pause:" + strings.TrimPrefix(sandboxImage, "registry.k8s.io/pause:")
}

// imageRepositoryEnv is what prepare-node needs to point containerd at ImageRepository; empty
// when it is unset, so the phase's inputs (and triggers) stay as they were.
func (a *KubeadmArgs) imageRepositoryEnv() map[string]string {
	if a.ImageRepository == "" {
		return nil
	}
	env := map[string]string{"IMAGE_REGISTRY_HOST": a.imageRegistryHost(), "REGISTRY_CERTS_DIR": registryCertsDir}
	if a.ImageRepositoryCA != "" {
		env["IMAGE_REGISTRY_CA_B64"] = base64.StdEncoding.EncodeToString([]byte(a.ImageRepositoryCA))
	}
	return env
}

// KubeadmConfig is the kubeadm config file kubeadm-init runs with (InitConfiguration,
// ClusterConfiguration, KubeletConfiguration), for tools that check it against real kubeadm
// (`kubeadm config images list --config`). It holds no secret.
func KubeadmConfig(args *KubeadmArgs) ([]byte, error) {
	if err := args.Validate(); err != nil {
		return nil, err
	}
	return renderKubeadmConfig(args.clusterConfig())
}
