package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// builder compiles Go programs into one stable output per program folder, so `go build` can tell
// the binary is up to date and skip the link; GOCACHE keeps compiled packages between runs anyway.
type builder struct {
	root string
}

func newBuilder() *builder {
	root := os.Getenv("INFRALAB_CACHE")
	if root == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			dir = os.TempDir()
		}
		root = filepath.Join(dir, "infralab")
	}
	return &builder{root: filepath.Join(root, "langhost-builds")}
}

// program returns a runnable binary of the Go program described by info (falling back to dir),
// and a cleanup func to call once the binary has exited.
func (b *builder) program(ctx context.Context, info *pulumirpc.ProgramInfo, dir string) (string, func(), error) {
	if d := info.GetProgramDirectory(); d != "" {
		dir = d
	}
	// Pulumi.yaml's `runtime.options.binary` names a prebuilt program, as with the official host.
	if bin, ok := info.GetOptions().AsMap()["binary"].(string); ok && bin != "" {
		if !filepath.IsAbs(bin) {
			bin = filepath.Join(dir, bin)
		}
		return bin, func() {}, nil
	}
	pkg := "."
	if e := info.GetEntryPoint(); e != "" && e != "." {
		pkg = "./" + filepath.ToSlash(e)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", nil, fmt.Errorf("program directory %q: %w", dir, err)
	}
	sum := sha256.Sum256([]byte(abs + "\x00" + pkg))
	out := filepath.Join(b.root, hex.EncodeToString(sum[:8]))
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", nil, fmt.Errorf("build cache: %w", err)
	}

	// Concurrent runs of the same program (a preview and a policy pack, two terminals) share the
	// output; the lock keeps one build at a time, and each run gets its own hard link.
	unlock, err := lockFile(filepath.Join(out, "lock"))
	if err != nil {
		return "", nil, err
	}
	defer unlock()

	bin := filepath.Join(out, "program")
	fmt.Fprintf(os.Stderr, "building Go program %s (%s) ...\n", abs, pkg)
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
	cmd.Dir = abs
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Run(); err != nil {
		return "", nil, fmt.Errorf("go build of %s failed (%v):\n%s", abs, err, strings.TrimSpace(output.String()))
	}
	fmt.Fprintf(os.Stderr, "built Go program in %.1fs\n", time.Since(start).Seconds())

	run := filepath.Join(out, "run-"+randomSuffix())
	if err := os.Link(bin, run); err != nil {
		return "", nil, fmt.Errorf("preparing program binary: %w", err)
	}
	return run, func() { _ = os.Remove(run) }, nil
}

func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("build lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("build lock %s: %w", path, err)
	}
	return func() { _ = f.Close() }, nil
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
