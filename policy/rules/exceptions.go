package rules

import (
	"fmt"
	"slices"
	"strings"
)

// ExceptionsKey is the property of the exceptions policy's config that lists exceptions.
const ExceptionsKey = "allow"

// Exception lets named rules pass for one resource or one namespace. Reason is required: an
// exception without one is reported and not applied.
type Exception struct {
	Rules     []string
	Resource  string // Pulumi resource name or full URN
	Namespace string // Kubernetes namespace (for a Namespace resource: its own name)
	Reason    string
}

// Exceptions are the parsed exceptions and the problems found in the config.
type Exceptions struct {
	valid    []Exception
	Problems []string
}

// ParseExceptions reads the exceptions policy's config: {"allow": [{rules, resource|namespace, reason}]}.
// Bad entries are listed in Problems and never applied.
func ParseExceptions(config map[string]any, knownRule func(string) bool) Exceptions {
	var ex Exceptions
	raw, ok := config[ExceptionsKey]
	if !ok || raw == nil {
		return ex
	}
	list, ok := raw.([]any)
	if !ok {
		ex.Problems = append(ex.Problems, fmt.Sprintf("exceptions.%s: must be a list of exceptions", ExceptionsKey))
		return ex
	}
	for i, item := range list {
		at := fmt.Sprintf("exceptions.%s[%d]", ExceptionsKey, i)
		m, ok := item.(map[string]any)
		if !ok {
			ex.Problems = append(ex.Problems, at+": must be an object with rules, resource or namespace, and reason")
			continue
		}
		e := Exception{Resource: str(m["resource"]), Namespace: str(m["namespace"]), Reason: strings.TrimSpace(str(m["reason"]))}
		if rs, ok := m["rules"].([]any); ok {
			for _, r := range rs {
				e.Rules = append(e.Rules, str(r))
			}
		}
		var problems []string
		if e.Reason == "" {
			problems = append(problems, at+".reason: an exception needs a reason; add why this rule does not apply, or remove the exception")
		}
		if e.Resource == "" && e.Namespace == "" {
			problems = append(problems, at+": set resource (Pulumi name or URN) or namespace")
		}
		if len(e.Rules) == 0 {
			problems = append(problems, at+".rules: list the rule names this exception allows")
		}
		for j, r := range e.Rules {
			if knownRule != nil && !knownRule(r) {
				problems = append(problems, fmt.Sprintf("%s.rules[%d]: no rule is named %q", at, j, r))
			}
		}
		if len(problems) > 0 {
			ex.Problems = append(ex.Problems, problems...)
			continue
		}
		ex.valid = append(ex.valid, e)
	}
	return ex
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// Allows returns the exception that lets rule pass for r, if any.
func (ex Exceptions) Allows(rule string, r Resource) (Exception, bool) {
	ns := resourceNamespace(r)
	for _, e := range ex.valid {
		if !slices.Contains(e.Rules, rule) {
			continue
		}
		if e.Resource != "" && e.Resource != r.Name && e.Resource != r.URN {
			continue
		}
		if e.Namespace != "" && e.Namespace != ns {
			continue
		}
		return e, true
	}
	return Exception{}, false
}

func resourceNamespace(r Resource) string {
	if r.Type == namespaceType {
		return NamespaceName(r)
	}
	s, _ := root(r.Props, "").at("metadata", "namespace").str()
	return s
}

// Filter drops the findings that an exception allows. findings must be about r.
func (ex Exceptions) Filter(r Resource, findings []Finding) []Finding {
	var out []Finding
	for _, f := range findings {
		if _, ok := ex.Allows(f.Rule, r); ok {
			continue
		}
		out = append(out, f)
	}
	return out
}
