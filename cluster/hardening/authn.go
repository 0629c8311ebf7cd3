package hardening

import "sigs.k8s.io/yaml"

// HealthPaths are the only paths an unauthenticated client may reach. The kubelet's liveness and
// readiness probes of the kube-apiserver static pod carry no credentials, so a plain
// --anonymous-auth=false makes every probe fail with 401 and the kubelet restarts the API server
// in a loop; structured authentication (GA since 1.34) keeps anonymous off everywhere else.
var healthPaths = []string{"/livez", "/readyz", "/healthz"}

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
func AnonymousPaths() []string { return append([]string(nil), healthPaths...) }

// AuthenticationConfig renders an apiserver.config.k8s.io/v1 AuthenticationConfiguration that
// allows anonymous requests only to the health endpoints. It replaces --anonymous-auth=false
// (kube-apiserver refuses both together).
func AuthenticationConfig() ([]byte, error) {
	c := authenticationConfiguration{
		APIVersion: "apiserver.config.k8s.io/v1",
		Kind:       "AuthenticationConfiguration",
		Anonymous:  anonymousAuthn{Enabled: true},
	}
	for _, p := range healthPaths {
		c.Anonymous.Conditions = append(c.Anonymous.Conditions, anonymousCond{Path: p})
	}
	return yaml.Marshal(c)
}
