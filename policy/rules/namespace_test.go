package rules

import (
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
		{name: "no label", typ: tNS, want: []string{`add an exception for namespace "apps"`}, props: map[string]any{"metadata": map[string]any{"name": "apps"}}},
		{name: "unknown label", typ: tNS, unknowns: 1, props: label(Unknown())},
		{name: "unknown labels map", typ: tNS, unknowns: 1, props: map[string]any{"metadata": map[string]any{"labels": Unknown()}}},
	})
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
