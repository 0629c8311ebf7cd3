package machine

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// CgroupParent is the cgroup (in every v1 controller) the machines' cgroups are made under.
const CgroupParent = "infralab-box"

// Runc is the Provider that runs each machine as a privileged runc container.
type Runc struct {
	// RootFS is the shared lower layer (rootfs.Tree).
	RootFS string
	// StateDir holds each machine's bundle (config.json) and console log; RuncRoot is runc's own
	// state (--root), apart from any other runc user on the host.
	StateDir, RuncRoot string
	// DataDir holds each machine's disk: overlay upper/work dirs, the merged root and the
	// nested containerd's directory.
	DataDir string
	// Runc is the runc binary; empty means "runc" on PATH.
	Runc string
}

var _ Provider = (*Runc)(nil)

func (r *Runc) bin() string {
	if r.Runc != "" {
		return r.Runc
	}
	return "runc"
}

func (r *Runc) bundle(name string) string { return filepath.Join(r.StateDir, name) }
func (r *Runc) disk(name string) string   { return filepath.Join(r.DataDir, name) }
func (r *Runc) root(name string) string   { return filepath.Join(r.disk(name), "root") }

// RootDir is machine name's merged root as the host sees it (files written there land in the
// machine's upper dir).
func (r *Runc) RootDir(name string) string { return r.root(name) }

// runc runs one runc command with our --root and returns its combined output.
func (r *Runc) runc(ctx context.Context, stdin io.Reader, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, r.bin(), append([]string{"--root", r.RuncRoot}, args...)...)
	cmd.Stdin = stdin
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.Bytes(), fmt.Errorf("runc %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.Bytes(), nil
}

// Create implements Provider.
func (r *Runc) Create(ctx context.Context, s Spec) error {
	if err := validName(s.Name); err != nil {
		return err
	}
	if s.InstanceID == "" {
		return fmt.Errorf("machine %s: spec.InstanceID is empty: give cloud-init an instance-id (a new one per re-created machine)", s.Name)
	}
	if _, err := os.Stat(r.bundle(s.Name)); err == nil {
		return fmt.Errorf("machine %s: exists (%s): destroy it first", s.Name, r.bundle(s.Name))
	}
	if st, err := os.Stat(filepath.Join(r.RootFS, "lib/systemd/systemd")); err != nil || st.IsDir() {
		return fmt.Errorf("machine %s: %s is not a machine root filesystem (no lib/systemd/systemd): run hack/tools.sh box", s.Name, r.RootFS)
	}
	caps, err := hostCapabilities()
	if err != nil {
		return err
	}
	disk := r.disk(s.Name)
	for _, d := range []string{"upper", "work", "root", "containerd"} {
		if err := os.MkdirAll(filepath.Join(disk, d), 0o755); err != nil {
			return fmt.Errorf("machine %s: %w", s.Name, err)
		}
	}
	if err := os.MkdirAll(r.bundle(s.Name), 0o700); err != nil {
		return fmt.Errorf("machine %s: %w", s.Name, err)
	}
	if err := mountOverlay(r.RootFS, disk); err != nil {
		return fmt.Errorf("machine %s: %w", s.Name, err)
	}
	if err := writeIdentity(r.root(s.Name), s); err != nil {
		return fmt.Errorf("machine %s: %w", s.Name, err)
	}
	netns := s.NetNS
	spec := ociSpec(s.Name, r.root(s.Name), netns, filepath.Join(disk, "containerd"), caps)
	data, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return fmt.Errorf("machine %s: %w", s.Name, err)
	}
	return os.WriteFile(filepath.Join(r.bundle(s.Name), "config.json"), data, 0o600)
}

// writeIdentity writes what makes a machine itself into its upper layer: machine-id, hostname,
// and the NoCloud seed cloud-init's ds-identify finds in /var/lib/cloud/seed/nocloud.
func writeIdentity(root string, s Spec) error {
	id := s.MachineID
	if id == "" {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		id = hex.EncodeToString(b)
	}
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		return fmt.Errorf("spec.MachineID %q: want 32 lowercase hex digits", id)
	}
	seed := filepath.Join(root, "var/lib/cloud/seed/nocloud")
	if err := os.MkdirAll(seed, 0o700); err != nil {
		return err
	}
	meta := fmt.Sprintf("instance-id: %s\nlocal-hostname: %s\n", s.InstanceID, s.Name)
	files := []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{filepath.Join(root, "etc/machine-id"), []byte(id + "\n"), 0o444},
		{filepath.Join(root, "etc/hostname"), []byte(s.Name + "\n"), 0o644},
		{filepath.Join(seed, "meta-data"), []byte(meta), 0o600},
		{filepath.Join(seed, "user-data"), s.UserData, 0o600},
	}
	for _, f := range files {
		_ = os.Remove(f.path) // the lower layer's file is read-only (0444 machine-id)
		if err := os.WriteFile(f.path, f.data, f.mode); err != nil {
			return err
		}
	}
	return nil
}

// Start implements Provider.
func (r *Runc) Start(ctx context.Context, name string) error {
	st, err := r.Status(ctx, name)
	if err != nil {
		return err
	}
	switch st {
	case Absent:
		return fmt.Errorf("machine %s: does not exist: create it first", name)
	case Running:
		return nil
	}
	// A hard-stopped machine leaves runc's record of a stopped container behind.
	if _, err := r.runc(ctx, nil, "delete", "--force", name); err != nil && !notExist(err) {
		return fmt.Errorf("machine %s: %w", name, err)
	}
	if err := ensureMounted(r.RootFS, r.disk(name)); err != nil {
		return fmt.Errorf("machine %s: %w", name, err)
	}
	console, err := os.OpenFile(filepath.Join(r.bundle(name), "console.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("machine %s: %w", name, err)
	}
	defer console.Close()
	// -d: runc returns once PID 1 runs; systemd's console output goes to console.log.
	cmd := exec.CommandContext(ctx, r.bin(), "--root", r.RuncRoot, "run", "--detach", "--bundle", r.bundle(name), name)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, console, console
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("machine %s: runc run: %w (console: %s)", name, err, tail(filepath.Join(r.bundle(name), "console.log")))
	}
	return nil
}

// Stop implements Provider.
func (r *Runc) Stop(ctx context.Context, name string) error {
	st, err := r.Status(ctx, name)
	if err != nil || st == Absent {
		return err
	}
	pids := cgroupPids(filepath.Join(CgroupParent, name))
	if st == Running {
		if _, err := r.runc(ctx, nil, "kill", "--all", name, "KILL"); err != nil && !notExist(err) {
			return fmt.Errorf("machine %s: %w", name, err)
		}
	}
	defer waitGone(pids, 30*time.Second)
	// delete --force also kills what is left and removes runc's record and the machine's cgroups.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := r.runc(ctx, nil, "delete", "--force", name)
		if err == nil || notExist(err) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("machine %s: %w", name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Destroy implements Provider.
func (r *Runc) Destroy(ctx context.Context, name string) error {
	if err := validName(name); err != nil {
		return err
	}
	if err := r.Stop(ctx, name); err != nil {
		return err
	}
	if err := unmount(r.root(name)); err != nil {
		return fmt.Errorf("machine %s: %w", name, err)
	}
	removeCgroups(filepath.Join(CgroupParent, name), 50) // processes killed by Stop may still be exiting
	var errs []error
	for _, d := range []string{r.disk(name), r.bundle(name)} {
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, fmt.Errorf("machine %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// Exec implements Provider.
func (r *Runc) Exec(ctx context.Context, name string, stdin io.Reader, args ...string) ([]byte, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("machine %s: exec: no command", name)
	}
	return r.runc(ctx, stdin, append([]string{"exec", name}, args...)...)
}

// Status implements Provider.
func (r *Runc) Status(ctx context.Context, name string) (Status, error) {
	if _, err := os.Stat(filepath.Join(r.bundle(name), "config.json")); err != nil {
		return Absent, nil
	}
	out, err := r.runc(ctx, nil, "state", name)
	if err != nil {
		if notExist(err) {
			return Stopped, nil
		}
		return "", fmt.Errorf("machine %s: %w", name, err)
	}
	var state struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(out, &state); err != nil {
		return "", fmt.Errorf("machine %s: runc state: %w", name, err)
	}
	if state.Status == "running" {
		return Running, nil
	}
	return Stopped, nil
}

// List implements Provider.
func (r *Runc) List(context.Context) ([]string, error) {
	entries, err := os.ReadDir(r.StateDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(r.StateDir, e.Name(), "config.json")); err == nil {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

func notExist(err error) bool {
	s := err.Error()
	return strings.Contains(s, "does not exist") || strings.Contains(s, "not found")
}

func validName(name string) error {
	if name == "" || len(name) > 63 || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" ||
		strings.HasPrefix(name, "-") || strings.HasSuffix(name, "-") {
		return fmt.Errorf("machine name %q: want a DNS label (lowercase letters, digits, '-'), e.g. k8s-worker-1", name)
	}
	return nil
}

func tail(path string) string {
	data, _ := os.ReadFile(path)
	if len(data) > 2000 {
		data = data[len(data)-2000:]
	}
	return strings.TrimSpace(string(data))
}

// removeCgroups removes rel (and everything below it) from every v1 controller, depth-first;
// runc delete removes the machine's own cgroup, not what systemd or containerd made below it if
// a process was still exiting.
func removeCgroups(rel string, tries int) {
	ctrls, _ := os.ReadDir("/sys/fs/cgroup")
	for _, c := range ctrls {
		removeTree(filepath.Join("/sys/fs/cgroup", c.Name(), rel), tries)
	}
}

func removeTree(dir string, tries int) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.IsDir() {
			removeTree(filepath.Join(dir, e.Name()), tries)
		}
	}
	for i := 0; i < tries; i++ {
		if err := syscall.Rmdir(dir); err == nil || errors.Is(err, syscall.ENOENT) {
			return
		}
		if i+1 < tries {
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// RemoveCgroupParent removes the box's parent cgroup from every controller (after the last
// machine is destroyed). Cgroups of machines that still run (another box on the same host) stay.
func RemoveCgroupParent() { removeCgroups(CgroupParent, 1) }

// cgroupPids lists the processes in rel's tree of the pids controller (every process of a
// machine, nested containers included).
func cgroupPids(rel string) []string {
	var pids []string
	_ = filepath.Walk(filepath.Join("/sys/fs/cgroup/pids", rel), func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Name() == "cgroup.procs" {
			data, _ := os.ReadFile(p)
			pids = append(pids, strings.Fields(string(data))...)
		}
		return nil
	})
	return pids
}

// waitGone waits (bounded) until none of pids runs: a killed machine's processes exit
// asynchronously, and Stop returns only once the machine is really off.
func waitGone(pids []string, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for _, pid := range pids {
		for time.Now().Before(deadline) {
			data, err := os.ReadFile(filepath.Join("/proc", pid, "cgroup"))
			if err != nil || !strings.Contains(string(data), "/"+CgroupParent+"/") {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
