package rules

import (
	"fmt"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/property"
)

// Level is how hard a rule gates a change.
type Level int

const (
	// Mandatory violations make `pulumi preview` and `pulumi up` fail.
	Mandatory Level = iota
	// Advisory violations are printed as warnings and never block.
	Advisory
)

func (l Level) String() string {
	if l == Advisory {
		return "advisory"
	}
	return "mandatory"
}

// Resource is one resource as a policy sees it: its inputs as declared by the program.
type Resource struct {
	Type      string
	Name      string
	URN       string
	Props     property.Map
	DependsOn []string
	PropDeps  map[string][]string
}

// Finding is one thing a rule found wrong (or could not check) on one resource.
type Finding struct {
	Rule      string
	URN       string
	Resource  string // e.g. `Deployment "api"`
	Container string // e.g. `initContainer "migrate"`; empty when the finding is not about a container
	Field     string // property path, e.g. spec.template.spec.containers[0].securityContext.privileged
	Problem   string
	Fix       string
	// Unknown marks a field whose value is computed during preview, so it could not be checked.
	Unknown bool
}

// Message is the text a user sees: what, where, and the fix.
func (f Finding) Message() string {
	var b strings.Builder
	b.WriteString(f.Resource)
	if f.Container != "" {
		b.WriteString(", " + f.Container)
	}
	if f.Field != "" {
		fmt.Fprintf(&b, ", field %s", f.Field)
	}
	b.WriteString(": " + f.Problem)
	if f.Fix != "" {
		b.WriteString(". Fix: " + f.Fix)
	}
	return b.String()
}

// ResourceRule checks one resource at a time.
type ResourceRule struct {
	Name        string
	Description string
	Level       Level
	// Unknowns documents what the rule does with values that are unknown during preview.
	Unknowns string
	// PodSecurity marks a rule decided by the upstream Pod Security checks; the others are the
	// pack's own.
	PodSecurity bool
	Check       func(r Resource, s Settings) []Finding
}

// StackRule checks the set of all resources a stack declares.
type StackRule struct {
	Name        string
	Description string
	Level       Level
	Unknowns    string
	Check       func(rs []Resource) []Finding
}

// Display names a resource for messages: the last part of its type token and its Pulumi name.
func Display(r Resource) string {
	t := r.Type
	if p, ok := strings.CutPrefix(t, "pulumi:providers:"); ok {
		return fmt.Sprintf("provider %s %q", p, r.Name)
	}
	if i := strings.LastIndex(t, ":"); i >= 0 {
		t = t[i+1:]
	}
	return fmt.Sprintf("%s %q", t, r.Name)
}

// finder builds findings for one rule and resource.
type finder struct {
	rule string
	r    Resource
	out  []Finding
}

func newFinder(rule string, r Resource) *finder { return &finder{rule: rule, r: r} }

func (f *finder) bad(container, field, problem, fix string) {
	f.out = append(f.out, Finding{Rule: f.rule, URN: f.r.URN, Resource: Display(f.r), Container: container,
		Field: field, Problem: problem, Fix: fix})
}

func (f *finder) unknown(container, field string) {
	f.out = append(f.out, Finding{Rule: f.rule, URN: f.r.URN, Resource: Display(f.r), Container: container,
		Field: field, Unknown: true,
		Problem: "value is unknown during preview (computed from another resource), so it was not checked",
		Fix:     "none needed now; `pulumi up` checks the resolved value before the resource is created"})
}
