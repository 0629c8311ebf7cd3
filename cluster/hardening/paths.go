package hardening

// On-node locations of the hardening files. kubeadm mounts ConfigDir read-only and AuditLogDir
// read-write into the kube-apiserver static pod, so every file lives under one of the two.
const (
	ConfigDir            = "/etc/kubernetes/hardening"
	EncryptionConfigPath = ConfigDir + "/encryption-config.yaml"
	AuditPolicyPath      = ConfigDir + "/audit-policy.yaml"
	AdmissionConfigPath  = ConfigDir + "/admission-config.yaml"
	AuthnConfigPath      = ConfigDir + "/authentication-config.yaml"

	AuditLogDir  = "/var/log/kubernetes/audit"
	AuditLogPath = AuditLogDir + "/audit.log"
)

// Audit log retention, the values the CIS benchmark asks for (days, files, MiB).
const (
	AuditLogMaxAge    = 30
	AuditLogMaxBackup = 10
	AuditLogMaxSize   = 100
)

// Paths says where a consumer put the files, so APIServerArgs can point at them.
type Paths struct {
	EncryptionConfig string
	AuditPolicy      string
	AdmissionConfig  string
	AuthnConfig      string
	AuditLog         string
}

// NodePaths are the paths used on a kubeadm node.
func NodePaths() Paths {
	return Paths{
		EncryptionConfig: EncryptionConfigPath,
		AuditPolicy:      AuditPolicyPath,
		AdmissionConfig:  AdmissionConfigPath,
		AuthnConfig:      AuthnConfigPath,
		AuditLog:         AuditLogPath,
	}
}
