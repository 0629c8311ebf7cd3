package main

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// TestNoProgramImports keeps the pack independent of the program it gates: it may import only
// its own packages from the infralab module path.
func TestNoProgramImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-test", "-json=ImportPath", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for dec.More() {
		var p struct{ ImportPath string }
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		seen++
		path, _, _ := strings.Cut(p.ImportPath, " ") // test variants read "pkg [pkg.test]"
		if strings.HasPrefix(path, "github.com/infralab/infralab") &&
			path != "github.com/infralab/infralab/policy" && path != "github.com/infralab/infralab/policy.test" && !strings.HasPrefix(path, "github.com/infralab/infralab/policy/") {
			t.Errorf("the policy pack depends on %s; it may import only github.com/infralab/infralab/policy/...", path)
		}
	}
	if seen < 10 {
		t.Fatalf("go list saw only %d packages; the check is not looking", seen)
	}
}
