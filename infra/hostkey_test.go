package infra

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	testHostKey    = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIProWsZOW3RZXzjYviQQ3tvVsp8mhzObpZpCMOSHwNz/"
	testRSAHostKey = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDUtg0HXg3Toq3ffo3ySUniV9wbNbHYDV543aL0UZ8OjqYsSLIOkS+jM4zCMOJHCYpa+htZ2kbA4cKgH36oK76q1mslqJ1pw9uvrrHUzl7ydZGBcyX3cLhI8z5NPYDZeLKw0mHbh8/hwHrMsL/poQLnjrrVxXlGf9O+kg7YRtj+pw=="
)

// The NAT step pins the first node's host key: without hostKey the command provider accepts any
// (pulumi-command v1.1.0 provider/pkg/provider/remote/connection.go, ssh.InsecureIgnoreHostKey).
func TestHostNATPinsTheHostKey(t *testing.T) {
	a := fixture(t, 1, 1)
	a.Proxmox.Nodes[0].SSHHostKey = testHostKey + " root@pve1"
	m, _, err := run(t, a)
	require.NoError(t, err)
	// Every command on the host (NAT, pre-flight, snippet cleanup) connects with the pinned key.
	cmds := m.ofType(typeCommand)
	require.Len(t, cmds, 1+1+2)
	for _, c := range cmds {
		assert.Equal(t, testHostKey+" root@pve1", str(c.inputs, "connection", "hostKey"), c.name)
	}
}

func TestUnusableHostKeyIsRefused(t *testing.T) {
	a := fixture(t, 1, 1)
	a.Proxmox.Nodes[0].SSHHostKey = testRSAHostKey
	m, _, err := run(t, a)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "proxmox.nodes[0].sshHostKey: is an RSA key")
	assert.Empty(t, m.count())
}
