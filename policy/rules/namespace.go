package rules

import (
	"fmt"
	"slices"
)

const (
	namespaceType     = "kubernetes:core/v1:Namespace"
	networkPolicyType = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
	enforceLabel      = "pod-security.kubernetes.io/enforce"
)

// NamespaceName is the Kubernetes name of a Namespace resource: metadata.name, or the Pulumi
// name when metadata.name is not set or not known yet.
func NamespaceName(r Resource) string {
	if s, ok := root(r.Props, "").at("metadata", "name").str(); ok && s != "" {
		return s
	}
	return r.Name
}

func checkNamespacePodSecurity(r Resource) []Finding {
	if r.Type != namespaceType {
		return nil
	}
	f := newFinder("namespace-pod-security", r)
	n := root(r.Props, "").at("metadata", "labels", enforceLabel)
	v, set, known := readString(f, "", n)
	if known && v != "restricted" {
		what := "the namespace does not set the label " + enforceLabel
		if set {
			what = fmt.Sprintf("the namespace enforces Pod Security %q, not restricted", v)
		}
		f.bad("", n.path, what, fmt.Sprintf(
			"label it %s: restricted, or add an exception for namespace %q with a reason in the policy pack config",
			enforceLabel, NamespaceName(r)))
	}
	return f.out
}

// namespaceOf resolves the namespace a namespaced resource lives in. When metadata.namespace
// is unknown during preview, a dependency on exactly one Namespace resource of the stack
// names it.
func namespaceOf(r Resource, nsByURN map[string]string) (name string, known bool) {
	n := root(r.Props, "").at("metadata", "namespace")
	if s, ok := n.str(); ok {
		return s, true
	}
	if !n.unknown {
		return "default", true
	}
	var found []string
	deps := append(slices.Clone(r.DependsOn), r.PropDeps["metadata"]...)
	for _, d := range deps {
		if ns, ok := nsByURN[d]; ok && !slices.Contains(found, ns) {
			found = append(found, ns)
		}
	}
	if len(found) == 1 {
		return found[0], true
	}
	return "", false
}

// defaultDeny reports whether a NetworkPolicy selects every pod, covers Ingress and Egress
// and allows nothing. known=false when a deciding field is unknown.
func defaultDeny(r Resource) (deny, known bool) {
	spec := root(r.Props, "").get("spec")
	sel := spec.get("podSelector")
	if sel.unknown {
		return false, false
	}
	for _, k := range []string{"matchLabels", "matchExpressions"} {
		if es, ok := sel.get(k).entries(); !ok {
			return false, false
		} else if len(es) > 0 {
			return false, true
		}
		if is, ok := sel.get(k).items(); !ok {
			return false, false
		} else if len(is) > 0 {
			return false, true
		}
	}
	types, ok := spec.get("policyTypes").items()
	if !ok {
		return false, false
	}
	var names []string
	for _, t := range types {
		if t.unknown {
			return false, false
		}
		s, _ := t.str()
		names = append(names, s)
	}
	if !slices.Contains(names, "Ingress") || !slices.Contains(names, "Egress") {
		return false, true
	}
	for _, k := range []string{"ingress", "egress"} {
		is, ok := spec.get(k).items()
		if !ok {
			return false, false
		}
		if len(is) > 0 {
			return false, true
		}
	}
	return true, true
}

func checkDefaultDeny(rs []Resource) []Finding {
	nsByURN := map[string]string{}
	for _, r := range rs {
		if r.Type == namespaceType {
			nsByURN[r.URN] = NamespaceName(r)
		}
	}
	denied := map[string]bool{}
	unknown := map[string]bool{}
	unresolved := false
	for _, r := range rs {
		if r.Type != networkPolicyType {
			continue
		}
		ns, nsKnown := namespaceOf(r, nsByURN)
		deny, known := defaultDeny(r)
		switch {
		case !nsKnown && (deny || !known):
			unresolved = true
		case !nsKnown:
		case deny:
			denied[ns] = true
		case !known:
			unknown[ns] = true
		}
	}
	var out []Finding
	for _, r := range rs {
		if r.Type != namespaceType {
			continue
		}
		ns := NamespaceName(r)
		f := newFinder("namespace-default-deny", r)
		switch {
		case denied[ns]:
		case unknown[ns] || unresolved:
			f.unknown("", "NetworkPolicy in namespace "+ns)
		default:
			f.bad("", "", fmt.Sprintf("namespace %q has no default-deny NetworkPolicy for Ingress and Egress", ns),
				fmt.Sprintf("add a NetworkPolicy in %q with podSelector: {}, policyTypes: [Ingress, Egress] and no rules, then allow the traffic each workload needs", ns))
		}
		out = append(out, f.out...)
	}
	return out
}
