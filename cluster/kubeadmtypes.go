package cluster

import "github.com/infralab/infralab/cluster/hardening"

// Minimal mirrors of kubeadm.k8s.io/v1beta4 and kubelet.config.k8s.io/v1beta1: only the fields
// we set. Importing k8s.io/kubernetes for the real types would pull in most of Kubernetes.

type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

type initConfiguration struct {
	typeMeta         `json:",inline"`
	BootstrapTokens  []bootstrapToken `json:"bootstrapTokens"`
	NodeRegistration nodeRegistration `json:"nodeRegistration"`
	LocalAPIEndpoint apiEndpoint      `json:"localAPIEndpoint"`
	Patches          *patches         `json:"patches,omitempty"`
}

// bootstrapToken without a token value: kubeadm generates one, so no secret is in the file.
type bootstrapToken struct {
	Description string   `json:"description,omitempty"`
	TTL         string   `json:"ttl"`
	Usages      []string `json:"usages"`
	Groups      []string `json:"groups"`
}

type nodeRegistration struct {
	Name             string          `json:"name"`
	CRISocket        string          `json:"criSocket"`
	KubeletExtraArgs []hardening.Arg `json:"kubeletExtraArgs,omitempty"`
}

type apiEndpoint struct {
	AdvertiseAddress string `json:"advertiseAddress"`
	BindPort         int    `json:"bindPort"`
}

type patches struct {
	Directory string `json:"directory"`
}

type clusterConfiguration struct {
	typeMeta             `json:",inline"`
	ClusterName          string           `json:"clusterName"`
	KubernetesVersion    string           `json:"kubernetesVersion"`
	ControlPlaneEndpoint string           `json:"controlPlaneEndpoint"`
	ImageRepository      string           `json:"imageRepository,omitempty"`
	Networking           networking       `json:"networking"`
	APIServer            apiServer        `json:"apiServer"`
	ControllerManager    controlPlaneComp `json:"controllerManager"`
	Scheduler            controlPlaneComp `json:"scheduler"`
}

type networking struct {
	PodSubnet     string `json:"podSubnet"`
	ServiceSubnet string `json:"serviceSubnet"`
	DNSDomain     string `json:"dnsDomain"`
}

type apiServer struct {
	CertSANs     []string        `json:"certSANs,omitempty"`
	ExtraArgs    []hardening.Arg `json:"extraArgs,omitempty"`
	ExtraVolumes []hostPathMount `json:"extraVolumes,omitempty"`
}

type controlPlaneComp struct {
	ExtraArgs []hardening.Arg `json:"extraArgs,omitempty"`
}

type hostPathMount struct {
	Name      string `json:"name"`
	HostPath  string `json:"hostPath"`
	MountPath string `json:"mountPath"`
	ReadOnly  bool   `json:"readOnly"`
	PathType  string `json:"pathType"`
}

type joinConfiguration struct {
	typeMeta         `json:",inline"`
	Discovery        discovery        `json:"discovery"`
	NodeRegistration nodeRegistration `json:"nodeRegistration"`
}

type discovery struct {
	BootstrapToken bootstrapTokenDiscovery `json:"bootstrapToken"`
}

type bootstrapTokenDiscovery struct {
	APIServerEndpoint string   `json:"apiServerEndpoint"`
	Token             string   `json:"token"`
	CACertHashes      []string `json:"caCertHashes"`
}

// kubeletConfiguration: zero values that matter for CIS (readOnlyPort 0) carry no omitempty, so
// the file states them instead of relying on defaults.
type kubeletConfiguration struct {
	typeMeta                       `json:",inline"`
	CgroupDriver                   string       `json:"cgroupDriver"`
	Authentication                 kubeletAuthn `json:"authentication"`
	Authorization                  kubeletAuthz `json:"authorization"`
	ReadOnlyPort                   int          `json:"readOnlyPort"`
	RotateCertificates             bool         `json:"rotateCertificates"`
	ServerTLSBootstrap             bool         `json:"serverTLSBootstrap"`
	SeccompDefault                 bool         `json:"seccompDefault"`
	ProtectKernelDefaults          bool         `json:"protectKernelDefaults"`
	PodPidsLimit                   int64        `json:"podPidsLimit"`
	EventRecordQPS                 int          `json:"eventRecordQPS"`
	StreamingConnectionIdleTimeout string       `json:"streamingConnectionIdleTimeout"`
	TLSMinVersion                  string       `json:"tlsMinVersion"`
	TLSCipherSuites                []string     `json:"tlsCipherSuites"`
	// FailCgroupV1 is set (false) only for machines on a cgroup v1 host; unset, the kubelet's
	// default (true since 1.35: k8s.io/kubernetes pkg/kubelet/apis/config/v1beta1/defaults.go)
	// refuses cgroup v1.
	FailCgroupV1 *bool `json:"failCgroupV1,omitempty"`
}

type kubeletAuthn struct {
	Anonymous enabled `json:"anonymous"`
	Webhook   enabled `json:"webhook"`
}

type enabled struct {
	Enabled bool `json:"enabled"`
}

type kubeletAuthz struct {
	Mode string `json:"mode"`
}
