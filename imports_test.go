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

// importRule forbids imports (by path prefix) in the non-test Go files under dir, except the
// allowed ones.
type importRule struct {
	dir, why string
	forbid   []string
	allow    []string
}

// The layers meet only in main.go, and the tools that run next to or against a cluster never
// depend on the program. One table, so every package's boundary is stated in one place.
func TestImportBoundaries(t *testing.T) {
	layers := []string{modulePath + "/infra", modulePath + "/cluster", modulePath + "/apps", modulePath + "/stacks"}
	others := func(self string) []string {
		var out []string
		for _, l := range layers {
			if l != modulePath+"/"+self {
				out = append(out, l)
			}
		}
		return out
	}
	const layerWhy = "layers never import each other; main.go maps the stack config to their args"
	rules := []importRule{
		{dir: "infra", forbid: others("infra"), why: layerWhy},
		{dir: "cluster", forbid: others("cluster"), why: layerWhy},
		{dir: "stacks", forbid: others("stacks"), why: "the config loader declares nothing and knows no layer"},
		{dir: "apps", forbid: append(others("apps"), "github.com/pulumi/pulumi-command", "github.com/muhlba91/pulumi-proxmoxve"),
			why: "the apps layer needs only the kubernetes provider"},
		{dir: "chaos", forbid: layers, why: "chaos talks to a cluster through the Kubernetes API only"},
		{dir: "tools", forbid: layers, why: "the language host runs any Go program"},
		{dir: "cmd", forbid: layers, allow: []string{modulePath + "/cluster/hardening"},
			why: "tools use shared internal packages, not the program"},
		{dir: "internal/pvename", forbid: append([]string{"github.com/pulumi/", "k8s.io/"}, layers...),
			why: "the name rules are shared by the config loader and the infra layer, so they depend on neither"},
		{dir: "internal/hostkey", forbid: append([]string{"github.com/pulumi/", "k8s.io/"}, layers...),
			why: "the host key check is shared by the config loader and both layers, so it depends on none"},
		{dir: "internal/pki", forbid: append([]string{"github.com/pulumi/", "k8s.io/", modulePath + "/proof"}, layers...),
			why: "the certificate authority is shared by the proof environments, so it depends on none of them and on nothing of the program"},
		{dir: "internal/memhog", forbid: append([]string{"github.com/pulumi/", "k8s.io/"}, layers...),
			why: "the memfd writer is shared by chaos and the e2e suite, so it depends on neither"},
		{dir: "proof/images", forbid: append([]string{"github.com/pulumi/", "k8s.io/"}, layers...),
			why: "the image builder runs before any cluster exists"},
		// The embedded environment loads the lab's hardening files on purpose, so both clusters
		// get the same EncryptionConfiguration, audit policy and admission configuration.
		{dir: "proof/controlplane", forbid: layers, allow: []string{modulePath + "/cluster/hardening"},
			why: "the embedded control plane is an environment for the program, not part of it"},
		{dir: "proof/node", forbid: append([]string{"github.com/pulumi/"}, layers...), allow: []string{modulePath + "/cluster/hardening"},
			why: "the embedded node is an environment for the program, not part of it"},
	}
	for _, layer := range []string{"infra", "cluster", "apps", "stacks", "chaos"} {
		rules = append(rules, importRule{dir: layer, forbid: []string{modulePath + "/proof"},
			why: "the product never depends on where it is proven (proof/)"})
	}
	for _, r := range rules {
		for _, imp := range shippedImports(t, r.dir) {
			if hasPrefix(imp.path, r.allow) || !hasPrefix(imp.path, r.forbid) {
				continue
			}
			t.Errorf("%s imports %s: %s", imp.file, imp.path, r.why)
		}
	}
}

// hasPrefix reports whether path is one of the prefixes or inside one (a prefix ending in "/"
// matches any path starting with it).
func hasPrefix(path string, prefixes []string) bool {
	for _, p := range prefixes {
		if path == p || strings.HasPrefix(path, strings.TrimSuffix(p, "/")+"/") {
			return true
		}
	}
	return false
}

type importRef struct{ file, path string }

// shippedImports lists the imports of every non-test Go file under dir.
func shippedImports(t *testing.T, dir string) []importRef {
	t.Helper()
	var out []importRef
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, spec := range f.Imports {
			p, _ := strconv.Unquote(spec.Path.Value)
			out = append(out, importRef{path, p})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("no imports found under %s", dir)
	}
	return out
}
