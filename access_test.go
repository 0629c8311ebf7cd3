package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/infralab/infralab/stacks"
)

// jumpKeyPEM is the lab stack's jump key in these tests, a key of its own.
var jumpKeyPEM = func() string {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, _ := ssh.MarshalPrivateKey(priv, "")
	return string(pem.EncodeToMemory(block))
}()

// Three logins, three jobs (docs/infra.md, "SSH logins and keys"): the cluster layer's jump host
// uses the forwarding-only jump login, never the provider's login, and every connection to the
// Proxmox host pins proxmox.nodes[0].sshHostKey.
func TestLabJumpHostUsesTheJumpLoginAndEveryConnectionPinsTheHostKey(t *testing.T) {
	sc := loadStack(t, "lab")
	var px struct {
		JumpUser string `json:"jumpUser"`
		Nodes    []struct {
			SSHHostKey string `json:"sshHostKey"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(sc.values["proxmox"]), &px); err != nil {
		t.Fatal(err)
	}
	rec, err := sc.run(t)
	if err != nil {
		t.Fatal(err)
	}
	hostKey := sc.values[stacks.KeyProxmoxSSHPrivateKey]
	commands := 0
	for _, r := range rec.resources {
		if r.TypeToken != "command:remote:Command" {
			continue
		}
		commands++
		conn := unsecret(r.Inputs["connection"]).ObjectValue()
		if strings.HasPrefix(r.Name, "infra-") { // the infra layer's commands on the Proxmox host itself
			if got := conn["hostKey"]; !got.IsString() || got.StringValue() != px.Nodes[0].SSHHostKey {
				t.Errorf("%s: hostKey = %v, want proxmox.nodes[0].sshHostKey", r.Name, got)
			}
			continue
		}
		proxy := conn["proxy"].ObjectValue()
		if got := proxy["user"].StringValue(); got != px.JumpUser {
			t.Errorf("%s: jump host user %q, want proxmox.jumpUser %q", r.Name, got, px.JumpUser)
		}
		key := unsecret(proxy["privateKey"]).StringValue()
		if key != jumpKeyPEM || key == hostKey {
			t.Errorf("%s: the jump host must use %s, not the host login's key", r.Name, stacks.KeyProxmoxJumpPrivateKey)
		}
		if got := proxy["hostKey"]; !got.IsString() || got.StringValue() != px.Nodes[0].SSHHostKey {
			t.Errorf("%s: jump hostKey = %v, want proxmox.nodes[0].sshHostKey", r.Name, got)
		}
	}
	if commands < 10 {
		t.Fatalf("only %d commands", commands)
	}
}
