package apps

import (
	"fmt"
	"sort"
	"strings"
	"testing"
)

// The expected policies below are written out by hand from the spec, not derived from
// networkPolicies(), so a change in the code cannot silently change the test's expectation.

func TestNetworkPoliciesMatchSpec(t *testing.T) {
	const (
		api      = "{app.kubernetes.io/name=healthcare-api}"
		pg       = "{app.kubernetes.io/name=postgres}"
		exporter = "{app.kubernetes.io/name=postgres-exporter}"
		roles    = "{app.kubernetes.io/name=postgres-roles}"
		prom     = "{app.kubernetes.io/name=prometheus}"
		dns      = "to(ns{kubernetes.io/metadata.name=kube-system} pods{k8s-app=kube-dns}) ports(UDP/53,TCP/53)"
	)
	deny := func(ns string) []string {
		return []string{
			ns + "/default-deny pods={} types=Ingress,Egress in=[] out=[]",
			ns + "/allow-dns pods={} types=Egress out=[" + dns + "]",
		}
	}
	common := []string{
		"healthcare/api-ingress pods=" + api + " types=Ingress in=[from(ns{infralab.dev/api-client=true} pods{}|cidr:10.10.10.0/24) ports(TCP/8080)]",
		"healthcare/api-egress-postgres pods=" + api + " types=Egress out=[to(ns{kubernetes.io/metadata.name=database} pods" + pg + ") ports(TCP/5432)]",
		"database/postgres-ingress pods=" + pg + " types=Ingress in=[from(ns{kubernetes.io/metadata.name=healthcare} pods" + api + "|ns=self pods" + exporter + "|ns=self pods" + roles + ") ports(TCP/5432)]",
		"database/exporter-egress-postgres pods=" + exporter + " types=Egress out=[to(ns=self pods" + pg + ") ports(TCP/5432)]",
		"database/roles-egress-postgres pods=" + roles + " types=Egress out=[to(ns=self pods" + pg + ") ports(TCP/5432)]",
	}
	common = append(common, deny("healthcare")...)
	common = append(common, deny("database")...)
	scrape := append(deny("monitoring"),
		"healthcare/api-ingress-prometheus pods="+api+" types=Ingress in=[from(ns{kubernetes.io/metadata.name=monitoring} pods"+prom+") ports(TCP/8080)]",
		"database/exporter-ingress-prometheus pods="+exporter+" types=Ingress in=[from(ns{kubernetes.io/metadata.name=monitoring} pods"+prom+") ports(TCP/9187)]",
		"monitoring/prometheus-egress-targets pods="+prom+" types=Egress out=[to(ns{kubernetes.io/metadata.name=healthcare} pods"+api+") ports(TCP/8080); to(ns{kubernetes.io/metadata.name=database} pods"+exporter+") ports(TCP/9187)]",
	)
	chart := append(deny("monitoring-node"),
		"monitoring/chart-internal pods={} types=Ingress,Egress in=[from(ns=self pods{}) ports()] out=[to(ns=self pods{}) ports()]",
		"monitoring/chart-egress-kube-api pods={} types=Egress out=[to(cidr:10.10.10.10/32) ports(TCP/6443)]",
		"monitoring/chart-ingress-webhook pods={} types=Ingress in=[from(cidr:10.10.10.10/32) ports(TCP/10250)]",
		"monitoring/prometheus-egress-nodes pods="+prom+" types=Egress out=[to(cidr:10.10.10.0/24) ports(TCP/10250,TCP/9100); to(ns{kubernetes.io/metadata.name=kube-system} pods{k8s-app=kube-dns}) ports(TCP/9153)]",
	)
	cases := map[string][]string{
		MonitoringOff:        common,
		MonitoringStandalone: append(append([]string{}, common...), scrape...),
		MonitoringChart:      append(append(append([]string{}, common...), scrape...), chart...),
	}
	for mode, want := range cases {
		t.Run(mode, func(t *testing.T) {
			res := declare(t, modes[mode]())
			var got []string
			for _, r := range ofType(res, "kubernetes:networking.k8s.io/v1:NetworkPolicy") {
				got = append(got, normalisePolicy(r))
			}
			sort.Strings(got)
			sort.Strings(want)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("network policies differ from the spec\n got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
			// Every namespace we create has its default deny.
			for _, n := range ofType(res, "kubernetes:core/v1:Namespace") {
				ns := n.str("metadata", "name")
				if !contains(got, ns+"/default-deny pods={} types=Ingress,Egress in=[] out=[]") {
					t.Errorf("namespace %s has no default-deny policy", ns)
				}
			}
		})
	}
}

func TestAPIIngressIsOnlyWhatConfigAllows(t *testing.T) {
	a := offArgs()
	a.API.AllowIngressFrom = nil
	for _, r := range ofType(declare(t, a), "kubernetes:networking.k8s.io/v1:NetworkPolicy") {
		if r.str("metadata", "namespace") == "healthcare" && len(asList(r.get("spec", "ingress"))) > 0 {
			t.Errorf("with no configured sources and monitoring off, %s still allows ingress", r.key())
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func normalisePolicy(r recorded) string {
	spec := asMap(r.get("spec"))
	var types []string
	for _, t := range asList(spec["policyTypes"]) {
		types = append(types, t.(string))
	}
	s := fmt.Sprintf("%s/%s pods=%s types=%s", r.str("metadata", "namespace"), r.str("metadata", "name"),
		normSelector(spec["podSelector"]), strings.Join(types, ","))
	rules := func(key, peerKey, verb string) string {
		var out []string
		for _, rule := range asList(spec[key]) {
			var peers []string
			for _, p := range asList(get(rule, peerKey)) {
				peers = append(peers, normPeer(asMap(p)))
			}
			var ports []string
			for _, p := range asList(get(rule, "ports")) {
				ports = append(ports, fmt.Sprintf("%v/%v", get(p, "protocol"), get(p, "port")))
			}
			out = append(out, fmt.Sprintf("%s(%s) ports(%s)", verb, strings.Join(peers, "|"), strings.Join(ports, ",")))
		}
		return "[" + strings.Join(out, "; ") + "]"
	}
	for _, t := range types {
		if t == "Ingress" {
			s += " in=" + rules("ingress", "from", "from")
		} else {
			s += " out=" + rules("egress", "to", "to")
		}
	}
	return s
}

func normPeer(p map[string]any) string {
	if c := get(p, "ipBlock", "cidr"); c != nil {
		return fmt.Sprintf("cidr:%v", c)
	}
	ns := "ns=self"
	if sel, ok := p["namespaceSelector"]; ok {
		ns = "ns" + normSelector(sel)
	}
	return ns + " pods" + normSelector(p["podSelector"])
}

func normSelector(v any) string {
	m := asMap(get(v, "matchLabels"))
	var kv []string
	for k, val := range m {
		kv = append(kv, fmt.Sprintf("%s=%v", k, val))
	}
	sort.Strings(kv)
	if exprs := get(v, "matchExpressions"); exprs != nil {
		kv = append(kv, fmt.Sprintf("expr:%v", exprs))
	}
	return "{" + strings.Join(kv, ",") + "}"
}
