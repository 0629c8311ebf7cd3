package cluster

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/stretchr/testify/require"

	"github.com/infralab/infralab/internal/testenv"
)

// runCommandLine runs a command line exactly as the program registered it (the `create` or
// `delete` of a remote.Command), the way the provider does: `session.Run(cmd)` hands it to the
// login shell, with stdin. It runs in a private mount namespace like fakeNode.run, with /usr/local
// overlaid as well: the stubs go to /usr/local/bin, which the command line's own PATH
// (commandLine in command.go) searches before /usr/bin, and sudo is a stub that drops -n (the
// test runs as root). stdout and stderr are also captured together, in the order they were
// written, because that combined buffer is what the provider puts into its error text.
func (n *fakeNode) runCommandLine(cmdline, stdin, setup string) (stdout, stderr, combined string, err error) {
	n.t.Helper()
	_ = os.Remove(filepath.Join(n.fake, "calls"))
	stage := filepath.Join(n.dir, "cmdline")
	require.NoError(n.t, os.WriteFile(stage, []byte(cmdline), 0o600))
	wrapper := `set -euo pipefail
for d in /etc /var/lib /var/log /usr/local; do
	u="${DIR}/overlay${d}"
	mkdir -p "${u}/up" "${u}/work"
	mount -t overlay overlay -o "lowerdir=${d},upperdir=${u}/up,workdir=${u}/work" "${d}"
done
mkdir -p /usr/local/bin /usr/local/sbin
# env -i in the command line drops FAKE, so each stub gets it written in.
for s in "${BIN}"/*; do
	{ echo '#!/usr/bin/env bash'; echo "FAKE=${FAKE}"; tail -n +2 "${s}"; } >"/usr/local/bin/${s##*/}"
	chmod 0755 "/usr/local/bin/${s##*/}"
done
printf '#!/usr/bin/env bash\n[[ "$1" == -n ]] && shift\nexec "$@"\n' >/usr/local/bin/sudo
chmod 0755 /usr/local/bin/sudo
` + setup + `
exec bash -c "$(cat "${STAGE}")"
`
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "bash", "-c", wrapper, "cmdline")
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "DIR=" + n.dir, "BIN=" + n.bin, "FAKE=" + n.fake,
		"STAGE=" + stage, "HASH=" + fakeKubeletHash}
	cmd.Stdin = strings.NewReader(stdin)
	var o, e strings.Builder
	var both testenv.SyncBuffer
	cmd.Stdout, cmd.Stderr = multi(&o, &both), multi(&e, &both)
	err = cmd.Run()
	return o.String(), e.String(), both.String(), err
}

// localFile reads a file the command line wrote under /usr/local.
func (n *fakeNode) localFile(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, "/usr/local/")
	require.True(n.t, ok, "%s is not under /usr/local", path)
	b, err := os.ReadFile(filepath.Join(n.dir, "overlay", "usr", "local", "up", rest))
	return string(b), err == nil
}

func multi(w ...io.Writer) io.Writer { return io.MultiWriter(w...) }
