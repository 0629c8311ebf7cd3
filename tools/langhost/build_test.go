package main

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// writeFiles writes files (path relative to dir -> content), creating folders.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// tinyModules writes a program module that imports a library module through a local replace,
// as the root module does with policy/.
func tinyModules(t *testing.T) (prog, lib string) {
	t.Helper()
	root := t.TempDir()
	prog, lib = filepath.Join(root, "prog"), filepath.Join(root, "lib")
	writeFiles(t, lib, map[string]string{
		"go.mod": "module example.com/lib\n\ngo 1.21\n",
		"lib.go": "package lib\n\nconst Word = \"one\"\n",
	})
	writeFiles(t, prog, map[string]string{
		"go.mod":  "module example.com/prog\n\ngo 1.21\n\nrequire example.com/lib v0.0.0\n\nreplace example.com/lib => ../lib\n",
		"main.go": "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/lib\"\n)\n\nfunc main() { fmt.Println(lib.Word) }\n",
	})
	return prog, lib
}

func TestSourceKeyCoversTheBuildInputs(t *testing.T) {
	t.Setenv("GOWORK", "off")
	t.Setenv("GOFLAGS", "-mod=mod")
	prog, lib := tinyModules(t)
	ctx := context.Background()
	key := func() string {
		t.Helper()
		k, err := sourceKey(ctx, prog, ".")
		if err != nil || k == "" {
			t.Fatalf("sourceKey: %q, %v", k, err)
		}
		return k
	}
	base := key()
	if key() != base {
		t.Fatal("the key changes with nothing changed")
	}
	for _, c := range []struct {
		name    string
		dir     string
		file    string
		content string
		changes bool
	}{
		{"a source file", prog, "main.go", "package main\n\nfunc main() {}\n", true},
		{"a new file in a package folder", prog, "sub/x.go", "package sub\n", true},
		{"an embedded-looking data file", prog, "testdata/a.txt", "x", true},
		{"go.sum", prog, "go.sum", "example.com/x v1.0.0 h1:abc=\n", true},
		{"the locally replaced module", lib, "lib.go", "package lib\n\nconst Word = \"two\"\n", true},
		{"a dot folder at the module root (tool cache, state)", prog, ".tools/bin/x", "binary", false},
		{".git", prog, "sub/.git/HEAD", "ref", false},
		{"a nested module that is not replaced in", prog, "nested/go.mod", "module example.com/nested\n", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := key()
			writeFiles(t, c.dir, map[string]string{c.file: c.content})
			if changed := key() != before; changed != c.changes {
				t.Errorf("key changed = %v, want %v", changed, c.changes)
			}
		})
	}
	t.Run("GOFLAGS", func(t *testing.T) {
		before := key()
		t.Setenv("GOFLAGS", "-mod=mod -trimpath")
		if key() == before {
			t.Error("the key ignores GOFLAGS")
		}
	})
	t.Run("a go.work turns the cache off", func(t *testing.T) {
		writeFiles(t, filepath.Dir(prog), map[string]string{"go.work": "go 1.21\n\nuse ./prog\n"})
		t.Setenv("GOWORK", "")
		if k, err := sourceKey(ctx, prog, "."); k != "" || err == nil {
			t.Errorf("sourceKey = %q, %v; want no key and an error", k, err)
		}
	})
}

// captureStderr runs fn with os.Stderr redirected and returns what it wrote.
func captureStderr(t *testing.T, fn func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stderr
	os.Stderr = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	defer func() { os.Stderr = old }()
	fn()
	_ = w.Close()
	return <-done
}

// The second run of an unchanged program skips `go build`; a change builds again and runs the
// new code.
func TestBuilderReusesAnUnchangedBuild(t *testing.T) {
	t.Setenv("GOWORK", "off")
	t.Setenv("GOFLAGS", "-mod=mod")
	prog, lib := tinyModules(t)
	b := &builder{root: t.TempDir()}
	info := &pulumirpc.ProgramInfo{ProgramDirectory: prog, EntryPoint: "."}
	run := func() (stderr, stdout string) {
		t.Helper()
		var bin string
		var cleanup func()
		var err error
		stderr = captureStderr(t, func() { bin, cleanup, err = b.program(context.Background(), info, prog) })
		if err != nil {
			t.Fatalf("program: %v\n%s", err, stderr)
		}
		defer cleanup()
		out, err := exec.Command(bin).Output()
		if err != nil {
			t.Fatal(err)
		}
		return stderr, strings.TrimSpace(string(out))
	}
	if log, out := run(); !strings.Contains(log, "building Go program") || out != "one" {
		t.Fatalf("first run: %q, output %q", log, out)
	}
	if log, out := run(); !strings.Contains(log, "unchanged since its last build") || strings.Contains(log, "building") || out != "one" {
		t.Fatalf("second run rebuilt or ran something else: %q, output %q", log, out)
	}
	writeFiles(t, lib, map[string]string{"lib.go": "package lib\n\nconst Word = \"two\"\n"})
	if log, out := run(); !strings.Contains(log, "building Go program") || out != "two" {
		t.Fatalf("after a change: %q, output %q", log, out)
	}
	// A failed build leaves no key behind, so fixing it back to the old sources builds again.
	writeFiles(t, lib, map[string]string{"lib.go": "package lib\n\nconst Word = \n"})
	if err := captureErr(t, b, info, prog); err == nil {
		t.Fatal("a broken program built")
	}
	writeFiles(t, lib, map[string]string{"lib.go": "package lib\n\nconst Word = \"two\"\n"})
	if log, out := run(); !strings.Contains(log, "building Go program") || out != "two" {
		t.Fatalf("after fixing a failed build: %q, output %q", log, out)
	}
}

func captureErr(t *testing.T, b *builder, info *pulumirpc.ProgramInfo, dir string) error {
	t.Helper()
	var err error
	captureStderr(t, func() {
		var cleanup func()
		_, cleanup, err = b.program(context.Background(), info, dir)
		if err == nil {
			cleanup()
		}
	})
	return err
}
