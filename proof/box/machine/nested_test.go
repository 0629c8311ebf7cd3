package machine_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/infralab/infralab/internal/testenv"
	"github.com/infralab/infralab/proof/box/machine"
)

// TestMachineRunsANestedContainerWithItsMemoryLimit: kubelet-style workloads nest. The pinned
// containerd 2.x (daemon, shim, ctr: hack/tools.sh containerd2) runs inside a machine and starts
// a container with a 64 MiB memory limit; the limit is in the container's cgroup, below the
// machine's own cgroup on the host.
func TestMachineRunsANestedContainerWithItsMemoryLimit(t *testing.T) {
	p := newProvider(t)
	bins := map[string]string{
		"usr/local/bin/containerd":              testenv.Tool(t, "containerd2"),
		"usr/local/bin/containerd-shim-runc-v2": testenv.Tool(t, "containerd2-shim-runc-v2"),
		"usr/local/bin/ctr":                     testenv.Tool(t, "ctr2"),
		"usr/local/sbin/runc":                   testenv.Tool(t, "runc"),
		"var/lib/bb/bin/busybox":                testenv.Tool(t, "busybox"),
	}
	ctx := context.Background()
	const name = "m-nested"
	t.Cleanup(func() {
		if err := p.Destroy(context.Background(), name); err != nil {
			t.Errorf("destroy: %v", err)
		}
		machine.RemoveCgroupParent()
	})
	if err := p.Create(ctx, machine.Spec{Name: name, InstanceID: "iid-nested", UserData: []byte("#cloud-config\nlocale: false\n")}); err != nil {
		t.Fatal(err)
	}
	root := p.RootDir(name)
	// runc links libseccomp dynamically: copy the library ldd names with it.
	ldd, err := exec.Command("ldd", bins["usr/local/sbin/runc"]).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, lib := range regexp.MustCompile(`=> (/\S*seccomp\S*)`).FindAllStringSubmatch(string(ldd), -1) {
		bins[strings.TrimPrefix(filepath.Join("usr/lib/x86_64-linux-gnu", filepath.Base(lib[1])), "/")] = lib[1]
	}
	for dst, src := range bins {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(dst)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, dst), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Start(ctx, name); err != nil {
		t.Fatal(err)
	}
	if _, err := machine.WaitSystem(ctx, p, name, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	execOut(t, p, name, "systemd-run", "--unit=containerd", "/usr/local/bin/containerd")
	execOut(t, p, name, "sh", "-c", "for i in $(seq 50); do ctr version >/dev/null 2>&1 && exit 0; sleep 0.2; done; exit 1")
	execOut(t, p, name, "ctr", "run", "-d", "--rootfs", "--memory-limit", "67108864", "/var/lib/bb", "memtest", "/bin/busybox", "sleep", "300")
	if got := execOut(t, p, name, "cat", "/sys/fs/cgroup/memory/default/memtest/memory.limit_in_bytes"); got != "67108864" {
		t.Errorf("nested container's memory.limit_in_bytes inside the machine = %q, want 67108864", got)
	}
	host := filepath.Join("/sys/fs/cgroup/memory", machine.CgroupParent, name, "default/memtest/memory.limit_in_bytes")
	if data, err := os.ReadFile(host); err != nil || strings.TrimSpace(string(data)) != "67108864" {
		t.Errorf("on the host, %s = %q (%v), want 67108864 below the machine's cgroup", host, data, err)
	}
	if got := execOut(t, p, name, "ctr", "task", "ls"); !strings.Contains(got, "RUNNING") {
		t.Errorf("ctr task ls: %s", got)
	}
}
