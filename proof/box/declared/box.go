package declared

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Machine is one of the box's machines as the box found it after its first boot.
type Machine struct {
	// Name is the lab VM it plays (k8s-cp-1, k8s-worker-1, ...).
	Name    string `json:"name"`
	Address string `json:"address"`
	// HostKey is its SSH host public key, read from the machine and pinned by the executor.
	HostKey string `json:"hostKey,omitempty"`
	// InstanceID is the machine's identity (its machine-id as a UUID): the SMBIOS UUID bpg would
	// report, so a re-created machine runs its phases again as a replaced VM does.
	InstanceID string `json:"instanceId,omitempty"`
}

// Box is what the box tells the lab program about itself: everything the box stack config is
// generated from. The lab-only parts (the Proxmox API, its storage, its NAT) stay the lab stack's;
// the jump host is the box's stand-in for the Proxmox host's forwarding-only jump login.
type Box struct {
	Machines []Machine `json:"machines"`
	// Jump is the SSH jump host (the lab's first Proxmox node, proxmox.nodes[0].address and
	// sshHostKey); JumpUser its forwarding-only login (proxmox.jumpUser).
	Jump     Machine `json:"jump"`
	JumpUser string  `json:"jumpUser"`
	// Network is the machines' network: nodeCidr, gateway and dns of the stack.
	NodeCIDR string   `json:"nodeCidr"`
	Gateway  string   `json:"gateway"`
	DNS      []string `json:"dns"`
	// Files holding the secrets (mode 0600, in the box's state directory): the machines' login
	// key, the jump login's key, the cluster's encryption key (base64 of 32 bytes).
	SSHPrivateKeyFile  string `json:"sshPrivateKeyFile"`
	JumpPrivateKeyFile string `json:"jumpPrivateKeyFile"`
	EncryptionKeyFile  string `json:"encryptionKeyFile"`
	// Kubernetes and Cluster are merged into the stack's kubernetes and cluster keys (e.g.
	// kubernetes.packageRepository, kubernetes.imageRepository, the box's machine knobs).
	Kubernetes map[string]any `json:"kubernetes,omitempty"`
	Cluster    map[string]any `json:"cluster,omitempty"`
	// StartJump, when set, has the run start the jump host itself (proof/box/jumphost) on that
	// bridge at that address (with prefix) for the run's duration; Jump.Address and Jump.HostKey
	// then come from it.
	StartJump *JumpSpec `json:"startJump,omitempty"`
}

// JumpSpec is where the run starts its jump host.
type JumpSpec struct {
	Bridge  string `json:"bridge"`
	Address string `json:"address"` // e.g. 10.77.0.2/24
}

// ReadBox reads a box description file.
func ReadBox(path string) (*Box, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var b Box
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &b, nil
}

// HostKeys are the pinned host keys by address, for SSH.
func (b *Box) HostKeys() map[string]string {
	out := map[string]string{}
	for _, m := range append([]Machine{b.Jump}, b.Machines...) {
		if m.HostKey != "" {
			out[m.Address] = m.HostKey
		}
	}
	return out
}

// Names maps addresses to machine names, for the output prefix.
func (b *Box) Names() map[string]string {
	out := map[string]string{}
	for _, m := range b.Machines {
		out[m.Address] = m.Name
	}
	return out
}

// StackSecrets are the box's secrets by stack key.
type StackSecrets map[string]string

// StackConfig turns the lab stack's values (stacks.ReadStackFile of Pulumi.lab.yaml: plain
// strings, JSON for objects) into the box stack: the VMs' addresses are the machines', the jump
// host is the box's, the login key is the box's. Every problem is reported, with its key.
func (b *Box) StackConfig(lab map[string]string) (map[string]string, StackSecrets, error) {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	values := map[string]string{}
	for k, v := range lab {
		values[k] = v
	}
	read := func(path string) string {
		raw, err := os.ReadFile(path)
		if err != nil {
			fail("box: %v", err)
		}
		return string(raw)
	}
	secrets := StackSecrets{
		"sshPrivateKey":         read(b.SSHPrivateKeyFile),
		"proxmoxJumpPrivateKey": read(b.JumpPrivateKeyFile),
		"encryptionKey":         strings.TrimSpace(read(b.EncryptionKeyFile)),
	}
	// The provider's own login is never used (no Proxmox: its resources are mocked); the stack
	// still requires one, of its own.
	if _, priv, err := ed25519.GenerateKey(rand.Reader); err == nil {
		if block, err := ssh.MarshalPrivateKey(priv, ""); err == nil {
			secrets["proxmoxSshPrivateKey"] = string(pem.EncodeToMemory(block))
		}
	}
	var pub string
	if signer, err := ssh.ParsePrivateKey([]byte(secrets["sshPrivateKey"])); err == nil {
		pub = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	} else if secrets["sshPrivateKey"] != "" {
		fail("box: sshPrivateKeyFile %s: %v", b.SSHPrivateKeyFile, err)
	}

	edit := func(key string, f func(map[string]any)) {
		m := map[string]any{}
		if v := values[key]; v != "" {
			if err := json.Unmarshal([]byte(v), &m); err != nil {
				fail("lab stack %s: %v", key, err)
				return
			}
		}
		f(m)
		out, _ := json.Marshal(m)
		values[key] = string(out)
	}
	edit("proxmox", func(m map[string]any) {
		nodes, _ := m["nodes"].([]any)
		if len(nodes) == 0 {
			fail("lab stack proxmox.nodes: empty")
			return
		}
		first, _ := nodes[0].(map[string]any)
		first["address"] = b.Jump.Address
		if b.Jump.HostKey != "" {
			// Empty only for a plan (user-data) before the jump host exists; a run pins it.
			first["sshHostKey"] = b.Jump.HostKey
		}
		m["jumpUser"] = b.JumpUser
	})
	edit("network", func(m map[string]any) {
		m["nodeCidr"], m["gateway"], m["dns"] = b.NodeCIDR, b.Gateway, b.DNS
	})
	edit("ssh", func(m map[string]any) { m["publicKey"] = pub })
	byName := map[string]Machine{}
	for _, mc := range b.Machines {
		byName[mc.Name] = mc
	}
	used := map[string]bool{}
	edit("cluster", func(m map[string]any) {
		for _, role := range []string{"controlPlane", "workers"} {
			r, _ := m[role].(map[string]any)
			nodes, _ := r["nodes"].([]any)
			for i, n := range nodes {
				node, _ := n.(map[string]any)
				name, _ := node["name"].(string)
				mc, ok := byName[name]
				if !ok {
					fail("box: no machine for cluster.%s.nodes[%d] (%s)", role, i, name)
					continue
				}
				used[name] = true
				node["ip"] = mc.Address
			}
		}
		for k, v := range b.Cluster {
			m[k] = v
		}
	})
	for _, mc := range b.Machines {
		if !used[mc.Name] {
			fail("box: machine %s is no node of the lab stack", mc.Name)
		}
	}
	edit("kubernetes", func(m map[string]any) {
		for k, v := range b.Kubernetes {
			m[k] = v
		}
	})
	if b.Jump.Address == "" || b.JumpUser == "" {
		fail("box: jump.address and jumpUser are required (the lab reaches its VMs through the Proxmox host's jump login)")
	}
	return values, secrets, errors.Join(errs...)
}

// CheckOnLink refuses to run when a box address is not on a directly connected network of this
// host (`ip route get` shows a gateway): the machines are not up, and a dial would leave the host
// through its default route instead of reaching the box's bridge.
func (b *Box) CheckOnLink() error {
	var errs []error
	for _, m := range append([]Machine{b.Jump}, b.Machines...) {
		out, err := exec.Command("ip", "route", "get", m.Address).CombinedOutput()
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s (%s): ip route get: %v: %s", m.Name, m.Address, err, strings.TrimSpace(string(out))))
		case strings.Contains(string(out), " via "):
			errs = append(errs, fmt.Errorf("%s (%s) is not on this host's box network (%s); is the box up (make box)?", m.Name, m.Address, strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])))
		}
	}
	return errors.Join(errs...)
}
