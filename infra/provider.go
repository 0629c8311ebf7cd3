package infra

import (
	"fmt"
	"os"
	"sort"

	"github.com/muhlba91/pulumi-proxmoxve/sdk/v7/go/proxmoxve"
	"github.com/muhlba91/pulumi-proxmoxve/sdk/v7/go/proxmoxve/download"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// reconciler carries what every ensure step needs while NewNodes declares resources.
type reconciler struct {
	ctx    *pulumi.Context
	name   string
	plan   *plan
	parent pulumi.Resource

	provider *proxmoxve.Provider
	images   map[string]*download.File // by Proxmox node
	bridges  map[string]pulumi.Resource
	nat      pulumi.Resource
}

// child names a resource after the component so two stacks' URNs never collide.
func (r *reconciler) child(format string, a ...any) string {
	return r.name + "-" + fmt.Sprintf(format, a...)
}

// pxOpts parents a proxmoxve resource to the component and routes it through the explicit provider.
func (r *reconciler) pxOpts(extra ...pulumi.ResourceOption) []pulumi.ResourceOption {
	return append([]pulumi.ResourceOption{pulumi.Parent(r.parent), pulumi.Provider(r.provider)}, extra...)
}

const (
	// proxmoxSDKModule is the Go SDK whose version names the provider plugin (the SDK asks for no
	// version itself: its internal.SdkVersion is empty). ProxmoxPluginVersion must equal its version
	// in go.mod and PROXMOXVE_PLUGIN_VERSION in hack/versions.env (provider_test.go checks both).
	proxmoxSDKModule = "github.com/muhlba91/pulumi-proxmoxve/sdk/v7"
	// ProxmoxPluginVersion is the proxmoxve provider plugin the program asks for. The explicit
	// provider must name it: the engine gives an explicit provider the default provider's version
	// only when it names no download URL, and the SDK always sets one
	// (pkg/resource/deploy/source_eval.go; proxmoxve/internal/pulumiUtilities.go).
	ProxmoxPluginVersion = "7.13.0"

	// minTLS is the provider's own default (proxmox/api/client.go GetMinTLSVersion), set so
	// PROXMOX_VE_MIN_TLS cannot lower it. Proxmox VE 7 and later serve TLS 1.3.
	minTLS = "1.3"
)

// providerEnv is every variable bpg/terraform-provider-proxmox v0.95.0 reads for a provider
// setting: fwprovider/provider.go (Configure) and proxmoxtf/provider/provider.go plus schema.go
// (providerConfigure, the SDKv2 half that serves the VM and file resources). The provider plugin
// inherits the environment of the pulumi CLI, which is the program's environment too.
//
// Explicit inputs do not beat all of them: the SDKv2 half reads `insecure` with d.GetOk, which
// treats an explicit false as unset, and it prefers a variable over an empty ssh password or
// SOCKS5 setting. So the program sets every setting explicitly (for the preview and the policy
// pack) and refuses to run while any of these is set, SSH_AUTH_SOCK excepted: ssh-agent sets it
// everywhere, and with agent and agentForwarding false the provider never opens it.
var providerEnv = []string{
	"PROXMOX_VE_ENDPOINT", "PM_VE_ENDPOINT",
	"PROXMOX_VE_INSECURE", "PM_VE_INSECURE",
	"PROXMOX_VE_MIN_TLS", "PM_VE_MIN_TLS",
	"PROXMOX_VE_API_TOKEN", "PM_VE_API_TOKEN",
	"PROXMOX_VE_AUTH_TICKET", "PM_VE_AUTH_TICKET",
	"PROXMOX_VE_CSRF_PREVENTION_TOKEN", "PM_VE_CSRF_PREVENTION_TOKEN",
	"PROXMOX_VE_OTP", "PM_VE_OTP",
	"PROXMOX_VE_USERNAME", "PM_VE_USERNAME",
	"PROXMOX_VE_PASSWORD", "PM_VE_PASSWORD",
	"PROXMOX_VE_SSH_USERNAME", "PM_VE_SSH_USERNAME",
	"PROXMOX_VE_SSH_PASSWORD", "PM_VE_SSH_PASSWORD",
	"PROXMOX_VE_SSH_PRIVATE_KEY",
	"PROXMOX_VE_SSH_AGENT", "PM_VE_SSH_AGENT",
	"PROXMOX_VE_SSH_AGENT_FORWARDING", "PM_VE_SSH_AGENT_FORWARDING",
	"PROXMOX_VE_SSH_AUTH_SOCK", "PM_VE_SSH_AUTH_SOCK", "SSH_AUTH_SOCK",
	"PROXMOX_VE_SSH_SOCKS5_SERVER", "PROXMOX_VE_SSH_SOCKS5_USERNAME", "PROXMOX_VE_SSH_SOCKS5_PASSWORD",
	"PROXMOX_VE_TMPDIR", "PM_VE_TMPDIR",
}

// httpsProxyEnv steers the provider's API client (http.ProxyFromEnvironment in
// proxmox/api/client.go). Harmless while TLS is verified; refused together with insecure.
var httpsProxyEnv = []string{"HTTPS_PROXY", "https_proxy"}

// validateEnvironment reports the provider variables that are set, by name only: a value may be a
// credential.
func validateEnvironment(errs *fieldErrors, p *plan) {
	var set []string
	for _, name := range providerEnv {
		if _, ok := os.LookupEnv(name); ok && name != "SSH_AUTH_SOCK" {
			set = append(set, name)
		}
	}
	sort.Strings(set)
	for _, name := range set {
		errs.add("environment: "+name, "is set, and the proxmoxve provider would take it over the stack config "+
			"(bpg v0.95.0 reads it for any setting it considers unset); unset it: the stack config holds every provider setting (docs/infra.md, \"Provider settings\")")
	}
	if !p.args.Proxmox.Insecure {
		return
	}
	for _, name := range httpsProxyEnv {
		if _, ok := os.LookupEnv(name); ok {
			errs.add("proxmox.insecure", "is true while %s is set: the provider's API calls go through that proxy, which could then read the API token; "+
				"give Proxmox a trusted certificate, or unset %s for this run", name, name)
			return
		}
	}
}

// ensureProvider declares the explicit proxmoxve provider with every setting the provider would
// otherwise take from PROXMOX_VE_* variables, so a preview shows exactly what it talks to and how.
func (r *reconciler) ensureProvider() error {
	px := r.plan.args.Proxmox
	args := &proxmoxve.ProviderArgs{
		Endpoint: pulumi.String(px.Endpoint),
		ApiToken: pulumi.ToSecret(px.APIToken).(pulumi.StringInput),
		Insecure: pulumi.Bool(px.Insecure),
		MinTls:   pulumi.String(minTLS),
		// Snippet uploads go over SSH: the Proxmox API has no endpoint for them. The key is the
		// only login: no agent, no agent forwarding, no password fallback, no SOCKS5 proxy.
		// Host keys: the provider has no setting for them; it checks ~/.ssh/known_hosts and adds
		// unknown hosts on first use (proxmox/ssh/client.go openNodeShell), so the lab deploy path
		// pins proxmox.nodes[].sshHostKey there first (hack/lab-prepare.sh).
		Ssh: &proxmoxve.ProviderSshArgs{
			Username:        pulumi.String(px.HostSSH.User),
			PrivateKey:      pulumi.ToSecret(px.HostSSH.PrivateKey).(pulumi.StringInput),
			Agent:           pulumi.Bool(false),
			AgentForwarding: pulumi.Bool(false),
			Password:        pulumi.String(""),
			Socks5Server:    pulumi.String(""),
			Socks5Username:  pulumi.String(""),
			Socks5Password:  pulumi.String(""),
			Nodes:           sshNodes(px.Nodes),
		},
	}
	if px.Insecure {
		if err := r.ctx.Log.Warn("infra: proxmox.insecure is set: the API's TLS certificate is NOT verified; "+
			"install a trusted certificate on "+px.Endpoint+" and unset it", &pulumi.LogArgs{Resource: r.parent}); err != nil {
			return err
		}
	}
	if px.HostSSH.User == "root" {
		if err := r.ctx.Log.Warn("infra: proxmox.hostSshUser is root: the provider needs only pvesm, qm and tee into the snippets "+
			"folder under sudo; see docs/infra.md, \"SSH logins and keys\", for a non-root user", &pulumi.LogArgs{Resource: r.parent}); err != nil {
			return err
		}
	}
	prov, err := proxmoxve.NewProvider(r.ctx, r.child("proxmox"), args, pulumi.Parent(r.parent),
		pulumi.Version(ProxmoxPluginVersion))
	if err != nil {
		return err
	}
	r.provider = prov
	return nil
}

// sshNodes pins SSH addresses where the config names them; other nodes use the address the API reports.
func sshNodes(nodes []ProxmoxNode) proxmoxve.ProviderSshNodeArray {
	var out proxmoxve.ProviderSshNodeArray
	for _, n := range nodes {
		if n.Address != "" {
			out = append(out, proxmoxve.ProviderSshNodeArgs{Name: pulumi.String(n.Name), Address: pulumi.String(n.Address)})
		}
	}
	return out
}
