package infra

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/infralab/infralab/internal/testenv"
)

// bpg/terraform-provider-proxmox v0.95.0 (bridged by pulumi-proxmoxve v7.13.0) takes every setting
// that is not in the provider's config from the environment, in both halves of the muxed provider
// (fwprovider/provider.go Configure, proxmoxtf/provider/provider.go providerConfigure). So each
// setting that matters for security is set in the provider's inputs, where the preview and the
// policy pack see it.
func TestProviderSetsEverySecuritySettingExplicitly(t *testing.T) {
	m, _, err := run(t, fixture(t, 1, 1))
	require.NoError(t, err)
	p := m.ofType(typeProvider)[0].inputs
	for _, c := range []struct {
		path []string
		want any
	}{
		{[]string{"insecure"}, false},
		{[]string{"minTls"}, "1.3"},
		{[]string{"ssh", "agent"}, false},
		{[]string{"ssh", "agentForwarding"}, false},
		{[]string{"ssh", "password"}, ""},
		{[]string{"ssh", "socks5Server"}, ""},
		{[]string{"ssh", "socks5Username"}, ""},
		{[]string{"ssh", "socks5Password"}, ""},
		{[]string{"ssh", "username"}, "root"},
	} {
		v := prop(p, c.path...)
		name := strings.Join(c.path, ".")
		switch want := c.want.(type) {
		case bool:
			if assert.True(t, v.IsBool(), "%s must be set explicitly, got %v", name, v) {
				assert.Equal(t, want, v.BoolValue(), name)
			}
		case string:
			if assert.True(t, v.IsString(), "%s must be set explicitly, got %v", name, v) {
				assert.Equal(t, want, v.StringValue(), name)
			}
		}
	}
}

// The SDKv2 half reads `insecure` with d.GetOk, which reports an explicit false as unset, and it
// prefers the environment over an empty ssh password or SOCKS setting
// (proxmoxtf/provider/provider.go). The explicit values above cannot beat those variables, so the
// program refuses to run while any variable the provider reads is set.
func TestAmbientProviderVariablesAreRefused(t *testing.T) {
	for _, name := range providerEnv {
		if name == "SSH_AUTH_SOCK" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Setenv(name, "true")
			m, _, err := run(t, fixture(t, 1, 1))
			require.Error(t, err)
			assert.Contains(t, err.Error(), "environment: "+name)
			assert.NotContains(t, err.Error(), "=true", "the value is never repeated")
			assert.Empty(t, m.count(), "nothing is declared")
		})
	}
}

// The agent socket is everywhere (ssh-agent sets it); with agent and agentForwarding false the
// provider never opens it (proxmox/ssh/client.go uses it only when agent is true).
func TestAgentSocketAloneIsFine(t *testing.T) {
	t.Setenv("SSH_AUTH_SOCK", "/tmp/agent.sock")
	_, _, err := run(t, fixture(t, 1, 1))
	require.NoError(t, err)
}

// The API client honours HTTPS_PROXY (proxmox/api/client.go: http.ProxyFromEnvironment). With TLS
// verified a proxy sees only the host name; without, it could read the API token.
func TestInsecureBehindAProxyIsRefused(t *testing.T) {
	t.Setenv("HTTPS_PROXY", "http://proxy.example:3128")
	a := fixture(t, 1, 1)
	_, _, err := run(t, a)
	require.NoError(t, err, "a proxy with TLS verified is fine")
	a.Proxmox.Insecure = true
	_, _, err = run(t, a)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "proxmox.insecure")
	assert.Contains(t, err.Error(), "HTTPS_PROXY")
}

// The plugin version the provider asks for is the SDK's module version, the one the language host
// reports and hack/versions.env pins (PROXMOXVE_PLUGIN_VERSION): the SDK itself asks for none.
func TestProviderAsksForThePinnedPluginVersion(t *testing.T) {
	m, _, err := run(t, fixture(t, 1, 1))
	require.NoError(t, err)
	gomod, err := os.ReadFile("../go.mod")
	require.NoError(t, err)
	req := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(proxmoxSDKModule) + ` v(\S+)$`).FindSubmatch(gomod)
	require.NotNil(t, req, "go.mod requires no %s", proxmoxSDKModule)
	sdk := string(req[1])
	assert.Equal(t, sdk, m.ofType(typeProvider)[0].rpc.GetVersion())
	assert.Equal(t, sdk, testenv.PinnedVersions(t)["PROXMOXVE_PLUGIN_VERSION"])
}
