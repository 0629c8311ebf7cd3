// Package hostkey checks an SSH host public key that infralab pins for a connection, the same way
// for the config loader, the infra layer and the cluster layer.
//
// The pinned key goes to pulumi-command's connection.hostKey, which the provider parses with
// ssh.ParseAuthorizedKey and uses as ssh.FixedHostKey, offering only that key's type as host key
// algorithm (pulumi-command v1.1.0 provider/pkg/provider/remote/connection.go). For an RSA key that
// type is ssh-rsa, i.e. SHA-1 signatures, which OpenSSH 8.8 and later refuse by default (Proxmox VE 8
// and Debian 12 ship 9.2), so such a pin could never connect: it is refused here instead.
package hostkey

import (
	"strings"

	"golang.org/x/crypto/ssh"
)

// Hint says where a correct key comes from: the host itself, never a scan over the network
// (ssh-keyscan trusts whatever answers).
const Hint = "on the host's console (not over the network) run cat /etc/ssh/ssh_host_ed25519_key.pub and paste that line"

// Problem says why key cannot be pinned, or returns "" when it can. An empty key is not checked.
func Problem(key string) string {
	if strings.TrimSpace(key) == "" {
		return ""
	}
	pub, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(key))
	switch {
	case err != nil || strings.TrimSpace(string(rest)) != "":
		return "is not one SSH public key line"
	case pub.Type() == ssh.KeyAlgoRSA:
		return "is an RSA key, which the command provider can verify only with SHA-1 signatures that current OpenSSH refuses; use the host's ed25519 key"
	case strings.Contains(pub.Type(), "-cert-v01@"):
		return "is a certificate, not the host's plain public key"
	}
	return ""
}
