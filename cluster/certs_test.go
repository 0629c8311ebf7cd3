package cluster

import (
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var day0 = time.Date(2027, 1, 10, 9, 0, 0, 0, time.UTC)

// argsAt is testArgs on the given day, with what the previous deployment reported.
func argsAt(now time.Time, notAfter time.Time, generation int) *KubeadmArgs {
	a := testArgs()
	a.Clock = func() time.Time { return now }
	a.Previous = &PreviousCertificates{NotAfter: pulumi.String(notAfter.Format(time.RFC3339)), Generation: pulumi.Int(generation)}
	return a
}

func inputsDiffer(t *testing.T, a, b result) []string {
	t.Helper()
	first, second := a.m.commands(), b.m.commands()
	require.Equal(t, len(first), len(second))
	var out []string
	for name, c := range first {
		if !c.args.Inputs.DeepEquals(second[name].args.Inputs) {
			out = append(out, name)
		}
	}
	return out
}

// Months go by with nothing near expiry: every command's inputs stay the same (no clock in any
// trigger), so `pulumi up` shows no change, and the outputs report the days left.
func TestNothingDueDeclaresIdenticalInputsAcrossMonths(t *testing.T) {
	notAfter := day0.Add(300 * 24 * time.Hour)
	a := run(t, argsAt(day0, notAfter, 2), Scripts())
	b := run(t, argsAt(day0.Add(200*24*time.Hour), notAfter, 2), Scripts())
	assert.Empty(t, inputsDiffer(t, a, b))
	assert.Equal(t, 2, b.generation.Value)
	assert.Contains(t, triggersByCommand(a)["lab-fetch-kubeconfig"], "kubeconfigGeneration=2")
}

// The stored kubeconfig nears NotAfter (fewer than certRenewDays-1 days): exactly cert-renewal
// (which renews on the node if the timer has not) and fetch-kubeconfig run again. The `up` after
// that, with the new NotAfter a year away, shows no change again.
func TestKubeconfigIsFetchedAgainOnceWhenItNearsNotAfter(t *testing.T) {
	notAfter := day0.Add(40 * 24 * time.Hour)
	before := run(t, argsAt(day0, notAfter, 2), Scripts())
	stillOK := run(t, argsAt(notAfter.Add(-30*24*time.Hour), notAfter, 2), Scripts()) // 30 days left
	assert.Empty(t, inputsDiffer(t, before, stillOK), "30 days left, window 30: not due yet")

	dueAt := notAfter.Add(-28 * 24 * time.Hour)
	due := run(t, argsAt(dueAt, notAfter, 2), Scripts())
	changed := inputsDiffer(t, before, due)
	assert.ElementsMatch(t, []string{"lab-cert-renewal", "lab-fetch-kubeconfig"}, changed)
	assert.Contains(t, triggersByCommand(due)["lab-fetch-kubeconfig"], "kubeconfigGeneration=3")
	assert.Equal(t, 3, due.generation.Value)

	// Next `up`: the previous deployment reported the refreshed certificate and generation 3.
	after := run(t, argsAt(dueAt.Add(24*time.Hour), dueAt.Add(365*24*time.Hour), 3), Scripts())
	assert.Empty(t, inputsDiffer(t, due, after), "no change after the refresh")

	// Already expired (nobody ran up for a year): fetched again all the same.
	late := run(t, argsAt(notAfter.Add(24*time.Hour), notAfter, 2), Scripts())
	assert.ElementsMatch(t, []string{"lab-cert-renewal", "lab-fetch-kubeconfig"}, inputsDiffer(t, before, late))
}

// A first deployment (nothing reported yet) and a window change.
func TestCertRenewalPhaseInputs(t *testing.T) {
	r := run(t, testArgs(), Scripts())
	c := r.m.get(t, "lab-cert-renewal")
	create := c.args.Inputs["create"].StringValue()
	assert.Contains(t, create, "CERT_RENEW_DAYS='30'")
	assert.Contains(t, create, "RENEW_SCRIPT_B64=")
	assert.Contains(t, create, "systemctl enable --now", "installs the timer")
	assert.Equal(t, "10.10.10.10", c.args.Inputs["connection"].SecretValue().Element.ObjectValue()["host"].StringValue())
	assert.Contains(t, triggersByCommand(r)["lab-cert-renewal"], "kubeconfigGeneration=0")
	assert.Contains(t, triggersByCommand(r)["lab-fetch-kubeconfig"], "certificatesNotAfter=", "a renewal there fetches admin.conf again")

	a := testArgs()
	a.CertRenewDays = 45
	wider := run(t, a, Scripts())
	assert.ElementsMatch(t, []string{"lab-cert-renewal"}, inputsDiffer(t, r, wider))

	a.CertRenewDays = 3
	assert.ErrorContains(t, a.Validate(), "cluster.certRenewDays: 3 is outside 7-180")
}

// `pulumi up` reports when the stored kubeconfig's certificate expires and the days left; the
// date is read from the certificate, and it is no secret.
func TestOutputsReportTheCertificateExpiry(t *testing.T) {
	now := fakeNotAfter.Add(-100*24*time.Hour - time.Hour)
	a := testArgs()
	a.Clock = func() time.Time { return now }
	r := run(t, a, Scripts())
	assert.Equal(t, fakeNotAfter.Format(time.RFC3339), r.notAfter.Value)
	assert.False(t, r.notAfter.Secret)
	assert.Equal(t, 100, r.daysLeft.Value)
	assert.Equal(t, 0, r.generation.Value)

	assert.Equal(t, "", kubeconfigNotAfter("apiVersion: v1\nkind: Config\n"), "no client certificate")
	assert.Equal(t, -1, daysLeft("", now))
	assert.Equal(t, "", kubeconfigNotAfter(strings.Replace(fakeAdminConf, "client-certificate-data: ", "client-certificate-data: x", 1)))
}
