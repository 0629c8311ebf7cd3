package cluster

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/infralab/infralab/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// calico.sh runs in the overlay against a kubectl stub that behaves like the API server where it
// matters here: a CRD exists only once a manifest declaring it was applied (tigera-operator.yaml
// of v3.30+ declares none; the operator creates them only once its pod runs), `kubectl wait` on a
// missing CRD fails at once with NotFound, an Installation is refused until its CRD exists, and
// `apply -f -` with an empty stdin fails with "no objects passed to apply", as kubectl does.
const calicoKubectl = `f=${FAKE}
case "$1" in
get) exit 0 ;;
create) printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n' "$3" ;;
label) echo "kubectl label $3" >>"${f}/calls" ;;
apply)
	src="" prev=""
	for a in "$@"; do [[ "${prev}" == -f ]] && src=${a}; prev=${a}; done
	if [[ "${src}" == - ]]; then body=$(cat); else body=$(cat "${src}"); fi
	[[ -n "${body}" ]] || { echo "error: no objects passed to apply" >&2; exit 1; }
	if grep -q '^kind: Installation$' <<<"${body}"; then
		grep -q 'name: installations.operator.tigera.io' "${f}/cluster" 2>/dev/null ||
			{ echo 'error: resource mapping not found for name: "default": no matches for kind "Installation" in version "operator.tigera.io/v1"' >&2; exit 1; }
		if [[ -e "${f}/installation-fails-once" ]]; then
			rm "${f}/installation-fails-once"
			echo 'Error from server (InternalError): Internal error occurred: failed calling webhook' >&2
			exit 1
		fi
		printf '%s\n' "${body}" >"${f}/installation"
	fi
	echo "kubectl apply $(sed -n 's/^kind: //p' <<<"${body}" | sort -u | tr '\n' ' ')" >>"${f}/calls"
	printf '%s\n' "${body}" >>"${f}/cluster"
	;;
wait)
	for a in "$@"; do
		case "${a}" in
		crd/*) grep -q "name: ${a#crd/}" "${f}/cluster" 2>/dev/null ||
			{ echo "Error from server (NotFound): customresourcedefinitions.apiextensions.k8s.io \"${a#crd/}\" not found" >&2; exit 1; } ;;
		tigerastatus/*) [[ -s "${f}/installation" ]] || exit 1 ;;
		esac
	done
	;;
esac
`

// curl serves https://HOST/PATH from $FAKE/www/HOST/PATH and records the URL.
const fakeCurl = `out="" url=""
while (($#)); do
	case "$1" in -o) out=$2; shift ;; -*) ;; *) url=$1 ;; esac
	shift
done
echo "curl ${url}" >>"${FAKE}/calls"
src="${FAKE}/www/${url#https://}"
[[ -f "${src}" ]] || { echo "curl: (22) The requested URL returned error: 404" >&2; exit 22; }
cp "${src}" "${out}"
`

const (
	fakeOperatorCRDs = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: installations.operator.tigera.io\n" +
		"---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: apiservers.operator.tigera.io\n"
	// The Deployment's image line as tigera-operator.yaml of v3.31.0 has it.
	fakeOperator = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: tigera-operator\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: tigera-operator\n" +
		"spec:\n  template:\n    spec:\n      containers:\n        - name: tigera-operator\n          image: quay.io/tigera/operator:v1.40.0\n          imagePullPolicy: IfNotPresent\n"
)

func sha256Of(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

type calicoNode struct {
	*fakeNode
	env map[string]string
}

func newCalicoNode(t *testing.T) *calicoNode {
	return newCalicoNodeWith(t, map[string]string{"kubectl": calicoKubectl, "curl": fakeCurl})
}

func newCalicoNodeWith(t *testing.T, tools map[string]string) *calicoNode {
	n := newFakeNodeWith(t, tools)
	base := filepath.Join(n.fake, "www", "raw.githubusercontent.com", "projectcalico", "calico", "v3.31.0", "manifests")
	require.NoError(t, os.MkdirAll(base, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(base, "operator-crds.yaml"), []byte(fakeOperatorCRDs), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(base, "tigera-operator.yaml"), []byte(fakeOperator), 0o644))
	installation, err := renderCalicoInstallation("10.244.0.0/16", "")
	require.NoError(t, err)
	return &calicoNode{fakeNode: n, env: map[string]string{
		"PHASE": PhaseCalico, "CALICO_VERSION": "v3.31.0", "STATE_DIR": stateDir,
		"CALICO_MANIFEST_BASE_URL": DefaultCalicoManifestBaseURL, "CALICO_IMAGE_REGISTRY": "",
		"INSTALLATION_B64":       b64(string(installation)),
		"CALICO_MANIFEST_SHA256": sha256Of(fakeOperator),
		"CALICO_CRDS_SHA256":     sha256Of(fakeOperatorCRDs),
	}}
}

func (n *calicoNode) calico() (stdout, stderr string, err error) {
	n.t.Helper()
	return n.run("calico.sh", n.env, "", "mkdir -p "+stateDir) // kubeadm-init made it
}

// The CRDs come first from their own pinned manifest (tigera-operator.yaml of v3.30+ holds none),
// and the Installation is applied from a file, so a retry after a failed attempt applies it again
// instead of an empty stdin.
func TestCalicoAppliesTheCRDsFirstAndRetriesTheInstallationFromAFile(t *testing.T) {
	n := newCalicoNode(t)
	n.set("installation-fails-once", "")
	out, log, err := n.calico()
	require.NoError(t, err, log)
	assert.Equal(t, "calico v3.31.0 available\n", out)
	calls := n.calls()
	crds := strings.Index(calls, "kubectl apply CustomResourceDefinition")
	operator := strings.Index(calls, "kubectl apply Deployment Namespace")
	inst := strings.Index(calls, "kubectl apply Installation")
	require.True(t, crds >= 0 && operator >= 0 && inst >= 0, "CRDs, operator and Installation all applied:\n%s", calls)
	assert.Less(t, crds, operator, "the CRDs before the operator")
	assert.Less(t, operator, inst, "the operator before the Installation")
	assert.Contains(t, log, "attempt 1/5 failed", "the first Installation apply failed and was retried")

	want, err := renderCalicoInstallation("10.244.0.0/16", "")
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join(n.fake, "installation"))
	require.NoError(t, err)
	assert.Equal(t, strings.TrimSpace(string(want)), strings.TrimSpace(string(got)), "the retry applied the whole Installation")

	// Again: the verified files are reused, nothing is downloaded.
	_, log, err = n.calico()
	require.NoError(t, err, log)
	assert.NotContains(t, n.calls(), "curl")
}

// Both manifests are checked against their sha256, a cached copy too; a mismatch fails before
// anything is applied and removes the file, so the next run downloads it again.
func TestCalicoRefusesAManifestThatDoesNotMatchItsSHA256(t *testing.T) {
	for _, key := range []string{"CALICO_CRDS_SHA256", "CALICO_MANIFEST_SHA256"} {
		t.Run(key, func(t *testing.T) {
			n := newCalicoNode(t)
			n.env[key] = sha256Of("something else")
			_, log, err := n.calico()
			require.Error(t, err)
			assert.Contains(t, log, "does not match "+key)
			assert.NotContains(t, n.calls(), "kubectl apply", "nothing applied")
		})
	}
}

// The box's way: the real curl fetches both manifests from a mirror (a loopback HTTP server
// here, the box's 10.77.0.1 in the box) under <base>/<version>/manifests/, checks them against
// the same sha256 pins, and the operator Deployment runs the image from the image repository;
// the verified download stays byte-for-byte what was pinned, so a re-run fetches nothing and
// the check still passes.
func TestCalicoFetchesThePinnedManifestsFromAMirrorAndTheOperatorFromTheImageRepository(t *testing.T) {
	testenv.Tool(t, "curl")
	var got []string
	mux := http.NewServeMux()
	mux.HandleFunc("/mirror/calico/v3.31.0/manifests/", func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.Path)
		switch filepath.Base(r.URL.Path) {
		case "operator-crds.yaml":
			_, _ = w.Write([]byte(fakeOperatorCRDs))
		case "tigera-operator.yaml":
			_, _ = w.Write([]byte(fakeOperator))
		default:
			http.NotFound(w, r)
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	n := newCalicoNodeWith(t, map[string]string{"kubectl": calicoKubectl}) // the host's curl
	n.env["CALICO_MANIFEST_BASE_URL"] = srv.URL + "/mirror/calico"
	n.env["CALICO_IMAGE_REGISTRY"] = "10.77.0.1:5000/k8s"
	_, log, err := n.calico()
	require.NoError(t, err, log)
	assert.Equal(t, []string{"/mirror/calico/v3.31.0/manifests/operator-crds.yaml", "/mirror/calico/v3.31.0/manifests/tigera-operator.yaml"}, got)
	cluster, _ := os.ReadFile(filepath.Join(n.fake, "cluster"))
	assert.Contains(t, string(cluster), "\n          image: 10.77.0.1:5000/k8s/tigera/operator:v1.40.0\n")
	assert.NotContains(t, string(cluster), "quay.io")
	cached, ok := n.file(stateDir + "/calico-v3.31.0-tigera-operator.yaml")
	require.True(t, ok)
	assert.Equal(t, fakeOperator, cached, "the pinned bytes are kept as downloaded")

	// Again: nothing fetched, the cached files still match their pins.
	_, log, err = n.calico()
	require.NoError(t, err, log)
	assert.Len(t, got, 2)

	// A mirror that serves something else is refused before anything is applied.
	n = newCalicoNodeWith(t, map[string]string{"kubectl": calicoKubectl})
	n.env["CALICO_MANIFEST_BASE_URL"] = srv.URL + "/mirror/calico"
	n.env["CALICO_MANIFEST_SHA256"] = sha256Of("the pinned bytes")
	_, log, err = n.calico()
	require.Error(t, err)
	assert.Contains(t, log, "does not match CALICO_MANIFEST_SHA256")
	assert.NotContains(t, n.calls(), "kubectl apply")
}

// The rewrite is of exactly one image line: a manifest whose operator image is not
// quay.io/tigera/operator fails the phase instead of running upstream's image unnoticed.
func TestCalicoRefusesAnOperatorManifestItCannotPointAtTheImageRepository(t *testing.T) {
	n := newCalicoNode(t)
	other := strings.Replace(fakeOperator, "quay.io/tigera/operator", "docker.io/tigera/operator", 1)
	base := filepath.Join(n.fake, "www", "raw.githubusercontent.com", "projectcalico", "calico", "v3.31.0", "manifests")
	require.NoError(t, os.WriteFile(filepath.Join(base, "tigera-operator.yaml"), []byte(other), 0o644))
	n.env["CALICO_MANIFEST_SHA256"] = sha256Of(other)
	n.env["CALICO_IMAGE_REGISTRY"] = "10.77.0.1:5000/k8s"
	_, log, err := n.calico()
	require.Error(t, err)
	assert.Contains(t, log, "not exactly one quay.io/tigera/operator image")
	assert.NotContains(t, n.calls(), "kubectl apply Deployment")
}
