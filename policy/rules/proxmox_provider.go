package rules

import (
	"encoding/json"
	"fmt"
)

// The proxmoxve provider (pulumi-proxmoxve v7.13.0 = bpg/terraform-provider-proxmox v0.95.0)
// takes every setting its config leaves unset from the environment: fwprovider/provider.go and
// proxmoxtf/provider/provider.go read PROXMOX_VE_* (and PM_VE_*) variables first and let the
// config override them. A provider resource that leaves a security setting out therefore runs with
// whatever the shell of whoever runs `pulumi up` exports, and the preview cannot show it.
// checkProxmoxProviderExplicit asks for each such setting to be written down.

// explicitSetting is one setting the rule wants in the provider's inputs.
type explicitSetting struct {
	path []string
	env  string
	// check judges a present value: a problem and its fix, or "" when it is fine.
	check func(n node) (problem, fix string)
}

var proxmoxExplicitSettings = []explicitSetting{
	{[]string{"insecure"}, "PROXMOX_VE_INSECURE", anyBool},
	{[]string{"minTls"}, "PROXMOX_VE_MIN_TLS", func(n node) (string, string) {
		s, _ := n.str()
		if s == "1.2" || s == "1.3" {
			return "", ""
		}
		return fmt.Sprintf("%q allows TLS below 1.2", s), "set minTls: \"1.3\" (the provider's own default)"
	}},
	{[]string{"ssh", "agent"}, "PROXMOX_VE_SSH_AGENT", mustBeFalse("any key loaded in the SSH agent of whoever runs pulumi logs in to the Proxmox host")},
	{[]string{"ssh", "agentForwarding"}, "PROXMOX_VE_SSH_AGENT_FORWARDING", mustBeFalse("the Proxmox host can use the agent of whoever runs pulumi")},
	{[]string{"ssh", "password"}, "PROXMOX_VE_SSH_PASSWORD", anyString},
	{[]string{"ssh", "socks5Server"}, "PROXMOX_VE_SSH_SOCKS5_SERVER", anyString},
}

func checkProxmoxProviderExplicit(r Resource) []Finding {
	if r.Type != "pulumi:providers:proxmoxve" {
		return nil
	}
	f := newFinder("proxmox-provider-explicit", r)
	top := root(r.Props, "")
	ssh := decodeJSONObject(top.get("ssh"))
	switch {
	case ssh.unknown:
		f.unknown("", ssh.path)
	case ssh.missing:
		f.bad("", ssh.path, "not set, so the provider takes its whole SSH login (user, key, agent, password, SOCKS5 proxy) from PROXMOX_VE_SSH_* variables",
			"set ssh with username, privateKey, agent: false, agentForwarding: false, password: \"\" and socks5Server: \"\"")
	}
	for _, s := range proxmoxExplicitSettings {
		n := top.get(s.path[0])
		if len(s.path) > 1 {
			if !ssh.present() {
				continue
			}
			n = ssh.get(s.path[1])
		}
		switch {
		case n.unknown:
			f.unknown("", n.path)
		case n.missing:
			f.bad("", n.path, "not set, so the provider takes "+s.env+" from the environment of whoever runs pulumi",
				"set it explicitly (an empty string for none)")
		default:
			if problem, fix := s.check(n); problem != "" {
				f.bad("", n.path, problem, fix)
			}
		}
	}
	return f.out
}

// decodeJSONObject returns n, or for an object that arrived as a JSON string (a default
// provider's settings come from stack config as strings) the decoded object at the same path.
func decodeJSONObject(n node) node {
	s, ok := n.str()
	if !ok {
		return n
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return n
	}
	return node{v: FromGo(v), path: n.path, secret: n.isSecret()}
}

// boolish reads a bool, or "true"/"false" as stack config delivers it.
func boolish(n node) (val, ok bool) {
	if b, ok := n.boolean(); ok {
		return b, true
	}
	switch s, _ := n.str(); s {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

func anyBool(n node) (string, string) {
	if _, ok := boolish(n); ok {
		return "", ""
	}
	return "is not a bool", "set true or false"
}

func anyString(n node) (string, string) {
	if _, ok := n.str(); ok {
		return "", ""
	}
	return "is not a string", "set a string (empty for none)"
}

func mustBeFalse(why string) func(node) (string, string) {
	return func(n node) (string, string) {
		if v, ok := boolish(n); ok && !v {
			return "", ""
		}
		return "true: " + why, "set it to false; the provider logs in with ssh.privateKey"
	}
}
