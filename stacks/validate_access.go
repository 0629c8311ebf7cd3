package stacks

import (
	"bytes"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/infralab/infralab/internal/hostkey"
	"github.com/infralab/infralab/internal/pvename"
)

// The SSH logins on the Proxmox hosts (docs/infra.md, "SSH logins and keys"): the host login
// (provider and NAT step), a jump login that may only forward, and each host's pinned host key.

// validateHostKey checks a pinned host key (internal/hostkey says why RSA is refused).
func validateHostKey(key, path string, c *errs) {
	if strings.TrimSpace(key) == "" {
		c.add(path, "is required", hostkey.Hint)
	} else if msg := hostkey.Problem(key); msg != "" {
		c.add(path, msg, hostkey.Hint)
	}
}

// validateJumpLogin checks proxmox.jumpUser and its key: both or neither, not root, not the host
// login, and a key of its own (the point is that a leak of it opens no shell on the host).
func validateJumpLogin(cfg *Config, c *errs) {
	p := &cfg.Proxmox
	key := cfg.Secrets.ProxmoxJumpPrivateKey
	how := "pulumi config set --secret " + KeyProxmoxJumpPrivateKey + " < ~/.ssh/infralab-jump (a key only for forwarding, docs/infra.md)"
	switch {
	case p.JumpUser == "" && !key.Set:
		return
	case p.JumpUser == "":
		c.add("proxmox.jumpUser", "is empty, but "+KeyProxmoxJumpPrivateKey+" is set", "name the forwarding-only login on the first Proxmox node, e.g. infralab-jump")
	case p.JumpUser == "root" || !pvename.User(p.JumpUser):
		c.add("proxmox.jumpUser", fmt.Sprintf("%q is not allowed", p.JumpUser), "use a login of its own that may only forward, e.g. infralab-jump")
	case p.JumpUser == p.HostSSHUser:
		c.add("proxmox.jumpUser", fmt.Sprintf("%q is also proxmox.hostSshUser", p.JumpUser), "use a login of its own, e.g. infralab-jump: the host login has sudo, the jump login must not")
	}
	if p.JumpUser != "" {
		requireSecret(key, c, how)
	}
	if !key.Set {
		return
	}
	signer, err := ssh.ParsePrivateKey([]byte(key.Value))
	if err != nil {
		c.add(key.Key, "does not parse as an unencrypted OpenSSH private key (value not shown)", "ssh-keygen -t ed25519 -N '' -f ~/.ssh/infralab-jump")
		return
	}
	if host := cfg.Secrets.ProxmoxSSHPrivateKey; host.Set {
		if hs, err := ssh.ParsePrivateKey([]byte(host.Value)); err == nil && bytes.Equal(hs.PublicKey().Marshal(), signer.PublicKey().Marshal()) {
			c.add(key.Key, "is the same key as "+KeyProxmoxSSHPrivateKey, "make a key only for the jump host: ssh-keygen -t ed25519 -N '' -f ~/.ssh/infralab-jump")
		}
	}
}
