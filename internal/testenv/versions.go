package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// PinnedVersions reads the NAME=VALUE lines of hack/versions.env, the one file that pins every
// tool and release version (comments and blank lines skipped).
func PinnedVersions(t testing.TB) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(RepoRoot(), "hack", "versions.env"))
	if err != nil {
		t.Fatalf("hack/versions.env: %v", err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			out[k] = v
		}
	}
	return out
}
