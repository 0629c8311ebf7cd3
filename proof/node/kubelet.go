package node

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/infralab/infralab/cluster/hardening"
)

// podPidsLimit is the lab cluster's value (cluster/config.go).
const podPidsLimit = 4096

// kubeletConfig is the lab cluster's KubeletConfiguration (cluster/config.go) with the changes
// this machine needs; docs/node.md lists each difference and why.
func kubeletConfig(n *Node) map[string]any {
	return map[string]any{
		"apiVersion": "kubelet.config.k8s.io/v1beta1",
		"kind":       "KubeletConfiguration",
		// Same as lab.
		"authentication": map[string]any{
			"anonymous": map[string]any{"enabled": false},
			"webhook":   map[string]any{"enabled": true},
			"x509":      map[string]any{"clientCAFile": n.opts.ControlPlane.CACert},
		},
		"authorization":                  map[string]any{"mode": "Webhook"},
		"readOnlyPort":                   0,
		"seccompDefault":                 true,
		"protectKernelDefaults":          true,
		"podPidsLimit":                   podPidsLimit,
		"eventRecordQPS":                 5,
		"streamingConnectionIdleTimeout": "4h0m0s",
		"tlsMinVersion":                  "VersionTLS12",
		"tlsCipherSuites":                strings.Split(hardening.TLSCipherSuites(), ","),
		// Different: this machine.
		"cgroupDriver":             "cgroupfs", // no systemd as init here
		"failCgroupV1":             false,      // the kernel runs cgroups v1
		"failSwapOn":               false,
		"rotateCertificates":       false, // certificates come from the embedded CA, valid 30 days
		"tlsCertFile":              n.path("pki", "kubelet-serving.crt"),
		"tlsPrivateKeyFile":        n.path("pki", "kubelet-serving.key"),
		"address":                  NodeIP, // never the machine's own address
		"port":                     10250,
		"healthzBindAddress":       "127.0.0.1",
		"healthzPort":              0,
		"containerRuntimeEndpoint": "unix://" + n.ContainerdSocket(),
		"clusterDNS":               []string{ClusterDNS},
		"clusterDomain":            "cluster.local",
		"resolvConf":               "", // no host search domains or upstream servers in pods
		"podLogsDir":               n.path("pod-logs"),
		"staticPodPath":            "",
		"maxPods":                  60,
		// Images cannot be pulled again here: never garbage-collect them.
		"imageGCHighThresholdPercent": 100,
		"imageGCLowThresholdPercent":  99,
		"evictionHard": map[string]string{
			"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%", "nodefs.inodesFree": "1%",
		},
		"localStorageCapacityIsolation": true,
	}
}

func (s *starter) startKubelet(ctx context.Context) error {
	n := s.n
	data, err := yaml.Marshal(kubeletConfig(n))
	if err != nil {
		return err
	}
	cfg := n.path("kubelet-config.yaml")
	if err := os.WriteFile(cfg, data, 0o600); err != nil {
		return err
	}
	p, err := n.launch("kubelet", s.bins["kubelet"], []string{
		"--config=" + cfg,
		"--kubeconfig=" + n.kubeconfigPath("kubelet"),
		"--root-dir=" + n.path("kubelet"),
		"--hostname-override=" + n.opts.NodeName,
		"--node-ip=" + NodeIP,
		// cAdvisor (inside the kubelet) labels container metrics with their pod, namespace and
		// container by asking containerd, at /run/containerd/containerd.sock unless told; ours has
		// its own socket. Deprecated but still registered (cmd/kubelet/app/options/globalflags_linux.go).
		"--containerd=" + n.ContainerdSocket(),
		"--v=1",
	})
	if err != nil {
		return err
	}
	nodes := n.client.CoreV1().Nodes()
	if err := waitFor(ctx, p, "registered", func(ctx context.Context) error {
		_, err := nodes.Get(ctx, n.opts.NodeName, metav1.GetOptions{})
		return err
	}); err != nil {
		return err
	}
	// kube-router reads the node's pod CIDR; without a cluster-wide allocator it is set here once.
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"podCIDR": PodCIDR, "podCIDRs": []string{PodCIDR}}})
	if _, err := nodes.Patch(ctx, n.opts.NodeName, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("setting the node's podCIDR: %w", err)
	}
	return waitFor(ctx, p, "Ready", func(ctx context.Context) error {
		node, err := nodes.Get(ctx, n.opts.NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady {
				if c.Status == corev1.ConditionTrue {
					return nil
				}
				return fmt.Errorf("node %s: %s", c.Reason, c.Message)
			}
		}
		return fmt.Errorf("no Ready condition yet")
	})
}
