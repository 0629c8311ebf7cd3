package stacks

import "testing"

// testRSAHostKey is a throwaway RSA host key: parseable, and refused (the command provider would
// verify it with SHA-1 signatures only, which current OpenSSH servers refuse).
const testRSAHostKey = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDUtg0HXg3Toq3ffo3ySUniV9wbNbHYDV543aL0UZ8OjqYsSLIOkS+jM4zCMOJHCYpa+htZ2kbA4cKgH36oK76q1mslqJ1pw9uvrrHUzl7ydZGBcyX3cLhI8z5NPYDZeLKw0mHbh8/hwHrMsL/poQLnjrrVxXlGf9O+kg7YRtj+pw=="

// The shipped lab stack is the documented default: a non-root provider login, a jump login of its
// own, and a pinned host key for every Proxmox node.
func TestShippedLabUsesLeastPrivilegeLogins(t *testing.T) {
	cfg, err := Load(validLab(t))
	if err != nil {
		t.Fatal(err)
	}
	if u := cfg.Proxmox.HostSSHUser; u == "root" || u == "" {
		t.Errorf("proxmox.hostSshUser = %q, want a non-root user", u)
	}
	if u := cfg.Proxmox.JumpUser; u == "" || u == cfg.Proxmox.HostSSHUser {
		t.Errorf("proxmox.jumpUser = %q, want a login of its own", u)
	}
	for i, n := range cfg.Proxmox.Nodes {
		if n.SSHHostKey == "" {
			t.Errorf("proxmox.nodes[%d].sshHostKey is empty", i)
		}
	}
}

func TestJumpKeyMustBeItsOwn(t *testing.T) {
	src := validLab(t)
	src.setSecret(KeyProxmoxJumpPrivateKey, src.values[KeyProxmoxSSHPrivateKey])
	_, err := Load(src)
	list, ok := err.(Errors)
	if !ok || len(list) != 1 || list[0].Path != KeyProxmoxJumpPrivateKey {
		t.Fatalf("want one error at %s, got %v", KeyProxmoxJumpPrivateKey, err)
	}
}

// Without a jump login the jump host uses the provider's login, as before (with a warning).
func TestNoJumpLoginIsAllowed(t *testing.T) {
	src := validLab(t)
	src.apply(t, edit{"proxmox.jumpUser", remove{}}, edit{KeyProxmoxJumpPrivateKey, remove{}})
	cfg, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Proxmox.JumpUser != "" || cfg.Secrets.ProxmoxJumpPrivateKey.Set {
		t.Error("no jump login expected")
	}
}

// testHostKey is a throwaway ed25519 host key, the one the shipped lab stack carries as example.
const testHostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIProWsZOW3RZXzjYviQQ3tvVsp8mhzObpZpCMOSHwNz/"
