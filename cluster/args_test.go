package cluster

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidArgsPass(t *testing.T) {
	require.NoError(t, testArgs().Validate())
}

func TestValidateCollectsEveryProblemWithItsFieldPath(t *testing.T) {
	a := testArgs()
	a.ClusterName = "Lab_1"
	a.KubernetesVersion = "1.35"
	a.SSHUser = ""
	a.SSHPrivateKey = nil
	a.EncryptionKey = nil
	a.CalicoVersion = "3.30.3"
	a.CalicoManifestSHA256 = "xyz"
	a.PodCIDR = "10.96.0.0/16"
	a.ServiceCIDR = "10.96.0.0/12"
	a.ControlPlane.IP = "not-an-ip"
	a.Workers[0].Name = "Worker_1"
	a.Workers[1].IP = "10.10.10.23"
	a.PodPIDsLimit = 100
	err := a.Validate()
	require.Error(t, err)
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	want := []string{
		`cluster.clusterName: "Lab_1" is not a DNS-1123 label`,
		`cluster.kubernetesVersion: "1.35" must be x.y.z`,
		`cluster.sshUser: "" is not a valid login name`,
		`cluster.sshPrivateKey: missing`,
		`cluster.encryptionKey: missing`,
		`cluster.calicoVersion: "3.30.3" must be vX.Y.Z`,
		`cluster.calicoManifestSha256: must be 64 lower-case hex`,
		`cluster.serviceCidr: 10.96.0.0/12 overlaps podCidr 10.96.0.0/16`,
		`cluster.controlPlane.ip: "not-an-ip" is not an IPv4 address`,
		`cluster.workers[0].name: "Worker_1" is not a DNS-1123 label`,
		`cluster.workers[2].ip: 10.10.10.23 is already used by workers[1]`,
		`cluster.podPidsLimit: 100 is outside 1024-4194304`,
	}
	for _, w := range want {
		found := false
		for _, p := range ve.Problems {
			found = found || len(p) >= len(w) && p[:len(w)] == w
		}
		assert.True(t, found, "missing problem %q in\n%s", w, err)
	}
	assert.Len(t, ve.Problems, len(want), "%s", err)
}

func TestValidateRejectsHostBitsAndNodeInsideServiceCIDR(t *testing.T) {
	a := testArgs()
	a.PodCIDR = "10.244.1.0/16"
	a.Workers[0].IP = "10.96.0.5"
	err := a.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `cluster.podCidr: "10.244.1.0/16" has host bits set; use 10.244.0.0/16`)
	assert.Contains(t, err.Error(), `cluster.workers[0].ip: 10.96.0.5 lies inside serviceCidr 10.96.0.0/12`)
}
