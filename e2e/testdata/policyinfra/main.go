// Command policyinfra is the program e2e/policy_infra_preview_test.go previews with the policy
// pack, to run the Proxmox and remote-command rules under the real pulumi CLI. It declares what
// the infra layer declares, through the real SDKs (github.com/muhlba91/pulumi-proxmoxve/sdk/v7
// and github.com/pulumi/pulumi-command/sdk): an explicit proxmoxve provider with an API token and
// an SSH login, the cloud-init user data uploaded as a snippet (storage.File with sourceRaw, as
// infra/vm.go does), a VM that boots from it, and a remote.Command over SSH (as
// infra/network.go and cluster/ do). A second snippet goes through the default proxmoxve
// provider, which takes its API token from the stack config key proxmoxve:apiToken.
//
// The config key `variant` picks what is wrong:
//
//	clean      every credential is a Pulumi secret, the user data sets no password, TLS is verified
//	broken     plaintext credentials in the program (API token, provider SSH key, remote command
//	           SSH key), user data and a VM user account that set a password, insecure: true,
//	           the provider's SSH agent on
//	unwrapped  a command:remote:Command registered with ctx.RegisterResource instead of the SDK,
//	           with a plaintext connection: the SDK always wraps connection in a secret, so this
//	           is the only way a program can send the remote-command rule a plaintext key
//
// The test sets proxmoxve:apiToken itself (plain for broken, --secret otherwise), and the default
// provider's other settings (proxmoxve:insecure, proxmoxve:minTls, proxmoxve:ssh). The credentials
// are fake strings; nothing is ever contacted. The test runs the program against stand-in
// provider plugins (e2e/testdata/stubprovider) that only check and echo inputs.
package main

import (
	"fmt"

	"github.com/muhlba91/pulumi-proxmoxve/sdk/v7/go/proxmoxve"
	"github.com/muhlba91/pulumi-proxmoxve/sdk/v7/go/proxmoxve/storage"
	"github.com/muhlba91/pulumi-proxmoxve/sdk/v7/go/proxmoxve/vm"
	"github.com/pulumi/pulumi-command/sdk/go/command/remote"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
)

// Fake credentials: the shapes of the real ones, none of them valid anywhere.
const (
	apiToken   = "root@pam!infralab=00000000-0000-0000-0000-000000000000"
	privateKey = "-----BEGIN OPENSSH PRIVATE KEY-----\nZmFrZS1wb2xpY3ktZTJlLWtleQ==\n-----END OPENSSH PRIVATE KEY-----\n"
	publicKey  = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakePolicyE2eKeyNotRealAtAll0000000000000 infralab"
)

// userData is cloud-config in the shape infra/cloudinit.go renders; broken adds password settings.
func userData(broken bool) string {
	lock, extra := "true", ""
	if broken {
		lock = "false"
		extra = "chpasswd:\n  expire: false\n  users:\n    - name: infralab\n      password: changeme\n      type: text\n"
	}
	return "#cloud-config\n" +
		"hostname: node-1\n" +
		"disable_root: true\n" +
		"ssh_pwauth: false\n" +
		"users:\n" +
		"  - name: infralab\n" +
		"    groups: [sudo]\n" +
		"    shell: /bin/bash\n" +
		"    sudo: ALL=(ALL) NOPASSWD:ALL\n" +
		"    lock_passwd: " + lock + "\n" +
		"    ssh_authorized_keys:\n" +
		"      - " + publicKey + "\n" +
		extra
}

// snippet declares a cloud-init user-data snippet the way infra/vm.go does.
func snippet(ctx *pulumi.Context, name string, broken bool, opts ...pulumi.ResourceOption) (*storage.File, error) {
	return storage.NewFile(ctx, name, &storage.FileArgs{
		NodeName:    pulumi.String("pve"),
		DatastoreId: pulumi.String("local"),
		ContentType: pulumi.String("snippets"),
		SourceRaw: &storage.FileSourceRawArgs{
			FileName: pulumi.String("infralab-fixture-" + name + ".user-data.yaml"),
			Data:     pulumi.String(userData(broken)),
		},
	}, opts...)
}

func main() {
	pulumi.Run(func(ctx *pulumi.Context) error {
		variant := config.Get(ctx, "variant")
		var broken bool
		switch variant {
		case "broken":
			broken = true
		case "clean":
		case "unwrapped":
			return unwrapped(ctx)
		default:
			return fmt.Errorf("config variant must be broken, clean or unwrapped, not %q", variant)
		}
		// secret returns s as a Pulumi secret in the clean variant and as plaintext in the broken one.
		secret := func(s string) pulumi.StringInput {
			if broken {
				return pulumi.String(s)
			}
			return pulumi.ToSecret(pulumi.String(s)).(pulumi.StringInput)
		}

		// Every setting bpg would otherwise take from PROXMOX_VE_* is written down, as
		// infra/provider.go does; broken turns the SSH agent on.
		provider, err := proxmoxve.NewProvider(ctx, "proxmox", &proxmoxve.ProviderArgs{
			Endpoint: pulumi.String("https://pve.example.invalid:8006/"),
			ApiToken: secret(apiToken),
			Insecure: pulumi.Bool(broken),
			MinTls:   pulumi.String("1.3"),
			Ssh: &proxmoxve.ProviderSshArgs{
				Username:        pulumi.String("root"),
				PrivateKey:      secret(privateKey),
				Agent:           pulumi.Bool(broken),
				AgentForwarding: pulumi.Bool(false),
				Password:        pulumi.String(""),
				Socks5Server:    pulumi.String(""),
			},
		})
		if err != nil {
			return err
		}

		userDataFile, err := snippet(ctx, "user-data-node-1", broken, pulumi.Provider(provider))
		if err != nil {
			return err
		}
		init := &vm.VirtualMachineInitializationArgs{
			DatastoreId:    pulumi.String("local-lvm"),
			UserDataFileId: userDataFile.ID().ToStringOutput(),
		}
		if broken {
			init.UserAccount = &vm.VirtualMachineInitializationUserAccountArgs{
				Username: pulumi.String("infralab"),
				Password: pulumi.String("changeme"),
				Keys:     pulumi.StringArray{pulumi.String(publicKey)},
			}
		}
		if _, err := vm.NewVirtualMachine(ctx, "vm-node-1", &vm.VirtualMachineArgs{
			Name:           pulumi.String("node-1"),
			NodeName:       pulumi.String("pve"),
			Initialization: init,
		}, pulumi.Provider(provider)); err != nil {
			return err
		}

		// Through the default provider: its apiToken comes from the stack config.
		if _, err := snippet(ctx, "user-data-default-provider", false); err != nil {
			return err
		}

		_, err = remote.NewCommand(ctx, "host-nat", &remote.CommandArgs{
			Connection: remote.ConnectionArgs{
				Host:       pulumi.String("192.0.2.10"),
				User:       pulumi.String("root"),
				PrivateKey: secret(privateKey),
			},
			Create: pulumi.String("true"),
		})
		return err
	})
}

// unwrapped registers a remote command without the SDK's constructor, which is what wraps the
// connection in a secret, so the engine gets the connection as the program wrote it.
func unwrapped(ctx *pulumi.Context) error {
	var cmd pulumi.CustomResourceState
	return ctx.RegisterResource("command:remote:Command", "host-nat-unwrapped", pulumi.Map{
		"connection": pulumi.Map{
			"host":       pulumi.String("192.0.2.10"),
			"user":       pulumi.String("root"),
			"privateKey": pulumi.String(privateKey),
		},
		"create": pulumi.String("true"),
	}, &cmd, pulumi.Version("1.1.0"))
}
