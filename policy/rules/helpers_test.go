package rules

import (
	"strconv"
	"strings"
	"testing"
)

const (
	tPod        = "kubernetes:core/v1:Pod"
	tDeployment = "kubernetes:apps/v1:Deployment"
	tCronJob    = "kubernetes:batch/v1:CronJob"
)

func goodContainer(name string) map[string]any {
	return map[string]any{
		"name":            name,
		"image":           "ghcr.io/infralab/api:1.2.3",
		"imagePullPolicy": "IfNotPresent",
		"securityContext": map[string]any{
			"allowPrivilegeEscalation": false,
			"readOnlyRootFilesystem":   true,
			"capabilities":             map[string]any{"drop": []any{"ALL"}},
		},
		"resources": map[string]any{
			"requests": map[string]any{"cpu": "100m", "memory": "128Mi", "ephemeral-storage": "64Mi"},
			"limits":   map[string]any{"cpu": "500m", "memory": "256Mi", "ephemeral-storage": "256Mi"},
		},
	}
}

// goodPodSpec passes every pod rule.
func goodPodSpec() map[string]any {
	return map[string]any{
		"serviceAccountName":           "api",
		"automountServiceAccountToken": false,
		"securityContext": map[string]any{
			"runAsNonRoot":   true,
			"runAsUser":      10001,
			"runAsGroup":     10001,
			"seccompProfile": map[string]any{"type": "RuntimeDefault"},
		},
		"containers":     []any{goodContainer("app")},
		"initContainers": []any{goodContainer("migrate")},
		"volumes":        []any{map[string]any{"name": "tmp", "emptyDir": map[string]any{}}},
	}
}

// wrap puts a pod spec where the kind keeps it.
func wrap(kind string, spec map[string]any) map[string]any {
	meta := map[string]any{"name": "app", "namespace": "apps"}
	switch kind {
	case tPod:
		return map[string]any{"metadata": meta, "spec": spec}
	case tCronJob:
		return map[string]any{"metadata": meta, "spec": map[string]any{"jobTemplate": map[string]any{"spec": map[string]any{
			"template": map[string]any{"metadata": map[string]any{}, "spec": spec}}}}}
	default:
		return map[string]any{"metadata": meta, "spec": map[string]any{"template": map[string]any{
			"metadata": map[string]any{}, "spec": spec}}}
	}
}

// set writes v at a dotted path (numbers index arrays), creating maps on the way.
func set(m map[string]any, path string, v any) map[string]any {
	keys := strings.Split(path, ".")
	var cur any = m
	for i, k := range keys {
		last := i == len(keys)-1
		switch c := cur.(type) {
		case map[string]any:
			if last {
				if v == nil {
					delete(c, k)
				} else {
					c[k] = v
				}
				return m
			}
			if _, ok := c[k]; !ok {
				c[k] = map[string]any{}
			}
			cur = c[k]
		case []any:
			idx, err := strconv.Atoi(k)
			if err != nil {
				panic(path)
			}
			if last {
				c[idx] = v
				return m
			}
			cur = c[idx]
		default:
			panic("set: cannot step into " + path)
		}
	}
	return m
}

func res(typ string, props map[string]any) Resource {
	return Resource{Type: typ, Name: "app", URN: "urn:pulumi:dev::infralab::" + typ + "::app", Props: MapFromGo(props)}
}

func ruleNamed(t *testing.T, name string) ResourceRule {
	t.Helper()
	for _, r := range ResourceRules() {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no rule %q", name)
	return ResourceRule{}
}

type ruleCase struct {
	name  string
	typ   string
	props map[string]any
	// want lists one substring per expected violation message, in any order.
	want     []string
	unknowns int
	settings Settings
}

func runRuleTable(t *testing.T, rule string, cases []ruleCase) {
	t.Helper()
	r := ruleNamed(t, rule)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			typ := tc.typ
			if typ == "" {
				typ = tPod
			}
			var violations []string
			unknowns := 0
			for _, f := range r.Check(res(typ, tc.props), tc.settings) {
				if f.Rule != rule {
					t.Errorf("finding has rule %q, want %q", f.Rule, rule)
				}
				if f.Unknown {
					unknowns++
					continue
				}
				violations = append(violations, f.Message())
			}
			if len(violations) != len(tc.want) {
				t.Fatalf("got %d violations, want %d:\n%s", len(violations), len(tc.want), strings.Join(violations, "\n"))
			}
			for _, w := range tc.want {
				found := false
				for _, v := range violations {
					if strings.Contains(v, w) {
						found = true
					}
				}
				if !found {
					t.Errorf("no violation mentions %q:\n%s", w, strings.Join(violations, "\n"))
				}
			}
			if unknowns != tc.unknowns {
				t.Errorf("got %d unknown findings, want %d", unknowns, tc.unknowns)
			}
		})
	}
}

// kv is one edit of a pod spec: a dotted path and its new value (nil deletes).
type kv struct {
	p string
	v any
}

// podCase builds a case from the good pod spec with edits applied in order.
func podCase(name, kind string, want []string, unknowns int, edits ...kv) ruleCase {
	spec := goodPodSpec()
	for _, e := range edits {
		set(spec, e.p, e.v)
	}
	return ruleCase{name: name, typ: kind, props: wrap(kind, spec), want: want, unknowns: unknowns}
}
