package infra

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSnippetCleanupScriptRuns runs the real script through the exact command line the remote
// command sends, with the script on stdin. pvesm is a stand-in on PATH that resolves
// local:snippets/<file> the way a directory storage does (pvesm path prints the path whether or
// not the file exists, and fails for an unknown storage).
func TestSnippetCleanupScriptRuns(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	snippets := filepath.Join(dir, "snippets")
	require.NoError(t, os.MkdirAll(bin, 0o755))
	require.NoError(t, os.MkdirAll(snippets, 0o755))
	stub := "#!/bin/sh\n[ \"$1\" = path ] || exit 2\ncase $2 in\nlocal:snippets/*) echo \"" + snippets + "/${2#local:snippets/}\" ;;\n*) echo \"storage '${2%%:*}' does not exist\" >&2; exit 255 ;;\nesac\n"
	require.NoError(t, os.WriteFile(filepath.Join(bin, "pvesm"), []byte(stub), 0o755))

	run := func(volid, action string) (string, error) {
		t.Helper()
		c := exec.Command("sh", "-c", snippetCommand("root", volid, action))
		c.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "INFRALAB_PVE="+filepath.Join(dir, "pve"))
		c.Stdin = strings.NewReader(snippetCleanupScript)
		out, err := c.CombinedOutput()
		return string(out), err
	}
	volid := "local:snippets/" + snippetFileName("lab", "k8s-cp-1")
	file := filepath.Join(snippets, snippetFileName("lab", "k8s-cp-1"))

	out, err := run(volid, "check")
	require.Error(t, err, "check of a missing snippet must fail: %s", out)
	assert.Contains(t, out, "is missing or empty")

	require.NoError(t, os.WriteFile(file, []byte("#cloud-config\n"), 0o644))
	out, err = run(volid, "check")
	require.NoError(t, err, out)
	assert.Contains(t, out, "present at "+file)

	// A VM anywhere in the cluster that still names the snippet keeps it.
	conf := filepath.Join(dir, "pve", "nodes", "pve2", "qemu-server", "201.conf")
	require.NoError(t, os.MkdirAll(filepath.Dir(conf), 0o755))
	require.NoError(t, os.WriteFile(conf, []byte("cores: 2\ncicustom: user="+volid+"\nname: k8s-cp-1\n"), 0o644))
	out, err = run(volid, "remove")
	require.NoError(t, err, out)
	assert.Contains(t, out, "still uses it")
	assert.FileExists(t, file)
	require.NoError(t, os.WriteFile(conf, []byte("cores: 2\ndescription: was "+volid+"\n"), 0o644))

	other := filepath.Join(snippets, "hookscript.pl")
	require.NoError(t, os.WriteFile(other, []byte("x"), 0o644))
	out, err = run(volid, "remove")
	require.NoError(t, err, out)
	assert.Contains(t, out, "removed "+volid)
	assert.NoFileExists(t, file)
	assert.FileExists(t, other, "only the named snippet goes")

	out, err = run(volid, "remove")
	require.NoError(t, err, "a second remove converges: %s", out)
	assert.Contains(t, out, "already removed")

	out, err = run("gone:snippets/"+snippetFileName("lab", "k8s-cp-1"), "remove")
	require.NoError(t, err, "a removed storage must not block destroy: %s", out)
	assert.Contains(t, out, "nothing to remove")

	for _, bad := range []string{"local:snippets/hookscript.pl", "local:snippets/infralab-x/../../etc.user-data.yaml", "local:iso/infralab-lab-a.user-data.yaml"} {
		out, err = run(bad, "remove")
		require.Error(t, err, "%s must be refused: %s", bad, out)
		assert.Contains(t, out, "refusing")
	}
	assert.FileExists(t, other)
}
