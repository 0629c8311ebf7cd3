package cluster

// Calico is installed from the pinned tigera-operator manifest by a remote command on the
// control plane, not through the Helm v4 chart: the chart would need a kubernetes provider that
// reaches the API server from wherever `pulumi up` runs, plus access to the chart repository,
// while the control plane already has the admin kubeconfig and the network path we proved in
// the earlier phases. The Installation below is ours and generated here.

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
