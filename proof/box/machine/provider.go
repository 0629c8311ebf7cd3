// Package machine runs the box's machines: Debian 12 systems with systemd as PID 1, each a
// privileged runc container whose root is an overlayfs over the shared cached root filesystem
// (proof/box/rootfs) with an upper dir of its own, so each has its own filesystem, machine-id,
// hostname and NoCloud seed. The Provider interface is small, like kind's node providers, so tests
// can drive the machines (stop one hard to lose a node, recreate it with a new instance id); Runc
// is its one implementation (the toolchain notes' "What worked" recipe: docs/box.md says why).
package machine

import (
	"context"
	"io"
)

// Spec is what a machine is created from.
type Spec struct {
	// Name is the container id, the hostname and cloud-init's local-hostname (a DNS label).
	Name string
	// InstanceID is cloud-init's instance-id: a new one makes cloud-init treat the machine as a
	// new instance (first boot again), as a re-created VM is.
	InstanceID string
	// MachineID is /etc/machine-id (32 lowercase hex digits); empty means a random one.
	MachineID string
	// NetNS is the network namespace the machine joins (a path, from proof/box/network); empty
	// means a new namespace with only loopback.
	NetNS string
	// UserData is the #cloud-config (or script) cloud-init runs on first boot.
	UserData []byte
}

// Status is a machine's lifecycle state as the provider sees it.
type Status string

const (
	// Absent: no machine of that name (never created, or destroyed).
	Absent Status = "absent"
	// Stopped: its filesystem exists, no process runs (created, or stopped hard).
	Stopped Status = "stopped"
	// Running: its systemd runs.
	Running Status = "running"
)

// Provider creates and runs machines. Every method is safe to call from a process other than the
// one that created the machine: all state lives on disk.
type Provider interface {
	// Create makes the machine's filesystem (overlay, machine-id, hostname, NoCloud seed) and
	// bundle without starting it. It fails if the machine exists.
	Create(ctx context.Context, spec Spec) error
	// Start boots a created or stopped machine (systemd as PID 1).
	Start(ctx context.Context, name string) error
	// Stop kills every process of the machine at once (SIGKILL to its PID 1 and namespace), like
	// pulling a VM's power cord; its filesystem stays. Stopping a stopped machine is no error.
	Stop(ctx context.Context, name string) error
	// Destroy stops the machine and removes everything it had: container, cgroups, mounts,
	// filesystem, state. Destroying an absent machine is no error.
	Destroy(ctx context.Context, name string) error
	// Exec runs args in the running machine (all its namespaces, as root) and returns its
	// combined output.
	Exec(ctx context.Context, name string, stdin io.Reader, args ...string) ([]byte, error)
	// Status reports the machine's state.
	Status(ctx context.Context, name string) (Status, error)
	// List names every machine the provider holds (any state).
	List(ctx context.Context) ([]string, error)
}
