package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/infralab/infralab/internal/testenv"
)

// shellBlock is one fenced shell block of a Markdown file.
type shellBlock struct {
	file string
	line int // of the opening fence
	lang string
	text string
}

// fence opens or closes a code block; list items indent theirs.
var fence = regexp.MustCompile("^([ \t]*)```([A-Za-z0-9_-]*)")

// shellLangs are the info strings of blocks a reader pastes into a terminal.
var shellLangs = map[string]bool{"sh": true, "bash": true, "console": true, "shell": true, "shell-session": true}

// shellBlocks returns every shell block of a Markdown file, de-indented by its fence's indent.
// In console blocks only the prompt lines (`$ ` or `# `) are commands; the rest is output.
func shellBlocks(file string, md []byte) []shellBlock {
	var out []shellBlock
	var cur *shellBlock
	indent := ""
	for i, line := range strings.Split(string(md), "\n") {
		if m := fence.FindStringSubmatch(line); m != nil {
			if cur == nil {
				cur, indent = &shellBlock{file: file, line: i + 1, lang: m[2]}, m[1]
				continue
			}
			if shellLangs[cur.lang] {
				out = append(out, *cur)
			}
			cur = nil
			continue
		}
		if cur == nil {
			continue
		}
		line = strings.TrimPrefix(line, indent)
		if cur.lang == "console" || cur.lang == "shell-session" {
			cmd, ok := strings.CutPrefix(line, "$ ")
			if !ok {
				if cmd, ok = strings.CutPrefix(line, "# "); !ok {
					continue
				}
			}
			line = cmd
		}
		cur.text += line + "\n"
	}
	return out
}

// docFiles is README.md and every Markdown file under docs/.
func docFiles(t *testing.T) []string {
	t.Helper()
	files := []string{"README.md"}
	err := filepath.WalkDir("docs", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".md") {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// Issue 13.6: a documented command that an interactive bash mangles does not run at all. Inside
// double quotes `!` starts a history expansion (`"--tokens infralab@pve!pulumi"` fails with
// `event not found`, the line is dropped, no ACL is set). So every shell block of the README and
// docs/ goes through the reader's shell: bash reading it with history expansion on, as an
// interactive shell does (`-o history -H`), and parsing only (`-n`). It must parse, and bash
// must neither report anything nor expand anything (an expansion like `!!` is echoed on stdout).
func TestDocumentedShellBlocksParseInAnInteractiveBash(t *testing.T) {
	bash := testenv.Tool(t, "bash")
	dir := t.TempDir()
	n := 0
	for _, file := range docFiles(t) {
		md, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range shellBlocks(file, md) {
			n++
			script := filepath.Join(dir, fmt.Sprintf("block-%d.sh", n))
			if err := os.WriteFile(script, []byte(b.text), 0o600); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(bash, "--norc", "--noprofile", "-o", "history", "-H", "-n", script)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			cmd.Env = append(os.Environ(), "HISTFILE=/dev/null")
			err := cmd.Run()
			if err != nil || stdout.Len() > 0 || stderr.Len() > 0 {
				t.Errorf("%s:%d: this ```%s block does not survive an interactive bash (%v):\n%s%s\nblock:\n%s"+
					"fix: put arguments holding ! in single quotes, and quote <placeholders>",
					b.file, b.line, b.lang, err, stdout.String(), strings.ReplaceAll(stderr.String(), script, "block"), b.text)
			}
		}
	}
	if n < 20 {
		t.Fatalf("found only %d shell blocks; is the extraction broken?", n)
	}
}

func TestShellBlocksExtraction(t *testing.T) {
	md := "intro\n```sh\necho a\n```\n1. step\n   ```console\n   $ echo b\n   output\n   ```\n```go\nx := 1\n```\n```\nplain\n```\n"
	got := shellBlocks("x.md", []byte(md))
	if len(got) != 2 || got[0].text != "echo a\n" || got[0].line != 2 || got[1].text != "echo b\n" || got[1].lang != "console" {
		t.Fatalf("got %+v", got)
	}
}
