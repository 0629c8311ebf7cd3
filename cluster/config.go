package cluster

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/infralab/infralab/cluster/hardening"
	"sigs.k8s.io/yaml"
)

const (
	kubeadmAPIVersion = "kubeadm.k8s.io/v1beta4"
	apiServerPort     = 6443
	criSocket         = "unix:///run/containerd/containerd.sock"
	// stateDir holds our generated files and markers on each node; kubeadm reset leaves it alone.
	stateDir   = "/etc/kubernetes/infralab"
	patchesDir = stateDir + "/patches"
	// initTokenTTL bounds the token kubeadm init creates itself; we never print or use it.
	initTokenTTL = "15m0s"
	// joinTokenTTL bounds the token the join-token phase creates for the workers. A day, not an
	// hour: join-token runs again only when its triggers change (never on a clock, so a second
	// `pulumi up` after a success stays a no-op), so when a join fails, the re-run after the fix
	// reuses this token and must still find it valid. It does not live that long when things go
	// well: the delete-join-token phase deletes it as soon as every node is Ready.
	joinTokenTTL = "24h0m0s"
	// joinTokenDescription marks our join tokens, so join-token can find and delete earlier ones.
	joinTokenDescription = "infralab-join"
	// hardeningHashAnnotation on the API server pod changes when a hardening file changes, so
	// the kubelet restarts the static pod and the new file takes effect.
	hardeningHashAnnotation = "infralab.dev/hardening-sha256"
)

// Bounds of KubeadmArgs.PodPIDsLimit: below the minimum a busy pod (PostgreSQL's backends, the
// api's workers) cannot start its processes; the maximum is Linux's default pid_max.
const (
	DefaultPodPIDsLimit = 4096
	MinPodPIDsLimit     = 1024
	MaxPodPIDsLimit     = 4194304
)

// clusterConfig is what the kubeadm config is rendered from.
type clusterConfig struct {
	AllowCgroupV1     bool
	ClusterName       string
	KubernetesVersion string
	ControlPlane      Node
	PodCIDR           string
	ServiceCIDR       string
	PodPIDsLimit      int
	ImageRepository   string
}

func (a *KubeadmArgs) clusterConfig() clusterConfig {
	c := clusterConfig{
		ClusterName: a.ClusterName, KubernetesVersion: a.KubernetesVersion, ControlPlane: a.ControlPlane,
		PodCIDR: a.PodCIDR, ServiceCIDR: a.ServiceCIDR, PodPIDsLimit: a.PodPIDsLimit,
		ImageRepository: a.ImageRepository,
		AllowCgroupV1:   a.AllowCgroupV1,
	}
	if c.PodPIDsLimit == 0 {
		c.PodPIDsLimit = DefaultPodPIDsLimit
	}
	return c
}

func (c clusterConfig) endpoint() string {
	return fmt.Sprintf("%s:%d", c.ControlPlane.IP, apiServerPort)
}

func nodeReg(n Node) nodeRegistration {
	return nodeRegistration{
		Name: n.Name, CRISocket: criSocket,
		// node-ip pins the kubelet to the lab network when the VM has more than one interface.
		KubeletExtraArgs: []hardening.Arg{{Name: "node-ip", Value: n.IP}},
	}
}

// renderKubeadmConfig renders InitConfiguration, ClusterConfiguration and KubeletConfiguration
// as one multi-document file for `kubeadm init --config`. It holds no secret.
func renderKubeadmConfig(c clusterConfig) ([]byte, error) {
	init := initConfiguration{
		typeMeta: typeMeta{kubeadmAPIVersion, "InitConfiguration"},
		BootstrapTokens: []bootstrapToken{{
			Description: "kubeadm init token, unused by infralab",
			TTL:         initTokenTTL,
			Usages:      []string{"signing", "authentication"},
			Groups:      []string{"system:bootstrappers:kubeadm:default-node-token"},
		}},
		NodeRegistration: nodeReg(c.ControlPlane),
		LocalAPIEndpoint: apiEndpoint{AdvertiseAddress: c.ControlPlane.IP, BindPort: apiServerPort},
		Patches:          &patches{Directory: patchesDir},
	}
	cluster := clusterConfiguration{
		typeMeta:             typeMeta{kubeadmAPIVersion, "ClusterConfiguration"},
		ClusterName:          c.ClusterName,
		KubernetesVersion:    "v" + c.KubernetesVersion,
		ControlPlaneEndpoint: c.endpoint(),
		ImageRepository:      c.ImageRepository,
		Networking:           networking{PodSubnet: c.PodCIDR, ServiceSubnet: c.ServiceCIDR, DNSDomain: "cluster.local"},
		APIServer: apiServer{
			CertSANs:  []string{c.ControlPlane.IP},
			ExtraArgs: hardening.APIServerArgs(hardening.NodePaths()),
			ExtraVolumes: []hostPathMount{
				{Name: "infralab-hardening", HostPath: hardening.ConfigDir, MountPath: hardening.ConfigDir, ReadOnly: true, PathType: "DirectoryOrCreate"},
				{Name: "infralab-audit-log", HostPath: hardening.AuditLogDir, MountPath: hardening.AuditLogDir, ReadOnly: false, PathType: "DirectoryOrCreate"},
			},
		},
		ControllerManager: controlPlaneComp{ExtraArgs: hardening.ControllerManagerArgs()},
		Scheduler:         controlPlaneComp{ExtraArgs: hardening.SchedulerArgs()},
	}
	return joinYAML(init, cluster, c.kubelet())
}

// kubelet is the KubeletConfiguration of every node.
func (c clusterConfig) kubelet() kubeletConfiguration {
	return kubeletConfiguration{
		typeMeta:                       typeMeta{"kubelet.config.k8s.io/v1beta1", "KubeletConfiguration"},
		CgroupDriver:                   "systemd",
		Authentication:                 kubeletAuthn{Anonymous: enabled{false}, Webhook: enabled{true}},
		Authorization:                  kubeletAuthz{Mode: "Webhook"},
		ReadOnlyPort:                   0,
		RotateCertificates:             true,
		SeccompDefault:                 true,
		ProtectKernelDefaults:          true,
		PodPidsLimit:                   int64(c.PodPIDsLimit),
		EventRecordQPS:                 5,
		StreamingConnectionIdleTimeout: "4h0m0s",
		TLSMinVersion:                  "VersionTLS12",
		TLSCipherSuites:                strings.Split(hardening.TLSCipherSuites(), ","),
		FailCgroupV1:                   c.failCgroupV1(),
	}
}

// kubeletSHA256 is the hash of the KubeletConfiguration document exactly as it appears in
// the kubeadm config. kubeadm-init and every join-worker carry it as a plain input: a change
// re-runs them, and each node compares it with the marker of the last configuration it applied.
func (c clusterConfig) kubeletSHA256() (string, error) {
	b, err := yaml.Marshal(c.kubelet())
	if err != nil {
		return "", fmt.Errorf("render kubelet config: %w", err)
	}
	return sha256Hex(string(b)), nil
}

// joinConfig is what a worker's JoinConfiguration is rendered from.
type joinConfig struct {
	Endpoint   string
	Token      string
	CACertHash string
	Node       Node
}

// renderJoinConfig renders a JoinConfiguration. It holds the bootstrap token: callers keep the
// result inside a secret Output and pass it only on a command's stdin.
func renderJoinConfig(j joinConfig) ([]byte, error) {
	return yaml.Marshal(joinConfiguration{
		typeMeta: typeMeta{kubeadmAPIVersion, "JoinConfiguration"},
		Discovery: discovery{BootstrapToken: bootstrapTokenDiscovery{
			APIServerEndpoint: j.Endpoint, Token: j.Token, CACertHashes: []string{j.CACertHash},
		}},
		NodeRegistration: nodeReg(j.Node),
	})
}

// hardeningFiles are the non-secret hardening files, by on-node path.
func hardeningFiles() (map[string][]byte, error) {
	files := map[string][]byte{}
	for path, render := range map[string]func() ([]byte, error){
		hardening.AuditPolicyPath:     hardening.AuditPolicy,
		hardening.AdmissionConfigPath: hardening.AdmissionConfig,
		hardening.AuthnConfigPath:     hardening.AuthenticationConfig,
	} {
		b, err := render()
		if err != nil {
			return nil, fmt.Errorf("render %s: %w", path, err)
		}
		files[path] = b
	}
	return files, nil
}

// renderAPIServerPatch renders the kubeadm patch that stamps the hash of the non-secret
// hardening files on the API server pod. The encryption config is left out of the hash: a hash
// of a key file is not something to keep in plain state, and key changes are refused anyway.
func renderAPIServerPatch(files map[string][]byte) ([]byte, error) {
	h := sha256.New()
	for _, p := range sortedKeys(files) {
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(files[p]))
		h.Write(files[p])
	}
	return yaml.Marshal(map[string]any{
		"metadata": map[string]any{"annotations": map[string]string{hardeningHashAnnotation: hex.EncodeToString(h.Sum(nil))}},
	})
}

func joinYAML(docs ...any) ([]byte, error) {
	var out bytes.Buffer
	for i, d := range docs {
		b, err := yaml.Marshal(d)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			out.WriteString("---\n")
		}
		out.Write(b)
	}
	return out.Bytes(), nil
}
