// Package workflowlint checks the GitHub Actions workflows in .github/workflows: actionlint (with
// shellcheck over every `run:` block) plus this project's own rules, that every action is pinned by a
// full commit SHA and that every workflow and job states least-privilege `permissions:`.
package workflowlint

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/rhysd/actionlint"
)

// Files returns the workflow files in dir, sorted.
func Files(dir string) ([]string, error) {
	var files []string
	for _, pat := range []string{"*.yml", "*.yaml"} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			return nil, err
		}
		files = append(files, m...)
	}
	sort.Strings(files)
	if len(files) == 0 {
		return nil, fmt.Errorf("no workflow files in %s", dir)
	}
	return files, nil
}

// Actionlint runs actionlint over files and returns one line per finding. shellcheck is the
// shellcheck executable; empty turns the shellcheck rule off.
func Actionlint(files []string, shellcheck string) ([]string, error) {
	var out bytes.Buffer
	l, err := actionlint.NewLinter(&out, &actionlint.LinterOptions{
		Shellcheck: shellcheck,
		Oneline:    true,
		// A workflow under testdata is linted on its own, without the repository's config.
		ConfigFile: "",
	})
	if err != nil {
		return nil, err
	}
	errs, err := l.LintFiles(files, nil)
	if err != nil {
		return nil, err
	}
	msgs := make([]string, 0, len(errs))
	for _, e := range errs {
		msgs = append(msgs, fmt.Sprintf("%s:%d:%d: %s [%s]", e.Filepath, e.Line, e.Column, e.Message, e.Kind))
	}
	return msgs, nil
}

// pinned matches a `uses:` line whose ref is a full commit SHA followed by a version comment,
// e.g. `uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2`.
var pinned = regexp.MustCompile(`^\s*(-\s+)?uses:\s+[\w.-]+/[\w./-]+@[0-9a-f]{40}\s+#\s*v\d+(\.\d+)*\s*$`)

var usesLine = regexp.MustCompile(`^\s*(-\s+)?uses:\s+(\S+)`)

// Policy checks one workflow file against the project's CI rules and returns every violation.
func Policy(path string) ([]string, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var v []string
	add := func(line int, format string, args ...any) {
		v = append(v, fmt.Sprintf("%s:%d: %s", path, line, fmt.Sprintf(format, args...)))
	}
	for i, line := range strings.Split(string(src), "\n") {
		m := usesLine.FindStringSubmatch(line)
		if m == nil || strings.HasPrefix(m[2], "./") {
			continue // local reusable workflows and actions are part of this commit
		}
		if !pinned.MatchString(line) {
			add(i+1, "%s: pin the action by its full 40-hex commit SHA with a `# vX.Y.Z` comment", m[2])
		}
	}

	w, perrs := actionlint.Parse(src)
	for _, e := range perrs {
		add(e.Line, "parse: %s", e.Message)
	}
	if w == nil {
		return v, nil
	}
	if w.Permissions == nil {
		add(1, "workflow has no top-level `permissions:`; use `permissions: {}` and grant per job")
	} else if w.Permissions.All != nil {
		add(w.Permissions.Pos.Line, "workflow permissions %q: list scopes explicitly (least privilege)", w.Permissions.All.Value)
	} else {
		for name, s := range w.Permissions.Scopes {
			if s.Value != nil && s.Value.Value == "write" {
				add(w.Permissions.Pos.Line, "workflow grants %s: write to every job; grant it on the one job that needs it", name)
			}
		}
	}
	ids := make([]string, 0, len(w.Jobs))
	for id := range w.Jobs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		v = append(v, jobPolicy(path, id, w.Jobs[id])...)
	}
	return v, nil
}

func jobPolicy(path, id string, j *actionlint.Job) []string {
	var v []string
	add := func(pos *actionlint.Pos, format string, args ...any) {
		line := 0
		if pos != nil {
			line = pos.Line
		}
		v = append(v, fmt.Sprintf("%s:%d: job %s: %s", path, line, id, fmt.Sprintf(format, args...)))
	}
	if j.Permissions == nil {
		add(j.Pos, "no `permissions:`; state exactly what the job needs (e.g. contents: read)")
		return v
	}
	if j.Permissions.All != nil {
		add(j.Permissions.Pos, "permissions %q: list scopes explicitly", j.Permissions.All.Value)
	}
	var writes []string
	for name, s := range j.Permissions.Scopes {
		if s.Value != nil && s.Value.Value == "write" {
			writes = append(writes, name)
		}
	}
	if len(writes) > 0 {
		// A job that can write must not run code from the repository: it would hand the token
		// to whatever a pull request changed.
		for _, st := range j.Steps {
			if a, ok := st.Exec.(*actionlint.ExecAction); ok && a.Uses != nil &&
				strings.HasPrefix(a.Uses.Value, "actions/checkout@") {
				add(st.Pos, "has %s: write and checks out the repository; split the write into its own job", strings.Join(writes, ", "))
			}
		}
	}
	if j.Environment != nil && j.Environment.Name != nil {
		// A job with an environment deploys (environments named preview-* only hand out read
		// credentials): two runs on one stack must queue, never cancel.
		c := j.Concurrency
		preview := strings.HasPrefix(j.Environment.Name.Value, "preview-")
		switch {
		case c == nil || c.Group == nil:
			if !preview {
				add(j.Pos, "deploys to an environment without a `concurrency:` group")
			}
		case c.CancelInProgress != nil && (c.CancelInProgress.Value || c.CancelInProgress.Expression != nil):
			add(c.Pos, "deploy concurrency must set cancel-in-progress: false")
		}
	}
	return v
}
