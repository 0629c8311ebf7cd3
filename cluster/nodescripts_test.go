package cluster

import (
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/infralab/infralab/cluster/hardening"
	"github.com/infralab/infralab/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Phase scripts run as shipped (lib.sh in front) inside a private mount namespace whose /etc,
// /var/lib and /var/log are overlays: a script writes /etc/kubernetes, /var/lib/kubelet and
// /var/log/infralab for real, and none of it reaches the machine. kubeadm, kubectl, systemctl,
// dpkg-query and sleep are stubs that record their calls; the overlays' upper dirs keep the
// node's state from one run to the next.

const (
	fakeKubeletHash = "1111111111111111111111111111111111111111111111111111111111111111"
	joinConfigStdin = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\n"
)

// overlaid are the directories a script may write; the test's temp dir must lie elsewhere.
var overlaid = []string{"/etc", "/var/lib", "/var/log"}

type fakeNode struct {
	t   *testing.T
	dir string // overlay upper dirs and staged scripts
	// login is the SSH user's home, the working directory the command runs in (sshd starts
	// the session there, and sudo keeps it).
	login string
	fake  string // stub state: calls, kubelet, after-restart, join, fail-<kubeadm init phase>
	bin   string
	nsPID int // the process holding the node's mount namespace
}

func newFakeNode(t *testing.T) *fakeNode {
	t.Helper()
	return newFakeNodeWith(t, nil)
}

// newFakeNodeWith is newFakeNode with some stubs replaced or added.
func newFakeNodeWith(t *testing.T, tools map[string]string) *fakeNode {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.Tool(t, "unshare")
	dir := t.TempDir()
	for _, p := range overlaid {
		if strings.HasPrefix(dir, p+"/") {
			t.Skipf("the temp dir %s lies under %s, which the test overlays", dir, p)
		}
	}
	n := &fakeNode{t: t, dir: dir, fake: filepath.Join(dir, "fake"), login: filepath.Join(dir, "home-infralab")}
	require.NoError(t, os.Mkdir(n.fake, 0o700))
	require.NoError(t, os.Mkdir(n.login, 0o755))
	stubs := map[string]string{
		"sleep":      "exit 0\n",
		"dpkg-query": "exit 1\n", // no kubelet package: refuse_version_change has nothing to compare
		// The API server is ready and has the kubeadm-config ConfigMap. Like the real kubectl
		// (cli-runtime genericclioptions.getDefaultCacheDir: $HOME/.kube/cache, and client-go's
		// homedir.HomeDir is just $HOME on Linux), it writes its discovery cache under $HOME,
		// relative to the working directory when HOME is unset.
		// `get nodes -l node-role.kubernetes.io/control-plane` finds cp-1 unless $FAKE/node-unmarked.
		"kubectl": `mkdir -p "${HOME:-.}/.kube/cache" && echo "${HOME:-}" >"${FAKE}/kubectl-home"
[[ "$1 $2" == "get nodes" && ! -e "${FAKE}/node-unmarked" ]] && echo node/cp-1
exit 0
`,
		// The running kube-apiserver container; created in 2096 unless a test says otherwise.
		"crictl":      `printf '{"containers": [{"createdAt": "%s"}]}\n' "$(cat "${FAKE}/apiserver-created" 2>/dev/null || echo 4000000000000000000)"` + "\n",
		"systemctl":   fakeSystemctl,
		"systemd-run": fakeSystemdRun,
		"kubeadm": `f=${FAKE}
echo "kubeadm $*" >>"${f}/calls"
case "$1" in
init)
	[[ "$2" == phase && -e "${f}/fail-$3" ]] && { echo "error execution phase $3: boom"; exit 1; }
	if [[ "$2" == --config ]]; then # a whole init: everything up to upload-config, as kubeadm orders it
		mkdir -p /etc/kubernetes/manifests /var/lib/kubelet
		echo admin >/etc/kubernetes/admin.conf
		echo kubeconfig >/etc/kubernetes/kubelet.conf
		echo v1 >/etc/kubernetes/manifests/kube-apiserver.yaml
		echo config >/var/lib/kubelet/config.yaml
		# certs phase: certificates 0644, keys 0600 (client-go util/cert WriteCert, keyutil WriteKey).
		mkdir -p /etc/kubernetes/pki/etcd
		for c in ca apiserver front-proxy-ca etcd/ca etcd/server; do
			(umask 022 && echo cert >"/etc/kubernetes/pki/${c}.crt")
			(umask 077 && echo key >"/etc/kubernetes/pki/${c}.key")
		done
		if [[ -e "${f}/init-dies-after-upload-config" ]]; then
			echo "error execution phase mark-control-plane: timed out waiting for the condition"
			exit 1
		fi
	fi
	[[ "$2 $3" == "phase kubelet-start" ]] && mkdir -p /var/lib/kubelet && echo config >/var/lib/kubelet/config.yaml
	if [[ "$2 $3" == "phase control-plane" ]]; then
		mkdir -p /etc/kubernetes/manifests
		cat "${f}/manifest" >/etc/kubernetes/manifests/kube-apiserver.yaml 2>/dev/null || echo v1 >/etc/kubernetes/manifests/kube-apiserver.yaml
	fi
	exit 0
	;;
join)
	grep -q 'kind: JoinConfiguration' "$3" || { echo "no JoinConfiguration in $3" >&2; exit 3; }
	case "$(cat "${f}/join" 2>/dev/null || echo ok)" in
	ok)
		mkdir -p /etc/kubernetes /var/lib/kubelet
		echo kubeconfig >/etc/kubernetes/kubelet.conf
		echo config >/var/lib/kubelet/config.yaml
		echo active >"${f}/kubelet"
		;;
	expired)
		echo "error execution phase preflight: couldn't validate the identity of the API Server: could not find a JWS signature in the cluster-info ConfigMap for token ID \"abcdef\""
		exit 1
		;;
	leak) echo "error execution phase preflight: bad token abcdef.0123456789abcdef"; exit 1 ;;
	*) echo "error execution phase kubelet-start: timed out"; exit 1 ;;
	esac
	;;
reset) # what kubeadm reset removes; it leaves other files in /etc/kubernetes (our STATE_DIR) alone
	rm -rf /etc/kubernetes/manifests /etc/kubernetes/pki /etc/kubernetes/*.conf /var/lib/kubelet/* ;;
upgrade) mkdir -p /var/lib/kubelet && echo new-config >/var/lib/kubelet/config.yaml ;;
token)
	case "$2" in
	list) echo "TOKEN   TTL   EXPIRES   USAGES   DESCRIPTION   EXTRA GROUPS" ;;
	create) cat "${f}/token" ;;
	delete) echo "bootstrap token \"$3\" deleted" ;;
	esac
	;;
esac
`,
	}
	for name, body := range tools {
		stubs[name] = body
	}
	n.bin = fakeTools(t, stubs)
	n.startNamespace()
	return n
}

// The node's systemd, as far as the phases use it. Transient units (detach_phase) are started by
// the fake systemd in startNamespace, whose child they are, so they outlive the session that
// asked for them and are reaped when they end; $FAKE/unit-<name>.pid is their main PID.
const (
	fakeSystemctl = `f=${FAKE}
unit=${*: -1}
unit_pid() { local p; p=$(cat "${f}/unit-${unit}.pid" 2>/dev/null) && kill -0 "${p}" 2>/dev/null && echo "${p}"; }
case "$1" in
is-active)
	if [[ "${unit}" == infralab-* ]]; then
		unit_pid >/dev/null || exit 3
		touch "${f}/saw-${unit}-active"
		exit 0
	fi
	[[ "$(cat "${f}/${unit}" 2>/dev/null)" == active ]] ;;
show) unit_pid || echo 0 ;;
restart | enable)
	echo "systemctl $*" >>"${f}/calls"
	if [[ "${unit}" == kubelet && "$1" == restart ]]; then
		cat "${f}/after-restart" >"${f}/kubelet" 2>/dev/null || echo active >"${f}/kubelet"
	fi
	if [[ "${unit}" == containerd && ("$1" == restart || "$2" == --now) ]]; then
		mkdir -p /run/containerd
		[[ -S /run/containerd/containerd.sock ]] ||
			python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' /run/containerd/containerd.sock
	fi
	;;
*) echo "systemctl $*" >>"${f}/calls" ;;
esac
`
	fakeSystemdRun = `f=${FAKE} unit="" in=/dev/null out=/dev/null err=/dev/null env=()
while (($#)); do
	case "$1" in
	--unit=*) unit=${1#--unit=} ;;
	-p)
		shift
		case "$1" in
		StandardInput=file:*) in=${1#*=file:} ;;
		StandardOutput=file:*) out=${1#*=file:} ;;
		StandardError=file:*) err=${1#*=file:} ;;
		esac
		;;
	--setenv=*) env+=("${1#--setenv=}") ;;
	--*) ;;
	*) break ;;
	esac
	shift
done
if p=$(cat "${f}/unit-${unit}.pid" 2>/dev/null) && kill -0 "${p}" 2>/dev/null; then
	echo "Failed to start transient service unit: Unit ${unit}.service was already loaded" >&2
	exit 1
fi
rm -f "${f}/unit-${unit}.pid" "${f}/unit-${unit}.exec"
echo "${unit}" >>"${f}/units-started"
{
	printf 'exec <%q >%q 2>%q\n' "${in}" "${out}" "${err}"
	printf ': >%q\n' "${f}/unit-${unit}.exec"
	printf 'exec env -i'
	printf ' %q' "${env[@]}" "$@"
	echo
} >"${f}/req-${unit}.sh"
echo "${unit}" >"${f}/systemd.fifo"
# Type=exec: return once the unit's process runs with its files open.
for _ in {1..500}; do
	[[ -e "${f}/unit-${unit}.exec" && -s "${f}/unit-${unit}.pid" ]] && exit 0
	/bin/sleep 0.01
done
echo "fake systemd did not start ${unit}" >&2
exit 1
`
)

// startNamespace mounts the overlays in a mount namespace of the node's own, held open by a
// sleeping process, so every run of a test, and a job an earlier run left running in the
// background, see the same files (two overlay mounts must not share an upper dir).
func (n *fakeNode) startNamespace() {
	n.t.Helper()
	testenv.Tool(n.t, "nsenter")
	ready := filepath.Join(n.dir, "ns-ready")
	holder := exec.Command("unshare", "--mount", "--propagation", "private", "bash", "-c", `set -euo pipefail
for d in /etc /var/lib /var/log; do
	u="${DIR}/overlay${d}"
	mkdir -p "${u}/up" "${u}/work"
	mount -t overlay overlay -o "lowerdir=${d},upperdir=${u}/up,workdir=${u}/work" "${d}"
done
mount -t tmpfs tmpfs /run
mkdir -p /run/systemd/system # systemd is "PID 1" here (the fake below)
mkfifo "${FAKE}/systemd.fifo"
exec 3<>"${FAKE}/systemd.fifo"
touch "${READY}"
# The fake systemd: starts each requested unit as its child and reaps it when it ends.
while read -r unit <&3; do
	bash "${FAKE}/req-${unit}.sh" &
	echo "$!" >"${FAKE}/unit-${unit}.pid.new"
	mv -f "${FAKE}/unit-${unit}.pid.new" "${FAKE}/unit-${unit}.pid"
done
`)
	holder.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "DIR=" + n.dir, "READY=" + ready, "FAKE=" + n.fake}
	var errOut strings.Builder
	holder.Stderr = &errOut
	require.NoError(n.t, holder.Start())
	n.t.Cleanup(func() {
		// Jobs a test left behind (the systemd-run stub records their PIDs), then the holder.
		pids, _ := filepath.Glob(filepath.Join(n.fake, "unit-*.pid"))
		for _, p := range pids {
			if b, err := os.ReadFile(p); err == nil {
				_ = exec.Command("kill", "-9", strings.TrimSpace(string(b))).Run()
			}
		}
		_ = holder.Process.Kill()
		_ = holder.Wait()
	})
	for i := 0; ; i++ {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		require.Less(n.t, i, 100, "the node's mount namespace did not come up: %s", errOut.String())
		time.Sleep(50 * time.Millisecond)
	}
	n.nsPID = holder.Process.Pid
}

// session is one phase command in flight, as the SSH session would run it.
type session struct {
	cmd    *exec.Cmd
	stdout strings.Builder
	stderr strings.Builder
}

// start runs setup (bash, as root inside the node's namespace), then the phase script with env
// and stdin, the way commandLine does: env -i ... bash -c <script> <name>, from the login home.
func (n *fakeNode) start(script string, env map[string]string, stdin, setup string) *session {
	n.t.Helper()
	_ = os.Remove(filepath.Join(n.fake, "calls"))
	body, err := loadScript(Scripts(), script, scriptLibs(script)...)
	require.NoError(n.t, err)
	stage := filepath.Join(n.dir, script)
	require.NoError(n.t, os.WriteFile(stage, []byte(body), 0o600))
	wrapper := `set -euo pipefail
` + setup + `
cd "${LOGIN}"
exec env -i PATH="${BIN}:/usr/sbin:/usr/bin:/sbin:/bin" FAKE="${FAKE}" "$@" bash -c "$(<"${STAGE}")" "${SCRIPT}"
`
	args := []string{"-t", strconv.Itoa(n.nsPID), "-m", "--", "bash", "-c", wrapper, "phase"}
	for _, k := range sortedKeys(env) {
		args = append(args, k+"="+env[k])
	}
	s := &session{cmd: exec.Command("nsenter", args...)}
	s.cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "DIR=" + n.dir, "BIN=" + n.bin, "FAKE=" + n.fake,
		"STAGE=" + stage, "HASH=" + fakeKubeletHash, "LOGIN=" + n.login, "SCRIPT=" + script}
	s.cmd.Stdin = strings.NewReader(stdin)
	s.cmd.Stdout, s.cmd.Stderr = &s.stdout, &s.stderr
	// Its own process group, so a test can cut the "SSH session" as a whole.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(n.t, s.cmd.Start())
	return s
}

func (s *session) wait() (stdout, stderr string, err error) {
	err = s.cmd.Wait()
	return s.stdout.String(), s.stderr.String(), err
}

// cut kills the session's whole process group, as sshd does to a session whose connection dropped.
func (s *session) cut() {
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	_, _, _ = s.wait()
}

// run is start and wait.
func (n *fakeNode) run(script string, env map[string]string, stdin, setup string) (stdout, stderr string, err error) {
	n.t.Helper()
	return n.start(script, env, stdin, setup).wait()
}

func (n *fakeNode) joinWorker(setup string) (stdout, stderr string, err error) {
	n.t.Helper()
	return n.run("join-worker.sh", map[string]string{
		"PHASE": PhaseJoinWorker, "NODE_NAME": "worker-1", "KUBERNETES_VERSION": "1.35.4", "STATE_DIR": stateDir,
		"API_ENDPOINT": "10.10.10.10:6443", "KUBELET_CONFIG_SHA256": fakeKubeletHash, "JOIN_TOKEN_RESOURCE": "lab-join-token", "JOIN_TOKEN_TTL": joinTokenTTL,
	}, joinConfigStdin, setup)
}

// calls are the stub calls of the last run.
func (n *fakeNode) calls() string {
	b, _ := os.ReadFile(filepath.Join(n.fake, "calls"))
	return string(b)
}

func (n *fakeNode) set(name, value string) {
	require.NoError(n.t, os.WriteFile(filepath.Join(n.fake, name), []byte(value+"\n"), 0o600))
}

// file reads a file the script wrote on the node, from the upper dir of its overlay.
func (n *fakeNode) file(path string) (string, bool) {
	n.t.Helper()
	for _, root := range overlaid {
		if rest, ok := strings.CutPrefix(path, root+"/"); ok {
			b, err := os.ReadFile(filepath.Join(n.dir, "overlay", root, "up", rest))
			return string(b), err == nil
		}
	}
	n.t.Fatalf("%s is not under an overlaid directory", path)
	return "", false
}

// A joined node: the marker and kubelet.conf exist, the kubelet config is the current one.
const joinedNode = `mkdir -p /etc/kubernetes/infralab /var/lib/kubelet
echo kubeconfig >/etc/kubernetes/kubelet.conf
echo config >/var/lib/kubelet/config.yaml
touch /etc/kubernetes/infralab/join-done
echo "${HASH}" >/etc/kubernetes/infralab/kubelet-config.sha256
`

func TestJoinWorkerJoinsOnceThenLeavesTheNodeAlone(t *testing.T) {
	n := newFakeNode(t)
	out, log, err := n.joinWorker("")
	require.NoError(t, err, log)
	assert.Equal(t, "worker-1 joined\n", out)
	assert.Contains(t, n.calls(), "kubeadm join --config /etc/kubernetes/infralab/join.")
	assert.NotContains(t, n.calls(), "reset", "a fresh node is not reset")
	_, ok := n.file("/etc/kubernetes/infralab/join-done")
	assert.True(t, ok, "a successful join writes the join-done marker")
	hash, _ := n.file("/etc/kubernetes/infralab/kubelet-config.sha256")
	assert.Equal(t, fakeKubeletHash+"\n", hash, "the join fetched the current kubelet config")

	// Again: nothing to do, no kubeadm, no restart.
	out, log, err = n.joinWorker("")
	require.NoError(t, err, log)
	assert.Equal(t, "worker-1 joined\n", out)
	assert.Empty(t, n.calls(), "a joined node with a running kubelet needs nothing")
	assert.Contains(t, log, "already joined")
}

// The bug this guards against: a healthy worker whose kubelet was restarting got `kubeadm reset`.
func TestJoinWorkerNeverResetsAJoinedNode(t *testing.T) {
	t.Run("kubelet restarting comes back", func(t *testing.T) {
		n := newFakeNode(t)
		n.set("kubelet", "activating")
		_, log, err := n.joinWorker(joinedNode)
		require.NoError(t, err, log)
		assert.Equal(t, "systemctl restart kubelet\n", n.calls(), "only a kubelet restart, never reset or join")
		assert.Contains(t, log, "the kubelet is not active; restarting it")
	})
	t.Run("kubelet stays down", func(t *testing.T) {
		n := newFakeNode(t)
		n.set("kubelet", "failed")
		n.set("after-restart", "failed")
		_, log, err := n.joinWorker(joinedNode)
		require.Error(t, err)
		assert.NotContains(t, n.calls(), "kubeadm", "a joined node is neither reset nor joined again")
		assert.Contains(t, log, "the kubelet on worker-1 does not stay up after a restart; see journalctl -u kubelet")
		assert.Contains(t, log, "not reset automatically")
	})
	t.Run("joined by an earlier version without the marker", func(t *testing.T) {
		n := newFakeNode(t)
		n.set("kubelet", "activating")
		_, log, err := n.joinWorker("mkdir -p /etc/kubernetes && echo kubeconfig >/etc/kubernetes/kubelet.conf")
		require.NoError(t, err, log)
		assert.NotContains(t, n.calls(), "reset")
		assert.NotContains(t, n.calls(), "join")
		_, ok := n.file("/etc/kubernetes/infralab/join-done")
		assert.True(t, ok, "the earlier join is recorded")
	})
	t.Run("marker but kubelet.conf removed by hand", func(t *testing.T) {
		n := newFakeNode(t)
		_, log, err := n.joinWorker(joinedNode + "rm /etc/kubernetes/kubelet.conf\n")
		require.Error(t, err)
		assert.Empty(t, n.calls())
		assert.Contains(t, log, "remove /etc/kubernetes/infralab/join-done on worker-1")
	})
}

func TestJoinWorkerResetsOnlyAHalfDoneJoin(t *testing.T) {
	n := newFakeNode(t)
	_, log, err := n.joinWorker("mkdir -p /etc/kubernetes/pki && echo ca >/etc/kubernetes/pki/ca.crt && echo b >/etc/kubernetes/bootstrap-kubelet.conf")
	require.NoError(t, err, log)
	calls := n.calls()
	assert.Contains(t, calls, "kubeadm reset --force\n")
	assert.Less(t, strings.Index(calls, "reset"), strings.Index(calls, "join"), "reset before the join")
	assert.Contains(t, log, "a previous join did not finish")
}

func TestJoinWorkerAppliesAChangedKubeletConfigOnce(t *testing.T) {
	n := newFakeNode(t)
	old := strings.ReplaceAll(joinedNode, `echo "${HASH}"`, "echo 0000")
	n.set("kubelet", "active")
	_, log, err := n.joinWorker(old)
	require.NoError(t, err, log)
	assert.Equal(t, "kubeadm upgrade node phase kubelet-config --kubeconfig /etc/kubernetes/kubelet.conf\nsystemctl restart kubelet\n", n.calls())
	hash, _ := n.file("/etc/kubernetes/infralab/kubelet-config.sha256")
	assert.Equal(t, fakeKubeletHash+"\n", hash)
	cfg, _ := n.file("/var/lib/kubelet/config.yaml")
	assert.Equal(t, "new-config\n", cfg)

	// Unchanged now: nothing happens.
	_, log, err = n.joinWorker("")
	require.NoError(t, err, log)
	assert.Empty(t, n.calls())
}

func TestJoinWorkerNamesTheFixForARefusedToken(t *testing.T) {
	n := newFakeNode(t)
	n.set("join", "expired")
	_, log, err := n.joinWorker("")
	require.Error(t, err)
	assert.Contains(t, log, "the bootstrap token is unknown or expired (it lives 24h0m0s and is deleted once every node is Ready)")
	assert.Contains(t, log, "pulumi up --replace <URN of lab-join-token>")
	assert.Contains(t, log, "pulumi stack --show-urns | grep ::lab-join-token")
	_, ok := n.file("/etc/kubernetes/infralab/join-done")
	assert.False(t, ok, "a failed join writes no marker")

	// Any other failure keeps the generic message.
	n.set("join", "other")
	_, log, err = n.joinWorker("")
	require.Error(t, err)
	assert.Contains(t, log, "kubeadm join failed on worker-1")
	assert.NotContains(t, log, "bootstrap token is unknown", "an earlier run's token error in the log must not count")

	// The log lines shown end up in the provider's error text: a token in them is masked.
	n.set("join", "leak")
	_, log, err = n.joinWorker("")
	require.Error(t, err)
	assert.Contains(t, log, "bad token <bootstrap token>")
	assert.NotContains(t, log, fakeToken)
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func (n *fakeNode) kubeadmInit(kubeadmConfig, kubeletHash string) (stdout, stderr string, err error) {
	n.t.Helper()
	return n.kubeadmInitWith(map[string]string{"KUBEADM_CONFIG_B64": b64(kubeadmConfig), "KUBELET_CONFIG_SHA256": kubeletHash})
}

// kubeadmInitWith runs kubeadm-init.sh with the given inputs in place of the defaults.
func (n *fakeNode) kubeadmInitWith(over map[string]string) (stdout, stderr string, err error) {
	n.t.Helper()
	env := map[string]string{
		"PHASE": PhaseKubeadmInit, "NODE_NAME": "cp-1", "KUBERNETES_VERSION": "1.35.4", "STATE_DIR": stateDir,
		"KUBEADM_CONFIG_B64": b64("config: 1\n"), "APISERVER_PATCH_B64": b64("patch\n"),
		"HARDENING_DIR": hardening.ConfigDir, "ENCRYPTION_CONFIG_PATH": hardening.EncryptionConfigPath,
		"AUDIT_POLICY_PATH": hardening.AuditPolicyPath, "AUDIT_POLICY_B64": b64("audit\n"),
		"ADMISSION_CONFIG_PATH": hardening.AdmissionConfigPath, "ADMISSION_CONFIG_B64": b64("admission\n"),
		"AUTHN_CONFIG_PATH": hardening.AuthnConfigPath, "AUTHN_CONFIG_B64": b64("authn\n"),
		"AUDIT_LOG_DIR": hardening.AuditLogDir, "KUBELET_CONFIG_SHA256": "aaaa",
	}
	for k, v := range over {
		env[k] = v
	}
	return n.run("kubeadm-init.sh", env, "kind: EncryptionConfiguration\n", "")
}

// On an initialised control plane a configuration change reaches the static pods, the
// kubeadm-config and kubelet-config ConfigMaps and the kubelet's own config.yaml; an unchanged
// configuration does nothing; a failed apply is applied again by the next run.
func TestKubeadmInitReappliesExactlyWhatChanged(t *testing.T) {
	n := newFakeNode(t)
	const cfgPath = stateDir + "/kubeadm-config.yaml"
	controlPlane := "kubeadm init phase control-plane all --config " + cfgPath + "\n" +
		"kubeadm init phase upload-config all --config " + cfgPath + "\n"
	kubelet := "kubeadm init phase kubelet-start --config " + cfgPath + "\nsystemctl restart kubelet\n"

	out, log, err := n.kubeadmInit("config: 1\n", "aaaa")
	require.NoError(t, err, log)
	assert.Equal(t, "control plane cp-1 initialised (Kubernetes v1.35.4)\n", out)
	assert.Equal(t, "kubeadm init --config "+cfgPath+" --skip-token-print\n", n.calls(), "a fresh node runs init once")

	_, log, err = n.kubeadmInit("config: 1\n", "aaaa")
	require.NoError(t, err, log)
	assert.Empty(t, n.calls(), "unchanged: nothing happens")
	assert.Contains(t, log, "nothing to do")

	_, log, err = n.kubeadmInit("config: 2\n", "aaaa")
	require.NoError(t, err, log)
	assert.Equal(t, controlPlane, n.calls(), "a cluster config change: static pods and ConfigMaps, the kubelet stays")

	_, log, err = n.kubeadmInit("config: 3\n", "bbbb")
	require.NoError(t, err, log)
	assert.Equal(t, controlPlane+kubelet, n.calls(), "a kubelet config change also rewrites and restarts the kubelet")
	hash, _ := n.file(stateDir + "/kubelet-config.sha256")
	assert.Equal(t, "bbbb\n", hash)

	n.set("fail-upload-config", "")
	_, log, err = n.kubeadmInit("config: 4\n", "bbbb")
	require.Error(t, err)
	assert.Contains(t, log, "kubeadm init phase upload-config failed on cp-1")
	require.NoError(t, os.Remove(filepath.Join(n.fake, "fail-upload-config")))
	_, log, err = n.kubeadmInit("config: 4\n", "bbbb")
	require.NoError(t, err, log)
	assert.Equal(t, controlPlane, n.calls(), "the run after a failed apply applies again, although the file is already written")
	_, log, err = n.kubeadmInit("config: 4\n", "bbbb")
	require.NoError(t, err, log)
	assert.Empty(t, n.calls())
}

// After a config change the check must see an API server started from the new manifest, not the
// old one still answering /readyz; a run that gave up waits for the same thing next time.
func TestKubeadmInitWaitsForTheAPIServerFromTheNewManifest(t *testing.T) {
	n := newFakeNode(t)
	_, log, err := n.kubeadmInit("config: 1\n", "aaaa")
	require.NoError(t, err, log)
	_, log, err = n.kubeadmInit("config: 2\n", "aaaa")
	require.NoError(t, err, log)

	n.set("apiserver-created", "1000000000000000000") // 2001: the container from before
	n.set("manifest", "v2")
	_, log, err = n.kubeadmInit("config: 3\n", "aaaa")
	require.Error(t, err, "an API server older than the new manifest must not pass")
	assert.Contains(t, log, "no API server started from the changed manifest is running")

	// The next run writes the same manifest again: it must still wait for a new container.
	_, log, err = n.kubeadmInit("config: 3\n", "aaaa")
	require.Error(t, err, "the retry must not trust the old API server either:\n%s", log)

	require.NoError(t, os.Remove(filepath.Join(n.fake, "apiserver-created")))
	_, log, err = n.kubeadmInit("config: 3\n", "aaaa")
	require.NoError(t, err, log)
	_, log, err = n.kubeadmInit("config: 3\n", "aaaa")
	require.NoError(t, err, log)
	assert.Empty(t, n.calls(), "applied: nothing happens")
}

// env -i drops HOME; kubectl then writes its cache into a root-owned .kube under the SSH user's
// home (the working directory). Every phase runs with HOME=/root.
func TestPhasesRunWithRootsHome(t *testing.T) {
	n := newFakeNode(t)
	_, log, err := n.kubeadmInit("config: 1\n", "aaaa")
	require.NoError(t, err, log)
	home, _ := os.ReadFile(filepath.Join(n.fake, "kubectl-home"))
	assert.Equal(t, "/root\n", string(home), "kubectl ran with HOME=/root")
	_, err = os.Stat(filepath.Join(n.login, ".kube"))
	assert.True(t, os.IsNotExist(err), "no .kube in the login user's home: %v", err)
}

// A base64 input that does not decode must fail the phase and leave the file alone: with
// pipefail, `base64 -d | write_if_changed || [[ $? -eq 1 ]]` took base64's exit 1 for
// "unchanged" after the truncated output had been written.
func TestKubeadmInitRefusesAnInputThatDoesNotDecode(t *testing.T) {
	n := newFakeNode(t)
	_, log, err := n.kubeadmInit("config: 1\n", "aaaa")
	require.NoError(t, err, log)

	bad := b64("audit: v2\n") + "!!!"
	_, log, err = n.kubeadmInitWith(map[string]string{"AUDIT_POLICY_B64": bad})
	require.Error(t, err, "an undecodable input must fail the phase:\n%s", log)
	assert.Contains(t, log, "AUDIT_POLICY_B64 is not valid base64")
	policy, _ := n.file(hardening.AuditPolicyPath)
	assert.Equal(t, "audit\n", policy, "the file keeps its last good content")
	assert.Empty(t, n.calls(), "nothing is applied from a half-decoded file")
}

// kubeadm init that died after upload-config leaves admin.conf, a live API server and the
// kubeadm-config ConfigMap, which looks initialised; without the completion marker the next run
// must run the rest of init (kubeadm v1.35.4 cmd/kubeadm/app/cmd/init.go: upload-config,
// upload-certs, mark-control-plane, bootstrap-token, kubelet-finalize, addon) before it records
// the cluster as initialised, and must not reset it.
func TestKubeadmInitFinishesAnInitThatDiedAfterUploadConfig(t *testing.T) {
	n := newFakeNode(t)
	const cfgPath = stateDir + "/kubeadm-config.yaml"
	n.set("init-dies-after-upload-config", "")
	_, log, err := n.kubeadmInit("config: 1\n", "aaaa")
	require.Error(t, err)
	assert.Contains(t, log, "kubeadm init failed on cp-1")
	_, done := n.file(stateDir + "/init-done")
	assert.False(t, done)
	require.NoError(t, os.Remove(filepath.Join(n.fake, "init-dies-after-upload-config")))

	finish := "kubeadm init phase upload-config all --config " + cfgPath + "\n" +
		"kubeadm init phase mark-control-plane --config " + cfgPath + "\n" +
		"kubeadm init phase bootstrap-token --config " + cfgPath + " --skip-token-print\n" +
		"kubeadm init phase kubelet-finalize all --config " + cfgPath + "\n" +
		"kubeadm init phase addon all --config " + cfgPath + "\n"

	// mark-control-plane exits 0 without a label when the kubelet never registered the node:
	// that is a failure too.
	n.set("node-unmarked", "")
	_, log, err = n.kubeadmInit("config: 1\n", "aaaa")
	require.Error(t, err)
	assert.Contains(t, log, "mark-control-plane did not label node cp-1 as control plane")
	require.NoError(t, os.Remove(filepath.Join(n.fake, "node-unmarked")))

	// A finishing phase that fails records nothing, so the next run tries again.
	n.set("fail-addon", "")
	_, log, err = n.kubeadmInit("config: 1\n", "aaaa")
	require.Error(t, err)
	assert.Contains(t, log, "kubeadm init phase addon failed on cp-1")
	_, done = n.file(stateDir + "/init-done")
	assert.False(t, done, "no marker while a phase of init is missing")
	require.NoError(t, os.Remove(filepath.Join(n.fake, "fail-addon")))

	_, log, err = n.kubeadmInit("config: 1\n", "aaaa")
	require.NoError(t, err, log)
	assert.Equal(t, finish, n.calls(), "the rest of init and nothing else: no reset, no second init, the config init applied is kept")
	_, done = n.file(stateDir + "/init-done")
	assert.True(t, done, "the marker is written once init's phases all ran")

	_, log, err = n.kubeadmInit("config: 1\n", "aaaa")
	require.NoError(t, err, log)
	assert.Empty(t, n.calls(), "converged")
}

// CIS 1.1.20: the PKI certificates are 0600 after init (kubeadm writes them 0644), and stay so on
// every later run; keys stay 0600.
func TestKubeadmInitTightensThePKICertificates(t *testing.T) {
	n := newFakeNode(t)
	_, log, err := n.kubeadmInit("config: 1\n", "aaaa")
	require.NoError(t, err, log)
	mode := func(p string) os.FileMode {
		st, err := os.Stat(filepath.Join(n.dir, "overlay", "/etc", "up", strings.TrimPrefix(p, "/etc/")))
		require.NoError(t, err, p)
		return st.Mode().Perm()
	}
	for _, c := range []string{"ca", "apiserver", "front-proxy-ca", "etcd/ca", "etcd/server"} {
		assert.Equal(t, os.FileMode(0o600), mode("/etc/kubernetes/pki/"+c+".crt"), c)
		assert.Equal(t, os.FileMode(0o600), mode("/etc/kubernetes/pki/"+c+".key"), c)
	}
}

// kubeadm-init runs as a unit of its own (detach_phase): its secret stdin reaches the unit through
// a 0600 file that is gone once the unit runs, and the job directory is root's only.
func TestKubeadmInitRunsDetachedAndKeepsNoStdinFile(t *testing.T) {
	n := newFakeNode(t)
	_, log, err := n.kubeadmInit("config: 1\n", "aaaa")
	require.NoError(t, err, log)
	started, _ := os.ReadFile(filepath.Join(n.fake, "units-started"))
	assert.Equal(t, "infralab-kubeadm-init\n", string(started))
	enc, _ := n.file(hardening.EncryptionConfigPath)
	assert.Equal(t, "kind: EncryptionConfiguration\n", enc, "the unit read the phase's stdin")
	_, ok := n.file("/var/lib/infralab/jobs/kubeadm-init/stdin")
	assert.False(t, ok, "no copy of the secret stdin is left")
	st, err := os.Stat(filepath.Join(n.dir, "overlay", "/var/lib", "up", "infralab", "jobs", "kubeadm-init"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), st.Mode().Perm())
}
