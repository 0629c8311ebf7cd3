package infra

import (
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"
)

// sshdDropIn closes every login path but keys. Written by cloud-init so it holds from first boot.
const sshdDropIn = `# Managed by infralab (cloud-init): keys only, no root.
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitEmptyPasswords no
`

// cloudConfig is the subset of cloud-init's #cloud-config schema infralab uses.
type cloudConfig struct {
	Hostname        string      `json:"hostname"`
	FQDN            string      `json:"fqdn,omitempty"`
	ManageEtcHosts  bool        `json:"manage_etc_hosts"`
	DisableRoot     bool        `json:"disable_root"`
	SSHPasswordAuth bool        `json:"ssh_pwauth"`
	SSHDeleteKeys   bool        `json:"ssh_deletekeys"`
	Users           []cloudUser `json:"users"`
	Timezone        string      `json:"timezone"`
	NTP             cloudNTP    `json:"ntp"`
	PackageUpdate   bool        `json:"package_update"`
	Packages        []string    `json:"packages"`
	WriteFiles      []cloudFile `json:"write_files"`
	RunCmd          [][]string  `json:"runcmd"`
	FinalMessage    string      `json:"final_message"`
}

type cloudUser struct {
	Name              string   `json:"name"`
	Groups            []string `json:"groups"`
	Shell             string   `json:"shell"`
	Sudo              string   `json:"sudo"`
	LockPasswd        bool     `json:"lock_passwd"`
	SSHAuthorizedKeys []string `json:"ssh_authorized_keys"`
}

type cloudNTP struct {
	Enabled   bool     `json:"enabled"`
	NTPClient string   `json:"ntp_client"`
	Servers   []string `json:"servers,omitempty"`
}

type cloudFile struct {
	Path        string `json:"path"`
	Owner       string `json:"owner"`
	Permissions string `json:"permissions"`
	Content     string `json:"content"`
}

// userData renders the #cloud-config for one VM. Network settings are not here: Proxmox writes
// them into the cloud-init drive's network-config from the VM's ipConfig.
func userData(a *NodesArgs, vm VMArgs) (string, error) {
	tz := a.Time.Timezone
	if tz == "" {
		tz = "UTC"
	}
	cfg := cloudConfig{
		Hostname:       vm.Name,
		ManageEtcHosts: true,
		DisableRoot:    true,
		// ssh_pwauth false makes cloud-init write PasswordAuthentication no as well.
		SSHPasswordAuth: false,
		SSHDeleteKeys:   true,
		Users: []cloudUser{{
			Name:   a.SSH.User,
			Groups: []string{"sudo"},
			Shell:  "/bin/bash",
			// The user has no password at all (lock_passwd), so sudo cannot ask for one.
			Sudo:              "ALL=(ALL) NOPASSWD:ALL",
			LockPasswd:        true,
			SSHAuthorizedKeys: []string{strings.TrimSpace(a.SSH.PublicKey)},
		}},
		Timezone:      tz,
		NTP:           cloudNTP{Enabled: true, NTPClient: "chrony", Servers: a.Time.NTPServers},
		PackageUpdate: true,
		// What the cluster layer needs before it can start: the agent lets Proxmox report the IP
		// and shut the VM down cleanly; chrony keeps clocks in sync for TLS and etcd.
		Packages: []string{"qemu-guest-agent", "chrony", "ca-certificates", "curl", "gnupg"},
		WriteFiles: []cloudFile{{
			Path: "/etc/ssh/sshd_config.d/10-infralab.conf", Owner: "root:root", Permissions: "0644", Content: sshdDropIn,
		}},
		RunCmd: [][]string{
			{"systemctl", "enable", "--now", "qemu-guest-agent"},
			{"systemctl", "enable", "--now", "chrony"},
			{"systemctl", "reload", "ssh"},
		},
		FinalMessage: fmt.Sprintf("infralab %s node %s (%s) ready after $UPTIME s", a.Stack, vm.Name, vm.Role),
	}
	if a.Network.SearchDomain != "" {
		cfg.FQDN = vm.Name + "." + a.Network.SearchDomain
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("infra: render cloud-init for %s: %w", vm.Name, err)
	}
	// cloud-init only treats the file as cloud-config with this exact first line.
	return "#cloud-config\n" + string(out), nil
}
