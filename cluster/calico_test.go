package cluster

import (
	"encoding/base64"
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

// The lab pulls Calico from upstream; with an image repository (the box, a restricted network)
// every Calico image and the operator's own come from it, at upstream's paths below it: the
// Installation's spec.registry is "<repository>/" (tigera/operator v1.40.0
// pkg/components/references.go GetReference: <registry>/<image>:<version>, the registry given a
// trailing slash as the CRD's description asks), and calico.sh rewrites the operator
// Deployment's image to <repository>/tigera/operator:<tag>.
func TestCalicoImagesFollowTheImageRepository(t *testing.T) {
	spec := func(b []byte) map[string]any {
		return docs(t, b)["Installation"]["spec"].(map[string]any)
	}
	up, err := renderCalicoInstallation(testArgs().PodCIDR, "")
	require.NoError(t, err)
	assert.NotContains(t, spec(up), "registry", "upstream: the operator's default registries")
	create := run(t, testArgs(), Scripts()).m.get(t, "lab-calico").args.Inputs["create"].StringValue()
	assert.Contains(t, create, "CALICO_IMAGE_REGISTRY='' ")
	assert.Contains(t, create, "INSTALLATION_B64="+shellQuote(base64.StdEncoding.EncodeToString(up)))

	a := testArgs()
	a.ImageRepository = "10.77.0.1:5000/k8s"
	box, err := renderCalicoInstallation(a.PodCIDR, a.ImageRepository)
	require.NoError(t, err)
	assert.Equal(t, "10.77.0.1:5000/k8s/", spec(box)["registry"])
	assert.NotContains(t, spec(box), "imagePath", "upstream's paths (calico/node) below the repository")
	create = run(t, a, Scripts()).m.get(t, "lab-calico").args.Inputs["create"].StringValue()
	assert.Contains(t, create, "CALICO_IMAGE_REGISTRY='10.77.0.1:5000/k8s' ")
	assert.Contains(t, create, "INSTALLATION_B64="+shellQuote(base64.StdEncoding.EncodeToString(box)))
}

// Where calico.sh downloads the manifests: raw.githubusercontent.com by default, a mirror when
// configured (the box's HTTP server); the same sha256 pins either way.
func TestCalicoManifestBaseURL(t *testing.T) {
	create := func(a *KubeadmArgs) string {
		return run(t, a, Scripts()).m.get(t, "lab-calico").args.Inputs["create"].StringValue()
	}
	assert.Contains(t, create(testArgs()), "CALICO_MANIFEST_BASE_URL="+shellQuote(DefaultCalicoManifestBaseURL)+" ")
	a := testArgs()
	a.CalicoManifestBaseURL = "http://10.77.0.1:8080/calico"
	cmd := create(a)
	assert.Contains(t, cmd, "CALICO_MANIFEST_BASE_URL='http://10.77.0.1:8080/calico' ")
	assert.Contains(t, cmd, "CALICO_MANIFEST_SHA256="+shellQuote(calicoPins[DefaultCalicoVersion].Operator), "a mirror is checked against the same pins")
}

func TestCalicoManifestBaseURLIsValidated(t *testing.T) {
	for url, want := range map[string]string{
		"ftp://mirror.example/calico":           "must be an http:// or https:// URL",
		"https://mirror.example/calico/":        "without a trailing slash",
		"https://mirror.example/calico?x=1":     "without a query or fragment",
		"https://user:pw@mirror.example/calico": "without user information",
		"https:///calico":                       "has no host",
		"mirror.example/calico":                 "must be an http:// or https:// URL",
	} {
		a := testArgs()
		a.CalicoManifestBaseURL = url
		err := a.Validate()
		require.Error(t, err, url)
		assert.Contains(t, err.Error(), "cluster.calicoManifestBaseUrl: ", url)
		assert.Contains(t, err.Error(), want, url)
		assert.NotContains(t, err.Error(), "pw@", "no credentials echoed")
	}
	// Plain HTTP only when both files are checked against a sha256: nothing else would notice a
	// changed download, and the manifests run as cluster-admin.
	a := testArgs()
	a.CalicoVersion = "v3.31.99"
	a.CalicoManifestBaseURL = "http://10.77.0.1:8080/calico"
	err := a.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cluster.calicoManifestBaseUrl: plain http:// needs both manifests pinned by sha256")
	a.CalicoManifestSHA256, a.CalicoCRDsSHA256 = strings.Repeat("a", 64), strings.Repeat("b", 64)
	require.NoError(t, a.Validate())
	a = testArgs()
	a.CalicoManifestBaseURL = "http://10.77.0.1:8080/calico"
	require.NoError(t, a.Validate(), "v3.31.0 is pinned")
}
