package rules

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDocsListEveryRule keeps docs/policy.md in step with the rules: each rule appears in the
// table with its level.
func TestDocsListEveryRule(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "policy.md"))
	if err != nil {
		t.Skip("docs/policy.md is not next to the policy module: ", err)
	}
	for _, r := range ResourceRules() {
		if !strings.Contains(string(doc), "| `"+r.Name+"` | "+r.Level.String()+" |") {
			t.Errorf("docs/policy.md has no table row for %s (%s)", r.Name, r.Level)
		}
	}
	for _, r := range StackRules() {
		if !strings.Contains(string(doc), "| `"+r.Name+"` | "+r.Level.String()+" |") {
			t.Errorf("docs/policy.md has no table row for %s (%s)", r.Name, r.Level)
		}
	}
}
