package controlplane

import (
	"context"
	"path/filepath"

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

func (s *starter) startControllerManager(ctx context.Context) error {
	kubeconfig := filepath.Join(s.cp.dir, "controller-manager.kubeconfig")
	proc, err := s.cp.launch("kube-controller-manager", s.bins["kube-controller-manager"],
		controllerManagerArgs(kubeconfig, s.cp.pki))
	if err != nil {
		return err
	}
	client, err := tlsClient(s.cp.pki.CACert, s.cp.pki.AdminCert, s.cp.pki.AdminKey)
	if err != nil {
		return err
	}
	// The ServiceAccount admission plugin rejects Pods until the controller creates "default".
	return waitFor(ctx, proc, "creating the default ServiceAccount", func(ctx context.Context) error {
		_, err := get(ctx, client, s.cp.serverURL+"/api/v1/namespaces/default/serviceaccounts/default")
		return err
	})
}
