package rules

import (
	"slices"
	"strings"
	"testing"
)

func known(name string) bool { return slices.Contains(RuleNames(), name) }

func TestParseExceptions(t *testing.T) {
	cases := []struct {
		name     string
		cfg      map[string]any
		problems []string
		valid    int
	}{
		{name: "none", cfg: map[string]any{}},
		{name: "good", valid: 2, cfg: map[string]any{"allow": []any{
			map[string]any{"rules": []any{"pod-read-only-root-filesystem"}, "resource": "postgres", "reason": "initdb writes to /var/run"},
			map[string]any{"rules": []any{"namespace-pod-security"}, "namespace": "monitoring", "reason": "node exporter"},
		}}},
		{name: "no reason", cfg: map[string]any{"allow": []any{
			map[string]any{"rules": []any{"pod-privileged"}, "resource": "x", "reason": "  "}}},
			problems: []string{"exceptions.allow[0].reason: an exception needs a reason"}},
		{name: "unknown rule and no target", cfg: map[string]any{"allow": []any{
			map[string]any{"rules": []any{"pod-privilegd"}, "reason": "r"}}},
			problems: []string{`exceptions.allow[0]: set resource`, `exceptions.allow[0].rules[0]: no rule is named "pod-privilegd"`}},
		{name: "no rules", cfg: map[string]any{"allow": []any{map[string]any{"resource": "x", "reason": "r"}}},
			problems: []string{"exceptions.allow[0].rules"}},
		{name: "not a list", cfg: map[string]any{"allow": "everything"}, problems: []string{"must be a list"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ex := ParseExceptions(tc.cfg, known)
			if len(ex.Problems) != len(tc.problems) {
				t.Fatalf("problems = %q, want %q", ex.Problems, tc.problems)
			}
			for i, p := range tc.problems {
				if !strings.Contains(ex.Problems[i], p) {
					t.Errorf("problem %q does not mention %q", ex.Problems[i], p)
				}
			}
			if len(ex.valid) != tc.valid {
				t.Errorf("valid = %d, want %d", len(ex.valid), tc.valid)
			}
		})
	}
}

func TestExceptionsFilter(t *testing.T) {
	ex := ParseExceptions(map[string]any{"allow": []any{
		map[string]any{"rules": []any{"pod-read-only-root-filesystem"}, "resource": "app", "reason": "writes its cache"},
		map[string]any{"rules": []any{"pod-privileged"}, "namespace": "system", "reason": "CNI agent"},
		map[string]any{"rules": []any{"namespace-pod-security"}, "namespace": "monitoring", "reason": "node exporter"},
		map[string]any{"rules": []any{"pod-capabilities"}, "resource": "app", "reason": ""}, // invalid: never applied
	}}, known)
	spec := set(set(goodPodSpec(), "containers.0.securityContext.readOnlyRootFilesystem", false), "containers.0.securityContext.privileged", true)
	set(spec, "containers.0.securityContext.capabilities", nil)
	r := res(tDeployment, wrap(tDeployment, spec)) // Pulumi name "app", namespace "apps"
	var left []string
	for _, rule := range ResourceRules() {
		for _, f := range ex.Filter(r, rule.Check(r, Settings{})) {
			left = append(left, f.Rule)
		}
	}
	if want := []string{"pod-privileged", "pod-capabilities"}; !slices.Equal(left, want) {
		t.Errorf("left %v, want %v (by name allowed, other namespace kept, reason-less ignored)", left, want)
	}
	inSystem := res(tDeployment, set(wrap(tDeployment, spec), "metadata.namespace", "system"))
	if _, ok := ex.Allows("pod-privileged", inSystem); !ok {
		t.Error("namespace exception not applied")
	}
	if _, ok := ex.Allows("pod-privileged", Resource{Type: tDeployment, Name: "other", URN: "u"}); ok {
		t.Error("namespace exception applied outside its namespace")
	}
	byURN := ParseExceptions(map[string]any{"allow": []any{map[string]any{"rules": []any{"pod-privileged"}, "resource": r.URN, "reason": "r"}}}, known)
	if _, ok := byURN.Allows("pod-privileged", r); !ok {
		t.Error("URN exception not applied")
	}
	mon := namespace("mon", "monitoring")
	if got := ex.Filter(mon, checkNamespacePodSecurity(mon, Settings{})); len(got) != 0 {
		t.Errorf("namespace exception for a Namespace resource not applied: %v", got)
	}
}
