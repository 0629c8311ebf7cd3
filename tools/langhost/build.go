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
	"syscall"
	"time"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// builder compiles Go programs into one stable output per program folder, and skips `go build`
// altogether while the program's inputs hash to the key of the last build (sourceKey);
// GOCACHE keeps compiled packages between runs anyway.
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
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
		cmd.Dir = abs
		var output bytes.Buffer
		cmd.Stdout, cmd.Stderr = &output, &output
		if err := cmd.Run(); err != nil {
			return "", nil, fmt.Errorf("go build of %s failed (%v):\n%s", abs, err, strings.TrimSpace(output.String()))
		}
		if key != "" {
			if err := os.WriteFile(keyFile, []byte(key), 0o644); err != nil {
				return "", nil, fmt.Errorf("build cache key: %w", err)
			}
		}
		fmt.Fprintf(os.Stderr, "built Go program in %.1fs\n", time.Since(start).Seconds())
	}

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
