package cluster

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The box's machines share this host's cgroup v1 kernel; kubelet 1.35 refuses cgroup v1 unless
// failCgroupV1 is false. The lab's config does not change: no field, same kubelet hash.
func TestAllowCgroupV1SetsFailCgroupV1FalseAndRealKubeadmAcceptsIt(t *testing.T) {
	lab := testClusterConfig()
	labCfg, err := renderKubeadmConfig(lab)
	require.NoError(t, err)
	assert.NotContains(t, string(labCfg), "failCgroupV1")

	box := testClusterConfig()
	box.AllowCgroupV1 = true
	cfg, err := renderKubeadmConfig(box)
	require.NoError(t, err)
	assert.Contains(t, string(cfg), "failCgroupV1: false")
	out, err := kubeadmValidate(t, cfg)
	require.NoError(t, err, "kubeadm config validate rejected failCgroupV1:\n%s", out)
	labHash, _ := lab.kubeletSHA256()
	boxHash, _ := box.kubeletSHA256()
	assert.NotEqual(t, labHash, boxHash, "a changed kubelet config must re-apply it on the nodes")
}
