package rules

const (
	unknownSkip = "An unknown field is skipped and listed by the advisory policy preview-unknown-values; `pulumi up` checks the resolved value."
	// own starts the description of a rule the pack adds beyond Pod Security.
	own = "infralab's own rule, beyond Pod Security: "
)

// psa starts the description of a rule decided by the upstream Pod Security checks.
func psa(checks string) string {
	return "Pod Security (k8s.io/pod-security-admission checks " + checks + ", at the level and version of settings.podSecurity): "
}

// ResourceRules lists every rule that checks one resource at a time.
func ResourceRules() []ResourceRule {
	return []ResourceRule{
		{Name: "pod-run-as-non-root", Level: Mandatory, PodSecurity: true, Unknowns: unknownSkip,
			Description: psa("runAsNonRoot") + "containers run as non-root: runAsNonRoot true on the container or the pod; a pod-level false fails even when every container sets true; a pod with hostUsers: false (user namespace) is exempt from v1.35.",
			Check:       podSecurityRule("pod-run-as-non-root", runAsNonRootRule)},
		{Name: "pod-run-as-user-group", Level: Mandatory, PodSecurity: true, Unknowns: unknownSkip,
			Description: psa("runAsUser") + "runAsUser is never 0, at pod or container level (hostUsers: false is exempt from v1.35). Ids below 10000 and runAsGroup are pod-high-uid-gid's.",
			Check:       podSecurityRule("pod-run-as-user-group", runAsUserRule)},
		{Name: "pod-privilege-escalation", Level: Mandatory, PodSecurity: true, Unknowns: unknownSkip,
			Description: psa("allowPrivilegeEscalation") + "every container sets allowPrivilegeEscalation: false (Windows pods are exempt).",
			Check:       podSecurityRule("pod-privilege-escalation", privilegeEscalationRule)},
		{Name: "pod-privileged", Level: Mandatory, PodSecurity: true, Unknowns: unknownSkip,
			Description: psa("privileged") + "no container is privileged.",
			Check:       podSecurityRule("pod-privileged", privilegedRule)},
		{Name: "pod-capabilities", Level: Mandatory, PodSecurity: true, Unknowns: unknownSkip,
			Description: psa("capabilities_restricted, capabilities_baseline") + "every container drops ALL capabilities and adds none but NET_BIND_SERVICE (Windows pods are exempt).",
			Check:       podSecurityRule("pod-capabilities", capabilitiesRule)},
		{Name: "pod-seccomp", Level: Mandatory, PodSecurity: true, Unknowns: unknownSkip,
			Description: psa("seccompProfile_restricted, seccompProfile_baseline") + "every container runs with seccomp RuntimeDefault or Localhost, from the container or the pod (Windows pods are exempt).",
			Check:       podSecurityRule("pod-seccomp", seccompRule)},
		{Name: "pod-host-access", Level: Mandatory, PodSecurity: true, Unknowns: unknownSkip,
			Description: psa("hostNamespaces, hostPathVolumes, hostPorts, hostProbesAndHostLifecycle") + "no hostNetwork, hostPID, hostIPC, hostPath volume, hostPort, or probe or lifecycle hook aimed at another host.",
			Check:       podSecurityRule("pod-host-access", hostAccessRule)},
		{Name: "pod-volume-types", Level: Mandatory, PodSecurity: true, Unknowns: unknownSkip,
			Description: psa("restrictedVolumes") + "volumes use only the types restricted allows (hostPath is pod-host-access's).",
			Check:       podSecurityRule("pod-volume-types", volumeTypesRule)},
		{Name: "pod-security-baseline", Level: Mandatory, PodSecurity: true, Unknowns: unknownSkip,
			Description: psa("procMount, procMount_restricted, seLinuxOptions, appArmorProfile, sysctls, windowsHostProcess") + "no custom /proc mount (allowed in a user namespace at baseline), SELinux user, role or custom type, AppArmor profile other than RuntimeDefault or Localhost (field or annotation), sysctl outside the safe set, or Windows host process.",
			Check:       podSecurityRule("pod-security-baseline", baselineRule)},
		{Name: "pod-read-only-root-filesystem", Level: Mandatory, Unknowns: unknownSkip,
			Description: own + "every container has readOnlyRootFilesystem: true (Windows pods are exempt: Kubernetes forbids the field there).",
			Check:       podRule("pod-read-only-root-filesystem", checkReadOnlyRoot)},
		{Name: "pod-high-uid-gid", Level: Mandatory, Unknowns: unknownSkip,
			Description: own + "every container runs with runAsUser and runAsGroup of 10000 or more, set on the container or the pod, and fsGroup and supplementalGroups are 10000 or more; Windows pods and pods with hostUsers: false are exempt.",
			Check:       podRule("pod-high-uid-gid", checkHighIDs)},
		{Name: "pod-resources", Level: Mandatory, Unknowns: unknownSkip,
			Description: own + "every container requests cpu and memory and limits memory.",
			Check:       podRule("pod-resources", func(f *finder, p pod) { checkResources(f, p, false) })},
		{Name: "pod-cpu-limit", Level: Advisory, Unknowns: unknownSkip,
			Description: own + "every container limits cpu.",
			Check:       podRule("pod-cpu-limit", func(f *finder, p pod) { checkResources(f, p, true) })},
		{Name: "pod-ephemeral-storage", Level: Mandatory, Unknowns: unknownSkip,
			Description: own + "every container requests and limits ephemeral-storage, so a pod filling its logs, writable layer or emptyDirs is evicted before it fills the node's disk.",
			Check:       podRule("pod-ephemeral-storage", checkEphemeralStorage)},
		{Name: "pod-probes-distinct", Level: Mandatory, Unknowns: unknownSkip,
			Description: own + "a container's livenessProbe checks something other than its readinessProbe, so a dependency outage takes pods out of Services without restarting them.",
			Check:       podRule("pod-probes-distinct", checkProbesDistinct)},
		{Name: "pod-image-tag", Level: Mandatory, Unknowns: unknownSkip,
			Description: own + "every image names a tag or digest, never latest.",
			Check:       podRule("pod-image-tag", checkImage)},
		{Name: "pod-image-pull-policy", Level: Mandatory, Unknowns: unknownSkip,
			Description: own + "every container sets imagePullPolicy; with settings.images.requireDigest, every image a node pulls (Always, IfNotPresent) is pinned by digest.",
			Check:       podRuleWith("pod-image-pull-policy", checkImagePullPolicy)},
		{Name: "pod-service-account-token", Level: Mandatory, Unknowns: unknownSkip,
			Description: own + "automountServiceAccountToken is false unless the workload opts in with the annotation " + APIAccessAnnotation + ": \"<reason>\".",
			Check:       podRule("pod-service-account-token", checkServiceAccountToken)},
		{Name: "workload-service-account", Level: Mandatory, Unknowns: unknownSkip,
			Description: own + "no workload runs as the default ServiceAccount.",
			Check:       podRule("workload-service-account", checkServiceAccountName)},
		{Name: "secret-data-is-secret", Level: Mandatory,
			Unknowns:    "A value marked secret passes even when unknown; an unknown value not marked secret is skipped and listed by preview-unknown-values (it will be plaintext once known: mark it secret).",
			Description: own + "a Kubernetes Secret's data and stringData are Pulumi secrets, never plaintext in the program or state.",
			Check:       anySettings(checkSecretData)},
		{Name: "env-credentials-from-secret", Level: Mandatory, Unknowns: unknownSkip,
			Description: own + "an env var whose name looks like a credential takes its value from valueFrom.secretKeyRef.",
			Check:       anySettings(checkEnvCredentials)},
		{Name: "configmap-no-credentials", Level: Mandatory,
			Unknowns:    "Keys are always known; an unknown value is skipped and listed by preview-unknown-values.",
			Description: own + "a ConfigMap holds no credential-looking key and no PEM private key.",
			Check:       anySettings(checkConfigMap)},
		{Name: "proxmox-credentials-secret", Level: Mandatory,
			Unknowns:    "A value marked secret passes even when unknown; an unknown plaintext value is skipped and listed by preview-unknown-values.",
			Description: own + "the Proxmox provider's password, API token and SSH credentials are Pulumi secrets.",
			Check:       anySettings(checkProxmoxCredentials)},
		{Name: "remote-command-credentials-secret", Level: Mandatory,
			Unknowns:    "A value marked secret passes even when unknown; an unknown plaintext value is skipped and listed by preview-unknown-values.",
			Description: own + "every remote command's SSH private key and password are Pulumi secrets.",
			Check:       anySettings(checkRemoteCommandCredentials)},
		{Name: "cloud-init-no-password", Level: Mandatory,
			Unknowns:    "Unknown user data (e.g. rendered from another resource's output) is skipped and listed by preview-unknown-values.",
			Description: own + "cloud-init user data sets no password (no passwd, plain_text_passwd, chpasswd, lock_passwd: false; no userAccount.password).",
			Check:       anySettings(checkCloudInit)},
		{Name: "proxmox-insecure-tls", Level: Advisory, Unknowns: unknownSkip,
			Description: own + "the Proxmox provider verifies TLS (insecure is not true) unless the pack config has an exception with a reason.",
			Check:       anySettings(checkProxmoxTLS)},
		{Name: "proxmox-provider-explicit", Level: Mandatory, Unknowns: unknownSkip,
			Description: own + "the Proxmox provider sets insecure, minTls (1.2 or 1.3) and an ssh block with agent and agentForwarding false, password and socks5Server explicitly: whatever it leaves out, it takes from PROXMOX_VE_* variables.",
			Check:       anySettings(checkProxmoxProviderExplicit)},
		{Name: "database-backups-configured", Level: Mandatory, Unknowns: unknownSkip,
			Description: own + "a CloudNativePG Cluster archives WAL and takes base backups to an object store: spec.backup.barmanObjectStore with destinationPath, s3Credentials and a spec.backup.retentionPolicy, or the barman-cloud plugin as its WAL archiver.",
			Check:       anySettings(checkClusterBackups)},
		{Name: "database-anti-affinity-required", Level: Mandatory, Unknowns: unknownSkip,
			Description: own + "a CloudNativePG Cluster of more than one instance sets affinity.podAntiAffinityType: required (CNPG's default, preferred, lets every instance land on one node) and does not disable anti-affinity.",
			Check:       anySettings(checkClusterAntiAffinity)},
		{Name: "database-no-app-superuser", Level: Mandatory, Unknowns: unknownSkip,
			Description: own + "a CloudNativePG Cluster does not enable superuser access (no superuser password Secret) and none of its managed roles is a superuser.",
			Check:       anySettings(checkClusterNoAppSuperuser)},
		{Name: "database-tls", Level: Mandatory, Unknowns: unknownSkip,
			Description: own + "a CloudNativePG Cluster rejects clients without TLS: spec.postgresql.pg_hba has `hostnossl all all all reject` before any host or hostnossl line that accepts (CNPG appends `host all all all scram-sha-256` after ours), and ssl_min_protocol_version is not below TLSv1.2.",
			Check:       anySettings(checkClusterTLS)},
		{Name: "namespace-pod-security", Level: Mandatory, Unknowns: unknownSkip,
			Description: own + "every namespace enforces Pod Security at the pack's level (settings.podSecurity.level, default restricted) or stricter, unless the pack config lists an exception with a reason.",
			Check:       checkNamespacePodSecurity},
	}
}

// StackRules lists every rule that checks the stack as a whole.
func StackRules() []StackRule {
	return []StackRule{
		{Name: "namespace-default-deny", Level: Mandatory,
			Unknowns:    "A NetworkPolicy whose namespace is unknown counts for the one Namespace it depends on; if a deciding field is unknown the namespace is listed by preview-unknown-values instead of failing.",
			Description: own + "every namespace the stack creates has a default-deny NetworkPolicy covering Ingress and Egress.",
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
