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
	UserGroups      []string   `json:"userGroups,omitempty"`
	Verbs           []string   `json:"verbs,omitempty"`
	Resources       []groupRes `json:"resources,omitempty"`
	NonResourceURLs []string   `json:"nonResourceURLs,omitempty"`
}

type groupRes struct {
	Group     string   `json:"group"`
	Resources []string `json:"resources,omitempty"`
}

// heartbeatUsers renew Leases all the time: kube-apiserver its identity Lease in kube-system
// (every 10 s, seen in the embedded control plane's audit log), kube-controller-manager and
// kube-scheduler (leader election), every kubelet (its node Lease, every 10 s) and controllers running under a service
// account (the Calico operator's and other operators' leader election).
var (
	controlPlaneUsers = []string{"system:apiserver", "system:kube-controller-manager", "system:kube-scheduler", "system:kube-proxy"}
	heartbeatUsers    = []string{"system:apiserver", "system:kube-controller-manager", "system:kube-scheduler"}
	heartbeatGroups   = []string{"system:nodes", "system:serviceaccounts"}
)

// AuditPolicy renders an audit.k8s.io/v1 Policy. The first matching rule wins, so the order is:
// drop health probes, API discovery reads, the control plane components' watches and Lease
// renewals (noise: an idle
// cluster's writes are mostly heartbeats, and logging their bodies used up the retention in days),
// log the kubelets' node and pod status writes as metadata only, log only metadata for anything
// whose body holds a credential (Secrets, ConfigMaps, token requests and reviews) so no secret
// value ever reaches the audit log, log request bodies of writes, and metadata for every other
// request. A Lease written by anyone else (an admin) is still logged, as metadata.
func AuditPolicy() ([]byte, error) {
	p := auditPolicy{
		APIVersion: "audit.k8s.io/v1",
		Kind:       "Policy",
		OmitStages: []string{"RequestReceived"},
		Rules: []auditRule{
			{Level: "None", NonResourceURLs: []string{"/healthz*", "/livez*", "/readyz*", "/version"}},
			// API discovery: every controller re-reads it every 30 s (the largest part of an idle
			// control plane's log once Leases are gone); it is public to any authenticated client.
			{Level: "None", Verbs: []string{"get"}, NonResourceURLs: []string{"/api", "/api/*", "/apis", "/apis/*", "/openapi/*"}},
			// The control plane's own informers re-open every watch every 5-10 minutes (client-go
			// reflectors): measured on the embedded control plane with a node, these were 86% of
			// what was left once Leases and discovery were gone. Watches by anyone else (kubelets,
			// service accounts, people) are still logged.
			{Level: "None", Users: controlPlaneUsers, Verbs: []string{"watch"}},
			{
				Level: "None", Users: heartbeatUsers, Verbs: []string{"get", "update"},
				Resources: []groupRes{{Group: "coordination.k8s.io", Resources: []string{"leases"}}},
			},
			{
				Level: "None", UserGroups: heartbeatGroups, Verbs: []string{"get", "update"},
				Resources: []groupRes{{Group: "coordination.k8s.io", Resources: []string{"leases"}}},
			},
			{Level: "Metadata", Resources: []groupRes{{Group: "coordination.k8s.io", Resources: []string{"leases"}}}},
			{
				Level: "Metadata", UserGroups: []string{"system:nodes"}, Verbs: []string{"update", "patch"},
				Resources: []groupRes{{Group: "", Resources: []string{"nodes/status", "pods/status"}}},
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
