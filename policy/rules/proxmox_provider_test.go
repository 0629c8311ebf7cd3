package rules

import "testing"

// explicitProxmox is a provider with every setting bpg would otherwise take from the environment.
func explicitProxmox() map[string]any {
	return map[string]any{
		"endpoint": "https://pve:8006/", "insecure": false, "minTls": "1.3",
		"ssh": map[string]any{
			"username": "infralab", "privateKey": Secret("key"), "agent": false, "agentForwarding": false,
			"password": "", "socks5Server": "", "socks5Username": "", "socks5Password": "",
		},
	}
}

func TestProxmoxProviderExplicit(t *testing.T) {
	const p = "pulumi:providers:proxmoxve"
	with := func(path string, v any) map[string]any { return set(explicitProxmox(), path, v) }
	runRuleTable(t, "proxmox-provider-explicit", []ruleCase{
		{name: "every setting explicit", typ: p, props: explicitProxmox()},
		{name: "insecure true is explicit too (proxmox-insecure-tls warns)", typ: p, props: with("insecure", true)},
		{name: "insecure unset", typ: p, props: with("insecure", nil),
			want: []string{`provider proxmoxve "app", field insecure: not set, so the provider takes PROXMOX_VE_INSECURE`}},
		{name: "minTls unset", typ: p, props: with("minTls", nil), want: []string{"field minTls: not set"}},
		{name: "minTls 1.1", typ: p, props: with("minTls", "1.1"), want: []string{`field minTls: "1.1" allows TLS below 1.2`}},
		{name: "no ssh block", typ: p, props: with("ssh", nil), want: []string{"field ssh: not set, so the provider takes its whole SSH login"}},
		{name: "agent on", typ: p, props: with("ssh.agent", true), want: []string{"field ssh.agent: true"}},
		{name: "agent unset", typ: p, props: with("ssh.agent", nil), want: []string{"field ssh.agent: not set, so the provider takes PROXMOX_VE_SSH_AGENT"}},
		{name: "agent forwarding on", typ: p, props: with("ssh.agentForwarding", true), want: []string{"field ssh.agentForwarding: true"}},
		{name: "socks5 unset", typ: p, props: with("ssh.socks5Server", nil), want: []string{"field ssh.socks5Server: not set, so the provider takes PROXMOX_VE_SSH_SOCKS5_SERVER"}},
		{name: "socks5 configured is explicit", typ: p, props: with("ssh.socks5Server", "10.0.0.1:1080")},
		{name: "ssh password unset", typ: p, props: with("ssh.password", nil), want: []string{"field ssh.password: not set, so the provider takes PROXMOX_VE_SSH_PASSWORD"}},
		// A default provider gets its settings from stack config, as strings (JSON for objects).
		{name: "from stack config", typ: p, props: map[string]any{
			"insecure": "false", "minTls": "1.3",
			"ssh": `{"username":"infralab","agent":false,"agentForwarding":false,"password":"","socks5Server":""}`,
		}},
		{name: "from stack config, agent on", typ: p, props: map[string]any{
			"insecure": "false", "minTls": "1.3",
			"ssh": `{"agent":"true","agentForwarding":false,"password":"","socks5Server":""}`,
		}, want: []string{"field ssh.agent: true"}},
		{name: "unknown ssh block", typ: p, unknowns: 1, props: with("ssh", Unknown())},
		{name: "secret ssh block is still checked", typ: p, props: with("ssh", Secret(map[string]any{
			"agent": true, "agentForwarding": false, "password": "", "socks5Server": "",
		})), want: []string{"field ssh.agent: true"}},
		{name: "other provider", typ: "pulumi:providers:kubernetes", props: map[string]any{}},
	})
	if ruleNamed(t, "proxmox-provider-explicit").Level != Mandatory {
		t.Error("proxmox-provider-explicit must be mandatory")
	}
}
