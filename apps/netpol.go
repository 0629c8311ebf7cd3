package apps

import (
	"sort"
	"strings"

	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	networkingv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/networking/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

const nsNameLabel = "kubernetes.io/metadata.name"

// peer is one side of an allow rule. Namespace "" means the policy's own namespace; a nil Pods
// selects every pod; CIDR excludes the selectors.
type peer struct {
	Namespace string
	Pods      map[string]string
	CIDR      string
	// NamespaceLabels selects namespaces by labels (used for configured api sources).
	NamespaceLabels map[string]string
}

type port struct {
	Protocol string
	Port     int
}

// rule allows traffic from/to any of Peers on any of Ports (no ports: every port).
type rule struct {
	Peers []peer
	Ports []port
}

// policy is one NetworkPolicy. Pods nil selects every pod in the namespace. A nil Ingress or
// Egress leaves that direction out of policyTypes; an empty non-nil slice denies it.
type policy struct {
	Namespace string
	Name      string
	Pods      map[string]string
	Ingress   []rule
	Egress    []rule
}

var (
	dnsPeer  = peer{Namespace: "kube-system", Pods: map[string]string{"k8s-app": "kube-dns"}}
	dnsPorts = []port{{"UDP", 53}, {"TCP", 53}}
)

func app(name string) map[string]string { return map[string]string{labelName: name} }

// networkPolicies is the complete allow-list, as data so tests can compare it with the spec.
func (a PlatformArgs) networkPolicies() []policy {
	ns := a.Namespaces
	monitoring := a.Monitoring.Mode != MonitoringOff
	prom := peer{Namespace: ns.Monitoring, Pods: app(prometheusName)}
	var out []policy

	for _, n := range a.createdNamespaces() {
		out = append(out,
			policy{Namespace: n, Name: "default-deny", Ingress: []rule{}, Egress: []rule{}},
			policy{Namespace: n, Name: "allow-dns", Egress: []rule{{Peers: []peer{dnsPeer}, Ports: dnsPorts}}},
		)
	}

	// healthcare-api
	if len(a.API.AllowIngressFrom) > 0 {
		var peers []peer
		for _, s := range a.API.AllowIngressFrom {
			peers = append(peers, peer{CIDR: s.CIDR, NamespaceLabels: s.NamespaceLabels, Pods: s.PodLabels})
		}
		out = append(out, policy{Namespace: ns.API, Name: "api-ingress", Pods: app(apiName),
			Ingress: []rule{{Peers: peers, Ports: []port{{"TCP", a.API.Port}}}}})
	}
	out = append(out, policy{Namespace: ns.API, Name: "api-egress-postgres", Pods: app(apiName),
		Egress: []rule{{Peers: []peer{{Namespace: ns.Database, Pods: app(postgresName)}}, Ports: []port{{"TCP", postgresPort}}}}})

	// database
	out = append(out,
		policy{Namespace: ns.Database, Name: "postgres-ingress", Pods: app(postgresName),
			Ingress: []rule{{Peers: []peer{
				{Namespace: ns.API, Pods: app(apiName)},
				{Pods: app(exporterName)},
				{Pods: app(rolesJobName)},
			}, Ports: []port{{"TCP", postgresPort}}}}},
		policy{Namespace: ns.Database, Name: "exporter-egress-postgres", Pods: app(exporterName),
			Egress: []rule{{Peers: []peer{{Pods: app(postgresName)}}, Ports: []port{{"TCP", postgresPort}}}}},
		policy{Namespace: ns.Database, Name: "roles-egress-postgres", Pods: app(rolesJobName),
			Egress: []rule{{Peers: []peer{{Pods: app(postgresName)}}, Ports: []port{{"TCP", postgresPort}}}}},
	)

	if !monitoring {
		return out
	}
	// Prometheus scrapes the api and the exporter.
	out = append(out,
		policy{Namespace: ns.API, Name: "api-ingress-prometheus", Pods: app(apiName),
			Ingress: []rule{{Peers: []peer{prom}, Ports: []port{{"TCP", a.API.Port}}}}},
		policy{Namespace: ns.Database, Name: "exporter-ingress-prometheus", Pods: app(exporterName),
			Ingress: []rule{{Peers: []peer{prom}, Ports: []port{{"TCP", exporterPort}}}}},
		policy{Namespace: ns.Monitoring, Name: "prometheus-egress-targets", Pods: app(prometheusName),
			Egress: []rule{
				{Peers: []peer{{Namespace: ns.API, Pods: app(apiName)}}, Ports: []port{{"TCP", a.API.Port}}},
				{Peers: []peer{{Namespace: ns.Database, Pods: app(exporterName)}}, Ports: []port{{"TCP", exporterPort}}},
			}},
	)
	if a.Monitoring.Mode == MonitoringStandalone {
		return append(out, a.standaloneComponentPolicies(prom)...)
	}
	if a.Monitoring.Mode != MonitoringChart {
		return out
	}

	// The chart's components (operator, Prometheus, Alertmanager, Grafana, kube-state-metrics)
	// talk to each other and to the API server; these rules open exactly that.
	var api, nodes []peer
	for _, c := range a.Monitoring.KubeAPICIDRs {
		api = append(api, peer{CIDR: c})
	}
	for _, c := range a.Monitoring.NodeCIDRs {
		nodes = append(nodes, peer{CIDR: c})
	}
	same := []peer{{}}
	out = append(out,
		policy{Namespace: ns.Monitoring, Name: "chart-internal",
			Ingress: []rule{{Peers: same}}, Egress: []rule{{Peers: same}}},
		policy{Namespace: ns.Monitoring, Name: "chart-egress-kube-api",
			Egress: []rule{{Peers: api, Ports: []port{{"TCP", a.Monitoring.KubeAPIPort}}}}},
		// The operator's admission webhook is called by the API server.
		policy{Namespace: ns.Monitoring, Name: "chart-ingress-webhook",
			Ingress: []rule{{Peers: api, Ports: []port{{"TCP", 10250}}}}},
		policy{Namespace: ns.Monitoring, Name: "prometheus-egress-nodes", Pods: app(prometheusName),
			Egress: []rule{
				{Peers: nodes, Ports: []port{{"TCP", 10250}, {"TCP", 9100}}},
				{Peers: []peer{dnsPeer}, Ports: []port{{"TCP", 9153}}},
			}},
	)
	return out
}

// ensureNetworkPolicies declares every policy from networkPolicies.
func (p *builder) ensureNetworkPolicies() error {
	for _, pol := range p.args.networkPolicies() {
		spec := &networkingv1.NetworkPolicySpecArgs{PodSelector: labelSelector(pol.Pods)}
		var types pulumi.StringArray
		if pol.Ingress != nil {
			types = append(types, pulumi.String("Ingress"))
			var rules networkingv1.NetworkPolicyIngressRuleArray
			for _, r := range pol.Ingress {
				rules = append(rules, networkingv1.NetworkPolicyIngressRuleArgs{From: peers(r.Peers), Ports: ports(r.Ports)})
			}
			spec.Ingress = rules
		}
		if pol.Egress != nil {
			types = append(types, pulumi.String("Egress"))
			var rules networkingv1.NetworkPolicyEgressRuleArray
			for _, r := range pol.Egress {
				rules = append(rules, networkingv1.NetworkPolicyEgressRuleArgs{To: peers(r.Peers), Ports: ports(r.Ports)})
			}
			spec.Egress = rules
		}
		spec.PolicyTypes = types
		if _, err := networkingv1.NewNetworkPolicy(p.ctx, pol.Namespace+"-"+pol.Name, &networkingv1.NetworkPolicyArgs{
			Metadata: p.meta(pol.Name, pol.Namespace, "network-policy", false),
			Spec:     spec,
		}, p.opts(pol.Namespace)...); err != nil {
			return err
		}
	}
	return nil
}

func labelSelector(m map[string]string) *metav1.LabelSelectorArgs {
	sel := &metav1.LabelSelectorArgs{}
	if len(m) > 0 {
		sm := pulumi.StringMap{}
		for _, k := range sortedLabelKeys(m) {
			sm[k] = pulumi.String(m[k])
		}
		sel.MatchLabels = sm
	}
	return sel
}

func peers(ps []peer) networkingv1.NetworkPolicyPeerArray {
	var out networkingv1.NetworkPolicyPeerArray
	for _, p := range ps {
		if p.CIDR != "" {
			out = append(out, networkingv1.NetworkPolicyPeerArgs{IpBlock: &networkingv1.IPBlockArgs{Cidr: pulumi.String(p.CIDR)}})
			continue
		}
		np := networkingv1.NetworkPolicyPeerArgs{PodSelector: labelSelector(p.Pods)}
		switch {
		case p.Namespace != "":
			np.NamespaceSelector = labelSelector(map[string]string{nsNameLabel: p.Namespace})
		case len(p.NamespaceLabels) > 0:
			np.NamespaceSelector = labelSelector(p.NamespaceLabels)
		}
		out = append(out, np)
	}
	return out
}

func ports(ps []port) networkingv1.NetworkPolicyPortArray {
	var out networkingv1.NetworkPolicyPortArray
	for _, p := range ps {
		out = append(out, networkingv1.NetworkPolicyPortArgs{Protocol: pulumi.String(p.Protocol), Port: pulumi.Int(p.Port)})
	}
	return out
}

func sortedLabelKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// standaloneComponentPolicies open what the standalone Prometheus's companions need, each only
// when it runs: Prometheus scrapes kube-state-metrics and the nodes (kubelet 10250,
// node-exporter 9100) and sends alerts to Alertmanager; kube-state-metrics watches the API
// server; Alertmanager calls its webhook. node-exporter uses the host's network, where
// NetworkPolicies do not apply; its namespace still gets default-deny for any other pod.
func (a PlatformArgs) standaloneComponentPolicies(prom peer) []policy {
	ns := a.Namespaces.Monitoring
	m := a.Monitoring
	var out []policy
	var egress []rule
	if a.kubeStateMetricsOn() {
		egress = append(egress, rule{Peers: []peer{{Pods: app(ksmName)}}, Ports: []port{{"TCP", ksmPort}}})
		var api []peer
		for _, c := range m.KubeAPICIDRs {
			api = append(api, peer{CIDR: c})
		}
		out = append(out,
			policy{Namespace: ns, Name: "kube-state-metrics-ingress-prometheus", Pods: app(ksmName),
				Ingress: []rule{{Peers: []peer{prom}, Ports: []port{{"TCP", ksmPort}}}}},
			policy{Namespace: ns, Name: "kube-state-metrics-egress-kube-api", Pods: app(ksmName),
				Egress: []rule{{Peers: api, Ports: []port{{"TCP", m.KubeAPIPort}}}}},
		)
	}
	if len(m.NodeAddresses) > 0 {
		var nodes []peer
		for _, addr := range m.NodeAddresses {
			nodes = append(nodes, peer{CIDR: hostCIDR(addr)})
		}
		ports := []port{{"TCP", 10250}}
		if a.nodeExporterOn() {
			ports = append(ports, port{"TCP", nodeExporterPort})
		}
		egress = append(egress, rule{Peers: nodes, Ports: ports})
	}
	if a.alertmanagerOn() {
		egress = append(egress, rule{Peers: []peer{{Pods: app(alertmanagerName)}}, Ports: []port{{"TCP", alertmanagerPort}}})
		out = append(out, policy{Namespace: ns, Name: "alertmanager-ingress-prometheus", Pods: app(alertmanagerName),
			Ingress: []rule{{Peers: []peer{prom}, Ports: []port{{"TCP", alertmanagerPort}}}}})
		if ip, p, err := webhookPeer(m.AlertWebhookURL); err == nil { // validated before
			out = append(out, policy{Namespace: ns, Name: "alertmanager-egress-webhook", Pods: app(alertmanagerName),
				Egress: []rule{{Peers: []peer{{CIDR: hostCIDR(ip.String())}}, Ports: []port{{"TCP", p}}}}})
		}
	}
	if len(egress) > 0 {
		out = append(out, policy{Namespace: ns, Name: "prometheus-egress-components", Pods: app(prometheusName), Egress: egress})
	}
	return out
}

// hostCIDR is the one-address block of an IPv4 or IPv6 address.
func hostCIDR(addr string) string {
	if strings.Contains(addr, ":") {
		return addr + "/128"
	}
	return addr + "/32"
}
