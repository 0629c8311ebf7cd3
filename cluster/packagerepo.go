package cluster

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// PackageRepository is one mirror of both package sources prepare-node uses, in their upstream
// URL layouts under URL: <URL>/core:/stable:/vX.Y/deb/ (pkgs.k8s.io, with Release.key) and
// <URL>/linux/<os>/ (download.docker.com, with its key at <URL>/linux/<os>/gpg). Both must be
// signed by the key with KeyFingerprint, which prepare-node pins as it pins Docker's key today:
// a mirror that re-signs (aptly, reprepro, the box's proof/box/aptrepo). A nil repository keeps
// the upstream sources, byte for byte the same environment as before.
type PackageRepository struct {
	URL            string
	KeyFingerprint string
}

var fingerprintRe = regexp.MustCompile(`^[0-9A-F]{40}$`)

// check says what is wrong, or "".
func (r *PackageRepository) check() string {
	if r == nil {
		return ""
	}
	var p []string
	u, err := url.Parse(r.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		p = append(p, fmt.Sprintf("url %q must be an http(s) base URL such as http://10.77.0.1:8080", r.URL))
	}
	if !fingerprintRe.MatchString(r.KeyFingerprint) {
		p = append(p, "keyFingerprint must be the signing key's 40 upper-case hex digits (gpg --with-colons --show-keys KEYFILE)")
	}
	return strings.Join(p, "; ")
}

// env adds the repository to prepare-node's environment; nil leaves env as it was.
func (r *PackageRepository) env(env map[string]string) map[string]string {
	if r != nil {
		env["PACKAGE_REPOSITORY_URL"] = strings.TrimRight(r.URL, "/")
		env["PACKAGE_REPOSITORY_KEY_FINGERPRINT"] = r.KeyFingerprint
	}
	return env
}
