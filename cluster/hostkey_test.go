package cluster

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	testHostKey    = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIProWsZOW3RZXzjYviQQ3tvVsp8mhzObpZpCMOSHwNz/"
	testJumpKey    = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBB03ymVMfaqpcI5oNABV3qDn9bLrokKretEhskgZ/b4umZPXj/auPYFvnrZoE1HzMAnAEax2zV2Z/p2a+MSsMM4="
	testRSAHostKey = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDUtg0HXg3Toq3ffo3ySUniV9wbNbHYDV543aL0UZ8OjqYsSLIOkS+jM4zCMOJHCYpa+htZ2kbA4cKgH36oK76q1mslqJ1pw9uvrrHUzl7ydZGBcyX3cLhI8z5NPYDZeLKw0mHbh8/hwHrMsL/poQLnjrrVxXlGf9O+kg7YRtj+pw=="
)

// A pinned host key reaches the command provider for the node and for the jump host, where it
// replaces the provider's default of accepting any key.
func TestHostKeysArePinnedOnEveryConnection(t *testing.T) {
	a := withBastion(testArgs(), "pve.example.com", "infralab-jump", fakeSSHKey, testJumpKey)
	a.ControlPlane.HostKey = testHostKey
	r := run(t, a, Scripts())
	for name, c := range r.m.commands() {
		conn := c.args.Inputs["connection"].SecretValue().Element.ObjectValue()
		assert.Equal(t, testJumpKey, conn["proxy"].ObjectValue()["hostKey"].StringValue(), name)
		if c.args.Inputs["create"].StringValue() != "" && conn["host"].StringValue() == a.ControlPlane.IP {
			assert.Equal(t, testHostKey, conn["hostKey"].StringValue(), name)
		} else {
			assert.False(t, conn.HasValue("hostKey"), "%s: no key given, none pinned", name)
		}
	}
}

func TestUnusableHostKeysAreRefusedWithTheirField(t *testing.T) {
	a := withBastion(testArgs(), "pve.example.com", "infralab-jump", fakeSSHKey, testRSAHostKey)
	a.Workers[1].HostKey = "not a key"
	err := a.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cluster.bastion.hostKey: is an RSA key")
	assert.Contains(t, err.Error(), "cluster.workers[1].hostKey: is not one SSH public key line")
}
