package cluster

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	fakeOperator = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: tigera-operator\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: tigera-operator\n"
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
	n := newFakeNodeWith(t, map[string]string{"kubectl": calicoKubectl, "curl": fakeCurl})
	base := filepath.Join(n.fake, "www", "raw.githubusercontent.com", "projectcalico", "calico", "v3.31.0", "manifests")
	require.NoError(t, os.MkdirAll(base, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(base, "operator-crds.yaml"), []byte(fakeOperatorCRDs), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(base, "tigera-operator.yaml"), []byte(fakeOperator), 0o644))
	installation, err := renderCalicoInstallation("10.244.0.0/16")
	require.NoError(t, err)
	return &calicoNode{fakeNode: n, env: map[string]string{
		"PHASE": PhaseCalico, "CALICO_VERSION": "v3.31.0", "STATE_DIR": stateDir,
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

	want, err := renderCalicoInstallation("10.244.0.0/16")
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
