package box

import (
	"fmt"
	"strings"
)

// MinimalUserData is the #cloud-config the box uses when the caller gives none (the tests, and
// `make box` before the lab's rendered user-data is wired in): user `user` with sudo and the
// authorized key, no password at all, key-only SSH with no root login, fresh host keys. It
// mirrors what infra/cloudinit.go renders for the lab's VMs, minus the packages (which need the
// box's apt repository).
func MinimalUserData(hostname, user, authorizedKey string) []byte {
	return []byte(fmt.Sprintf(`#cloud-config
hostname: %s
manage_etc_hosts: true
disable_root: true
ssh_pwauth: false
ssh_deletekeys: true
# the minimal tree has locales, but generating one costs boot time and nothing here needs it
locale: false
users:
  - name: %s
    groups: [sudo]
    shell: /bin/bash
    sudo: "ALL=(ALL) NOPASSWD:ALL"
    lock_passwd: true
    ssh_authorized_keys:
      - %s
write_files:
  - path: /etc/ssh/sshd_config.d/10-infralab.conf
    owner: root:root
    permissions: "0644"
    content: |
      PermitRootLogin no
      PasswordAuthentication no
      KbdInteractiveAuthentication no
      PermitEmptyPasswords no
runcmd:
  - [systemctl, reload, ssh]
`, hostname, user, strings.TrimSpace(authorizedKey)))
}
