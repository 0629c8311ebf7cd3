package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/infralab/infralab/internal/testenv"
)

// A bad stack config, run through the real CLI and our language host, is refused with every
// problem and its field path, and the stack's state holds no resource afterwards. No cluster is
// needed: nothing may be declared, so nothing may be contacted.
func TestInvalidConfigStopsBeforeAnyResource(t *testing.T) {
	root := testenv.RepoRoot()
	shipped, err := os.ReadFile(filepath.Join(root, "stacks", "Pulumi.local.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	broken := string(shipped)
	for old, bad := range map[string]string{
		"replicas: 2": "replicas: 0",
		"image: infralab.local/healthcare-api:1.0.0": "image: infralab.local/healthcare-api:latest",
	} {
		if !strings.Contains(broken, old) {
			t.Fatalf("stacks/Pulumi.local.yaml no longer holds %q; update this test", old)
		}
		broken = strings.Replace(broken, old, bad, 1)
	}
	base := filepath.Join(t.TempDir(), "Pulumi.local.yaml")
	if err := os.WriteFile(base, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}

	ws := newPulumiWorkspace(t, filepath.Join(t.TempDir(), "no-kubeconfig"))
	cli := ws.project(t, root, "local", base)
	// The secrets are left unset on purpose: missing secrets are reported with the rest.
	out, _, err := cli.run(t, cli.stackArgs("up", "--yes", "--skip-preview")...)
	if err == nil {
		t.Fatalf("up of an invalid config succeeded:\n%s", out)
	}
	for _, want := range []string{
		"nothing was declared",
		"apps.api.replicas: 0 is below 1",
		`apps.api.image: "infralab.local/healthcare-api:latest" uses :latest`,
		"postgresPassword: is required",
		"apiDbPassword: is required",
		"exporterDbPassword: is required",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	resources, _ := cli.export(t)
	for _, r := range resources {
		if r.Type != "pulumi:pulumi:Stack" {
			t.Errorf("state holds %s after a refused config", r.URN)
		}
	}
}
