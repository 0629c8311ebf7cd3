// Package network makes the box's network on the host: a bridge (ilbox0, 10.77.0.1/24) in the
// host's network namespace, one network namespace per machine joined to it by a veth pair (the
// machine's static address, default route via the bridge), and an iptables chain that drops
// everything forwarded from the bridge to any other interface, so no packet of a machine leaves
// the host. Every change to the host is recorded in a state file before it is made, so Down (from
// any process) undoes exactly what Up and Attach did and nothing else.
package network

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Defaults of the box's network (docs/box.md).
const (
	DefaultBridge = "ilbox0"
	DefaultChain  = "ILBOX-FORWARD"
)

// DefaultGateway is the bridge's address and the machines' default route.
var DefaultGateway = netip.MustParsePrefix("10.77.0.1/24")

// Config names the box's network.
type Config struct {
	Bridge  string       // bridge interface name (at most 15 bytes)
	Gateway netip.Prefix // the bridge's address with the box's prefix length
	Chain   string       // the iptables chain (filter table) that holds the forward drop
	// StateFile records every change made to the host (JSON).
	StateFile string
}

// record is what Up and Attach changed, written before each change.
type record struct {
	Config   Config            `json:"config"`
	Bridge   bool              `json:"bridge"`   // we created the bridge
	Chains   []string          `json:"chains"`   // iptables binaries that hold our chain
	Jumps    []string          `json:"jumps"`    // iptables binaries whose FORWARD jumps to it
	Machines map[string]Attach `json:"machines"` // by machine name
}

// Attach is one machine's place on the bridge.
type Attach struct {
	Netns   string     `json:"netns"`   // namespace name (/run/netns/<Netns>)
	HostIf  string     `json:"hostIf"`  // veth end on the bridge
	Address netip.Addr `json:"address"` // the machine's address (eth0)
}

// Network is the box's network, up.
type Network struct {
	mu  sync.Mutex
	rec *record
}

func (c *Config) defaults() error {
	if c.Bridge == "" {
		c.Bridge = DefaultBridge
	}
	if !c.Gateway.IsValid() {
		c.Gateway = DefaultGateway
	}
	if c.Chain == "" {
		c.Chain = DefaultChain
	}
	var errs []error
	if len(c.Bridge) > 11 {
		errs = append(errs, fmt.Errorf("network.bridge %q: at most 11 bytes (the veths are named BRIDGE-N, and a Linux interface name has at most 15)", c.Bridge))
	}
	if !c.Gateway.Addr().Is4() || c.Gateway.Bits() < 8 || c.Gateway.Bits() > 30 {
		errs = append(errs, fmt.Errorf("network.gateway %s: want an IPv4 address with a prefix length 8-30, e.g. 10.77.0.1/24", c.Gateway))
	}
	if c.StateFile == "" {
		errs = append(errs, errors.New("network.stateFile is empty: name the file that records the host changes (e.g. /run/infralab-box/network.json)"))
	}
	return errors.Join(errs...)
}

// Up creates the bridge and the forward drop (or adopts the ones a previous Up of the same
// state file made) and returns the network.
func Up(ctx context.Context, cfg Config) (*Network, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	rec, err := load(cfg.StateFile)
	if errors.Is(err, os.ErrNotExist) {
		rec = &record{Config: cfg, Machines: map[string]Attach{}}
	} else if err != nil {
		return nil, err
	}
	n := &Network{rec: rec}
	br := cfg.Bridge
	if !linkExists(br) {
		rec.Bridge = true
		if err := n.save(); err != nil {
			return nil, err
		}
		if err := run(ctx, "ip", "link", "add", br, "type", "bridge"); err != nil {
			return nil, err
		}
	} else if !rec.Bridge {
		return nil, fmt.Errorf("network: a bridge %s exists that this box did not create (state %s): remove it or pick another network.bridge", br, cfg.StateFile)
	}
	if err := run(ctx, "ip", "addr", "replace", cfg.Gateway.String(), "dev", br); err != nil {
		return nil, err
	}
	if err := run(ctx, "ip", "link", "set", br, "up"); err != nil {
		return nil, err
	}
	for _, ipt := range iptablesBins() {
		if err := n.ensureDrop(ctx, ipt); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// ensureDrop makes chain = [-o bridge ACCEPT, DROP] and FORWARD's first rule a jump to it for
// packets that come in on the bridge.
func (n *Network) ensureDrop(ctx context.Context, ipt string) error {
	c := n.rec.Config
	if !contains(n.rec.Chains, ipt) {
		n.rec.Chains = append(n.rec.Chains, ipt)
		if err := n.save(); err != nil {
			return err
		}
		if err := run(ctx, ipt, "-w", "-N", c.Chain); err != nil {
			return err
		}
		// Between machines the bridge switches frames (no br_netfilter here, so they never reach
		// iptables); a packet routed back onto the bridge stays in the box too.
		if err := run(ctx, ipt, "-w", "-A", c.Chain, "-o", c.Bridge, "-j", "ACCEPT"); err != nil {
			return err
		}
		if err := run(ctx, ipt, "-w", "-A", c.Chain, "-j", "DROP"); err != nil {
			return err
		}
	}
	if !contains(n.rec.Jumps, ipt) {
		n.rec.Jumps = append(n.rec.Jumps, ipt)
		if err := n.save(); err != nil {
			return err
		}
		if err := run(ctx, ipt, "-w", "-I", "FORWARD", "1", "-i", c.Bridge, "-j", c.Chain); err != nil {
			return err
		}
	}
	return nil
}

// NetnsName is the network namespace of machine name.
func NetnsName(machine string) string { return "ilbox-" + machine }

// NetnsPath is the path runc joins for machine name.
func NetnsPath(machine string) string { return filepath.Join("/run/netns", NetnsName(machine)) }

// Attach gives machine its own network namespace with eth0 = addr on the bridge, loopback up and
// a default route via the bridge, and returns the namespace's path. Attaching an attached
// machine again is no error.
func (n *Network) Attach(ctx context.Context, machine string, addr netip.Addr) (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := n.rec.Config
	if !c.Gateway.Contains(addr) || addr == c.Gateway.Addr() || addr == c.Gateway.Masked().Addr() {
		return "", fmt.Errorf("network: machine %s address %s: want a host address in %s other than the bridge's %s", machine, addr, c.Gateway.Masked(), c.Gateway.Addr())
	}
	for other, a := range n.rec.Machines {
		if other != machine && a.Address == addr {
			return "", fmt.Errorf("network: machine %s address %s is machine %s's already", machine, addr, other)
		}
	}
	if a, ok := n.rec.Machines[machine]; ok && a.Address == addr && linkExists(a.HostIf) {
		return NetnsPath(machine), nil
	}
	// The host end is the bridge's name and the address's last byte: unique on the host (two
	// boxes have two bridges), at most 15 bytes.
	b := addr.As4()
	a := Attach{Netns: NetnsName(machine), HostIf: c.Bridge + "-" + strconv.Itoa(int(b[3])), Address: addr}
	n.rec.Machines[machine] = a
	if err := n.save(); err != nil {
		return "", err
	}
	ns := a.Netns
	steps := [][]string{
		{"ip", "netns", "add", ns},
		{"ip", "link", "add", a.HostIf, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"ip", "link", "set", a.HostIf, "master", c.Bridge, "up"},
		{"ip", "-n", ns, "link", "set", "lo", "up"},
		{"ip", "-n", ns, "addr", "add", netip.PrefixFrom(addr, c.Gateway.Bits()).String(), "dev", "eth0"},
		{"ip", "-n", ns, "link", "set", "eth0", "up"},
		{"ip", "-n", ns, "route", "add", "default", "via", c.Gateway.Addr().String()},
	}
	if _, err := os.Stat(NetnsPath(machine)); err == nil {
		steps = steps[1:] // a namespace left by an interrupted Attach: reuse it
	}
	for _, s := range steps {
		if err := run(ctx, s[0], s[1:]...); err != nil {
			return "", err
		}
	}
	return NetnsPath(machine), nil
}

// Detach removes machine's namespace and veth.
func (n *Network) Detach(ctx context.Context, machine string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	a, ok := n.rec.Machines[machine]
	if !ok {
		return nil
	}
	if err := detach(ctx, a); err != nil {
		return err
	}
	delete(n.rec.Machines, machine)
	return n.save()
}

func detach(ctx context.Context, a Attach) error {
	var errs []error
	if linkExists(a.HostIf) {
		// Deleting one end deletes the pair.
		if err := run(ctx, "ip", "link", "del", a.HostIf); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := os.Stat(filepath.Join("/run/netns", a.Netns)); err == nil {
		if err := run(ctx, "ip", "netns", "del", a.Netns); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Machines is every attached machine, by name.
func (n *Network) Machines() map[string]Attach {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[string]Attach, len(n.rec.Machines))
	for k, v := range n.rec.Machines {
		out[k] = v
	}
	return out
}

// Config is the network's (defaulted) config.
func (n *Network) Config() Config { return n.rec.Config }

// Dropped is the packet count of the chain's DROP rule (iptables, IPv4).
func (n *Network) Dropped(ctx context.Context) (int64, error) {
	out, err := output(ctx, "iptables", "-w", "-L", n.rec.Config.Chain, "-v", "-x", "-n")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[2] == "DROP" {
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("network: chain %s has no DROP rule:\n%s", n.rec.Config.Chain, out)
}

// Down undoes everything the state file records (machines' namespaces and veths, the jump, the
// chain, the bridge) and removes the file. A missing state file means nothing to undo.
func Down(ctx context.Context, stateFile string) error {
	rec, err := load(stateFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	c := rec.Config
	var errs []error
	for _, a := range rec.Machines {
		errs = append(errs, detach(ctx, a))
	}
	for _, ipt := range rec.Jumps {
		for run(ctx, ipt, "-w", "-C", "FORWARD", "-i", c.Bridge, "-j", c.Chain) == nil {
			if err := run(ctx, ipt, "-w", "-D", "FORWARD", "-i", c.Bridge, "-j", c.Chain); err != nil {
				errs = append(errs, err)
				break
			}
		}
	}
	for _, ipt := range rec.Chains {
		if run(ctx, ipt, "-w", "-n", "-L", c.Chain) == nil {
			errs = append(errs, run(ctx, ipt, "-w", "-F", c.Chain), run(ctx, ipt, "-w", "-X", c.Chain))
		}
	}
	if rec.Bridge && linkExists(c.Bridge) {
		errs = append(errs, run(ctx, "ip", "link", "del", c.Bridge))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("network down (state %s kept for a retry): %w", stateFile, err)
	}
	if err := os.Remove(stateFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func (n *Network) save() error {
	data, err := json.MarshalIndent(n.rec, "", "  ")
	if err != nil {
		return err
	}
	f := n.rec.Config.StateFile
	if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
		return err
	}
	tmp := f + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, f)
}

func load(path string) (*record, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("network: state %s: %w", path, err)
	}
	if rec.Machines == nil {
		rec.Machines = map[string]Attach{}
	}
	return &rec, nil
}

// iptablesBins are the iptables binaries the drop goes into: IPv4 always, IPv6 when the host has
// ip6tables (the machines have IPv6 link-local addresses on the bridge).
func iptablesBins() []string {
	bins := []string{"iptables"}
	if _, err := exec.LookPath("ip6tables"); err == nil {
		bins = append(bins, "ip6tables")
	}
	return bins
}

func linkExists(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name))
	return err == nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func run(ctx context.Context, name string, args ...string) error {
	_, err := output(ctx, name, args...)
	return err
}

func output(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}
