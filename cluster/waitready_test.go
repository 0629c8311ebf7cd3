package cluster

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cloud-init answers from $FAKE/cloud-init-rc (the exit code of `status --wait`: 0 done, 1 error,
// 2 degraded, cloud-init >= 23.4) and $FAKE/cloud-init-long (what `status --long` prints).
const fakeCloudInit = `f=${FAKE}
case "$*" in
"status --wait") echo "....." ; exit "$(cat "${f}/cloud-init-rc" 2>/dev/null || echo 0)" ;;
"status --long") cat "${f}/cloud-init-long" ;;
*) exit 2 ;;
esac
`

func (n *fakeNode) waitReady() (stdout, stderr string, err error) {
	n.t.Helper()
	return n.run("wait-ready.sh", map[string]string{"PHASE": PhaseWaitSSH, "NODE_NAME": "worker-1", "CLOUD_INIT_TIMEOUT": "900"}, "", "")
}

// The first phase waits for cloud-init and reports what it said (infra issue 13: "created" is
// not "booted and through cloud-init"): done passes and says so on stdout; error and degraded
// (recoverable errors) fail with cloud-init's own status and errors.
func TestWaitReadyReportsCloudInitAndFailsOnErrorOrDegraded(t *testing.T) {
	n := newFakeNodeWith(t, map[string]string{"cloud-init": fakeCloudInit})
	n.set("cloud-init-long", "status: done\nextended_status: done\nboot_status_code: enabled-by-generator\ndetail:\nDataSourceNoCloud [seed=/dev/sr0][dsmode=net]\nerrors: []\nrecoverable_errors: {}")
	out, log, err := n.waitReady()
	require.NoError(t, err, log)
	assert.Equal(t, "worker-1 ready (cloud-init: done)\n", out)

	for rc, status := range map[string]string{"1": "error", "2": "degraded done"} {
		n.set("cloud-init-rc", rc)
		n.set("cloud-init-long", "status: done\nextended_status: "+status+"\ndetail:\nDataSourceNoCloud\nerrors:\n\t- ('write_files', OSError(28, 'No space left on device'))\nrecoverable_errors:\nWARNING:\n\t- Failed to install packages: ['qemu-guest-agent']")
		_, log, err = n.waitReady()
		require.Error(t, err, "cloud-init exit %s must fail the phase:\n%s", rc, log)
		assert.Contains(t, log, "cloud-init on worker-1 finished with status "+status, rc)
		assert.Contains(t, log, "No space left on device", "its errors are shown")
		assert.Contains(t, log, "Failed to install packages", "and its recoverable errors")
		assert.Contains(t, log, "/var/log/cloud-init.log")
	}
}
