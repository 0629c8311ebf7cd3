package cluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/infralab/infralab/cluster/hardening"
	"github.com/infralab/infralab/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

func testClusterConfig() clusterConfig { return testArgs().clusterConfig() }

// kubeadmValidate runs the real kubeadm built by `make tools`.
func kubeadmValidate(t *testing.T, config []byte) (string, error) {
	t.Helper()
	kubeadm := testenv.Tool(t, "kubeadm")
	path := filepath.Join(t.TempDir(), "kubeadm.yaml")
	require.NoError(t, os.WriteFile(path, config, 0o600))
	out, err := exec.Command(kubeadm, "config", "validate", "--config", path).CombinedOutput()
	return string(out), err
}

func TestGeneratedInitConfigPassesRealKubeadmValidate(t *testing.T) {
	cfg, err := renderKubeadmConfig(testClusterConfig())
	require.NoError(t, err)
	out, err := kubeadmValidate(t, cfg)
	require.NoError(t, err, "kubeadm config validate rejected our config:\n%s\n---\n%s", out, cfg)
	assert.Contains(t, out, "ok")
}

func TestGeneratedJoinConfigPassesRealKubeadmValidate(t *testing.T) {
	cfg, err := renderJoinConfig(joinConfig{
		Endpoint: "10.10.10.10:6443", Token: fakeToken, CACertHash: "sha256:" + strings.Repeat("ab", 32),
		Node: Node{Name: "worker-1", IP: "10.10.10.21"},
	})
	require.NoError(t, err)
	out, err := kubeadmValidate(t, cfg)
	require.NoError(t, err, "kubeadm config validate rejected our join config:\n%s", out)
}

func TestBrokenConfigFailsRealKubeadmValidate(t *testing.T) {
	c := testClusterConfig()
	c.PodCIDR = "10.244.0.0/33"
	cfg, err := renderKubeadmConfig(c)
	require.NoError(t, err)
	out, err := kubeadmValidate(t, cfg)
	require.Error(t, err, "kubeadm accepted a pod subnet of /33:\n%s", out)
	assert.Contains(t, out, "podSubnet")

	cfg, err = renderKubeadmConfig(testClusterConfig())
	require.NoError(t, err)
	broken := strings.Replace(string(cfg), "cgroupDriver: systemd", "cgroupDriver: systemd\nnoSuchKubeletField: true", 1)
	out, err = kubeadmValidate(t, []byte(broken))
	require.Error(t, err, "kubeadm accepted an unknown kubelet field:\n%s", out)
	assert.Contains(t, out, "noSuchKubeletField")
}

func docs(t *testing.T, b []byte) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, d := range strings.Split(string(b), "\n---\n") {
		var m map[string]any
		require.NoError(t, yaml.Unmarshal([]byte(d), &m))
		out[m["kind"].(string)] = m
	}
	return out
}

func argMap(t *testing.T, comp map[string]any) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, a := range comp["extraArgs"].([]any) {
		out[a.(map[string]any)["name"].(string)] = a.(map[string]any)["value"].(string)
	}
	return out
}

func TestKubeadmConfigCarriesHardening(t *testing.T) {
	cfg, err := renderKubeadmConfig(testClusterConfig())
	require.NoError(t, err)
	d := docs(t, cfg)
	require.Len(t, d, 3)

	cc := d["ClusterConfiguration"]
	assert.Equal(t, "v1.35.4", cc["kubernetesVersion"])
	assert.Equal(t, "10.244.0.0/16", cc["networking"].(map[string]any)["podSubnet"])
	api := cc["apiServer"].(map[string]any)
	a := argMap(t, api)
	assert.Equal(t, "Node,RBAC", a["authorization-mode"])
	assert.Equal(t, "false", a["profiling"])
	assert.Equal(t, "NodeRestriction", a["enable-admission-plugins"])
	assert.Equal(t, hardening.EncryptionConfigPath, a["encryption-provider-config"])
	assert.Equal(t, hardening.AuditLogPath, a["audit-log-path"])
	assert.Equal(t, "30", a["audit-log-maxage"])
	assert.Equal(t, "10", a["audit-log-maxbackup"])
	assert.Equal(t, "100", a["audit-log-maxsize"])

	// Every file the API server is pointed at must be inside a volume mounted into its pod.
	var mounts []string
	for _, v := range api["extraVolumes"].([]any) {
		mounts = append(mounts, v.(map[string]any)["mountPath"].(string)+"/")
	}
	for _, flag := range []string{"encryption-provider-config", "audit-policy-file", "admission-control-config-file", "authentication-config", "audit-log-path"} {
		inside := false
		for _, m := range mounts {
			inside = inside || strings.HasPrefix(a[flag], m)
		}
		assert.True(t, inside, "--%s=%s is not inside a mounted volume %v", flag, a[flag], mounts)
	}

	for _, comp := range []string{"controllerManager", "scheduler"} {
		a := argMap(t, cc[comp].(map[string]any))
		assert.Equal(t, "127.0.0.1", a["bind-address"], comp)
		assert.Equal(t, "false", a["profiling"], comp)
	}
	assert.Equal(t, "true", argMap(t, cc["controllerManager"].(map[string]any))["use-service-account-credentials"])

	k := d["KubeletConfiguration"]
	assert.Equal(t, false, k["authentication"].(map[string]any)["anonymous"].(map[string]any)["enabled"])
	assert.Equal(t, true, k["authentication"].(map[string]any)["webhook"].(map[string]any)["enabled"])
	assert.Equal(t, "Webhook", k["authorization"].(map[string]any)["mode"])
	assert.Equal(t, float64(0), k["readOnlyPort"], "readOnlyPort must be stated as 0")
	assert.Equal(t, true, k["rotateCertificates"])
	assert.Equal(t, true, k["seccompDefault"])
	assert.Equal(t, true, k["protectKernelDefaults"])
	assert.Equal(t, float64(DefaultPodPIDsLimit), k["podPidsLimit"])
	assert.Equal(t, "systemd", k["cgroupDriver"])

	init := d["InitConfiguration"]
	tok := init["bootstrapTokens"].([]any)[0].(map[string]any)
	assert.NotContains(t, tok, "token", "the config file must not carry a token value")
	assert.Equal(t, initTokenTTL, tok["ttl"])
}

func TestAPIServerPatchHashFollowsHardeningFiles(t *testing.T) {
	files, err := hardeningFiles()
	require.NoError(t, err)
	a, err := renderAPIServerPatch(files)
	require.NoError(t, err)
	files[hardening.AuditPolicyPath] = append(files[hardening.AuditPolicyPath], '\n')
	b, err := renderAPIServerPatch(files)
	require.NoError(t, err)
	assert.NotEqual(t, string(a), string(b))
	assert.Contains(t, string(a), hardeningHashAnnotation)
}

func TestCalicoInstallationUsesPodCIDR(t *testing.T) {
	b, err := renderCalicoInstallation("10.42.0.0/16", "")
	require.NoError(t, err)
	d := docs(t, b)
	pool := d["Installation"]["spec"].(map[string]any)["calicoNetwork"].(map[string]any)["ipPools"].([]any)[0].(map[string]any)
	assert.Equal(t, "10.42.0.0/16", pool["cidr"])
}

// The lab deploys only the Calico components it uses (renderCalicoInstallation says why): no
// APIServer resource (no calico-apiserver), no flexvol init container, no CSI DaemonSet.
func TestCalicoInstallationDeploysOnlyWhatTheLabUses(t *testing.T) {
	b, err := renderCalicoInstallation("10.42.0.0/16", "")
	require.NoError(t, err)
	d := docs(t, b)
	assert.Len(t, d, 1, "one document")
	assert.Contains(t, d, "Installation")
	spec := d["Installation"]["spec"].(map[string]any)
	assert.Equal(t, "None", spec["flexVolumePath"])
	assert.Equal(t, "None", spec["kubeletVolumePluginPath"])
}

// One Calico network for every way the lab runs it: VXLAN on every packet and BGP off, so no
// route needs a BGP peer (the operator refuses IPIP and unencapsulated pools without BGP,
// tigera/operator v1.40.0 pkg/controller/installation/validation.go; VXLANCrossSubnet would
// route same-subnet traffic natively, which needs BGP to learn those routes).
func TestCalicoInstallationIsVXLANWithoutBGP(t *testing.T) {
	b, err := renderCalicoInstallation("10.42.0.0/16", "")
	require.NoError(t, err)
	network := docs(t, b)["Installation"]["spec"].(map[string]any)["calicoNetwork"].(map[string]any)
	assert.Equal(t, "Disabled", network["bgp"])
	pools := network["ipPools"].([]any)
	require.Len(t, pools, 1)
	assert.Equal(t, "VXLAN", pools[0].(map[string]any)["encapsulation"])
}
