// Package memhog holds the memfd writer that OOM-kills a container's main process on purpose,
// shared by the chaos oom-kill experiment and the embedded node's end-to-end test.
//
// Exec'd into a container, the writer fills a memfd (an anonymous tmpfs file) with write(2).
// Those pages are charged to the container's memory cgroup and cannot be reclaimed, but they are
// in no process's RSS, so the cgroup's OOM killer picks the largest process of the container:
// its PID 1, as if the app itself had grown past its limit. The container dies with SIGKILL
// (exit 137, OOMKilled); the writer dies with its PID namespace and the memfd with it.
//
// It prints "writing" once it runs and "writer failed" when it cannot do its part (no memfd, a
// write refused, its time cap), so a caller tells that apart from the kill it wants. A write
// refused with ENOMEM is reported only after a pause: the charge that triggers the kill may also
// fail while PID 1 is being killed, and then the writer dies with the container during the
// pause. "was not killed" means the limit did not hold (swap?).
package memhog

import (
	_ "embed"
	"strconv"
)

//go:embed memfd_writer.py
var script string

// Command is the argv that runs the writer in a container: at most limitBytes written, for at
// most capSeconds.
func Command(limitBytes int64, capSeconds int) []string {
	return []string{"python3", "-c", script, strconv.FormatInt(limitBytes, 10), strconv.Itoa(capSeconds)}
}
