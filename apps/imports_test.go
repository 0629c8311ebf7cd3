package apps

import (
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// Layers never import each other: main.go maps the stack config to PlatformArgs.
func TestNoLayerImports(t *testing.T) {
	files, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range files {
		if !strings.HasSuffix(f.Name(), ".go") || strings.HasSuffix(f.Name(), "_test.go") {
			continue
		}
		parsed, err := parser.ParseFile(token.NewFileSet(), f.Name(), nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range parsed.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, "github.com/infralab/infralab/") {
				t.Errorf("%s imports %s: the apps layer must not depend on another infralab package", f.Name(), p)
			}
			if strings.Contains(p, "pulumi-command") || strings.Contains(p, "pulumi-proxmoxve") {
				t.Errorf("%s imports %s: the apps layer only needs the kubernetes provider", f.Name(), p)
			}
		}
	}
	if checked < 5 {
		t.Fatalf("only %d files checked", checked)
	}
}
