package rules

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"k8s.io/pod-security-admission/api"
)

const (
	namespaceType     = "kubernetes:core/v1:Namespace"
	networkPolicyType = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
	enforceLabel      = "pod-security.kubernetes.io/enforce"
)

// PSAExceptionReasonAnnotation is where the apps layer writes, on a Namespace it relaxes, the
// reason it was given. namespace-pod-security quotes it and names the pack config entry to add;
// it never grants the exception itself.
const PSAExceptionReasonAnnotation = "infralab.dev/psa-exception-reason"

// NamespaceName is the Kubernetes name of a Namespace resource: metadata.name, or the Pulumi
// name when metadata.name is not set or not known yet.
func NamespaceName(r Resource) string {
	if s, ok := root(r.Props, "").at("metadata", "name").str(); ok && s != "" {
		return s
	}
	return r.Name
}

func checkNamespacePodSecurity(r Resource, s Settings) []Finding {
	if r.Type != namespaceType {
		return nil
	}
	f := newFinder("namespace-pod-security", r)
	meta := root(r.Props, "").get("metadata")
	n := meta.at("labels", enforceLabel)
	v, set, known := readString(f, "", n)
	want := s.PodSecurity.levelVersion().Level
	if lvl := api.Level(v); !known || set && lvl.Valid() && api.CompareLevels(lvl, want) >= 0 {
		return f.out
	}
	what := "the namespace does not set the label " + enforceLabel
	if set {
		what = fmt.Sprintf("the namespace enforces Pod Security %q, not %s", v, want)
	}
	ns := NamespaceName(r)
	// The annotation only shapes the message: the program is what this pack polices, so a
	// program must not be able to waive a rule by annotating its own resources.
	reason, annotated, quotable := psaExceptionReason(meta.at("annotations", PSAExceptionReasonAnnotation))
	var fix string
	switch {
	case annotated && quotable:
		what += fmt.Sprintf("; its annotation %s gives the reason %q, but only the policy pack config grants exceptions",
			PSAExceptionReasonAnnotation, reason)
		fix = fmt.Sprintf("add %s to exceptions.allow in the policy pack config, or label it %s: %s",
			exceptionEntry(f.rule, ns, reason), enforceLabel, want)
	case annotated:
		what += fmt.Sprintf("; its annotation %s may give a reason (%s, so not quoted), but only the policy pack config grants exceptions",
			PSAExceptionReasonAnnotation, reason)
		fix = fmt.Sprintf("add an exception for namespace %q with rules [%q] and that annotation's reason to exceptions.allow in the policy pack config, or label it %s: %s",
			ns, f.rule, enforceLabel, want)
	default:
		what += fmt.Sprintf(", and no reason is recorded in the annotation %s", PSAExceptionReasonAnnotation)
		fix = fmt.Sprintf("label it %s: %s; if it must be relaxed, set the annotation %s to why and add an exception for namespace %q with that reason in the policy pack config",
			enforceLabel, want, PSAExceptionReasonAnnotation, ns)
	}
	f.bad("", n.path, what, fix)
	return f.out
}

// psaExceptionReason reads the reason annotation. quotable=false when it may be set but cannot
// go into a message: unknown during preview, or a Pulumi secret that a message would leak; then
// reason says which.
func psaExceptionReason(n node) (reason string, annotated, quotable bool) {
	if n.unknown {
		return "unknown during preview", true, false
	}
	s, ok := n.str()
	if !ok || strings.TrimSpace(s) == "" {
		return "", false, false
	}
	if n.isSecret() {
		return "a Pulumi secret", true, false
	}
	return s, true, true
}

// exceptionEntry renders one exceptions.allow entry as JSON, so a message can show the exact
// text to paste into the pack config (json, not %q: Go quoting is not always valid JSON).
func exceptionEntry(rule, namespace, reason string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(struct {
		Rules     []string `json:"rules"`
		Namespace string   `json:"namespace"`
		Reason    string   `json:"reason"`
	}{[]string{rule}, namespace, reason})
	return strings.TrimSuffix(b.String(), "\n")
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
