package stacks

import (
	"fmt"
	"net/url"
	"regexp"
)

// PackageRepository is kubernetes.packageRepository: one mirror of pkgs.k8s.io and
// download.docker.com in their URL layouts, signed by the key with KeyFingerprint (cluster layer
// PackageRepository, docs/config.md).
type PackageRepository struct {
	URL            string `json:"url"`
	KeyFingerprint string `json:"keyFingerprint"`
}

var fingerprintRE = regexp.MustCompile(`^[0-9A-F]{40}$`)

func validatePackageRepository(r *PackageRepository, c *errs) {
	if r == nil {
		return
	}
	const base = "kubernetes.packageRepository"
	u, err := url.Parse(r.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		c.add(base+".url", fmt.Sprintf("%q is not an http(s) base URL", r.URL),
			"the URL that serves core:/stable:/vX.Y/deb/ and linux/<os>/, e.g. http://10.77.0.1:8080 (the box)")
	}
	if !fingerprintRE.MatchString(r.KeyFingerprint) {
		c.add(base+".keyFingerprint", fmt.Sprintf("%q is not a key fingerprint", r.KeyFingerprint),
			"the 40 upper-case hex digits of the key that signs the mirror: gpg --with-colons --show-keys KEYFILE")
	}
}
