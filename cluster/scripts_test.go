package cluster

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/infralab/infralab/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Shellchecks every script file as committed, and every script as it is actually sent to a node
// (lib.sh in front), using the repo's .shellcheckrc.
func TestScriptsPassShellcheck(t *testing.T) {
	shellcheck := testenv.Tool(t, "shellcheck")
	// shellcheck 0.9 has no --rcfile: it looks for .shellcheckrc next to each file and upwards.
	dir := t.TempDir()
	rc, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), ".shellcheckrc"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".shellcheckrc"), rc, 0o600))
	entries, err := fs.ReadDir(Scripts(), ".")
	require.NoError(t, err)
	require.NotEmpty(t, entries)
	var files []string
	for _, e := range entries {
		body, err := fs.ReadFile(Scripts(), e.Name())
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(string(body), "#!/usr/bin/env bash\n"), "%s: no bash shebang", e.Name())
		assert.Contains(t, string(body), "set -euo pipefail", e.Name())
		files = append(files, filepath.Join(testenv.RepoRoot(), "cluster", "scripts", e.Name()))
		if e.Name() == libScript {
			continue
		}
		full, err := loadScript(Scripts(), e.Name())
		require.NoError(t, err)
		p := filepath.Join(dir, "assembled-"+e.Name())
		require.NoError(t, os.WriteFile(p, []byte(full), 0o600))
		files = append(files, p)
	}
	cmd := exec.Command(shellcheck, append([]string{"--shell=bash"}, files...)...)
	out, err := cmd.CombinedOutput()
	assert.NoError(t, err, "shellcheck:\n%s", out)
}

// A script must never put a stdin secret on stdout or stderr: no `set -x`, no echo of the stdin file.
func TestScriptsNeverTraceOrEchoStdin(t *testing.T) {
	entries, err := fs.ReadDir(Scripts(), ".")
	require.NoError(t, err)
	for _, e := range entries {
		body, err := fs.ReadFile(Scripts(), e.Name())
		require.NoError(t, err)
		for _, bad := range []string{"set -x", "set -o xtrace", "bash -x"} {
			assert.NotContains(t, string(body), bad, e.Name())
		}
	}
}

func TestLayerImportsNoOtherLayer(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-test", "github.com/infralab/infralab/cluster/...").Output()
	require.NoError(t, err)
	for _, pkg := range strings.Fields(string(out)) {
		for _, forbidden := range []string{"/stacks", "/infra", "/apps", "/policy", "k8s.io/kubernetes"} {
			if strings.HasPrefix(pkg, "github.com/infralab/infralab"+forbidden) || strings.HasPrefix(pkg, forbidden[1:]+"/") {
				t.Errorf("cluster depends on %s", pkg)
			}
		}
	}
}

// fakeTools writes executable stubs into a fresh directory, to put in front of PATH.
func fakeTools(t *testing.T, tools map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range tools {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte("#!/usr/bin/env bash\n"+body), 0o755))
	}
	return dir
}

// fakeDpkgQuery answers `dpkg-query -W -f=FORMAT PKG` from the files in $FAKE_DPKG: one file per
// installed package, holding `status=...` and `version=...`; ${Status} and ${Version} in FORMAT
// are replaced as dpkg-query does. A package without a file is not installed.
const fakeDpkgQuery = `fmt="" pkg=""
for a in "$@"; do
	case "$a" in -f=*) fmt=${a#-f=} ;; -*) ;; *) pkg=$a ;; esac
done
[[ -f "${FAKE_DPKG}/${pkg}" ]] || { echo "dpkg-query: no packages found matching ${pkg}" >&2; exit 1; }
# shellcheck disable=SC1090
source "${FAKE_DPKG}/${pkg}"
out=${fmt//'${Status}'/${status}}
printf '%s' "${out//'${Version}'/${version}}"
`

// libCall runs FUNC from lib.sh as shipped, with dpkg-query stubbed, kubelet_conf pointing at a
// file in a temp dir (present when joined), the given packages installed, and the given env.
func libCall(t *testing.T, fn string, joined bool, pkgs map[string]string, env ...string) (string, error) {
	t.Helper()
	lib, err := fs.ReadFile(Scripts(), libScript)
	require.NoError(t, err)
	dir := t.TempDir()
	libPath := filepath.Join(dir, "lib.sh")
	require.NoError(t, os.WriteFile(libPath, lib, 0o600))
	kubeletConf := filepath.Join(dir, "kubelet.conf")
	if joined {
		require.NoError(t, os.WriteFile(kubeletConf, []byte("apiVersion: v1\n"), 0o600))
	}
	dpkg := filepath.Join(dir, "dpkg")
	require.NoError(t, os.Mkdir(dpkg, 0o700))
	for p, data := range pkgs {
		require.NoError(t, os.WriteFile(filepath.Join(dpkg, p), []byte(data), 0o600))
	}
	bin := fakeTools(t, map[string]string{"dpkg-query": fakeDpkgQuery})
	// lib.sh sets kubelet_conf unconditionally; only a caller that sources it can point it elsewhere.
	cmd := exec.Command("bash", "-c", `source "$1"; kubelet_conf=$2; `+fn, "test", libPath, kubeletConf)
	cmd.Env = append([]string{"PATH=" + bin + ":/usr/bin:/bin", "FAKE_DPKG=" + dpkg, "PHASE=test"}, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func pkg(status, version string) string {
	return "status='" + status + "'\nversion='" + version + "'\n"
}

// refuse_version_change runs for real against a stubbed dpkg-query: it stops a joined node whose
// kubelet is another version, with the message that says what to do, and lets everything else pass.
func TestRefuseVersionChangeRefusesOnlyAChangeOnAJoinedNode(t *testing.T) {
	installed := map[string]string{"kubelet": pkg("hold ok installed", "1.35.4-1.1")}

	out, err := libCall(t, "refuse_version_change", true, installed, "KUBERNETES_VERSION=1.35.5")
	require.Error(t, err, "a joined 1.35.4 node must refuse 1.35.5:\n%s", out)
	assert.Contains(t, out, "[test] ERROR: node runs Kubernetes 1.35.4 but 1.35.5 was requested")
	// kubeadm-init and join-worker keep the guard; they run after the upgrade phases, so it
	// stops them only when those did not finish.
	assert.Contains(t, out, "the upgrade phases (upgrade-control-plane, upgrade-node) have not finished on it; pulumi up again resumes them")

	out, err = libCall(t, "refuse_version_change", true, installed, "KUBERNETES_VERSION=1.35.4")
	assert.NoError(t, err, "the same version must pass:\n%s", out)
	assert.Empty(t, out)

	// Not part of a cluster yet (no kubelet.conf), or no kubelet installed: prepare-node installs
	// the requested version, nothing to refuse.
	out, err = libCall(t, "refuse_version_change", false, installed, "KUBERNETES_VERSION=1.35.5")
	assert.NoError(t, err, "a node outside a cluster may change version:\n%s", out)
	out, err = libCall(t, "refuse_version_change", true, nil, "KUBERNETES_VERSION=1.35.5")
	assert.NoError(t, err, "a node without a kubelet package has nothing to refuse:\n%s", out)
}

// prepare-node skips the install only when kubelet, kubeadm and kubectl are all at the requested
// version and all held.
func TestK8sPackagesReadyNeedsAllThreeAtTheVersionAndHeld(t *testing.T) {
	ready := func() map[string]string {
		return map[string]string{
			"kubelet": pkg("hold ok installed", "1.35.4-1.1"),
			"kubeadm": pkg("hold ok installed", "1.35.4-1.1"),
			"kubectl": pkg("hold ok installed", "1.35.4-1.1"),
		}
	}
	out, err := libCall(t, "k8s_packages_ready", false, ready(), "KUBERNETES_VERSION=1.35.4")
	assert.NoError(t, err, "all three installed and held:\n%s", out)

	for name, change := range map[string]func(map[string]string){
		"kubectl another version": func(p map[string]string) { p["kubectl"] = pkg("hold ok installed", "1.35.3-1.1") },
		"kubeadm not held":        func(p map[string]string) { p["kubeadm"] = pkg("install ok installed", "1.35.4-1.1") },
		"kubectl not held":        func(p map[string]string) { p["kubectl"] = pkg("install ok installed", "1.35.4-1.1") },
		"kubectl removed":         func(p map[string]string) { p["kubectl"] = pkg("deinstall ok config-files", "1.35.4-1.1") },
		"kubectl missing":         func(p map[string]string) { delete(p, "kubectl") },
		"version prefix only":     func(p map[string]string) { p["kubelet"] = pkg("hold ok installed", "1.35.40-1.1") },
	} {
		p := ready()
		change(p)
		out, err := libCall(t, "k8s_packages_ready", false, p, "KUBERNETES_VERSION=1.35.4")
		assert.Error(t, err, "%s must not count as ready:\n%s", name, out)
	}
}

// delete-join-token.sh as sent to the node, against stubbed kubectl/kubeadm: deleting a token that
// is already gone succeeds, other failures fail without echoing the token ID.
func TestDeleteJoinTokenScriptIsIdempotent(t *testing.T) {
	script, err := loadScript(Scripts(), "delete-join-token.sh")
	require.NoError(t, err)
	bin := fakeTools(t, map[string]string{
		"kubectl": "exit 0\n",
		"kubeadm": `[[ "$1 $2 $3" == "token delete abcdef" ]] || { echo "unexpected: $*" >&2; exit 2; }
case "${FAKE_KUBEADM}" in
ok) echo "bootstrap token \"abcdef\" deleted" ;;
gone) echo "failed to delete bootstrap token \"abcdef\": secrets \"bootstrap-token-abcdef\" not found" >&2; exit 1 ;;
*) echo "failed to delete bootstrap token \"abcdef\": connection refused" >&2; exit 1 ;;
esac
`,
	})
	runScript := func(stdin, mode string) (string, string, error) {
		cmd := exec.Command("bash", "-c", script, PhaseDeleteJoinToken)
		cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "PHASE=" + PhaseDeleteJoinToken, "FAKE_KUBEADM=" + mode}
		cmd.Stdin = strings.NewReader(stdin)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}

	out, log, err := runScript("abcdef", "ok")
	require.NoError(t, err, log)
	assert.Equal(t, "join token deleted\n", out)
	assert.Contains(t, log, "join token deleted")

	out, log, err = runScript("abcdef", "gone")
	require.NoError(t, err, "an already deleted token must count as deleted:\n%s", log)
	assert.Equal(t, "join token deleted\n", out)
	assert.Contains(t, log, "already deleted")

	_, log, err = runScript("abcdef", "down")
	require.Error(t, err)
	assert.Contains(t, log, "kubeadm token delete failed")
	assert.Contains(t, log, "connection refused")
	assert.NotContains(t, log, "abcdef", "the token ID stays out of the log")

	_, log, err = runScript("", "ok")
	require.Error(t, err)
	assert.Contains(t, log, "no bootstrap token ID on stdin")
}

// write_if_changed tells "changed", "already there" and "could not write" apart, and the
// `|| [[ $? -eq 1 ]]` idiom the scripts use stops a phase on the last one instead of passing a
// config that never reached the disk as unchanged.
func TestWriteIfChangedFailsLoudlyOnAnUnwritablePath(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "kubeadm.yaml")
	status := `rc=0; printf %s "$DATA" | write_if_changed "$TARGET" 0600 || rc=$?; echo "rc=$rc"`

	out, err := libCall(t, status, false, nil, "TARGET="+target, "DATA=a")
	require.NoError(t, err, out)
	assert.Equal(t, "rc=0\n", out, "a new file is a change")
	out, _ = libCall(t, status, false, nil, "TARGET="+target, "DATA=a")
	assert.Equal(t, "rc=1\n", out, "the same content is no change")
	out, _ = libCall(t, status, false, nil, "TARGET="+target, "DATA=b")
	assert.Equal(t, "rc=0\n", out, "new content is a change")
	got, err := os.ReadFile(target)
	require.NoError(t, err)
	assert.Equal(t, "b", string(got))

	missing := filepath.Join(dir, "no-such-dir", "kubeadm.yaml")
	out, _ = libCall(t, status, false, nil, "TARGET="+missing, "DATA=a")
	assert.Contains(t, out, "rc=2", "a path that cannot be written is an error, not \"unchanged\"")
	assert.Contains(t, out, "cannot create a file next to "+missing)

	out, err = libCall(t, `printf a | write_if_changed "$TARGET" 0600 || [[ $? -eq 1 ]]; echo carried on`, false, nil, "TARGET="+missing)
	assert.Error(t, err, "the idiom must stop the script:\n%s", out)
	assert.NotContains(t, out, "carried on")
}
