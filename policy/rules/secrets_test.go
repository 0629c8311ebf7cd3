package rules

import (
	"strings"
	"testing"
)

const tSecret = "kubernetes:core/v1:Secret"

func TestSecretData(t *testing.T) {
	runRuleTable(t, "secret-data-is-secret", []ruleCase{
		{name: "secret values", typ: tSecret, props: map[string]any{
			"data": map[string]any{"password": Secret("c2VjcmV0")}, "stringData": map[string]any{"token": Secret("t")}}},
		{name: "whole map secret", typ: tSecret, props: map[string]any{"stringData": Secret(map[string]any{"password": "p"})}},
		{name: "plaintext stringData", typ: tSecret, want: []string{`Secret "app", field stringData.password: stringData.password is a plaintext value`},
			props: map[string]any{"stringData": map[string]any{"password": "hunter2", "user": Secret("app")}}},
		{name: "plaintext data", typ: tSecret, want: []string{"data.tls.key"},
			props: map[string]any{"data": map[string]any{"tls.key": "LS0t"}}},
		{name: "unknown but secret passes", typ: tSecret, props: map[string]any{"data": map[string]any{"p": Secret(Unknown())}}},
		{name: "unknown plaintext is listed", typ: tSecret, unknowns: 1, props: map[string]any{"data": map[string]any{"p": Unknown()}}},
		{name: "unknown map", typ: tSecret, unknowns: 1, props: map[string]any{"data": Unknown()}},
		{name: "other kinds ignored", typ: "kubernetes:core/v1:Service", props: map[string]any{"data": map[string]any{"p": "x"}}},
	})
}

func TestEnvCredentials(t *testing.T) {
	secretRef := map[string]any{"secretKeyRef": map[string]any{"name": "db", "key": "password"}}
	runRuleTable(t, "env-credentials-from-secret", []ruleCase{
		podCase("secretKeyRef", tPod, nil, 0, kv{"containers.0.env", []any{
			map[string]any{"name": "DB_PASSWORD", "valueFrom": secretRef},
			map[string]any{"name": "LOG_LEVEL", "value": "info"},
			map[string]any{"name": "POSTGRES_PASSWORD_FILE", "value": "/run/secrets/pw"}}}),
		podCase("literal password", tDeployment, []string{`container "app", field spec.template.spec.containers[0].env[0]: env var DB_PASSWORD looks like a credential`}, 0,
			kv{"containers.0.env", []any{map[string]any{"name": "DB_PASSWORD", "value": "hunter2"}}}),
		podCase("pulumi secret value still lands in the pod spec", tPod, []string{"API_KEY"}, 0,
			kv{"containers.0.env", []any{map[string]any{"name": "API_KEY", "value": Secret("k")}}}),
		podCase("configMapKeyRef is not a secret", tCronJob, []string{`initContainer "migrate"`}, 0,
			kv{"initContainers.0.env", []any{map[string]any{"name": "GITHUB_TOKEN", "valueFrom": map[string]any{
				"configMapKeyRef": map[string]any{"name": "c", "key": "k"}}}}}),
		podCase("ephemeral container", tPod, []string{`ephemeralContainer "debug"`}, 0,
			kv{"ephemeralContainers", []any{map[string]any{"name": "debug", "env": []any{map[string]any{"name": "private_key", "value": "x"}}}}}),
		podCase("exporter password as a literal", tDeployment, []string{`env var DATA_SOURCE_PASS looks like a credential`}, 0,
			kv{"containers.0.env", []any{map[string]any{"name": "DATA_SOURCE_PASS", "value": "hunter2"}}}),
		podCase("env unknown", tPod, nil, 1, kv{"containers.0.env", Unknown()}),
		podCase("valueFrom unknown", tPod, nil, 1, kv{"containers.0.env", []any{map[string]any{"name": "SECRET", "valueFrom": Unknown()}}}),
	})
	for name, want := range map[string]bool{"PASSWORD": true, "PGPASSWD": true, "API_KEY": true, "apiKey": true, "CLIENT_SECRET": true,
		"AWS_ACCESS_KEY_ID": true, "TOKEN": true, "PASSWORD_FILE": false, "LOG_LEVEL": false, "PWD": false, "HOME": false,
		"DATA_SOURCE_PASS": true, "DB_PASS": true, "PGPASS": true, "MYSQL_PWD": true, "SSH_KEY": true, "ENCRYPTION_KEY": true,
		"JWT_SIGNING_KEY": true, "TLS_KEY": true, "OLDPWD": false, "PGPASSFILE": false, "TLS_KEY_FILE": false, "SSH_KEY_PATH": false,
		"PASSTHROUGH": false, "BYPASS_CACHE": false, "KEYBOARD_LAYOUT": false, "CACHE_KEY_PREFIX": false, "SORT_KEY": false} {
		if got := LooksLikeCredential(name); got != want {
			t.Errorf("LooksLikeCredential(%q) = %v", name, got)
		}
	}
}

func TestConfigMap(t *testing.T) {
	const cm = "kubernetes:core/v1:ConfigMap"
	pem := "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----"
	runRuleTable(t, "configmap-no-credentials", []ruleCase{
		{name: "plain config", typ: cm, props: map[string]any{"data": map[string]any{"LOG_LEVEL": "info", "ca.crt": "-----BEGIN CERTIFICATE-----"}}},
		{name: "credential key", typ: cm, want: []string{"ConfigMap key DB_PASSWORD looks like a credential"},
			props: map[string]any{"data": map[string]any{"DB_PASSWORD": "x"}}},
		{name: "credential key even as secret", typ: cm, want: []string{"api_token"},
			props: map[string]any{"data": map[string]any{"api_token": Secret("x")}}},
		{name: "pem private key", typ: cm, want: []string{"ConfigMap key id holds a PEM private key"},
			props: map[string]any{"data": map[string]any{"id": pem}}},
		{name: "binaryData key", typ: cm, want: []string{"binaryData.secret.bin"},
			props: map[string]any{"binaryData": map[string]any{"secret.bin": "AA=="}}},
		{name: "unknown value", typ: cm, unknowns: 1, props: map[string]any{"data": map[string]any{"config.yaml": Unknown()}}},
		{name: "unknown data", typ: cm, unknowns: 1, props: map[string]any{"data": Unknown()}},
	})
}

func TestProxmoxCredentials(t *testing.T) {
	const p = "pulumi:providers:proxmoxve"
	runRuleTable(t, "proxmox-credentials-secret", []ruleCase{
		{name: "secret token", typ: p, props: map[string]any{"endpoint": "https://pve:8006", "apiToken": Secret("root@pam!t=abc")}},
		{name: "secret password and ssh key", typ: p, props: map[string]any{"password": Secret("p"), "ssh": map[string]any{"privateKey": Secret("k")}}},
		{name: "whole ssh block secret", typ: p, props: map[string]any{"ssh": Secret(map[string]any{"password": "p"})}},
		{name: "plaintext token", typ: p, want: []string{`provider proxmoxve "app", field apiToken: the Proxmox provider's apiToken is a plaintext value`},
			props: map[string]any{"apiToken": "root@pam!t=abc"}},
		{name: "plaintext password and ssh password", typ: p, want: []string{"field password", "field ssh.password"},
			props: map[string]any{"password": "p", "ssh": map[string]any{"password": "p"}}},
		{name: "unknown secret", typ: p, props: map[string]any{"apiToken": Secret(Unknown())}},
		{name: "unknown plaintext", typ: p, unknowns: 1, props: map[string]any{"apiToken": Unknown()}},
	})
}

func TestRemoteCommandCredentials(t *testing.T) {
	const c = "command:remote:Command"
	runRuleTable(t, "remote-command-credentials-secret", []ruleCase{
		{name: "connection wrapped as secret (what the SDK does)", typ: c, props: map[string]any{
			"connection": Secret(map[string]any{"host": "10.0.0.2", "privateKey": "k"})}},
		{name: "secret key", typ: c, props: map[string]any{"connection": map[string]any{"host": "h", "privateKey": Secret("k")}}},
		{name: "plaintext key", typ: c, want: []string{`Command "app", field connection.privateKey: the SSH connection's privateKey is a plaintext value`},
			props: map[string]any{"connection": map[string]any{"host": "h", "privateKey": "-----BEGIN"}}},
		{name: "plaintext proxy password", typ: "command:remote:CopyToRemote", want: []string{"connection.proxy.password"},
			props: map[string]any{"connection": map[string]any{"host": "h", "proxy": map[string]any{"password": "p"}}}},
		{name: "agent only", typ: c, props: map[string]any{"connection": map[string]any{"host": "h", "agentSocketPath": "/run/a"}}},
		{name: "unknown plaintext", typ: c, unknowns: 1, props: map[string]any{"connection": map[string]any{"privateKey": Unknown()}}},
		{name: "unknown connection", typ: c, unknowns: 1, props: map[string]any{"connection": Unknown()}},
	})
}

func TestCloudInit(t *testing.T) {
	const file = "proxmoxve:Storage/file:File"
	const vm = "proxmoxve:VM/virtualMachine:VirtualMachine"
	good := "#cloud-config\nusers:\n  - name: ops\n    lock_passwd: true\n    ssh_authorized_keys: [ssh-ed25519 AAAA]\n"
	cases := []ruleCase{
		{name: "keys only", typ: file, props: map[string]any{"sourceRaw": map[string]any{"data": good, "fileName": "u.yaml"}}},
		{name: "keys only, secret", typ: file, props: map[string]any{"sourceRaw": map[string]any{"data": Secret(good)}}},
		{name: "vm with keys", typ: vm, props: map[string]any{"initialization": map[string]any{"userAccount": map[string]any{"keys": []any{"ssh-ed25519 A"}}}}},
		{name: "vm password", typ: vm, want: []string{"initialization.userAccount.password: cloud-init sets a password"},
			props: map[string]any{"initialization": map[string]any{"userAccount": map[string]any{"password": Secret("p")}}}},
		{name: "vm password unknown", typ: vm, unknowns: 1,
			props: map[string]any{"initialization": map[string]any{"userAccount": map[string]any{"password": Unknown()}}}},
		{name: "unknown user data", typ: file, unknowns: 1, props: map[string]any{"sourceRaw": map[string]any{"data": Unknown()}}},
		{name: "not proxmox", typ: "kubernetes:core/v1:ConfigMap", props: map[string]any{"data": map[string]any{"u": "#cloud-config\nchpasswd: {}"}}},
	}
	for _, bad := range []string{
		"#cloud-config\nusers:\n  - name: ops\n    passwd: $6$abc\n",
		"#cloud-config\nusers:\n  - name: ops\n    plain_text_passwd: hunter2\n",
		"#cloud-config\nchpasswd:\n  list: |\n    ops:hunter2\n",
		"#cloud-config\nusers:\n  - name: ops\n    lock_passwd: false\n",
		"#cloud-config\npassword: hunter2\n",
	} {
		cases = append(cases, ruleCase{name: strings.Fields(bad)[len(strings.Fields(bad))-2], typ: file,
			want:  []string{"sourceRaw.data: cloud-init user data sets a password"},
			props: map[string]any{"sourceRaw": map[string]any{"data": Secret(bad)}}})
	}
	runRuleTable(t, "cloud-init-no-password", cases)
	// The message must never echo the user data: it may hold the password.
	f := ruleNamed(t, "cloud-init-no-password").Check(res(file, map[string]any{"sourceRaw": map[string]any{"data": "#cloud-config\npassword: hunter2\n"}}), Settings{})
	if len(f) != 1 || strings.Contains(f[0].Message(), "hunter2") {
		t.Errorf("message leaks the password: %v", f)
	}
}

func TestProxmoxInsecureTLS(t *testing.T) {
	const p = "pulumi:providers:proxmoxve"
	runRuleTable(t, "proxmox-insecure-tls", []ruleCase{
		{name: "verified", typ: p, props: map[string]any{"endpoint": "https://pve:8006"}},
		{name: "insecure false", typ: p, props: map[string]any{"insecure": false}},
		{name: "insecure true", typ: p, want: []string{"field insecure: insecure is true"}, props: map[string]any{"insecure": true}},
		{name: "insecure from stack config (string)", typ: p, want: []string{"insecure is true"}, props: map[string]any{"insecure": "true"}},
		{name: "unknown", typ: p, unknowns: 1, props: map[string]any{"insecure": Unknown()}},
	})
	if ruleNamed(t, "proxmox-insecure-tls").Level != Advisory {
		t.Error("insecure TLS must be advisory")
	}
}
