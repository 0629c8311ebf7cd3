package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// builder compiles Go programs into one stable output per program folder, and skips `go build`
// altogether while the program's inputs hash to the key of the last build (sourceKey);
// GOCACHE keeps compiled packages between runs anyway.
type builder struct {
	root string
	// progressEvery is how often a running `go build` reports its progress (0: every 10 s).
	progressEvery time.Duration
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
	var run string
	err = b.build(ctx, abs, pkg, func(bin string) error {
		run = filepath.Join(filepath.Dir(bin), "run-"+randomSuffix())
		if err := os.Link(bin, run); err != nil {
			return fmt.Errorf("preparing program binary: %w", err)
		}
		return nil
	})
	if err != nil {
		return "", nil, err
	}
	return run, func() { _ = os.Remove(run) }, nil
}

// build makes sure the cache holds an up-to-date binary of pkg in the module folder abs, then
// calls use with its path while still holding the build lock (so no other run replaces it
// before use has linked or copied it).
func (b *builder) build(ctx context.Context, abs, pkg string, use func(bin string) error) error {
	sum := sha256.Sum256([]byte(abs + "\x00" + pkg))
	out := filepath.Join(b.root, hex.EncodeToString(sum[:8]))
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("build cache: %w", err)
	}

	// Concurrent runs of the same program (a preview and a policy pack, two terminals) share the
	// output; the lock keeps one build at a time, and each run gets its own hard link.
	unlock, err := lockFile(filepath.Join(out, "lock"))
	if err != nil {
		return err
	}
	defer unlock()

	bin := filepath.Join(out, "program")
	start := time.Now()
	// Even with everything in GOCACHE, `go build` spends about half a second loading every
	// package to find the binary up to date. A key over the build's inputs skips it when nothing
	// changed (sourceKey says what it covers); an empty key means "cannot tell", so build.
	key, err := sourceKey(ctx, abs, pkg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "not using the build cache for %s: %v\n", abs, err)
	}
	keyFile := bin + ".key"
	if old, rerr := os.ReadFile(keyFile); key != "" && rerr == nil && string(old) == key && fileExists(bin) {
		fmt.Fprintf(os.Stderr, "Go program %s (%s) unchanged since its last build (checked in %.2fs)\n", abs, pkg, time.Since(start).Seconds())
	} else {
		_ = os.Remove(keyFile) // a failed build must not leave a key that names the old binary
		fmt.Fprintf(os.Stderr, "building Go program %s (%s) ...\n", abs, pkg)
		if err := goBuild(ctx, abs, bin, pkg, b.progressEvery, os.Stderr); err != nil {
			return err
		}
		if key != "" {
			if err := os.WriteFile(keyFile, []byte(key), 0o644); err != nil {
				return fmt.Errorf("build cache key: %w", err)
			}
		}
		fmt.Fprintf(os.Stderr, "built Go program in %.1fs\n", time.Since(start).Seconds())
	}
	return use(bin)
}

// goBuild runs `go build -v -o bin pkg` in dir and, while it runs, writes a progress line to
// progress every `every` (default 10 s): elapsed time, packages compiled so far and the last one
// (what -v prints), so a first build of the program (minutes on a new machine) shows where it is.
// On failure the error holds go's messages without the -v package list.
func goBuild(ctx context.Context, dir, bin, pkg string, every time.Duration, progress io.Writer) error {
	if every <= 0 {
		every = 10 * time.Second
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-v", "-o", bin, pkg)
	cmd.Dir = dir
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("go build of %s: %w", dir, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("go build of %s failed (%v):\n%s", dir, err, strings.TrimSpace(buildMessages(out.String())))
			}
			return nil
		case <-tick.C:
			pkgs := compiledPackages(out.String())
			last := "none yet"
			if len(pkgs) > 0 {
				last = pkgs[len(pkgs)-1]
			}
			fmt.Fprintf(progress, "building Go program %s: %.0fs elapsed, %d packages compiled (last: %s)\n",
				dir, time.Since(start).Seconds(), len(pkgs), last)
		}
	}
}

// compiledPackages are the import paths `go build -v` printed, one a line.
func compiledPackages(output string) []string {
	var pkgs []string
	for _, line := range strings.Split(output, "\n") {
		if isImportPath(line) {
			pkgs = append(pkgs, line)
		}
	}
	return pkgs
}

// buildMessages is go's output without the -v package list: the compiler's errors.
func buildMessages(output string) string {
	var keep []string
	for _, line := range strings.Split(output, "\n") {
		if !isImportPath(line) {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}

func isImportPath(line string) bool {
	if line == "" || strings.HasPrefix(line, "#") {
		return false
	}
	for _, r := range line {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._/-~", r)) {
			return false
		}
	}
	return true
}

// lockedBuffer is written by go's stdout and stderr copiers and read by the progress ticker.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
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

func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

// keyEnv are the `go env` settings a build depends on besides the sources.
var keyEnv = []string{"GOVERSION", "GOOS", "GOARCH", "GOAMD64", "GOARM64", "GOFLAGS", "CGO_ENABLED", "GOEXPERIMENT",
	"GOTOOLCHAIN", "GOWORK", "GOMOD", "GOMODCACHE", "CC", "CXX", "CGO_CFLAGS", "CGO_CPPFLAGS", "CGO_CXXFLAGS", "CGO_LDFLAGS"}

// sourceKey hashes what `go build` of pkg in dir reads: the go toolchain and settings (go env),
// every file of the main module (skipping .git, dot folders at its root such as .tools, and nested
// modules) and of every module a local replace directive points at. Dependencies from the module
// cache are fixed by go.sum, which is one of those files. With a go.work in effect it returns ""
// and an error: the workspace's modules would be inputs too.
func sourceKey(ctx context.Context, dir, pkg string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "pkg %s\n", pkg)
	envOut, err := goOutput(ctx, dir, append([]string{"env", "-json"}, keyEnv...)...)
	if err != nil {
		return "", err
	}
	var env map[string]string
	if err := json.Unmarshal(envOut, &env); err != nil {
		return "", fmt.Errorf("go env: %w", err)
	}
	if w := env["GOWORK"]; w != "" && w != "off" {
		return "", fmt.Errorf("a go.work applies (%s)", w)
	}
	gomod := env["GOMOD"]
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("%s is not in a Go module", dir)
	}
	h.Write(envOut)
	root := filepath.Dir(gomod)
	if err := hashTree(h, root); err != nil {
		return "", err
	}
	modOut, err := goOutput(ctx, root, "mod", "edit", "-json")
	if err != nil {
		return "", err
	}
	var mod struct {
		Replace []struct {
			New struct{ Path, Version string }
		}
	}
	if err := json.Unmarshal(modOut, &mod); err != nil {
		return "", fmt.Errorf("go mod edit -json: %w", err)
	}
	for _, r := range mod.Replace {
		if r.New.Version != "" {
			continue // a module version, fixed by go.sum
		}
		local := r.New.Path
		if !filepath.IsAbs(local) {
			local = filepath.Join(root, local)
		}
		fmt.Fprintf(h, "replace %s\n", r.New.Path)
		if err := hashTree(h, local); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func goOutput(ctx context.Context, dir string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// hashTree writes every file under root, in walk order (sorted), as path, mode and content.
func hashTree(h hash.Hash, root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			switch {
			case rel == ".":
			case d.Name() == ".git", !strings.Contains(rel, string(filepath.Separator)) && strings.HasPrefix(d.Name(), "."):
				return filepath.SkipDir // tool caches and state, never package sources
			case fileExists(filepath.Join(path, "go.mod")):
				return filepath.SkipDir // another module: not part of this build unless replaced in
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %o %d\n", filepath.ToSlash(rel), info.Mode(), info.Size())
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "-> %s\n", target)
		case info.Mode().IsRegular():
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			_, err = io.Copy(h, f)
			_ = f.Close()
			if err != nil {
				return err
			}
		}
		return nil
	})
}
