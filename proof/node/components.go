package node

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/infralab/infralab/cluster/hardening"

	"github.com/infralab/infralab/internal/proc"
)

func (s *starter) startScheduler(ctx context.Context) error {
	n := s.n
	return s.withFreePorts(func(port int) (*process, error) {
		args := []string{
			"--kubeconfig=" + n.kubeconfigPath("kube-scheduler"),
			"--authentication-kubeconfig=" + n.kubeconfigPath("kube-scheduler"),
			"--authorization-kubeconfig=" + n.kubeconfigPath("kube-scheduler"),
			"--leader-elect=false",
			fmt.Sprintf("--secure-port=%d", port),
		}
		for _, a := range hardening.SchedulerArgs() { // bind-address=127.0.0.1, profiling=false
			args = append(args, "--"+a.Name+"="+a.Value)
		}
		p, err := n.launch("kube-scheduler", s.bins["kube-scheduler"], args)
		if err != nil {
			return nil, err
		}
		return p, waitListening(ctx, p, fmt.Sprintf("127.0.0.1:%d", port))
	})
}

// kubeProxyConfig: iptables mode; NodePorts only on the node's bridge address; conntrack sysctls
// left alone (0 means "do not change"). Health and metrics listen on loopback: kube-proxy would
// otherwise default its health server to 0.0.0.0:10256, the machine's external address too.
func kubeProxyConfig(n *Node, metricsPort, healthzPort int) map[string]any {
	return map[string]any{
		"apiVersion":         "kubeproxy.config.k8s.io/v1alpha1",
		"kind":               "KubeProxyConfiguration",
		"clientConnection":   map[string]any{"kubeconfig": n.kubeconfigPath("kube-proxy")},
		"mode":               "iptables",
		"clusterCIDR":        PodCIDR,
		"hostnameOverride":   n.opts.NodeName,
		"bindAddress":        NodeIP,
		"healthzBindAddress": fmt.Sprintf("127.0.0.1:%d", healthzPort),
		"metricsBindAddress": fmt.Sprintf("127.0.0.1:%d", metricsPort),
		"nodePortAddresses":  []string{NodeIP + "/32"},
		"conntrack": map[string]any{
			"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s",
		},
	}
}

func (s *starter) startKubeProxy(ctx context.Context) error {
	n := s.n
	// No retry on a lost port here: kube-proxy keeps retrying its metrics and health listeners
	// instead of exiting, and nothing of ours reads them.
	ports, err := proc.FreePorts(2)
	if err != nil {
		return err
	}
	data, err := yaml.Marshal(kubeProxyConfig(n, ports[0], ports[1]))
	if err != nil {
		return err
	}
	cfg := n.path("kube-proxy-config.yaml")
	if err := os.WriteFile(cfg, data, 0o600); err != nil {
		return err
	}
	p, err := n.launch("kube-proxy", s.bins["kube-proxy"], []string{"--config=" + cfg, "--v=1"})
	if err != nil {
		return err
	}
	// Ready once it has programmed the kubernetes Service.
	return waitFor(ctx, p, "programming Services", func(ctx context.Context) error {
		out, err := run(ctx, "iptables", "-t", "nat", "-S", "KUBE-SERVICES")
		if err != nil {
			return err
		}
		if !strings.Contains(out, "default/kubernetes:https") {
			return fmt.Errorf("no rule for default/kubernetes yet")
		}
		return nil
	})
}

// startKubeRouter runs only kube-router's NetworkPolicy controller (iptables + ipset): no BGP
// routing, no IPVS service proxy, no health or metrics listener.
func (s *starter) startKubeRouter(ctx context.Context) error {
	n := s.n
	p, err := n.launch("kube-router", s.bins["kube-router"], []string{
		"--run-firewall=true", "--run-router=false", "--run-service-proxy=false", "--run-loadbalancer=false",
		"--kubeconfig=" + n.kubeconfigPath("kube-router"),
		"--hostname-override=" + n.opts.NodeName,
		"--health-port=0", "--metrics-port=0",
		"--enable-ipv4=true", "--enable-ipv6=false",
		"--service-cluster-ip-range=" + ServiceCIDR,
		"--v=1",
	})
	if err != nil {
		return err
	}
	return waitFor(ctx, p, "installing its firewall chains", func(ctx context.Context) error {
		_, err := run(ctx, "iptables", "-S", "KUBE-ROUTER-FORWARD")
		return err
	})
}

// withFreePorts starts a component on a free loopback port, again on a new one when another
// process took the port first (proc.WithFreePorts).
func (s *starter) withFreePorts(start func(port int) (*process, error)) error {
	return proc.WithFreePorts(1, func(ports []int) (*process, error) { return start(ports[0]) },
		func(p *process) {
			s.progress("%s lost a free port to another process; retrying with a new port", p.Name)
			s.n.forget(p)
		})
}

func waitListening(ctx context.Context, p *process, addr string) error {
	return waitFor(ctx, p, "listening on "+addr, func(ctx context.Context) error {
		c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	})
}
