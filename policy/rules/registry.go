package rules

const (
	unknownSkip = "An unknown field is skipped and listed by the advisory policy preview-unknown-values; `pulumi up` checks the resolved value."
)

// ResourceRules lists every rule that checks one resource at a time.
func ResourceRules() []ResourceRule {
	return []ResourceRule{
		{Name: "pod-run-as-non-root", Level: Mandatory, Unknowns: unknownSkip,
			Description: "Containers run as non-root: runAsNonRoot true on the container or the pod (the container wins); a pod-level false fails even when every container sets true, as in Pod Security restricted.",
			Check:       podRule("pod-run-as-non-root", checkRunAsNonRoot)},
		{Name: "pod-run-as-user-group", Level: Mandatory, Unknowns: unknownSkip,
			Description: "runAsUser and runAsGroup are never 0, at pod or container level.",
			Check:       podRule("pod-run-as-user-group", checkRunAsUserGroup)},
		{Name: "pod-privilege-escalation", Level: Mandatory, Unknowns: unknownSkip,
			Description: "Every container sets allowPrivilegeEscalation: false.",
			Check:       podRule("pod-privilege-escalation", checkPrivilegeEscalation)},
		{Name: "pod-privileged", Level: Mandatory, Unknowns: unknownSkip,
			Description: "No container is privileged.",
			Check:       podRule("pod-privileged", checkPrivileged)},
		{Name: "pod-capabilities", Level: Mandatory, Unknowns: unknownSkip,
			Description: "Every container drops ALL capabilities and adds none but NET_BIND_SERVICE.",
			Check:       podRule("pod-capabilities", checkCapabilities)},
		{Name: "pod-seccomp", Level: Mandatory, Unknowns: unknownSkip,
			Description: "Every container runs with seccomp RuntimeDefault or Localhost (container or pod level).",
			Check:       podRule("pod-seccomp", checkSeccomp)},
		{Name: "pod-read-only-root-filesystem", Level: Mandatory, Unknowns: unknownSkip,
			Description: "Every container has readOnlyRootFilesystem: true.",
			Check:       podRule("pod-read-only-root-filesystem", checkReadOnlyRoot)},
		{Name: "pod-host-access", Level: Mandatory, Unknowns: unknownSkip,
			Description: "No hostNetwork, hostPID, hostIPC, hostPath volume or hostPort.",
			Check:       podRule("pod-host-access", checkHostAccess)},
		{Name: "pod-volume-types", Level: Mandatory, Unknowns: unknownSkip,
			Description: "Volumes use only the Pod Security restricted types.",
			Check:       podRule("pod-volume-types", checkVolumeTypes)},
		{Name: "pod-security-baseline", Level: Mandatory, Unknowns: unknownSkip,
			Description: "No custom /proc mount, SELinux user/role or type, unconfined AppArmor, unsafe sysctl or Windows host process.",
			Check:       podRule("pod-security-baseline", checkBaselineExtras)},
		{Name: "pod-resources", Level: Mandatory, Unknowns: unknownSkip,
			Description: "Every container requests cpu and memory and limits memory.",
			Check:       podRule("pod-resources", func(f *finder, p pod) { checkResources(f, p, false) })},
		{Name: "pod-cpu-limit", Level: Advisory, Unknowns: unknownSkip,
			Description: "Every container limits cpu.",
			Check:       podRule("pod-cpu-limit", func(f *finder, p pod) { checkResources(f, p, true) })},
		{Name: "pod-image-tag", Level: Mandatory, Unknowns: unknownSkip,
			Description: "Every image names a tag or digest, never latest.",
			Check:       podRule("pod-image-tag", checkImage)},
		{Name: "pod-service-account-token", Level: Mandatory, Unknowns: unknownSkip,
			Description: "automountServiceAccountToken is false unless the workload opts in with the annotation " + APIAccessAnnotation + ": \"<reason>\".",
			Check:       podRule("pod-service-account-token", checkServiceAccountToken)},
		{Name: "workload-service-account", Level: Mandatory, Unknowns: unknownSkip,
			Description: "No workload runs as the default ServiceAccount.",
			Check:       podRule("workload-service-account", checkServiceAccountName)},
		{Name: "secret-data-is-secret", Level: Mandatory,
			Unknowns:    "A value marked secret passes even when unknown; an unknown value not marked secret is skipped and listed by preview-unknown-values (it will be plaintext once known: mark it secret).",
			Description: "A Kubernetes Secret's data and stringData are Pulumi secrets, never plaintext in the program or state.",
			Check:       checkSecretData},
		{Name: "env-credentials-from-secret", Level: Mandatory, Unknowns: unknownSkip,
			Description: "An env var whose name looks like a credential takes its value from valueFrom.secretKeyRef.",
			Check:       checkEnvCredentials},
		{Name: "configmap-no-credentials", Level: Mandatory,
			Unknowns:    "Keys are always known; an unknown value is skipped and listed by preview-unknown-values.",
			Description: "A ConfigMap holds no credential-looking key and no PEM private key.",
			Check:       checkConfigMap},
		{Name: "proxmox-credentials-secret", Level: Mandatory,
			Unknowns:    "A value marked secret passes even when unknown; an unknown plaintext value is skipped and listed by preview-unknown-values.",
			Description: "The Proxmox provider's password, API token and SSH credentials are Pulumi secrets.",
			Check:       checkProxmoxCredentials},
		{Name: "remote-command-credentials-secret", Level: Mandatory,
			Unknowns:    "A value marked secret passes even when unknown; an unknown plaintext value is skipped and listed by preview-unknown-values.",
			Description: "Every remote command's SSH private key and password are Pulumi secrets.",
			Check:       checkRemoteCommandCredentials},
		{Name: "cloud-init-no-password", Level: Mandatory,
			Unknowns:    "Unknown user data (e.g. rendered from another resource's output) is skipped and listed by preview-unknown-values.",
			Description: "Cloud-init user data sets no password (no passwd, plain_text_passwd, chpasswd, lock_passwd: false; no userAccount.password).",
			Check:       checkCloudInit},
		{Name: "proxmox-insecure-tls", Level: Advisory, Unknowns: unknownSkip,
			Description: "The Proxmox provider verifies TLS (insecure is not true) unless the pack config has an exception with a reason.",
			Check:       checkProxmoxTLS},
		{Name: "proxmox-provider-explicit", Level: Mandatory, Unknowns: unknownSkip,
			Description: "The Proxmox provider sets insecure, minTls (1.2 or 1.3) and an ssh block with agent and agentForwarding false, password and socks5Server explicitly: whatever it leaves out, it takes from PROXMOX_VE_* variables.",
			Check:       checkProxmoxProviderExplicit},
		{Name: "namespace-pod-security", Level: Mandatory, Unknowns: unknownSkip,
			Description: "Every namespace enforces Pod Security restricted unless the pack config lists an exception with a reason.",
			Check:       checkNamespacePodSecurity},
	}
}

// StackRules lists every rule that checks the stack as a whole.
func StackRules() []StackRule {
	return []StackRule{
		{Name: "namespace-default-deny", Level: Mandatory,
			Unknowns:    "A NetworkPolicy whose namespace is unknown counts for the one Namespace it depends on; if a deciding field is unknown the namespace is listed by preview-unknown-values instead of failing.",
			Description: "Every namespace the stack creates has a default-deny NetworkPolicy covering Ingress and Egress.",
			Check:       checkDefaultDeny},
	}
}

// RuleNames lists every rule name, for validating exceptions.
func RuleNames() []string {
	var out []string
	for _, r := range ResourceRules() {
		out = append(out, r.Name)
	}
	for _, r := range StackRules() {
		out = append(out, r.Name)
	}
	return out
}
