package stacks

import (
	"net/url"
	"strings"
)

// validateCalicoManifestBaseURL checks kubernetes.calicoManifestBaseUrl: an http(s) URL the
// nodes append /<version>/manifests/<file> to. Whether plain http is acceptable depends on the
// cluster layer's sha256 pins, so the cluster layer checks that (cluster.calicoManifestBaseUrl).
// The value is never echoed: it could carry credentials.
func validateCalicoManifestBaseURL(raw string, c *errs) {
	if raw == "" {
		return
	}
	const key = "kubernetes.calicoManifestBaseUrl"
	u, err := url.Parse(raw)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		c.add(key, "is not an http(s) URL with a host", "leave it out for https://raw.githubusercontent.com/projectcalico/calico, or a mirror such as http://10.77.0.1:8080/calico (the box)")
	case u.User != nil:
		c.add(key, "has user information in it", "use a mirror the nodes can read anonymously; credentials would land in the command's inputs")
	case u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(raw, "/") || strings.ContainsAny(raw, "?#"):
		c.add(key, "has a trailing slash, a query or a fragment", "give the base only, without a trailing slash: the nodes fetch <base>/<calicoVersion>/manifests/<file>")
	}
}
