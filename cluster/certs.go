package cluster

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"sigs.k8s.io/yaml"
)

// Certificate renewal. kubeadm signs every leaf certificate, the one in admin.conf included, for a
// year (kubeadm v1.35 cmd/kubeadm/app/constants: CertificateValidityPeriod = 365 days); without
// renewal the control plane stops after that, and so does the kubeconfig stored in the state.
//
//   - On the control plane, infralab-renew-certs (scripts/renew-certs.sh) renews them all once
//     any expires within CertRenewDays days and restarts the static pods; a daily systemd timer
//     runs it, and so does the cert-renewal phase.
//   - The stored kubeconfig is re-fetched once its own certificate has fewer than
//     CertRenewDays-1 days left: by then the timer (which looks daily with the full window) has
//     renewed admin.conf, or the cert-renewal phase, which runs in the same `up`, does.
//
// Deciding "fewer than N days left" needs the stored certificate's NotAfter, which is the output
// of fetch-kubeconfig itself, so it cannot be a trigger of that same command. The caller passes
// back what the previous deployment reported (Previous); while nothing is due the trigger is the
// unchanged generation number, so a second `up` shows no change, and it moves on by one when a
// refresh is due. After the refresh the new NotAfter is far away again and the generation stays.
const (
	DefaultCertRenewDays = 30
	MinCertRenewDays     = 7
	MaxCertRenewDays     = 180
)

// PreviousCertificates is what the previous deployment reported: Kubeadm.CertificatesNotAfter and
// Kubeadm.KubeconfigGeneration as they were stored (the lab stack reads its own stack outputs).
// Unset fields mean a first deployment.
type PreviousCertificates struct {
	NotAfter   pulumi.StringInput
	Generation pulumi.IntInput
}

func (a *KubeadmArgs) certRenewDays() int { return orDefault(a.CertRenewDays, DefaultCertRenewDays) }

func (a *KubeadmArgs) now() time.Time {
	if a.Clock != nil {
		return a.Clock()
	}
	return time.Now()
}

// refreshDue: a kubeconfig whose certificate ends at notAfter is re-fetched.
func refreshDue(notAfter, now time.Time, renewDays int) bool {
	return !now.Before(notAfter.Add(-time.Duration(renewDays-1) * 24 * time.Hour))
}

// kubeconfigGeneration is the previous generation, plus one when the stored kubeconfig is due.
func (b *bootstrap) kubeconfigGeneration() pulumi.IntOutput {
	var notAfter pulumi.StringInput = pulumi.String("")
	var gen pulumi.IntInput = pulumi.Int(0)
	if p := b.args.Previous; p != nil {
		if p.NotAfter != nil {
			notAfter = p.NotAfter
		}
		if p.Generation != nil {
			gen = p.Generation
		}
	}
	days := b.args.certRenewDays()
	return pulumi.All(notAfter, gen).ApplyT(func(v []any) int {
		g := v[1].(int)
		n, err := time.Parse(time.RFC3339, v[0].(string))
		if err != nil || !refreshDue(n, b.args.now(), days) {
			return g
		}
		_ = b.ctx.Log.Info(fmt.Sprintf("the stored kubeconfig's certificate expires %s (fewer than %d days): the cert-renewal phase renews the control plane's certificates if the timer has not yet, and the kubeconfig is fetched again",
			n.UTC().Format(time.RFC3339), days-1), &pulumi.LogArgs{Resource: b.parent})
		return g + 1
	}).(pulumi.IntOutput)
}

// ensureCertRenewal installs the renewal script and its timer on the control plane and runs it.
// Its stdout, the earliest expiry after the run, is a trigger of fetch-kubeconfig: a renewal here
// fetches the new admin.conf in the same run.
func (b *bootstrap) ensureCertRenewal() error {
	renew, err := loadScript(b.scripts, "renew-certs.sh")
	if err != nil {
		return err
	}
	b.generation = b.kubeconfigGeneration()
	b.certRenewal, err = b.run(step{
		name: b.resName(PhaseCertRenewal, nil), phase: PhaseCertRenewal, node: b.args.ControlPlane, script: "cert-renewal.sh",
		env: map[string]string{
			"CERT_RENEW_DAYS":  strconv.Itoa(b.args.certRenewDays()),
			"STATE_DIR":        stateDir,
			"RENEW_SCRIPT_B64": base64.StdEncoding.EncodeToString([]byte(renew)),
			// kubeadm upgrade apply renews every certificate (upgrade-control-plane.sh): a new
			// version runs this phase again, its stdout (the earliest expiry) moves, and
			// fetch-kubeconfig, which has that stdout in its triggers, fetches the renewed
			// admin.conf in the same run.
			"KUBERNETES_VERSION": b.args.KubernetesVersion,
		},
		dependsOn:     []pulumi.Resource{b.init},
		extraTriggers: pulumi.Array{b.generationTrigger()},
	})
	return err
}

func (b *bootstrap) generationTrigger() pulumi.StringOutput {
	return pulumi.Sprintf("kubeconfigGeneration=%d", b.generation)
}

// kubeconfigNotAfter is the NotAfter of the client certificate of the kubeconfig's current user,
// or "" when there is none. Nothing of the kubeconfig goes into an error or a log: it holds the
// client key.
func kubeconfigNotAfter(kubeconfig string) string {
	var kc struct {
		CurrentContext string `json:"current-context"`
		Contexts       []struct {
			Name    string `json:"name"`
			Context struct {
				User string `json:"user"`
			} `json:"context"`
		} `json:"contexts"`
		Users []struct {
			Name string `json:"name"`
			User struct {
				ClientCertificateData string `json:"client-certificate-data"`
			} `json:"user"`
		} `json:"users"`
	}
	if yaml.Unmarshal([]byte(kubeconfig), &kc) != nil {
		return ""
	}
	user := ""
	for _, c := range kc.Contexts {
		if c.Name == kc.CurrentContext {
			user = c.Context.User
		}
	}
	for _, u := range kc.Users {
		if u.Name != user && len(kc.Users) > 1 {
			continue
		}
		der, err := base64.StdEncoding.DecodeString(u.User.ClientCertificateData)
		if err != nil {
			return ""
		}
		block, _ := pem.Decode(der)
		if block == nil {
			return ""
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return ""
		}
		return cert.NotAfter.UTC().Format(time.RFC3339)
	}
	return ""
}

// daysLeft is whole days from now until notAfter (negative once expired); -1 when unknown.
func daysLeft(notAfter string, now time.Time) int {
	n, err := time.Parse(time.RFC3339, notAfter)
	if err != nil {
		return -1
	}
	return int(math.Floor(n.Sub(now).Hours() / 24))
}
