package rules

import (
	"encoding/json"
	"strings"
	"testing"
)

const tNS = "kubernetes:core/v1:Namespace"

func TestNamespacePodSecurity(t *testing.T) {
	label := func(v any) map[string]any {
		return map[string]any{"metadata": map[string]any{"name": "apps", "labels": map[string]any{enforceLabel: v}}}
	}
	runRuleTable(t, "namespace-pod-security", []ruleCase{
		{name: "restricted", typ: tNS, props: label("restricted")},
		{name: "baseline", typ: tNS, want: []string{`Namespace "app", field metadata.labels.pod-security.kubernetes.io/enforce: the namespace enforces Pod Security "baseline"`}, props: label("baseline")},
		{name: "no label", typ: tNS, want: []string{`does not set the label pod-security.kubernetes.io/enforce, and no reason is recorded in the annotation infralab.dev/psa-exception-reason. Fix: label it pod-security.kubernetes.io/enforce: restricted; if it must be relaxed, set the annotation infralab.dev/psa-exception-reason to why and add an exception for namespace "apps"`},
			props: map[string]any{"metadata": map[string]any{"name": "apps"}}},
		{name: "unknown label", typ: tNS, unknowns: 1, props: label(Unknown())},
		{name: "unknown labels map", typ: tNS, unknowns: 1, props: map[string]any{"metadata": map[string]any{"labels": Unknown()}}},
	})
}

// TestNamespacePodSecurityExceptionAnnotation pins down who grants a Pod Security exception: the
// pack config only. The apps layer's reason annotation shapes the message, never the verdict.
func TestNamespacePodSecurityExceptionAnnotation(t *testing.T) {
	const reason = `node-exporter needs hostPID & "hostNetwork"`
	labelled := func(level string, annotation any) map[string]any {
		meta := map[string]any{"name": "monitoring-node", "labels": map[string]any{enforceLabel: level}}
		if annotation != nil {
			meta["annotations"] = map[string]any{PSAExceptionReasonAnnotation: annotation}
		}
		return map[string]any{"metadata": meta}
	}
	relaxed := func(annotation any) map[string]any { return labelled("privileged", annotation) }
	allow := func(ns string) []any {
		return []any{map[string]any{"rules": []any{"namespace-pod-security"}, "namespace": ns, "reason": "pack reviewed: " + reason}}
	}
	entry := `{"rules":["namespace-pod-security"],"namespace":"monitoring-node","reason":"node-exporter needs hostPID & \"hostNetwork\""}`
	cases := []struct {
		name  string
		props map[string]any
		allow []any
		want  []string // substrings of the one violation; none means the namespace passes
	}{
		{name: "annotated, pack exception", props: relaxed(reason), allow: allow("monitoring-node")},
		{name: "annotated, no pack exception", props: relaxed(reason), want: []string{
			`Namespace "app", field metadata.labels.pod-security.kubernetes.io/enforce: the namespace enforces Pod Security "privileged", not restricted`,
			`its annotation ` + PSAExceptionReasonAnnotation + ` gives the reason "node-exporter needs hostPID & \"hostNetwork\"", but only the policy pack config grants exceptions`,
			"Fix: add " + entry + " to exceptions.allow in the policy pack config"}},
		{name: "annotated, pack exception for another namespace", props: relaxed(reason), allow: allow("monitoring"), want: []string{"Fix: add " + entry}},
		{name: "not annotated, no pack exception", props: relaxed(nil), want: []string{
			`enforces Pod Security "privileged", not restricted, and no reason is recorded in the annotation ` + PSAExceptionReasonAnnotation,
			`set the annotation ` + PSAExceptionReasonAnnotation + ` to why and add an exception for namespace "monitoring-node"`}},
		{name: "not annotated, pack exception", props: relaxed(nil), allow: allow("monitoring-node")},
		{name: "blank annotation counts as none", props: relaxed("  "), want: []string{"no reason is recorded"}},
		{name: "annotation unknown in preview", props: relaxed(Unknown()), want: []string{
			`its annotation ` + PSAExceptionReasonAnnotation + ` may give a reason (unknown during preview, so not quoted)`,
			`add an exception for namespace "monitoring-node" with rules ["namespace-pod-security"] and that annotation's reason`}},
		{name: "secret annotation is not quoted", props: relaxed(Secret("classified")), want: []string{"(a Pulumi secret, so not quoted)", "that annotation's reason"}},
		{name: "restricted with a stale annotation", props: labelled("restricted", reason)},
	}
	rule := ruleNamed(t, "namespace-pod-security")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ex := ParseExceptions(map[string]any{"allow": tc.allow}, known)
			if len(ex.Problems) > 0 {
				t.Fatal(ex.Problems)
			}
			r := res(tNS, tc.props)
			got := ex.Filter(r, rule.Check(r, Settings{}))
			if len(tc.want) == 0 {
				if len(got) != 0 {
					t.Fatalf("want a pass, got %v", got)
				}
				return
			}
			if len(got) != 1 || got[0].Unknown {
				t.Fatalf("want one violation, got %+v", got)
			}
			msg := got[0].Message()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message does not mention %s:\n%s", w, msg)
				}
			}
			if strings.Contains(msg, "classified") {
				t.Errorf("message leaks a secret annotation: %s", msg)
			}
		})
	}
}

// The entry a message names is exactly what makes the namespace pass once pasted into the config.
func TestNamespacePodSecurityEntryPastes(t *testing.T) {
	r := res(tNS, map[string]any{"metadata": map[string]any{"name": "legacy", "labels": map[string]any{enforceLabel: "baseline"},
		"annotations": map[string]any{PSAExceptionReasonAnnotation: "vendor chart runs as root; tracked in #7"}}})
	fs := checkNamespacePodSecurity(r, Settings{})
	if len(fs) != 1 {
		t.Fatalf("findings = %+v", fs)
	}
	pasted, _, ok := strings.Cut(strings.TrimPrefix(fs[0].Fix, "add "), " to exceptions.allow")
	if !ok {
		t.Fatalf("fix names no entry: %s", fs[0].Fix)
	}
	var entry map[string]any
	if err := json.Unmarshal([]byte(pasted), &entry); err != nil {
		t.Fatalf("entry %s is not JSON: %v", pasted, err)
	}
	ex := ParseExceptions(map[string]any{"allow": []any{entry}}, known)
	if len(ex.Problems) > 0 || len(ex.Filter(r, fs)) != 0 {
		t.Errorf("pasting %s did not let the namespace pass: %v", pasted, ex.Problems)
	}
}

func namespace(pulumiName, name string) Resource {
	meta := map[string]any{}
	if name != "" {
		meta["name"] = name
	}
	return Resource{Type: tNS, Name: pulumiName, URN: "urn:pulumi:dev::infralab::" + tNS + "::" + pulumiName, Props: MapFromGo(map[string]any{"metadata": meta})}
}

func netpol(name string, ns any, spec map[string]any, deps ...string) Resource {
	return Resource{Type: networkPolicyType, Name: name, URN: "urn:pulumi:dev::infralab::" + networkPolicyType + "::" + name,
		Props: MapFromGo(map[string]any{"metadata": map[string]any{"namespace": ns}, "spec": spec}), DependsOn: deps}
}

func denyAll() map[string]any {
	return map[string]any{"podSelector": map[string]any{}, "policyTypes": []any{"Ingress", "Egress"}}
}

func TestDefaultDeny(t *testing.T) {
	apps := namespace("apps", "apps")
	mon := namespace("monitoring", "") // autonamed: known by its Pulumi name
	cases := []struct {
		name      string
		rs        []Resource
		violating []string // namespaces reported
		unknowns  int
	}{
		{name: "each namespace denied", rs: []Resource{apps, mon, netpol("d1", "apps", denyAll()), netpol("d2", "monitoring", denyAll())}},
		{name: "missing policy", rs: []Resource{apps, mon, netpol("d1", "apps", denyAll())}, violating: []string{"monitoring"}},
		{name: "ingress only", rs: []Resource{apps, netpol("d1", "apps", map[string]any{"podSelector": map[string]any{}, "policyTypes": []any{"Ingress"}})},
			violating: []string{"apps"}},
		{name: "selects some pods only", rs: []Resource{apps, netpol("d1", "apps", set(denyAll(), "podSelector.matchLabels", map[string]any{"app": "x"}))},
			violating: []string{"apps"}},
		{name: "allows something", rs: []Resource{apps, netpol("d1", "apps", set(denyAll(), "ingress", []any{map[string]any{}}))},
			violating: []string{"apps"}},
		{name: "deny in another namespace", rs: []Resource{apps, netpol("d1", "other", denyAll())}, violating: []string{"apps"}},
		{name: "allow policy next to deny policy", rs: []Resource{apps, netpol("d1", "apps", denyAll()),
			netpol("a", "apps", set(denyAll(), "ingress", []any{map[string]any{}}))}},
		{name: "namespace unknown, resolved by dependency", rs: []Resource{apps, netpol("d1", Unknown(), denyAll(), apps.URN)}},
		{name: "namespace unknown, no dependency", rs: []Resource{apps, netpol("d1", Unknown(), denyAll())}, unknowns: 1},
		{name: "policyTypes unknown", rs: []Resource{apps, netpol("d1", "apps", set(denyAll(), "policyTypes", Unknown()))}, unknowns: 1},
		{name: "no namespaces", rs: []Resource{netpol("d1", "apps", denyAll())}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			unknowns := 0
			for _, f := range checkDefaultDeny(tc.rs) {
				if f.Unknown {
					unknowns++
					continue
				}
				got = append(got, f.Message())
			}
			if len(got) != len(tc.violating) {
				t.Fatalf("got %v, want violations for %v", got, tc.violating)
			}
			for i, ns := range tc.violating {
				if !strings.Contains(got[i], `namespace "`+ns+`" has no default-deny NetworkPolicy`) {
					t.Errorf("got %q", got[i])
				}
			}
			if unknowns != tc.unknowns {
				t.Errorf("unknowns = %d, want %d", unknowns, tc.unknowns)
			}
		})
	}
}
