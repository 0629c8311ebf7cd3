package infra

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"net/netip"
	"path"
	"strings"

	"github.com/muhlba91/pulumi-proxmoxve/sdk/v7/go/proxmoxve/network"
	"github.com/pulumi/pulumi-command/sdk/go/command/remote"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

//go:embed scripts/host-nat.sh
var hostNATScript string

//go:embed scripts/host-preflight.sh
var hostPreflightScript string

// hostNATPath is where the NAT script lives on the host, so its systemd unit can re-run it at boot.
const hostNATPath = "/usr/local/lib/infralab/host-nat.sh"

// ensureBridge declares the private bridge on a node. Only the first node carries the gateway
// address; on the others the bridge is plain layer 2, joined through BridgePorts.
func (r *reconciler) ensureBridge(pn ProxmoxNode) error {
	nw := r.plan.args.Network
	args := &network.NetworkBridgeArgs{
		NodeName:  pulumi.String(pn.Name),
		Name:      pulumi.String(nw.Bridge),
		Autostart: pulumi.Bool(true),
		Comment:   pulumi.String(fmt.Sprintf("infralab %s: private VM network %s", r.plan.args.Stack, r.plan.prefix)),
		Ports:     pulumi.ToStringArray(pn.BridgePorts),
	}
	if nw.MTU != 0 {
		args.Mtu = pulumi.Int(nw.MTU)
	}
	if pn.Name == r.plan.args.Proxmox.Nodes[0].Name {
		gw := netip.MustParseAddr(nw.Gateway) // validated
		args.Address = pulumi.String(netip.PrefixFrom(gw, r.plan.prefix.Bits()).String())
	}
	preflight, err := r.ensureHostPreflight(pn, args)
	if err != nil {
		return err
	}
	br, err := network.NewNetworkBridge(r.ctx, r.child("bridge-%s", pn.Name), args,
		r.pxOpts(pulumi.DependsOn([]pulumi.Resource{preflight}))...)
	if err != nil {
		return err
	}
	if r.bridges == nil {
		r.bridges = map[string]pulumi.Resource{}
	}
	r.bridges[pn.Name] = br
	return nil
}

// ensureHostPreflight declares the read-only check a node's bridge waits for
// (scripts/host-preflight.sh). Creating, changing or deleting the bridge makes the provider
// reload the node's whole network configuration, staged changes included
// (bpg/terraform-provider-proxmox v0.95.0, fwprovider/nodes/network/resource_linux_bridge.go:
// Create, Update and Delete end in ReloadNetworkConfiguration, PUT /nodes/{node}/network), on
// a host reachable only over that network. The check refuses pending changes and a taken name
// before that happens.
//
// Its triggers are the bridge's node and name, so it is replaced (and `create` checks the name
// again) exactly when the provider creates a bridge; on any other change of the bridge's
// settings (they are in the command line) `update` runs, which checks only for pending changes:
// by then the bridge exists and is ours. Nothing to undo on delete. Every node has an SSH address
// (validate requires one beyond the first, whose default is the endpoint's host).
func (r *reconciler) ensureHostPreflight(pn ProxmoxNode, br *network.NetworkBridgeArgs) (pulumi.Resource, error) {
	host := r.plan.hostAddress[pn.Name]
	nw := r.plan.args.Network
	settings := fmt.Sprintf("mtu=%d ports=%s", nw.MTU, strings.Join(pn.BridgePorts, ","))
	if pn.Name == r.plan.args.Proxmox.Nodes[0].Name {
		settings += " address=" + nw.Gateway
	}
	line := func(action string) string {
		return fmt.Sprintf("env INFRALAB_BRIDGE=%s INFRALAB_NODE=%s INFRALAB_BRIDGE_SETTINGS=%s sh -s %s",
			shellQuote(nw.Bridge), shellQuote(pn.Name), shellQuote(settings), action)
	}
	return remote.NewCommand(r.ctx, r.child("host-preflight-%s", pn.Name), &remote.CommandArgs{
		Connection: r.hostConnection(pn, host),
		Create:     pulumi.String(line("create")),
		Update:     pulumi.String(line("update")),
		Stdin:      pulumi.String(hostPreflightScript),
		Triggers:   pulumi.Array{pulumi.String(pn.Name), pulumi.String(nw.Bridge)},
	}, pulumi.Parent(r.parent))
}

// hostConnection is the SSH login on a Proxmox host at host, the key kept secret and the node's
// host key pinned: without it the command provider accepts any host key (pulumi-command v1.1.0
// provider/pkg/provider/remote/connection.go).
func (r *reconciler) hostConnection(pn ProxmoxNode, host string) remote.ConnectionArgs {
	hs := r.plan.args.Proxmox.HostSSH
	conn := remote.ConnectionArgs{
		Host:       pulumi.String(host),
		User:       pulumi.String(hs.User),
		PrivateKey: pulumi.ToSecret(hs.PrivateKey).(pulumi.StringInput),
	}
	if pn.SSHHostKey != "" {
		conn.HostKey = pulumi.String(pn.SSHHostKey)
	}
	return conn
}

// ensureHostNAT makes the first node forward and masquerade the private network.
//
// Declared as a remote command rather than a documented manual step: the provider needs SSH to
// the host anyway (snippets), and a declared step is part of every rebuild from bare metal. The
// Proxmox API cannot do it: it manages /etc/network/interfaces, not iptables or sysctl.
func (r *reconciler) ensureHostNAT() error {
	a := r.plan.args
	if a.Network.SkipHostNAT {
		return r.ctx.Log.Info("infra: proxmox.skipHostNat is set: forward and masquerade "+r.plan.prefix.String()+
			" on the host yourself (docs/infra.md, \"Host NAT\")", &pulumi.LogArgs{Resource: r.parent})
	}
	first := a.Proxmox.Nodes[0]
	env := map[string]string{
		"INFRALAB_BRIDGE": a.Network.Bridge,
		"INFRALAB_CIDR":   r.plan.prefix.String(),
		"INFRALAB_UPLINK": a.Network.HostUplink,
	}
	sum := sha256.Sum256([]byte(hostNATScript))
	cmd, err := remote.NewCommand(r.ctx, r.child("host-nat-%s", first.Name), &remote.CommandArgs{
		Connection: r.hostConnection(first, r.plan.hostAddress[first.Name]),
		// The script arrives on stdin and is installed, then run; its systemd unit re-runs it at boot.
		Create: pulumi.String(natCommand(a.Proxmox.HostSSH.User, hostNATPath, env, "apply")),
		Delete: pulumi.String(natCommand(a.Proxmox.HostSSH.User, hostNATPath, env, "remove")),
		Stdin:  pulumi.String(hostNATScript),
		Triggers: pulumi.Array{
			pulumi.String(hex.EncodeToString(sum[:])),
			pulumi.String(env["INFRALAB_BRIDGE"]), pulumi.String(env["INFRALAB_CIDR"]), pulumi.String(env["INFRALAB_UPLINK"]),
		},
	},
		pulumi.Parent(r.parent),
		pulumi.DependsOn([]pulumi.Resource{r.bridges[first.Name]}),
		// Replacing must remove the old rules before adding the new ones: create-before-delete
		// would let the old command's remove wipe the rules the new one just added.
		pulumi.DeleteBeforeReplace(true),
	)
	if err != nil {
		return err
	}
	r.nat = cmd
	return nil
}

// natCommand builds the remote shell line that installs (script on stdin) and applies, or
// removes, the NAT. Values go in as environment variables on the command line: sshd drops
// SSH-level environment (AcceptEnv) on a stock Proxmox host. Values are validated names and
// CIDRs, quoted anyway.
func natCommand(user, script string, env map[string]string, action string) string {
	sudo := ""
	if user != "root" {
		sudo = "sudo -n "
	}
	run := fmt.Sprintf("%senv INFRALAB_BRIDGE=%s INFRALAB_CIDR=%s INFRALAB_UPLINK=%s sh %s %s", sudo,
		shellQuote(env["INFRALAB_BRIDGE"]), shellQuote(env["INFRALAB_CIDR"]), shellQuote(env["INFRALAB_UPLINK"]),
		shellQuote(script), action)
	if action != "apply" {
		return run
	}
	return fmt.Sprintf("set -e; %sinstall -d -m 0755 %s; %stee %s >/dev/null; %schmod 0755 %s; %s",
		sudo, shellQuote(path.Dir(script)), sudo, shellQuote(script), sudo, shellQuote(script), run)
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
