package controlplane

import (
	"github.com/infralab/infralab/cluster/hardening"
)

// controllerManagerArgs runs kube-controller-manager without a serving port (nothing scrapes it
// here) and with the lab cluster's flags from hardening.ControllerManagerArgs.
func controllerManagerArgs(kubeconfig string, p *pki) []string {
	args := []arg{
		{"kubeconfig", kubeconfig},
		{"bind-address", "127.0.0.1"},
		{"secure-port", "0"},
		{"leader-elect", "false"},
		{"use-service-account-credentials", "true"},
		{"service-account-private-key-file", p.SAPrivateKey},
		{"root-ca-file", p.CACert},
		{"cluster-signing-cert-file", p.CACert},
		{"cluster-signing-key-file", p.CAKey},
		{"service-cluster-ip-range", serviceCIDR},
	}
	for _, a := range hardening.ControllerManagerArgs() {
		args = merge(args, []arg{{a.Name, a.Value}})
	}
	out := make([]string, 0, len(args))
	for _, a := range args {
		out = append(out, "--"+a.name+"="+a.value)
	}
	return out
}
