package box

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/infralab/infralab/proof/box/machine"
	"github.com/infralab/infralab/proof/box/network"
)

// Provider is the box's machine provider (tests stop machines hard through it).
func (b *Box) Provider() machine.Provider { return b.provider }

// Network is the box's network.
func (b *Box) Network() *network.Network { return b.net }

// StateDir is where the box keeps its state, host keys (hostkeys/NAME.pub) and known_hosts.
func (b *Box) StateDir() string { return b.cfg.StateDir }

// HostKey is machine name's pinned ed25519 host key ("ssh-ed25519 AAAA...").
func (b *Box) HostKey(name string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state.Machines[name].HostKey
}

// InstanceID is machine name's current cloud-init instance-id.
func (b *Box) InstanceID(name string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state.Machines[name].InstanceID
}

// Recreate destroys machine name and creates it again from its config with a new instance-id
// (a new VM in the same place: empty disk, new host keys, cloud-init's first boot), then waits
// for it as Up does.
func (b *Box) Recreate(ctx context.Context, name string) error {
	var mc *MachineConfig
	for i := range b.cfg.Machines {
		if b.cfg.Machines[i].Name == name {
			mc = &b.cfg.Machines[i]
		}
	}
	if mc == nil {
		return fmt.Errorf("box: no machine %q", name)
	}
	if err := b.provider.Destroy(ctx, name); err != nil {
		return err
	}
	if err := b.upMachine(ctx, *mc, name+"-"+randomHex(4)); err != nil {
		return err
	}
	return b.writeKnownHosts()
}

// MachineStatus is one line of Status.
type MachineStatus struct {
	Name       string
	Address    netip.Addr
	InstanceID string
	Status     machine.Status
	HostKey    string
}

// Status reads the box's state dir and reports every machine it knows.
func Status(ctx context.Context, stateDir string) ([]MachineStatus, error) {
	if stateDir == "" {
		stateDir = DefaultStateDir
	}
	st, err := loadState(stateDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	p := providerFor(stateDir, st.DataDir, st.RootFS)
	var out []MachineStatus
	for name, m := range st.Machines {
		s, err := p.Status(ctx, name)
		if err != nil {
			return nil, err
		}
		out = append(out, MachineStatus{Name: name, Address: m.Address, InstanceID: m.InstanceID, Status: s, HostKey: m.HostKey})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Down removes everything the box in stateDir made: machines (containers, cgroups, mounts,
// disks), their namespaces and veths, the bridge and the iptables chain; it puts back the host
// sysctls a kubelet in a machine changed, then removes the state dir. A box that is not up is no
// error; a failed Down keeps the state it still needs and converges when run again.
func Down(ctx context.Context, stateDir string, progress io.Writer) error {
	if stateDir == "" {
		stateDir = DefaultStateDir
	}
	if progress == nil {
		progress = io.Discard
	}
	st, err := loadState(stateDir)
	if errors.Is(err, os.ErrNotExist) {
		return network.Down(ctx, filepath.Join(stateDir, "network.json"))
	}
	if err != nil {
		return err
	}
	p := providerFor(stateDir, st.DataDir, st.RootFS)
	names, err := p.List(ctx)
	if err != nil {
		return err
	}
	for name := range st.Machines {
		names = append(names, name)
	}
	var errs []error
	seen := map[string]bool{}
	for _, name := range names {
		if seen[name] {
			continue
		}
		seen[name] = true
		if err := p.Destroy(ctx, name); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(progress, "box: %s destroyed\n", name)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	machine.RemoveCgroupParent()
	if err := network.Down(ctx, filepath.Join(stateDir, "network.json")); err != nil {
		return err
	}
	fmt.Fprintln(progress, "box: network removed")
	for k, v := range st.HostSysctls {
		cur, err := os.ReadFile(filepath.Join("/proc/sys", k))
		if err == nil && strings.TrimSpace(string(cur)) != v && strings.TrimSpace(string(cur)) == hostSysctls[k] {
			if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(v), 0o644); err != nil {
				errs = append(errs, fmt.Errorf("box: restore %s=%s: %w", k, v, err))
				continue
			}
			fmt.Fprintf(progress, "box: host sysctl %s restored to %s\n", strings.ReplaceAll(k, "/", "."), v)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(st.DataDir, "machines")); err != nil {
		return err
	}
	_ = os.Remove(st.DataDir) // only if empty: it may be a folder the caller shares
	return os.RemoveAll(stateDir)
}
