package hardening

import "sigs.k8s.io/yaml"

type auditPolicy struct {
	APIVersion string      `json:"apiVersion"`
	Kind       string      `json:"kind"`
	OmitStages []string    `json:"omitStages,omitempty"`
	Rules      []auditRule `json:"rules"`
}

type auditRule struct {
	Level           string     `json:"level"`
	Users           []string   `json:"users,omitempty"`
	Verbs           []string   `json:"verbs,omitempty"`
	Resources       []groupRes `json:"resources,omitempty"`
	NonResourceURLs []string   `json:"nonResourceURLs,omitempty"`
}

type groupRes struct {
	Group     string   `json:"group"`
	Resources []string `json:"resources,omitempty"`
}

// AuditPolicy renders an audit.k8s.io/v1 Policy. The first matching rule wins, so the order is:
// drop health probes and kube-proxy's watches (noise), log only metadata for anything whose body
// holds a credential (Secrets, ConfigMaps, token requests and reviews) so no secret value ever
// reaches the audit log, log request bodies of writes, and metadata for every other request.
func AuditPolicy() ([]byte, error) {
	p := auditPolicy{
		APIVersion: "audit.k8s.io/v1",
		Kind:       "Policy",
		OmitStages: []string{"RequestReceived"},
		Rules: []auditRule{
			{Level: "None", NonResourceURLs: []string{"/healthz*", "/livez*", "/readyz*", "/version"}},
			{
				Level: "None", Users: []string{"system:kube-proxy"}, Verbs: []string{"watch"},
				Resources: []groupRes{{Group: "", Resources: []string{"endpoints", "services"}}, {Group: "discovery.k8s.io", Resources: []string{"endpointslices"}}},
			},
			{
				Level: "Metadata",
				Resources: []groupRes{
					{Group: "", Resources: []string{"secrets", "configmaps", "serviceaccounts/token"}},
					{Group: "authentication.k8s.io", Resources: []string{"tokenreviews"}},
					{Group: "certificates.k8s.io", Resources: []string{"certificatesigningrequests"}},
				},
			},
			{Level: "Request", Verbs: []string{"create", "update", "patch", "delete", "deletecollection"}},
			{Level: "Metadata"},
		},
	}
	return yaml.Marshal(p)
}
