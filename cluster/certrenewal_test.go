package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/infralab/infralab/internal/testenv"
)

// certNode is a control plane in the overlay with the real kubeadm (v1.35.4 from `make tools`):
// `kubeadm init phase certs/kubeconfig` make a real PKI and kubeconfigs, and the cert-renewal
// command line as registered runs `kubeadm certs check-expiration` and `kubeadm certs renew all`
// against them for real. Only the kubelet is modelled: the crictl stub reports a component's
// container as running while its static pod manifest is in /etc/kubernetes/manifests, unless
// ${FAKE}/stuck-<component> says it never comes back; each answer is recorded in calls.
type certNode struct {
	*fakeNode
	create, setup string
}

func newCertNode(t *testing.T) *certNode {
	kubeadm := testenv.Tool(t, "kubeadm")
	n := newFakeNode(t)
	cfg, err := renderKubeadmConfig(testArgs().clusterConfig())
	require.NoError(t, err)
	// The same cluster, issuing certificates that live 10 days: due within the 30-day window.
	short := strings.Replace(string(cfg), "kind: ClusterConfiguration\n", "kind: ClusterConfiguration\ncertificateValidityPeriod: 240h0m0s\n", 1)
	require.NotEqual(t, string(cfg), short)
	require.NoError(t, os.WriteFile(filepath.Join(n.dir, "kubeadm.yaml"), cfg, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(n.dir, "short.yaml"), []byte(short), 0o600))
	r := run(t, testArgs(), Scripts())
	return &certNode{fakeNode: n, create: r.m.get(t, "lab-cert-renewal").args.Inputs["create"].StringValue(),
		setup: `cp ` + kubeadm + ` /usr/local/bin/kubeadm
cat >/usr/local/bin/crictl <<STUB
#!/usr/bin/env bash
c=\${*: -4:1}; c=\${c#^}; c=\${c%\\$}
if [[ -e ${FAKE}/stuck-\${c} || ! -f /etc/kubernetes/manifests/\${c}.yaml ]]; then echo "\${c} stopped" >>${FAKE}/calls; exit 0; fi
echo "\${c} running" >>${FAKE}/calls; echo 0123456789ab
STUB
chmod 0755 /usr/local/bin/crictl
install -d -m 0700 /etc/kubernetes/infralab
cp ${DIR}/kubeadm.yaml /etc/kubernetes/infralab/kubeadm-config.yaml
`}
}

// issue makes a fresh PKI and kubeconfigs with the given kubeadm config, and the static pods.
func (n *certNode) issue(config string) string {
	return `rm -rf /etc/kubernetes/pki /etc/kubernetes/*.conf
kubeadm init phase certs all --config ${DIR}/` + config + ` >/dev/null 2>&1
kubeadm init phase kubeconfig all --config ${DIR}/` + config + ` >/dev/null 2>&1
mkdir -p /etc/kubernetes/manifests
for c in etcd kube-apiserver kube-controller-manager kube-scheduler; do echo "name: $c" >/etc/kubernetes/manifests/$c.yaml; done
`
}

func (n *certNode) renewal(extra string) (stdout, stderr string, err error) {
	n.t.Helper()
	stdout, stderr, _, err = n.runCommandLine(n.create, "", n.setup+extra)
	return stdout, stderr, err
}

func expiry(t *testing.T, stdout string) time.Time {
	t.Helper()
	e, err := time.Parse(time.RFC3339, strings.TrimSpace(stdout))
	require.NoError(t, err, "stdout is the earliest expiry: %q", stdout)
	return e
}

// restartOrder is the order in which components were first seen stopped.
func restartOrder(calls string) []string {
	var out []string
	seen := map[string]bool{}
	for _, l := range strings.Split(calls, "\n") {
		if c, ok := strings.CutSuffix(l, " stopped"); ok && !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

func TestCertRenewalRenewsOnlyWithinTheWindowAndRestartsTheStaticPods(t *testing.T) {
	n := newCertNode(t)
	staticPods := []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}

	// Fresh certificates (365 days): the timer is installed, nothing is renewed.
	out, log, err := n.renewal(n.issue("kubeadm.yaml"))
	require.NoError(t, err, log)
	first := expiry(t, out)
	assert.WithinDuration(t, time.Now().Add(365*24*time.Hour), first, 48*time.Hour)
	assert.Contains(t, n.calls(), "systemctl daemon-reload")
	assert.Contains(t, n.calls(), "systemctl enable --now infralab-cert-renewal.timer")
	assert.Empty(t, restartOrder(n.calls()), "nothing due, nothing restarted")
	service, ok := n.file("/etc/systemd/system/infralab-cert-renewal.service")
	require.True(t, ok)
	assert.Contains(t, service, "Environment=PHASE=cert-renewal-timer CERT_RENEW_DAYS=30 STATE_DIR=/etc/kubernetes/infralab HOME=/root")
	assert.Contains(t, service, "ExecStart=/usr/local/sbin/infralab-renew-certs")
	timer, _ := n.file("/etc/systemd/system/infralab-cert-renewal.timer")
	assert.Contains(t, timer, "OnCalendar=daily")
	assert.Contains(t, timer, "Persistent=true")
	bin, ok := n.localFile("/usr/local/sbin/infralab-renew-certs")
	require.True(t, ok)
	assert.Contains(t, bin, "kubeadm certs renew all")
	admin, _ := n.file("/etc/kubernetes/admin.conf")

	// Again: the same answer, no reload, no renewal.
	out, log, err = n.renewal("")
	require.NoError(t, err, log)
	assert.Equal(t, first, expiry(t, out))
	assert.NotContains(t, n.calls(), "daemon-reload")
	again, _ := n.file("/etc/kubernetes/admin.conf")
	assert.Equal(t, admin, again, "admin.conf is left alone")

	// Certificates with 10 days left: renewed (a year again), then the four static pods restart,
	// one after the other, each stopped and back before the next.
	out, log, err = n.renewal(n.issue("short.yaml"))
	require.NoError(t, err, log)
	assert.WithinDuration(t, time.Now().Add(365*24*time.Hour), expiry(t, out), 48*time.Hour)
	assert.Contains(t, log, "renewing all")
	assert.Equal(t, staticPods, restartOrder(n.calls()))
	for _, c := range staticPods {
		_, back := n.file("/etc/kubernetes/manifests/" + c + ".yaml")
		assert.True(t, back, "%s manifest is back", c)
	}
	_, pending := n.file(stateDir + "/static-pods-to-restart")
	assert.False(t, pending)
	renewed, _ := n.file("/etc/kubernetes/admin.conf")
	assert.NotEqual(t, admin, renewed, "admin.conf holds the renewed certificate")
}

// A renewal cut off during the restarts finishes them on the next run (timer or phase), without
// renewing again: the renewed certificates are no longer due, the pending list says what is left.
func TestCertRenewalFinishesAnInterruptedRestart(t *testing.T) {
	n := newCertNode(t)
	n.set("stuck-kube-controller-manager", "")
	_, log, err := n.renewal(n.issue("short.yaml"))
	require.Error(t, err)
	assert.Contains(t, log, "kube-controller-manager did not come back")
	left, ok := n.file(stateDir + "/static-pods-to-restart")
	require.True(t, ok)
	assert.Equal(t, "kube-controller-manager\nkube-scheduler\n", left)

	require.NoError(t, os.Remove(filepath.Join(n.fake, "stuck-kube-controller-manager")))
	// And a manifest left parked by a run that died between the two moves.
	out, log, err := n.renewal(`mv /etc/kubernetes/manifests/etcd.yaml /etc/kubernetes/infralab/parked-manifests/`)
	require.NoError(t, err, log)
	assert.Contains(t, log, "putting back etcd.yaml")
	assert.NotContains(t, log, "renewing all", "the certificates were renewed by the first run")
	assert.Equal(t, []string{"kube-controller-manager", "kube-scheduler"}, restartOrder(n.calls()))
	_, back := n.file("/etc/kubernetes/manifests/etcd.yaml")
	assert.True(t, back)
	assert.WithinDuration(t, time.Now().Add(365*24*time.Hour), expiry(t, out), 48*time.Hour)
}

// Certificates from an external CA (kubeadm has ca.crt but not ca.key) cannot be renewed here:
// the phase fails and says so, instead of passing while the cluster runs out.
func TestCertRenewalRefusesExternallyManagedCertificates(t *testing.T) {
	n := newCertNode(t)
	_, log, err := n.renewal(n.issue("short.yaml") + "rm /etc/kubernetes/pki/ca.key\n")
	require.Error(t, err)
	assert.Contains(t, log, "signed by an external CA expire within 30 days and kubeadm cannot renew them")
	assert.Contains(t, log, "admin.conf")
	assert.Empty(t, restartOrder(n.calls()))
}
