package stacks

import (
	"fmt"
	"sort"
	"strings"
)

// FieldError is one problem in the stack configuration.
type FieldError struct {
	// Path is the field as the user writes it in Pulumi.<stack>.yaml, without the "infralab:"
	// namespace, e.g. "cluster.workers.nodes[1].ip".
	Path    string
	Problem string
	// Hint says how to fix it; it never repeats a secret value.
	Hint string
}

func (e FieldError) Error() string {
	if e.Hint == "" {
		return e.Path + ": " + e.Problem
	}
	return fmt.Sprintf("%s: %s (fix: %s)", e.Path, e.Problem, e.Hint)
}

// Errors is every problem found in one validation run.
type Errors []FieldError

func (es Errors) Error() string {
	lines := make([]string, 0, len(es)+1)
	lines = append(lines, fmt.Sprintf("invalid stack configuration (%d problems); nothing was declared:", len(es)))
	for _, e := range es {
		lines = append(lines, "  - "+e.Error())
	}
	return strings.Join(lines, "\n")
}

// Paths lists the field path of each error, sorted; tests and tools match on it.
func (es Errors) Paths() []string {
	out := make([]string, 0, len(es))
	for _, e := range es {
		out = append(out, e.Path)
	}
	sort.Strings(out)
	return out
}

// errs collects errors during validation.
type errs struct{ list Errors }

// add records a problem. Only the first problem per path is kept: a value that failed to decode
// would otherwise also be reported as its zero value.
func (c *errs) add(path, problem, hint string) {
	for _, e := range c.list {
		if e.Path == path {
			return
		}
	}
	c.list = append(c.list, FieldError{Path: path, Problem: problem, Hint: hint})
}

func (c *errs) err() error {
	if len(c.list) == 0 {
		return nil
	}
	return c.list
}
