package pack

import (
	"context"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/policyx"

	"github.com/infralab/infralab/policy/rules"
)

type recorder struct{ got []string }

func (r *recorder) ReportViolation(msg, urn string) { r.got = append(r.got, msg+" @"+urn) }

// harness runs policies the way policyx's analyzer server does: every resource policy, in
// order, for each resource, each with its own config; then every stack policy.
type harness struct {
	policies []policyx.Policy
	config   map[string]map[string]any
	found    map[string][]string // policy name -> messages
}

func (h *harness) run(t *testing.T, resources []policyx.AnalyzerResource) {
	t.Helper()
	h.found = map[string][]string{}
	for _, r := range resources {
		for _, p := range h.policies {
			if rp, ok := p.(policyx.ResourceValidationPolicy); ok {
				rec := &recorder{}
				if err := rp.Validate(context.Background(), policyx.ResourceValidationArgs{Manager: rec, Resource: r, Config: h.config[p.Name()]}); err != nil {
					t.Fatal(err)
				}
				h.found[p.Name()] = append(h.found[p.Name()], rec.got...)
			}
		}
	}
	for _, p := range h.policies {
		if sp, ok := p.(policyx.StackValidationPolicy); ok {
			rec := &recorder{}
			if err := sp.Validate(context.Background(), policyx.StackValidationArgs{Manager: rec, Resources: resources}); err != nil {
				t.Fatal(err)
			}
			h.found[p.Name()] = append(h.found[p.Name()], rec.got...)
		}
	}
}

func resource(typ, name string, props map[string]any) policyx.AnalyzerResource {
	return policyx.AnalyzerResource{Type: typ, Name: name, URN: "urn:pulumi:dev::infralab::" + typ + "::" + name, Properties: rules.MapFromGo(props)}
}

func TestPackWiring(t *testing.T) {
	pp, err := New()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]policyx.EnforcementLevel{}
	for _, p := range pp.Policies() {
		names[p.Name()] = p.EnforcementLevel()
	}
	for _, r := range rules.RuleNames() {
		if _, ok := names[r]; !ok {
			t.Errorf("rule %s has no policy", r)
		}
	}
	if names["pod-cpu-limit"] != policyx.EnforcementLevelAdvisory || names["pod-privileged"] != policyx.EnforcementLevelMandatory ||
		names[UnknownsPolicy] != policyx.EnforcementLevelAdvisory || names[ExceptionsPolicy] != policyx.EnforcementLevelMandatory {
		t.Errorf("levels: %v", names)
	}
	if pp.Policies()[0].Name() != ExceptionsPolicy {
		t.Error("the exceptions policy must run first: the others read what it records")
	}

	h := &harness{policies: pp.Policies(), config: map[string]map[string]any{ExceptionsPolicy: {"allow": []any{
		map[string]any{"rules": []any{"namespace-pod-security", "namespace-default-deny"}, "namespace": "legacy", "reason": "being migrated"},
		map[string]any{"rules": []any{"pod-privileged"}, "resource": "web"}, // no reason
	}}}}
	h.run(t, []policyx.AnalyzerResource{
		resource("pulumi:pulumi:Stack", "infralab-dev", nil),
		resource("kubernetes:core/v1:Namespace", "legacy", map[string]any{"metadata": map[string]any{"name": "legacy"}}),
		resource("kubernetes:core/v1:Namespace", "apps", map[string]any{"metadata": map[string]any{"name": "apps"}}),
		resource("kubernetes:core/v1:Pod", "web", map[string]any{"metadata": map[string]any{"namespace": "apps"}, "spec": map[string]any{
			"containers": []any{map[string]any{"name": "c", "image": rules.Unknown(), "securityContext": map[string]any{"privileged": true}}}}}),
	})
	expect := func(policy string, n int, substr string) {
		t.Helper()
		got := h.found[policy]
		if len(got) != n {
			t.Errorf("%s: got %d findings, want %d: %q", policy, len(got), n, got)
			return
		}
		if n > 0 && !strings.Contains(strings.Join(got, "\n"), substr) {
			t.Errorf("%s: %q does not mention %q", policy, got, substr)
		}
	}
	expect(ExceptionsPolicy, 1, "exceptions.allow[1].reason: an exception needs a reason")
	expect("pod-privileged", 1, `Pod "web", container "c", field spec.containers[0].securityContext.privileged`) // reason-less exception not applied
	expect("namespace-pod-security", 1, `Namespace "apps"`)
	expect("namespace-default-deny", 1, `namespace "apps" has no default-deny`)
	expect(UnknownsPolicy, 1, "pod-image-tag: Pod \"web\", container \"c\", field spec.containers[0].image: value is unknown")
	expect("pod-image-tag", 0, "")
}

// The settings policy's config reaches the Pod Security rules, and a bad one is reported on the
// stack.
func TestPackSettings(t *testing.T) {
	pp, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if pp.Policies()[1].Name() != SettingsPolicy {
		t.Fatal("the settings policy must run second, before the rules that read it")
	}
	rootPod := resource("kubernetes:core/v1:Pod", "web", map[string]any{"metadata": map[string]any{"namespace": "apps"}, "spec": map[string]any{
		"securityContext": map[string]any{"runAsNonRoot": false, "seccompProfile": map[string]any{"type": "RuntimeDefault"}},
		"containers":      []any{map[string]any{"name": "c", "image": "x:1"}}}})
	for _, tc := range []struct {
		name     string
		settings map[string]any
		nonRoot  int // findings of pod-run-as-non-root
		problem  string
	}{
		{name: "default restricted", nonRoot: 2}, // the pod level and the container that inherits it
		{name: "baseline", settings: map[string]any{"podSecurity": map[string]any{"level": "baseline"}}, nonRoot: 0},
		{name: "bad level keeps restricted", settings: map[string]any{"podSecurity": map[string]any{"level": "strict"}}, nonRoot: 2,
			problem: `settings.podSecurity: level "strict"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &harness{policies: pp.Policies(), config: map[string]map[string]any{SettingsPolicy: tc.settings}}
			h.run(t, []policyx.AnalyzerResource{resource("pulumi:pulumi:Stack", "infralab-dev", nil), rootPod})
			if got := len(h.found["pod-run-as-non-root"]); got != tc.nonRoot {
				t.Errorf("pod-run-as-non-root: %d findings, want %d: %q", got, tc.nonRoot, h.found["pod-run-as-non-root"])
			}
			got := strings.Join(h.found[SettingsPolicy], "\n")
			if tc.problem == "" && got != "" || tc.problem != "" && !strings.Contains(got, tc.problem) {
				t.Errorf("settings policy reported %q, want %q", got, tc.problem)
			}
		})
	}
}
