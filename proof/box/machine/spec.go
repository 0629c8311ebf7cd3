package machine

import (
	"os"
	"path"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ociSpec is a machine's runc config: the toolchain notes' "What worked" recipe, written here
// rather than by editing `runc spec` output. Every choice serves systemd as PID 1 and nested
// containers (kubelet + containerd) on this cgroup v1 host.
func ociSpec(name, root, netns, containerdDir string, caps []string) *specs.Spec {
	all := &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps, Inheritable: caps, Ambient: caps}
	net := specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: netns}
	mounts := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		// kubelet's OOM watcher reads the kernel log; without /dev/kmsg it does not start.
		{Destination: "/dev/kmsg", Type: "bind", Source: "/dev/kmsg", Options: []string{"rbind", "rw"}},
		// Writable /sys and cgroupfs (runc mounts every v1 controller, in the machine's cgroup
		// namespace): systemd and the nested containerd create cgroups of their own.
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "rw"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "rw"}},
		{Destination: "/run", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=755", "size=256m"}},
		{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777", "size=512m"}},
		// overlayfs cannot be the upper layer of another overlayfs: the nested containerd's
		// overlayfs snapshots need a real filesystem (kind makes /var a volume for the same reason).
		{Destination: "/var/lib/containerd", Type: "bind", Source: containerdDir, Options: []string{"rbind", "rw"}},
	}
	if st, err := os.Stat("/lib/modules"); err == nil && st.IsDir() {
		// kubeadm's SystemVerification and modprobe look here; the machines share the host's kernel.
		mounts = append(mounts, specs.Mount{Destination: "/lib/modules", Type: "bind", Source: "/lib/modules", Options: []string{"rbind", "ro"}})
	}
	return &specs.Spec{
		Version:  "1.0.2-dev", // what Debian 12's runc 1.1.5 writes with `runc spec`
		Hostname: name,
		Root:     &specs.Root{Path: root},
		Process: &specs.Process{
			Terminal: false,
			User:     specs.User{UID: 0, GID: 0},
			Args:     []string{"/lib/systemd/systemd"},
			// systemd reads $container to know it runs in a container (kind sets the same).
			Env:          []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "container=docker"},
			Cwd:          "/",
			Capabilities: all,
		},
		Mounts: mounts,
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, net, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
				{Type: specs.MountNamespace}, {Type: specs.CgroupNamespace},
			},
			CgroupsPath: path.Join("/", CgroupParent, name),
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}},
			},
		},
	}
}
