package hardening

import "strconv"

// Arg is one command-line flag without its leading dashes, in the order kubeadm's v1beta4
// extraArgs lists them.
type Arg struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// tlsCipherSuites are the strong TLS 1.2 suites the CIS benchmark accepts (TLS 1.3 suites are
// not configurable in Go and are always strong).
const tlsCipherSuites = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384," +
	"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256," +
	"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305"

// TLSCipherSuites returns the cipher suite list used by the API server and the kubelet.
func TLSCipherSuites() string { return tlsCipherSuites }

// APIServerArgs are the kube-apiserver hardening flags pointing at the files in p. It sets
// --authentication-config, never --anonymous-auth (see AuthenticationConfig).
func APIServerArgs(p Paths) []Arg {
	return []Arg{
		{"authentication-config", p.AuthnConfig},
		{"authorization-mode", "Node,RBAC"},
		{"enable-admission-plugins", "NodeRestriction"},
		{"admission-control-config-file", p.AdmissionConfig},
		{"encryption-provider-config", p.EncryptionConfig},
		{"profiling", "false"},
		{"audit-policy-file", p.AuditPolicy},
		{"audit-log-path", p.AuditLog},
		{"audit-log-maxage", strconv.Itoa(AuditLogMaxAge)},
		{"audit-log-maxbackup", strconv.Itoa(AuditLogMaxBackup)},
		{"audit-log-maxsize", strconv.Itoa(AuditLogMaxSize)},
		{"tls-min-version", "VersionTLS12"},
		{"tls-cipher-suites", tlsCipherSuites},
	}
}

// ControllerManagerArgs are the kube-controller-manager hardening flags (CIS 1.3.x).
func ControllerManagerArgs() []Arg {
	return []Arg{
		{"bind-address", "127.0.0.1"},
		{"profiling", "false"},
		{"use-service-account-credentials", "true"},
		{"terminated-pod-gc-threshold", "1000"},
	}
}

// SchedulerArgs are the kube-scheduler hardening flags (CIS 1.4.x).
func SchedulerArgs() []Arg {
	return []Arg{
		{"bind-address", "127.0.0.1"},
		{"profiling", "false"},
	}
}
