// Package testenv finds the real tools that `make tools` builds, for tests that run them.
//
// A test that needs a tool calls Tool. When the tool is missing the test is skipped, unless
// INFRALAB_REQUIRE_TOOLS=1 (set by `make test`), where a missing tool fails the test: CI must
// never pass by skipping the real component.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
)

// RepoRoot is the folder holding the project's go.mod.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// BinDir is where `make tools` links the built tools (INFRALAB_TOOLS_BIN overrides it).
func BinDir() string {
	if d := os.Getenv("INFRALAB_TOOLS_BIN"); d != "" {
		return d
	}
	return filepath.Join(RepoRoot(), ".tools", "bin")
}

// Required reports whether missing tools fail tests instead of skipping them.
func Required() bool { return os.Getenv("INFRALAB_REQUIRE_TOOLS") == "1" }

// Tool returns the path of a tool, looking in BinDir, then on PATH, then in the Debian package
// folders that are not on PATH.
func Tool(t testing.TB, name string) string {
	t.Helper()
	if p := filepath.Join(BinDir(), name); isExecutable(p) {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	// Debian keeps PostgreSQL's initdb and postgres off PATH.
	for _, d := range []string{"/usr/lib/postgresql/15/bin"} {
		if p := filepath.Join(d, name); isExecutable(p) {
			return p
		}
	}
	msg := name + " not found in " + BinDir() + " or on PATH; run `make tools`"
	if Required() {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// RequireRoot stops a test that needs root (network namespaces, mounts, iptables, cgroups). As
// a normal user it is skipped with the command that runs it; with INFRALAB_REQUIRE_ROOT=1 (set by
// .ci/run: CI runs as root and must run every suite) it fails instead.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("INFRALAB_REQUIRE_ROOT") == "1" {
		t.Fatal("this test needs root, and INFRALAB_REQUIRE_ROOT=1 says it must run (CI runs make test as root)")
	}
	t.Skip(`needs root (network namespaces, iptables, mounts): sudo -E env "PATH=$PATH" make test runs it`)
}

// CacheDir is where `make tools` and the image builder keep what they build, outside the clone:
// INFRALAB_CACHE, else ${XDG_CACHE_HOME:-~/.cache}/infralab, as hack/tools.sh computes it.
func CacheDir() string {
	if d := os.Getenv("INFRALAB_CACHE"); d != "" {
		return d
	}
	if x := os.Getenv("XDG_CACHE_HOME"); x != "" {
		return filepath.Join(x, "infralab")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "infralab")
}

// ExclusiveNode makes a test that starts the embedded node the only one on this machine until
// it ends. A node changes machine-wide state (sysctls, iptables, the bridge), and `go test ./...`
// runs packages in parallel: without this, one package's teardown restores a sysctl under
// another package's running node and each sees the other's changes.
func ExclusiveNode(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile("/run/infralab-node-tests.lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("node test lock: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close()
		t.Fatalf("node test lock: %v", err)
	}
	t.Cleanup(func() { _ = f.Close() }) // closing releases the lock
}
