// Package box brings up the lab's topology as real Linux machines on this host (docs/box.md):
// machines (proof/box/machine: privileged runc containers with systemd, each with its own
// filesystem over a cached Debian 12 tree from proof/box/rootfs), joined by the box's bridge
// (proof/box/network), each booted with its own NoCloud seed so real cloud-init creates its users
// and key-only SSH. Up waits for cloud-init and pins every machine's SSH host key; Down removes
// everything Up made, from any process, using only the state dir.
package box

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/infralab/infralab/proof/box/machine"
	"github.com/infralab/infralab/proof/box/network"
)

// Default directories: state (runc's, bundles, host keys) on /run, machine disks on /var/lib.
const (
	DefaultStateDir = "/run/infralab-box"
	DefaultDataDir  = "/var/lib/infralab-box"
)

// MachineConfig is one machine of the box.
type MachineConfig struct {
	Name     string     // hostname and container name (a DNS label)
	Address  netip.Addr // on the box bridge, e.g. 10.77.0.10
	UserData []byte     // cloud-init user-data (the lab's rendered #cloud-config for this VM)
}

// Config is the whole box.
type Config struct {
	Machines []MachineConfig
	// RootFS is the machines' shared root filesystem (rootfs.Tree).
	RootFS string
	// StateDir (default /run/infralab-box) and DataDir (default /var/lib/infralab-box).
	StateDir, DataDir string
	// Network is the bridge, gateway and chain; its StateFile is always StateDir/network.json.
	Network network.Config
	// BootTimeout bounds each machine's boot: systemd up and cloud-init done (default 5 min).
	BootTimeout time.Duration
	// Progress receives one line per step with the elapsed time (nil: discarded).
	Progress io.Writer
}

// DefaultMachines are the lab stack's three VMs (stacks/Pulumi.lab.yaml names) at the box's addresses.
func DefaultMachines() []MachineConfig {
	return []MachineConfig{
		{Name: "k8s-cp-1", Address: netip.MustParseAddr("10.77.0.10")},
		{Name: "k8s-worker-1", Address: netip.MustParseAddr("10.77.0.11")},
		{Name: "k8s-worker-2", Address: netip.MustParseAddr("10.77.0.12")},
	}
}

// Box is a box brought up (or read back from its state dir).
type Box struct {
	cfg      Config
	provider *machine.Runc
	net      *network.Network
	start    time.Time
	mu       sync.Mutex
	state    *state
}

// state is StateDir/box.json: what Down and Status need in another process.
type state struct {
	RootFS   string                  `json:"rootfs"`
	DataDir  string                  `json:"dataDir"`
	Machines map[string]machineState `json:"machines"`
	// HostSysctls are host-wide kernel settings read before the first Up: a kubelet inside a
	// machine writes them (they are not namespaced), Down puts them back.
	HostSysctls map[string]string `json:"hostSysctls"`
}

type machineState struct {
	Address    netip.Addr `json:"address"`
	InstanceID string     `json:"instanceId"`
	HostKey    string     `json:"hostKey,omitempty"` // ssh-ed25519 public key, once collected
}

// hostSysctls are the host-wide settings a kubelet changes (kubelet's setupKernelTunables:
// vm.overcommit_memory, kernel.panic, kernel.panic_on_oops), besides what the machines' own
// network namespaces hold.
// Down restores one only while it still holds the kubelet's value: a later change by another
// program on the host (or a kubelet outside the box) is not overwritten.
var hostSysctls = map[string]string{"vm/overcommit_memory": "1", "kernel/panic": "10", "kernel/panic_on_oops": "1"}

func (c *Config) defaults() error {
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.BootTimeout == 0 {
		c.BootTimeout = 5 * time.Minute
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	c.Network.StateFile = filepath.Join(c.StateDir, "network.json")
	var errs []error
	if c.RootFS == "" {
		errs = append(errs, errors.New("box.rootfs is empty: run hack/tools.sh box and pass rootfs.Tree"))
	}
	if len(c.Machines) == 0 {
		errs = append(errs, errors.New("box.machines is empty: give at least one machine (box.DefaultMachines)"))
	}
	names, addrs := map[string]bool{}, map[netip.Addr]bool{}
	for i, m := range c.Machines {
		p := fmt.Sprintf("box.machines[%d]", i)
		if names[m.Name] {
			errs = append(errs, fmt.Errorf("%s.name %q: used twice", p, m.Name))
		}
		names[m.Name] = true
		if !m.Address.IsValid() {
			errs = append(errs, fmt.Errorf("%s.address: missing: give an address in the box network, e.g. 10.77.0.%d", p, 10+i))
		} else if addrs[m.Address] {
			errs = append(errs, fmt.Errorf("%s.address %s: used twice", p, m.Address))
		}
		addrs[m.Address] = true
		if len(m.UserData) == 0 {
			errs = append(errs, fmt.Errorf("%s.userData: empty: give the machine's cloud-init user-data (#cloud-config)", p))
		}
	}
	return errors.Join(errs...)
}

func (b *Box) logf(format string, args ...any) {
	fmt.Fprintf(b.cfg.Progress, "box: [%6.1fs] %s\n", time.Since(b.start).Seconds(), fmt.Sprintf(format, args...))
}

func providerFor(stateDir, dataDir, rootFS string) *machine.Runc {
	return &machine.Runc{RootFS: rootFS, StateDir: filepath.Join(stateDir, "machines"),
		RuncRoot: filepath.Join(stateDir, "runc"), DataDir: filepath.Join(dataDir, "machines")}
}

// Up brings the box up: network, then every machine in parallel (create, boot, cloud-init,
// host key). A box that is already up is adopted; machines that run are only waited for.
func Up(ctx context.Context, cfg Config) (*Box, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	b := &Box{cfg: cfg, provider: providerFor(cfg.StateDir, cfg.DataDir, cfg.RootFS), start: time.Now()}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, err
	}
	st, err := loadState(cfg.StateDir)
	if errors.Is(err, os.ErrNotExist) {
		st = &state{Machines: map[string]machineState{}, HostSysctls: map[string]string{}}
		for k := range hostSysctls {
			v, err := os.ReadFile(filepath.Join("/proc/sys", k))
			if err != nil {
				return nil, fmt.Errorf("box: read host sysctl %s: %w", k, err)
			}
			st.HostSysctls[k] = strings.TrimSpace(string(v))
		}
	} else if err != nil {
		return nil, err
	}
	st.RootFS, st.DataDir = cfg.RootFS, cfg.DataDir
	b.state = st
	if err := b.save(); err != nil {
		return nil, err
	}
	b.logf("network: bridge %s %s", orDefault(cfg.Network.Bridge, network.DefaultBridge), gatewayOf(cfg.Network))
	if b.net, err = network.Up(ctx, cfg.Network); err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	errs := make([]error, len(cfg.Machines))
	for i, m := range cfg.Machines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = b.upMachine(ctx, m, "")
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return b, err
	}
	if err := b.writeKnownHosts(); err != nil {
		return b, err
	}
	b.logf("up: %d machines", len(cfg.Machines))
	return b, nil
}

// upMachine makes one machine exist, run and finish first boot. instanceID "" keeps the
// recorded one (or makes one for a new machine).
func (b *Box) upMachine(ctx context.Context, m MachineConfig, instanceID string) error {
	b.mu.Lock()
	ms := b.state.Machines[m.Name]
	if instanceID != "" {
		ms.InstanceID = instanceID
	}
	if ms.InstanceID == "" {
		ms.InstanceID = m.Name + "-" + randomHex(4)
	}
	ms.Address = m.Address
	b.state.Machines[m.Name] = ms
	err := b.save()
	b.mu.Unlock()
	if err != nil {
		return err
	}
	netns, err := b.net.Attach(ctx, m.Name, m.Address)
	if err != nil {
		return err
	}
	st, err := b.provider.Status(ctx, m.Name)
	if err != nil {
		return err
	}
	if st == machine.Absent {
		if err := b.provider.Create(ctx, machine.Spec{Name: m.Name, InstanceID: ms.InstanceID, NetNS: netns, UserData: m.UserData}); err != nil {
			return err
		}
		b.logf("%s: created (instance %s, %s)", m.Name, ms.InstanceID, m.Address)
	}
	if err := b.provider.Start(ctx, m.Name); err != nil {
		return err
	}
	b.logf("%s: started", m.Name)
	bootCtx, cancel := context.WithTimeout(ctx, b.cfg.BootTimeout)
	defer cancel()
	secs := fmt.Sprint(int(b.cfg.BootTimeout.Seconds()))
	sys, err := machine.WaitSystem(bootCtx, b.provider, m.Name, b.cfg.BootTimeout)
	if err != nil {
		return err
	}
	b.logf("%s: systemd %s", m.Name, sys)
	out, err := b.provider.Exec(bootCtx, m.Name, nil, "timeout", secs, "cloud-init", "status", "--wait", "--long")
	if err != nil || !strings.Contains(string(out), "status: done") {
		return fmt.Errorf("box: %s: cloud-init did not finish cleanly within %s: %s (%v); see `infralab-box exec %s cat /var/log/cloud-init-output.log`",
			m.Name, b.cfg.BootTimeout, strings.TrimSpace(string(out)), err, m.Name)
	}
	b.logf("%s: cloud-init done", m.Name)
	key, err := b.provider.Exec(ctx, m.Name, nil, "cat", "/etc/ssh/ssh_host_ed25519_key.pub")
	if err != nil {
		return fmt.Errorf("box: %s: read its SSH host key: %w", m.Name, err)
	}
	f := strings.Fields(string(key))
	if len(f) < 2 || f[0] != "ssh-ed25519" {
		return fmt.Errorf("box: %s: /etc/ssh/ssh_host_ed25519_key.pub is not an ed25519 key: %q", m.Name, key)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	ms = b.state.Machines[m.Name]
	ms.HostKey = f[0] + " " + f[1]
	b.state.Machines[m.Name] = ms
	if err := os.MkdirAll(filepath.Join(b.cfg.StateDir, "hostkeys"), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(b.cfg.StateDir, "hostkeys", m.Name+".pub"), []byte(ms.HostKey+"\n"), 0o644); err != nil {
		return err
	}
	b.logf("%s: host key pinned (%s)", m.Name, ms.HostKey[:24]+"…")
	return b.save()
}

// writeKnownHosts writes StateDir/known_hosts: each machine's address and name with its key.
func (b *Box) writeKnownHosts() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var lines []string
	for name, m := range b.state.Machines {
		if m.HostKey != "" {
			lines = append(lines, fmt.Sprintf("%s,%s %s", m.Address, name, m.HostKey))
		}
	}
	sort.Strings(lines)
	return os.WriteFile(filepath.Join(b.cfg.StateDir, "known_hosts"), []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

func (b *Box) save() error {
	data, err := json.MarshalIndent(b.state, "", "  ")
	if err != nil {
		return err
	}
	p := filepath.Join(b.cfg.StateDir, "box.json")
	if err := os.WriteFile(p+".tmp", data, 0o600); err != nil {
		return err
	}
	return os.Rename(p+".tmp", p)
}

func loadState(dir string) (*state, error) {
	data, err := os.ReadFile(filepath.Join(dir, "box.json"))
	if err != nil {
		return nil, err
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("box: state %s: %w", filepath.Join(dir, "box.json"), err)
	}
	if st.Machines == nil {
		st.Machines = map[string]machineState{}
	}
	return &st, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func gatewayOf(c network.Config) netip.Prefix {
	if c.Gateway.IsValid() {
		return c.Gateway
	}
	return network.DefaultGateway
}
