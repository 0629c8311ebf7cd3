package cluster

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/infralab/infralab/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Shellchecks every script file as committed, and every script as it is actually sent to a node
// (lib.sh in front), using the repo's .shellcheckrc.
func TestScriptsPassShellcheck(t *testing.T) {
	shellcheck := testenv.Tool(t, "shellcheck")
	// shellcheck 0.9 has no --rcfile: it looks for .shellcheckrc next to each file and upwards.
	dir := t.TempDir()
	rc, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), ".shellcheckrc"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".shellcheckrc"), rc, 0o600))
	entries, err := fs.ReadDir(Scripts(), ".")
	require.NoError(t, err)
	require.NotEmpty(t, entries)
	var files []string
	for _, e := range entries {
		body, err := fs.ReadFile(Scripts(), e.Name())
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(string(body), "#!/usr/bin/env bash\n"), "%s: no bash shebang", e.Name())
		assert.Contains(t, string(body), "set -euo pipefail", e.Name())
		files = append(files, filepath.Join(testenv.RepoRoot(), "cluster", "scripts", e.Name()))
		if e.Name() == libScript {
			continue
		}
		full, err := loadScript(Scripts(), e.Name())
		require.NoError(t, err)
		p := filepath.Join(dir, "assembled-"+e.Name())
		require.NoError(t, os.WriteFile(p, []byte(full), 0o600))
		files = append(files, p)
	}
	cmd := exec.Command(shellcheck, append([]string{"--shell=bash"}, files...)...)
	out, err := cmd.CombinedOutput()
	assert.NoError(t, err, "shellcheck:\n%s", out)
}

// A script must never put a stdin secret on stdout or stderr: no `set -x`, no echo of the stdin file.
func TestScriptsNeverTraceOrEchoStdin(t *testing.T) {
	entries, err := fs.ReadDir(Scripts(), ".")
	require.NoError(t, err)
	for _, e := range entries {
		body, err := fs.ReadFile(Scripts(), e.Name())
		require.NoError(t, err)
		for _, bad := range []string{"set -x", "set -o xtrace", "bash -x"} {
			assert.NotContains(t, string(body), bad, e.Name())
		}
	}
}

func TestLayerImportsNoOtherLayer(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-test", "github.com/infralab/infralab/cluster/...").Output()
	require.NoError(t, err)
	for _, pkg := range strings.Fields(string(out)) {
		for _, forbidden := range []string{"/stacks", "/infra", "/apps", "/policy", "k8s.io/kubernetes"} {
			if strings.HasPrefix(pkg, "github.com/infralab/infralab"+forbidden) || strings.HasPrefix(pkg, forbidden[1:]+"/") {
				t.Errorf("cluster depends on %s", pkg)
			}
		}
	}
}
