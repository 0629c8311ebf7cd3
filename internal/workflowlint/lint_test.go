package workflowlint

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/infralab/infralab/internal/testenv"
)

func workflowDir() string { return filepath.Join(testenv.RepoRoot(), ".github", "workflows") }

// shellcheck returns the real shellcheck; actionlint runs it over every `run:` block.
func shellcheck(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("shellcheck"); err == nil {
		return p
	}
	return testenv.Tool(t, "shellcheck")
}

func TestWorkflowsPassActionlint(t *testing.T) {
	files, err := Files(workflowDir())
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := Actionlint(files, shellcheck(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		t.Error(m)
	}
	t.Logf("actionlint + shellcheck: %d files, %d findings", len(files), len(msgs))
}

func TestWorkflowsArePinnedAndLeastPrivilege(t *testing.T) {
	files, err := Files(workflowDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		v, err := Policy(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range v {
			t.Error(m)
		}
	}
}

// TestLintersCatchABrokenWorkflow proves both checks can fail: testdata/bad holds a workflow with
// an unpinned action, missing permissions, a write token next to a checkout, a cancellable
// deploy and a shell bug.
func TestLintersCatchABrokenWorkflow(t *testing.T) {
	bad := filepath.Join("testdata", "bad", "bad.yml")
	v, err := Policy(bad)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"actions/checkout@v4: pin the action",
		"workflow has no top-level `permissions:`",
		"job build: no `permissions:`",
		"job comment: has pull-requests: write and checks out",
		"job deploy: deploy concurrency must set cancel-in-progress: false",
	}
	assertContains(t, "policy", v, want)

	msgs, err := Actionlint([]string{bad}, shellcheck(t))
	if err != nil {
		t.Fatal(err)
	}
	assertContains(t, "actionlint", msgs, []string{"shellcheck reported issue", "[shellcheck]"})
}

func assertContains(t *testing.T, what string, got, want []string) {
	t.Helper()
	all := strings.Join(got, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("%s findings lack %q; got:\n%s", what, w, all)
		}
	}
}
