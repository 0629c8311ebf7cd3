package infra

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestNoLayerImports keeps infra independent: main.go maps config to NodesArgs, so infra must
// not import stacks or another layer (tests may use internal/testenv, the example infra itself).
func TestNoLayerImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		parsed, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range parsed.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if !strings.HasPrefix(p, "github.com/infralab/infralab/") {
				continue
			}
			if strings.HasSuffix(f, "_test.go") && (p == "github.com/infralab/infralab/internal/testenv" || p == "github.com/infralab/infralab/infra") {
				continue
			}
			t.Errorf("%s imports %s: layers must not import each other or stacks", f, p)
		}
	}
}
