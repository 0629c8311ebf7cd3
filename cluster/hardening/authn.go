package hardening

import "sigs.k8s.io/yaml"

// ClusterInfoPath is the ConfigMap `kubeadm join` reads before it has any credential (bootstrap
// token discovery); it trusts the content only after checking the token's JWS signature and the
// CA hash, and kubeadm's RBAC lets anonymous users read exactly this object.
const ClusterInfoPath = "/api/v1/namespaces/kube-public/configmaps/cluster-info"

// anonymousPaths are the only paths an unauthenticated client may reach. The kubelet's liveness
// and readiness probes of the kube-apiserver static pod carry no credentials, so a plain
// --anonymous-auth=false makes every probe fail with 401 and the kubelet restarts the API server
// in a loop, and workers cannot discover the cluster to join it. Structured authentication (GA
// since 1.34) keeps anonymous off on every other path; paths match exactly.
var anonymousPaths = []string{"/livez", "/readyz", "/healthz", ClusterInfoPath}

type authenticationConfiguration struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Anonymous  anonymousAuthn `json:"anonymous"`
}

type anonymousAuthn struct {
	Enabled    bool            `json:"enabled"`
	Conditions []anonymousCond `json:"conditions,omitempty"`
}

type anonymousCond struct {
	Path string `json:"path"`
}

// AnonymousPaths returns the paths anonymous requests may reach.
func AnonymousPaths() []string { return append([]string(nil), anonymousPaths...) }

// AuthenticationConfig renders an apiserver.config.k8s.io/v1 AuthenticationConfiguration that
// allows anonymous requests only to the health endpoints and kubeadm's cluster-info. It replaces --anonymous-auth=false
// (kube-apiserver refuses both together).
func AuthenticationConfig() ([]byte, error) {
	c := authenticationConfiguration{
		APIVersion: "apiserver.config.k8s.io/v1",
		Kind:       "AuthenticationConfiguration",
		Anonymous:  anonymousAuthn{Enabled: true},
	}
	for _, p := range anonymousPaths {
		c.Anonymous.Conditions = append(c.Anonymous.Conditions, anonymousCond{Path: p})
	}
	return yaml.Marshal(c)
}
