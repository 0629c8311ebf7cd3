package machine_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/infralab/infralab/internal/testenv"
	"github.com/infralab/infralab/proof/box/machine"
	"github.com/infralab/infralab/proof/box/rootfs"
)

// newProvider is a Runc provider with every directory under a test temp dir (runc's root too).
func newProvider(t *testing.T) *machine.Runc {
	t.Helper()
	testenv.RequireRoot(t)
	tree, err := rootfs.Tree(testenv.CacheDir())
	if err != nil {
		if testenv.Required() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	testenv.ExclusiveNode(t)
	dir := t.TempDir()
	return &machine.Runc{RootFS: tree, StateDir: filepath.Join(dir, "state"), RuncRoot: filepath.Join(dir, "runc"), DataDir: filepath.Join(dir, "data")}
}

func execOut(t *testing.T, p machine.Provider, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := p.Exec(ctx, name, nil, args...)
	if err != nil {
		t.Fatalf("%s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}

// TestMachineBootsSystemdAndCloudInitFromItsOwnSeed: one machine (no network) boots systemd as PID
// 1, cloud-init's ds-identify finds the NoCloud seed and runs the user-data, the machine has the
// hostname and machine-id it was given, writes land in its upper dir only, and a hard Stop then
// Start boots the same filesystem again.
func TestMachineBootsSystemdAndCloudInitFromItsOwnSeed(t *testing.T) {
	p := newProvider(t)
	ctx := context.Background()
	const name = "m-boot"
	t.Cleanup(func() {
		if err := p.Destroy(context.Background(), name); err != nil {
			t.Errorf("destroy: %v", err)
		}
		machine.RemoveCgroupParent()
	})
	spec := machine.Spec{Name: name, InstanceID: "iid-boot-1", MachineID: "0123456789abcdef0123456789abcdef",
		UserData: []byte("#cloud-config\nlocale: false\nruncmd:\n  - [sh, -c, 'echo ran > /var/tmp/runcmd']\n")}
	if err := p.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := p.Create(ctx, spec); err == nil {
		t.Fatal("a second Create of the same machine succeeded")
	}
	if err := p.Start(ctx, name); err != nil {
		t.Fatal(err)
	}
	if st, _ := p.Status(ctx, name); st != machine.Running {
		t.Fatalf("status %s, want running", st)
	}
	if state, err := machine.WaitSystem(ctx, p, name, 2*time.Minute); err != nil || state != "running" {
		t.Errorf("systemd: %s %v", state, err)
	}
	if got := execOut(t, p, name, "timeout", "150", "cloud-init", "status", "--wait"); !strings.Contains(got, "status: done") {
		t.Errorf("cloud-init status: %q", got)
	}
	if got := execOut(t, p, name, "cloud-init", "query", "v1.instance_id"); got != "iid-boot-1" {
		t.Errorf("instance id %q (datasource %s)", got, execOut(t, p, name, "cloud-init", "query", "v1.platform"))
	}
	if got := execOut(t, p, name, "cat", "/var/tmp/runcmd"); got != "ran" {
		t.Errorf("user-data runcmd wrote %q", got)
	}
	if got := execOut(t, p, name, "hostname"); got != name {
		t.Errorf("hostname %q", got)
	}
	if got := execOut(t, p, name, "cat", "/etc/machine-id"); got != spec.MachineID {
		t.Errorf("machine-id %q", got)
	}
	if got := execOut(t, p, name, "sh", "-c", "readlink /proc/1/exe"); got != "/usr/lib/systemd/systemd" && got != "/lib/systemd/systemd" {
		t.Errorf("PID 1 is %q", got)
	}
	if err := p.Stop(ctx, name); err != nil {
		t.Fatal(err)
	}
	if st, _ := p.Status(ctx, name); st != machine.Stopped {
		t.Fatalf("after Stop: status %s, want stopped", st)
	}
	if err := p.Start(ctx, name); err != nil {
		t.Fatal(err)
	}
	if got := execOut(t, p, name, "cat", "/var/tmp/runcmd"); got != "ran" {
		t.Errorf("after a hard stop and start the filesystem lost /var/tmp/runcmd: %q", got)
	}
	if _, err := os.Stat(filepath.Join(p.RootFS, "var/tmp/runcmd")); err == nil {
		t.Error("the machine wrote into the shared root filesystem")
	}
}
