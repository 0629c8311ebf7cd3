package hardening

import "sigs.k8s.io/yaml"

// PodSecurityExemptNamespaces are exempt from the restricted default: kube-system runs kube-proxy
// and the static control-plane pods, which need host access by design. Every other namespace
// gets restricted unless it is labelled otherwise on purpose (the Calico namespaces are).
var podSecurityExemptNamespaces = []string{"kube-system"}

type admissionConfiguration struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Plugins    []admissionPlugin `json:"plugins"`
}

type admissionPlugin struct {
	Name          string            `json:"name"`
	Configuration podSecurityConfig `json:"configuration"`
}

type podSecurityConfig struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Defaults   podSecurityLevels `json:"defaults"`
	Exemptions podSecurityExempt `json:"exemptions"`
}

type podSecurityLevels struct {
	Enforce        string `json:"enforce"`
	EnforceVersion string `json:"enforce-version"`
	Audit          string `json:"audit"`
	AuditVersion   string `json:"audit-version"`
	Warn           string `json:"warn"`
	WarnVersion    string `json:"warn-version"`
}

type podSecurityExempt struct {
	Usernames      []string `json:"usernames"`
	RuntimeClasses []string `json:"runtimeClasses"`
	Namespaces     []string `json:"namespaces"`
}

// PodSecurityExemptNamespaces returns the namespaces the admission configuration exempts.
func PodSecurityExemptNamespaces() []string {
	return append([]string(nil), podSecurityExemptNamespaces...)
}

// AdmissionConfig renders an apiserver.config.k8s.io/v1 AdmissionConfiguration whose PodSecurity
// defaults are enforce/audit/warn = restricted (latest), with kube-system exempt.
func AdmissionConfig() ([]byte, error) {
	c := admissionConfiguration{
		APIVersion: "apiserver.config.k8s.io/v1",
		Kind:       "AdmissionConfiguration",
		Plugins: []admissionPlugin{{
			Name: "PodSecurity",
			Configuration: podSecurityConfig{
				APIVersion: "pod-security.admission.config.k8s.io/v1",
				Kind:       "PodSecurityConfiguration",
				Defaults: podSecurityLevels{
					Enforce: "restricted", EnforceVersion: "latest",
					Audit: "restricted", AuditVersion: "latest",
					Warn: "restricted", WarnVersion: "latest",
				},
				Exemptions: podSecurityExempt{
					Usernames:      []string{},
					RuntimeClasses: []string{},
					Namespaces:     PodSecurityExemptNamespaces(),
				},
			},
		}},
	}
	return yaml.Marshal(c)
}
