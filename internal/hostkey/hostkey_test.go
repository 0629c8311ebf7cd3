package hostkey

import (
	"strings"
	"testing"
)

func TestProblem(t *testing.T) {
	for key, want := range map[string]string{
		"": "",
		"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIProWsZOW3RZXzjYviQQ3tvVsp8mhzObpZpCMOSHwNz/ root@pve":                                                                                                                            "",
		"ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBB03ymVMfaqpcI5oNABV3qDn9bLrokKretEhskgZ/b4umZPXj/auPYFvnrZoE1HzMAnAEax2zV2Z/p2a+MSsMM4=":                                                     "",
		"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDUtg0HXg3Toq3ffo3ySUniV9wbNbHYDV543aL0UZ8OjqYsSLIOkS+jM4zCMOJHCYpa+htZ2kbA4cKgH36oK76q1mslqJ1pw9uvrrHUzl7ydZGBcyX3cLhI8z5NPYDZeLKw0mHbh8/hwHrMsL/poQLnjrrVxXlGf9O+kg7YRtj+pw==": "is an RSA key",
		"ssh-ed25519 notakey":                 "is not one SSH public key line",
		"-----BEGIN OPENSSH PRIVATE KEY-----": "is not one SSH public key line",
		"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIProWsZOW3RZXzjYviQQ3tvVsp8mhzObpZpCMOSHwNz/\necdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBB03ymVMfaqpcI5oNABV3qDn9bLrokKretEhskgZ/b4umZPXj/auPYFvnrZoE1HzMAnAEax2zV2Z/p2a+MSsMM4=": "is not one SSH public key line",
	} {
		got := Problem(key)
		if (want == "") != (got == "") || !strings.HasPrefix(got, want) {
			t.Errorf("Problem(%.30q) = %q, want %q", key, got, want)
		}
	}
}
