package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// prebuild fills the cache Run uses: the CLI's run then finds the program unchanged, and -o
// leaves a runnable copy where the demo wants it.
func TestPrebuildFillsTheCacheRunUses(t *testing.T) {
	t.Setenv("GOWORK", "off")
	t.Setenv("GOFLAGS", "-mod=mod")
	prog, _ := tinyModules(t)
	b := &builder{root: t.TempDir()}
	out := filepath.Join(t.TempDir(), "tool")
	var err error
	log := captureStderr(t, func() { err = prebuild(context.Background(), b, []string{"-o", out, prog}, nopWriter{}) })
	if err != nil || !strings.Contains(log, "building Go program") {
		t.Fatalf("prebuild: %v\n%s", err, log)
	}
	if got, err := exec.Command(out).Output(); err != nil || strings.TrimSpace(string(got)) != "one" {
		t.Fatalf("the -o copy: %q, %v", got, err)
	}
	info := &pulumirpc.ProgramInfo{ProgramDirectory: prog, EntryPoint: "."}
	var cleanup func()
	log = captureStderr(t, func() { _, cleanup, err = b.program(context.Background(), info, prog) })
	if err != nil {
		t.Fatal(err)
	}
	cleanup()
	if !strings.Contains(log, "unchanged since its last build") {
		t.Fatalf("the run after prebuild built again: %s", log)
	}
	if err := prebuild(context.Background(), b, nil, nopWriter{}); err == nil {
		t.Fatal("prebuild without a folder succeeded")
	}
	if err := prebuild(context.Background(), b, []string{"-o", out, prog, prog}, nopWriter{}); err == nil {
		t.Fatal("prebuild -o with two folders succeeded")
	}
}

// A running build reports elapsed time and the packages compiled so far; a failed one reports
// the compiler's error, not the -v package list.
func TestGoBuildShowsProgressAndErrors(t *testing.T) {
	t.Setenv("GOWORK", "off")
	t.Setenv("GOFLAGS", "-mod=mod")
	prog, lib := tinyModules(t)
	var progress strings.Builder
	bin := filepath.Join(t.TempDir(), "prog")
	// Even a warm build (load packages, link) outlasts a 5 ms tick.
	if err := goBuild(context.Background(), prog, bin, ".", 5*time.Millisecond, &progress); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(progress.String(), "s elapsed, ") || !strings.Contains(progress.String(), "packages compiled (last: ") {
		t.Fatalf("no progress line: %q", progress.String())
	}
	writeFiles(t, lib, map[string]string{"lib.go": "package lib\n\nconst Word = \n"})
	err := goBuild(context.Background(), prog, bin, ".", time.Hour, &progress)
	if err == nil || !strings.Contains(err.Error(), "lib.go:") || strings.Contains(err.Error(), "\nexample.com/lib\n") {
		t.Fatalf("want the compiler error without the package list, got %v", err)
	}
}

func TestCompiledPackages(t *testing.T) {
	got := compiledPackages("internal/goarch\nruntime\n# example.com/lib\n../lib/lib.go:3:14: syntax error\ngithub.com/x/y.v2\n")
	if strings.Join(got, ",") != "internal/goarch,runtime,github.com/x/y.v2" {
		t.Fatalf("got %q", got)
	}
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }
