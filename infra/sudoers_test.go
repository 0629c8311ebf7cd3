package infra

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/infralab/infralab/internal/testenv"
)

// documentedSudoers is the sudoers file docs/infra.md tells the user to write for a non-root
// proxmox.hostSshUser: the fenced block that starts with "# /etc/sudoers.d/infralab".
func documentedSudoers(t *testing.T) (file string, rules map[string][]string) {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "docs", "infra.md"))
	require.NoError(t, err)
	m := regexp.MustCompile("(?s)```text\n(# /etc/sudoers.d/infralab\n.*?)```").FindSubmatch(doc)
	require.NotNil(t, m, "docs/infra.md has no sudoers block")
	rules = map[string][]string{}
	for _, line := range strings.Split(string(m[1]), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, cmd, ok := strings.Cut(line, " ALL=(root) NOPASSWD: ")
		require.True(t, ok, "unexpected sudoers line %q", line)
		rules[user] = append(rules[user], cmd)
	}
	return string(m[1]), rules
}

// sudoCommands lists what a shell line runs under `sudo -n`, without quotes and redirections, the
// program resolved the way sudo's secure_path does on Proxmox VE 8 (Debian 12, merged /usr).
func sudoCommands(line string) []string {
	var out []string
	for _, part := range strings.Split(line, "; ") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(part), "sudo -n ")
		if !ok {
			continue
		}
		var words []string
		for _, w := range strings.Fields(strings.ReplaceAll(rest, "'", "")) {
			if !strings.HasPrefix(w, ">") { // a redirection is the shell's, not sudo's
				words = append(words, w)
			}
		}
		prog, args, _ := strings.Cut(strings.Join(words, " "), " ")
		out = append(out, "/usr/bin/"+prog+" "+args)
	}
	return out
}

// sudoAllows asks the real sudo whether the documented rules let their user run each command:
// `sudo -l -U nobody CMD` exits 0 only when CMD is allowed. The rules are rewritten for nobody and
// bind-mounted over /etc/sudoers inside a private mount namespace, so the host's sudoers and
// users are never touched.
func sudoAllows(t *testing.T, file string, commands []string) map[string]bool {
	t.Helper()
	testenv.RequireRoot(t)
	for _, tool := range []string{"sudo", "visudo", "unshare"} {
		if _, err := exec.LookPath(tool); err != nil {
			if testenv.Required() {
				t.Fatalf("%s is not installed (apt-get install sudo util-linux)", tool)
			}
			t.Skipf("%s is not installed (apt-get install sudo util-linux)", tool)
		}
	}
	sudoers := filepath.Join(t.TempDir(), "sudoers")
	require.NoError(t, os.WriteFile(sudoers, []byte(strings.ReplaceAll(file, "\ninfralab ", "\nnobody ")), 0o440))
	out, err := exec.Command("visudo", "-c", "-f", sudoers).CombinedOutput()
	require.NoError(t, err, "visudo -cf: %s", out)
	var script strings.Builder
	fmt.Fprintf(&script, "mount --bind %s /etc/sudoers || exit 99\n", sudoers)
	// sudo -l resolves the command first; Proxmox's pvesm and qm are not on this machine, so
	// stand-ins go onto a namespace-private tmpfs over /usr/sbin (sudo itself is in /usr/bin).
	script.WriteString("mount -t tmpfs tmpfs /usr/sbin || exit 99\n")
	script.WriteString("for c in pvesm qm; do printf '#!/bin/sh\\n' >/usr/sbin/$c; chmod 755 /usr/sbin/$c; done\n")
	for i, c := range commands {
		fmt.Fprintf(&script, "if sudo -n -l -U nobody %s >/dev/null 2>&1; then echo %d=yes; else echo %d=no; fi\n", c, i, i)
	}
	out, err = exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script.String()).CombinedOutput()
	require.NoError(t, err, "%s", out)
	got := map[string]bool{}
	for i, c := range commands {
		got[c] = strings.Contains(string(out), fmt.Sprintf("\n%d=yes\n", i)) || strings.HasPrefix(string(out), fmt.Sprintf("%d=yes\n", i))
	}
	return got
}

// Every command the NAT step sends as a non-root user is allowed by the documented sudoers lines,
// and so are the provider's snippet upload and its pvesm/qm calls; a path outside the snippets
// folder is not, not even through "..", which bpg's own glob line lets through.
func TestDocumentedSudoersAllowExactlyWhatRunsUnderSudo(t *testing.T) {
	file, rules := documentedSudoers(t)
	require.NotEmpty(t, rules["infralab"])
	env := map[string]string{"INFRALAB_BRIDGE": "vmbr1", "INFRALAB_CIDR": "10.10.10.0/24", "INFRALAB_UPLINK": "enp0s31f6.4000"}
	var sent []string
	for _, action := range []string{"apply", "remove"} {
		sent = append(sent, sudoCommands(natCommand("infralab", hostNATPath, env, action))...)
	}
	require.Len(t, sent, 5, "install, tee, chmod, apply, remove: %v", sent)
	// What bpg v0.95.0 runs for a snippet on the local storage (proxmox/ssh/client.go: try_sudo
	// /usr/bin/tee <path>; the name is the infra layer's) and for the sudo probe and disk import.
	provider := []string{
		"/usr/bin/tee /var/lib/vz/snippets/infralab-lab-k8s-cp-1.user-data.yaml",
		"/usr/sbin/pvesm apiinfo",
		"/usr/sbin/qm disk import 200 /var/lib/vz/import/debian.qcow2 local-lvm -format qcow2",
	}
	refused := []string{
		"/usr/bin/tee /etc/sudoers.d/evil",
		"/usr/bin/tee /var/lib/vz/snippets/a./../../../etc/sudoers.d/evil",
		"/usr/bin/env INFRALAB_BRIDGE=vmbr1 LD_PRELOAD=/tmp/x.so INFRALAB_CIDR=10.10.10.0/24 INFRALAB_UPLINK=vmbr0 sh /usr/local/lib/infralab/host-nat.sh apply",
		"/usr/bin/env INFRALAB_BRIDGE=vmbr1 INFRALAB_CIDR=10.10.10.0/24 INFRALAB_UPLINK=vmbr0 sh /tmp/other.sh apply",
		"/usr/bin/chmod 4755 /usr/local/lib/infralab/host-nat.sh",
		"/usr/bin/bash",
	}
	got := sudoAllows(t, file, append(append(append([]string(nil), sent...), provider...), refused...))
	for _, c := range append(sent, provider...) {
		assert.True(t, got[c], "sudo refuses %q, which infralab runs", c)
	}
	for _, c := range refused {
		assert.False(t, got[c], "sudo allows %q", c)
	}
}
