package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// prepare-node.sh runs in the overlay against a fake Debian 12: dpkg-query answers from
// $FAKE/dpkg/<package> (what apt-get install and apt-mark hold write there), apt-cache answers
// from $FAKE/repo/<package> (one upstream version a line, newest first) once `apt-get update` ran,
// and a package only installs while dpkg is not marked interrupted ($FAKE/dpkg-interrupted, which
// dpkg --configure -a clears), as apt-get refuses to then.

const fakeDockerFingerprint = "9DC858229FC7DD38854AE2D88D81803C0EBFCD88"

var prepareStubs = map[string]string{
	"modprobe": "exit 0\n",
	"sysctl":   "exit 0\n",
	"swapoff":  "exit 0\n",
	"dpkg-query": `FAKE_DPKG=${FAKE}/dpkg
` + fakeDpkgQuery,
	"dpkg": `case "$*" in
--audit) [[ -e "${FAKE}/dpkg-interrupted" ]] && echo "The following packages are only half configured: containerd.io" ; exit 0 ;;
*--configure\ -a) echo "dpkg $*" >>"${FAKE}/calls"; rm -f "${FAKE}/dpkg-interrupted" ;;
*) echo "unexpected dpkg $*" >&2; exit 2 ;;
esac
`,
	"apt-get": `echo "apt-get $*" >>"${FAKE}/calls"
if [[ -e "${FAKE}/dpkg-interrupted" ]]; then
	echo "E: dpkg was interrupted, you must manually run 'dpkg --configure -a' to correct the problem."
	exit 100
fi
mkdir -p "${FAKE}/dpkg"
for a in "$@"; do
	case "${a}" in
	update) touch "${FAKE}/apt-updated" ;;
	kubelet=* | kubeadm=* | kubectl=* | containerd.io=*)
		if [[ -e "${FAKE}/apt-blocks" ]]; then # a long download, until the test lets it go on
			touch "${FAKE}/apt-waiting"
			for _ in {1..1000}; do [[ -e "${FAKE}/apt-release" ]] && break; /bin/sleep 0.01; done
		fi
		printf "status='install ok installed'\nversion='%s'\n" "${a#*=}" >"${FAKE}/dpkg/${a%%=*}" ;;
	-* | install | Dpkg::* | DPkg::* | Acquire::*) ;;
	*) printf "status='install ok installed'\nversion='1.0'\n" >"${FAKE}/dpkg/${a}" ;;
	esac
done
`,
	"apt-mark": `[[ "$1" == hold ]] || exit 2
shift
echo "apt-mark hold $*" >>"${FAKE}/calls"
for p in "$@"; do sed -i "s/^status=.*/status='hold ok installed'/" "${FAKE}/dpkg/${p}"; done
`,
	"apt-cache": `pkg=$2 suffix="-1.1"
[[ "${pkg}" == containerd.io ]] && suffix="-1~debian.12~bookworm"
[[ -e "${FAKE}/apt-updated" && -f "${FAKE}/repo/${pkg}" ]] || exit 0
case "$1" in
policy) echo "${pkg}:"; while read -r v; do echo "     ${v}${suffix} 500"; done <"${FAKE}/repo/${pkg}" ;;
madison) while read -r v; do echo " ${pkg} | ${v}${suffix} | https://example.invalid ${pkg} Packages"; done <"${FAKE}/repo/${pkg}" ;;
esac
`,
	"curl": fakeCurl,
	"gpg":  fakeGPG,
	"containerd": `case "$1" in
config) printf 'version = 3\nroot = "/var/lib/containerd"\n' ;;
--version) echo "containerd containerd.io 2.3.3" ;;
esac
`,
}

// gpg: a fake key file is "FAKEKEY <fingerprint>"; --show-keys lists it, --dearmor copies it.
const fakeGPG = `out="" file=""
while (($#)); do
	case "$1" in -o) out=$2; shift ;; --homedir) shift ;; -*) ;; *) file=$1 ;; esac
	shift
done
if [[ -n "${out}" ]]; then cp "${file}" "${out}"; exit 0; fi
read -r magic fpr <"${file}" 2>/dev/null && [[ "${magic}" == FAKEKEY ]] || exit 2
echo "pub:-:4096:1:8D81803C0EBFCD88:1487788586:::-:::scESA::::::23::0:"
echo "fpr:::::::::${fpr}:"
echo "sub:-:4096:1:7EA0A9C3F273FCD8:1487792064::::::s::::::23:"
echo "fpr:::::::::D3306A018370199E527AE7997EA0A9C3F273FCD8:"
`

// A Debian 12 node: os-release, an fstab without swap, both repositories' keys and packages.
func newPrepareNode(t *testing.T, tools map[string]string) *fakeNode {
	t.Helper()
	stubs := map[string]string{}
	for k, v := range prepareStubs {
		stubs[k] = v
	}
	for k, v := range tools {
		stubs[k] = v
	}
	n := newFakeNodeWith(t, stubs)
	www := filepath.Join(n.fake, "www")
	for path, body := range map[string]string{
		"download.docker.com/linux/debian/gpg":            "FAKEKEY " + fakeDockerFingerprint + "\n",
		"pkgs.k8s.io/core:/stable:/v1.35/deb/Release.key": "FAKEKEY 1111111111111111111111111111111111111111\n",
	} {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(www, path)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(www, path), []byte(body), 0o644))
	}
	for _, d := range []string{"repo", "dpkg"} {
		require.NoError(t, os.MkdirAll(filepath.Join(n.fake, d), 0o755))
	}
	n.set("repo/containerd.io", "2.3.4\n2.3.3\n2.2.5")
	n.set("repo/kubeadm", "1.35.5\n1.35.4\n1.35.3")
	n.set("repo/containerd", "1.6.20") // Debian's own
	// Tools that are already on a cloud image.
	for _, p := range []string{"ca-certificates", "curl", "gpg"} {
		n.set("dpkg/"+p, pkg("install ok installed", "1.0"))
	}
	return n
}

const debian12 = `rm -f /etc/os-release
printf 'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n' >/etc/os-release
printf 'UUID=1 / ext4 defaults 0 1\n' >/etc/fstab
`

func (n *fakeNode) prepare(setup string) (stdout, stderr string, err error) {
	n.t.Helper()
	return n.run("prepare-node.sh", prepareEnv(), "", debian12+setup)
}

func prepareEnv() map[string]string {
	return map[string]string{
		"PHASE": PhasePrepareNode, "NODE_NAME": "worker-1", "KUBERNETES_VERSION": "1.35.4",
		"CONTAINERD_VERSION": DefaultContainerdVersion, "SANDBOX_IMAGE": sandboxImage,
	}
}

// containerd comes from Docker's signed repository at exactly the pinned version, held; its
// config sets the runc SystemdCgroup option and the sandbox image by key; a second run changes
// nothing.
func TestPrepareNodeInstallsThePinnedContainerdAndConfiguresItByKey(t *testing.T) {
	n := newPrepareNode(t, nil)
	out, log, err := n.prepare("")
	require.NoError(t, err, log)
	assert.Equal(t, "worker-1 prepared for Kubernetes 1.35.4 (containerd 2.3.3)\n", out)
	calls := n.calls()
	assert.Contains(t, calls, "containerd.io=2.3.3-1~debian.12~bookworm", "the pinned version, not the newest")
	assert.Contains(t, calls, "-o Dpkg::Options::=--force-confold", "our config.toml survives a package upgrade")
	assert.Contains(t, calls, "apt-mark hold containerd.io\n")
	assert.NotRegexp(t, `install [^\n]* containerd( |\n)`, calls, "never Debian's containerd 1.6")
	assert.Contains(t, calls, "kubeadm=1.35.4-1.1")

	list, _ := n.file("/etc/apt/sources.list.d/docker.list")
	assert.Equal(t, "deb [signed-by=/etc/apt/keyrings/docker.gpg] https://download.docker.com/linux/debian bookworm stable\n", list)
	cfg, _ := n.file("/etc/containerd/config.toml")
	assert.Equal(t, `# Written by infralab (prepare-node); containerd merges it with its defaults.
version = 3

[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = 'registry.k8s.io/pause:3.10.1'

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
  SystemdCgroup = true
`, cfg)
	assert.Contains(t, calls, "systemctl restart containerd")

	_, log, err = n.prepare("")
	require.NoError(t, err, log)
	assert.NotContains(t, n.calls(), "apt-get", "a prepared node installs nothing")
	assert.NotContains(t, n.calls(), "restart", "nor restarts containerd")
}

// The repository key is trusted only with Docker's fingerprint.
func TestPrepareNodeRefusesARepositoryKeyWithAnotherFingerprint(t *testing.T) {
	n := newPrepareNode(t, nil)
	n.set("www/download.docker.com/linux/debian/gpg", "FAKEKEY 0000000000000000000000000000000000000000")
	_, log, err := n.prepare("")
	require.Error(t, err)
	assert.Contains(t, log, "has fingerprint 0000000000000000000000000000000000000000, not "+fakeDockerFingerprint+": refusing to trust it")
	_, ok := n.file("/etc/apt/keyrings/docker.gpg")
	assert.False(t, ok)
	assert.NotContains(t, n.calls(), "containerd.io")
}

// A version Docker's repository does not have fails with the key to change.
func TestPrepareNodeNamesTheKeyWhenTheContainerdVersionIsMissing(t *testing.T) {
	n := newPrepareNode(t, nil)
	n.set("repo/containerd.io", "2.2.5")
	_, log, err := n.prepare("")
	require.Error(t, err)
	assert.Contains(t, log, "download.docker.com has no containerd.io 2.3.3 for debian bookworm; set kubernetes.containerdVersion")
}

// Only the supported images; anything else stops before a change.
func TestPrepareNodeRefusesAnUnsupportedOS(t *testing.T) {
	n := newPrepareNode(t, nil)
	_, log, err := n.run("prepare-node.sh", prepareEnv(), "", `rm -f /etc/os-release
printf 'ID=debian\nVERSION_ID="11"\nVERSION_CODENAME=bullseye\n' >/etc/os-release
`)
	require.Error(t, err)
	assert.Contains(t, log, "worker-1 runs debian 11; supported images are Debian 12, Debian 13 and Ubuntu 24.04")
	assert.Empty(t, n.calls())
}

// A session cut during an install left dpkg interrupted; the next run finishes it first.
func TestPrepareNodeFinishesAnInterruptedDpkgFirst(t *testing.T) {
	n := newPrepareNode(t, nil)
	n.set("dpkg-interrupted", "")
	_, log, err := n.prepare("")
	require.NoError(t, err, log)
	calls := n.calls()
	assert.Contains(t, calls, "dpkg --force-confold --configure -a\n")
	assert.Less(t, strings.Index(calls, "dpkg --force-confold --configure -a"), strings.Index(calls, "apt-get"), "before any apt-get")
}

// `apt-cache madison | awk '... exit'` died of SIGPIPE once awk had its line and apt-cache still
// had output to write; with pipefail that ended the phase without a word. A long listing (more
// than a pipe buffer) makes that certain.
func TestPrepareNodeReadsALongPackageListing(t *testing.T) {
	n := newPrepareNode(t, nil)
	var versions strings.Builder
	versions.WriteString("1.35.4\n")
	for i := 3; i > 0; i-- {
		fmt.Fprintf(&versions, "1.35.%d\n", i)
	}
	for i := 0; i < 5000; i++ {
		fmt.Fprintf(&versions, "1.34.%d\n", i)
	}
	n.set("repo/kubeadm", versions.String())
	_, log, err := n.prepare("")
	require.NoError(t, err, "a long listing must not end the phase:\n%s", log)
	assert.Contains(t, n.calls(), "kubeadm=1.35.4-1.1")
}

// The SSH session is cut while apt installs. The phase runs as a unit of its own, so apt goes on
// to the end; the next run re-attaches to it (shows its output, waits for it), then runs itself
// and finds the node prepared.
func TestPrepareNodeCutOffMidwayFinishesAndIsReattached(t *testing.T) {
	n := newPrepareNode(t, nil)
	n.set("apt-blocks", "")
	first := n.start("prepare-node.sh", prepareEnv(), "", debian12)
	waitFor(t, filepath.Join(n.fake, "apt-waiting"))
	first.cut()

	second := n.start("prepare-node.sh", prepareEnv(), "", debian12)
	// The second run found the first one's unit still running: let apt finish now.
	waitFor(t, filepath.Join(n.fake, "saw-infralab-prepare-node-active"))
	n.set("apt-release", "")
	out, log, err := second.wait()
	require.NoError(t, err, log)
	assert.Equal(t, "worker-1 prepared for Kubernetes 1.35.4 (containerd 2.3.3)\n", out)
	assert.Contains(t, log, "infralab-prepare-node from an earlier run is still running (that SSH session was cut); re-attaching")
	assert.Contains(t, log, "installing containerd.io 2.3.3-1~debian.12~bookworm", "the earlier run's log is shown")
	assert.Contains(t, log, "the earlier run ended (exit 0)")
	assert.Contains(t, log, "kubelet/kubeadm/kubectl 1.35.4 already installed and held", "its own pass found the work done")
	started, _ := os.ReadFile(filepath.Join(n.fake, "units-started"))
	assert.Equal(t, "infralab-prepare-node\ninfralab-prepare-node\n", string(started), "each run ran as the unit")
	_, interrupted := os.Stat(filepath.Join(n.fake, "dpkg-interrupted"))
	assert.True(t, os.IsNotExist(interrupted))
}

func waitFor(t *testing.T, path string) {
	t.Helper()
	for i := 0; ; i++ {
		if _, err := os.Stat(path); err == nil {
			return
		}
		require.Less(t, i, 500, "%s never appeared", path)
		time.Sleep(20 * time.Millisecond)
	}
}
