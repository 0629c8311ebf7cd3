package cluster

// Calico is installed from the pinned tigera-operator manifest by a remote command on the
// control plane, not through the Helm chart:
//   - nodes become Ready only once a CNI runs, and the component's Kubeconfig output waits for
//     wait-nodes-ready, so the CNI must be installed inside this component before that output
//     exists (a chart would need a second Kubernetes provider of its own here);
//   - applied from the control plane, which already holds the admin kubeconfig, it needs no chart
//     repository access from the machine running `pulumi up`;
//   - the operator manifest is one pinned file, checked against its sha256 when one is configured
//     and applied server-side, so a re-run converges.
//
// The Installation below is ours and generated here.

// renderCalicoInstallation renders the operator's Installation and APIServer resources with our
// pod CIDR. VXLANCrossSubnet encapsulates only across subnets, so the single-host lab routes
// natively.
func renderCalicoInstallation(podCIDR string) ([]byte, error) {
	installation := map[string]any{
		"apiVersion": "operator.tigera.io/v1",
		"kind":       "Installation",
		"metadata":   map[string]any{"name": "default"},
		"spec": map[string]any{
			"calicoNetwork": map[string]any{
				"ipPools": []any{map[string]any{
					"name":          "default-ipv4-ippool",
					"blockSize":     26,
					"cidr":          podCIDR,
					"encapsulation": "VXLANCrossSubnet",
					"natOutgoing":   "Enabled",
					"nodeSelector":  "all()",
				}},
			},
		},
	}
	apiServer := map[string]any{
		"apiVersion": "operator.tigera.io/v1",
		"kind":       "APIServer",
		"metadata":   map[string]any{"name": "default"},
		"spec":       map[string]any{},
	}
	return joinYAML(installation, apiServer)
}
