package main

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const modulePath = "github.com/infralab/infralab"

// The layers meet only in main.go: a layer importing another layer, the stack config, or the
// program would couple what `local` and `lab` must be able to use apart.
func TestLayersDoNotImportEachOther(t *testing.T) {
	layers := []string{"infra", "cluster", "apps", "stacks"}
	for _, layer := range layers {
		for _, imp := range moduleImports(t, layer) {
			rel := strings.TrimPrefix(imp.path, modulePath+"/")
			top := strings.SplitN(rel, "/", 2)[0]
			if top == layer || imp.path == modulePath+"/internal/testenv" {
				continue
			}
			for _, other := range layers {
				if top == other {
					t.Errorf("%s imports %s: layers must not import each other; wire them in main.go", imp.file, imp.path)
				}
			}
		}
	}
}

// Tools that run against a cluster (chaos) talk to it through the Kubernetes API only: they must
// work on any cluster the program built, so they never import the program's layers or config.
func TestToolsDoNotImportTheProgram(t *testing.T) {
	for _, dir := range []string{"chaos", "cmd", "healthcare-api", "internal", "tools"} {
		for _, imp := range moduleImports(t, dir) {
			top := strings.SplitN(strings.TrimPrefix(imp.path, modulePath+"/"), "/", 2)[0]
			switch top {
			case "infra", "apps", "stacks":
				t.Errorf("%s imports %s; use the Kubernetes API or a shared internal package instead", imp.file, imp.path)
			case "cluster":
				// The embedded control plane loads the lab's hardening files on purpose, so both
				// clusters get the same EncryptionConfiguration, audit policy and admission config.
				if !strings.HasPrefix(imp.path, modulePath+"/cluster/hardening") {
					t.Errorf("%s imports %s; only cluster/hardening is shared", imp.file, imp.path)
				}
			}
		}
	}
}

type importRef struct{ file, path string }

// moduleImports lists the imports of this module's packages in every Go file under dir.
func moduleImports(t *testing.T, dir string) []importRef {
	t.Helper()
	var out []importRef
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, spec := range f.Imports {
			p, _ := strconv.Unquote(spec.Path.Value)
			if strings.HasPrefix(p, modulePath+"/") {
				out = append(out, importRef{path, p})
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
