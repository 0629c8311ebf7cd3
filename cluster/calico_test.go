package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/infralab/infralab/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// A version with pinned manifests needs no sha256 in the stack config: calico.sh checks both
// files against the pins; a configured sha256 wins; an unknown version without one has none.
func TestCalicoCommandChecksThePinnedManifests(t *testing.T) {
	create := func(a *KubeadmArgs) string {
		return run(t, a, Scripts()).m.get(t, "lab-calico").args.Inputs["create"].StringValue()
	}
	pin := calicoPins[DefaultCalicoVersion]
	cmd := create(testArgs())
	assert.Contains(t, cmd, "CALICO_MANIFEST_SHA256="+shellQuote(pin.Operator))
	assert.Contains(t, cmd, "CALICO_CRDS_SHA256="+shellQuote(pin.CRDs))
	assert.True(t, CalicoManifestsPinned(DefaultCalicoVersion, "", ""))

	a := testArgs()
	a.CalicoManifestSHA256 = strings.Repeat("a", 64)
	assert.Contains(t, create(a), "CALICO_MANIFEST_SHA256="+shellQuote(strings.Repeat("a", 64)), "the stack's sha256 wins")

	a = testArgs()
	a.CalicoVersion = "v3.31.99"
	cmd = create(a)
	assert.Contains(t, cmd, "CALICO_CRDS_SHA256='' ")
	assert.False(t, CalicoManifestsPinned("v3.31.99", "", ""))
}

// One Calico pin: hack/versions.env (what a Calico built from source here uses), the Go default
// with its manifest sha256, and the lab stack all name the same release.
func TestCalicoPinIsTheSameEverywhere(t *testing.T) {
	env := testenv.PinnedVersions(t)
	assert.Equal(t, DefaultCalicoVersion, env["CALICO_VERSION"])
	pin, ok := calicoPins[env["CALICO_VERSION"]]
	require.True(t, ok, "the pinned version has pinned manifests")
	assert.Equal(t, pin.Operator, env["CALICO_OPERATOR_MANIFEST_SHA256"])
	assert.Equal(t, pin.CRDs, env["CALICO_CRDS_MANIFEST_SHA256"])

	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "stacks", "Pulumi.lab.yaml"))
	require.NoError(t, err)
	var lab struct {
		Config map[string]any `json:"config"`
	}
	require.NoError(t, yaml.Unmarshal(b, &lab))
	k8s := lab.Config["infralab:kubernetes"].(map[string]any)
	assert.Equal(t, DefaultCalicoVersion, k8s["calicoVersion"])
}

func TestCalicoSHA256sAreValidated(t *testing.T) {
	a := testArgs()
	a.CalicoCRDsSHA256 = "abc"
	a.CalicoManifestSHA256 = "ABC"
	err := a.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cluster.calicoCrdsSha256: must be 64 lower-case hex characters or empty")
	assert.Contains(t, err.Error(), "cluster.calicoManifestSha256: must be 64 lower-case hex characters or empty")
}
