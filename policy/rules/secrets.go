package rules

import (
	"fmt"
	"regexp"
	"strings"
)

// credentialName matches names that look like they hold a credential. The short forms (PASS,
// PWD, *_KEY) count only as whole words, so PASSTHROUGH, PWD and KEYBOARD_LAYOUT do not:
// postgres_exporter's own DATA_SOURCE_PASS and MySQL's MYSQL_PWD do.
var credentialName = regexp.MustCompile(`(?i)(PASSWORD|PASSWD|PASSPHRASE|TOKEN|SECRET|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIALS?|AUTH_?KEY|CLIENT_?SECRET` +
	`|(^|_)(PG)?PASS(_|$)|_PWD$|(^|_)(SSH|ENCRYPTION|SIGNING|TLS|JWT|HMAC|MASTER|SESSION)_?KEY(_|$))`)

// notCredential marks names that point at a credential instead of holding one (PGPASSFILE,
// TLS_KEY_FILE, SSH_KEY_PATH).
var notCredential = regexp.MustCompile(`(?i)(_?FILE|_PATH|_DIR|_REF|_NAME|_URL_FILE)$`)

// LooksLikeCredential reports whether a key or variable name looks like it holds a credential.
func LooksLikeCredential(name string) bool {
	return credentialName.MatchString(name) && !notCredential.MatchString(name)
}

var pemPrivateKey = regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----`)

func checkSecretData(r Resource) []Finding {
	if r.Type != "kubernetes:core/v1:Secret" {
		return nil
	}
	f := newFinder("secret-data-is-secret", r)
	top := root(r.Props, "")
	for _, key := range []string{"data", "stringData"} {
		n := top.get(key)
		if n.isSecret() {
			continue // the whole map is a Pulumi secret
		}
		es, ok := n.entries()
		if !ok {
			f.unknown("", n.path)
			continue
		}
		for _, e := range es {
			switch {
			case e.isSecret():
			case e.unknown:
				// An unknown value that is not marked secret will be plaintext once known.
				f.unknown("", e.path)
			default:
				f.bad("", e.path, fmt.Sprintf("%s.%s is a plaintext value, so it is stored unencrypted in the Pulumi state", key, e.key),
					"wrap the value with pulumi.ToSecret(...) or read it from secret config (config.TrySecret / pulumi config set --secret)")
			}
		}
	}
	return f.out
}

func checkEnvCredentials(r Resource) []Finding {
	return podRule("env-credentials-from-secret", func(f *finder, p pod) {
		eachContainer(f, p, func(c container) {
			env := c.get("env")
			items, ok := env.items()
			if !ok {
				f.unknown(c.label, env.path)
				return
			}
			for _, e := range items {
				name, set, known := readString(f, c.label, e.get("name"))
				if !known || !set || !LooksLikeCredential(name) {
					continue
				}
				ref := e.at("valueFrom", "secretKeyRef")
				if ref.unknown {
					f.unknown(c.label, ref.path)
					continue
				}
				if ref.missing {
					f.bad(c.label, e.path, fmt.Sprintf("env var %s looks like a credential but does not come from a Secret", name),
						"set valueFrom.secretKeyRef to a key of a Kubernetes Secret instead of value")
				}
			}
		})
	})(r, Settings{})
}

func checkConfigMap(r Resource) []Finding {
	if r.Type != "kubernetes:core/v1:ConfigMap" {
		return nil
	}
	f := newFinder("configmap-no-credentials", r)
	top := root(r.Props, "")
	for _, key := range []string{"data", "binaryData"} {
		n := top.get(key)
		es, ok := n.entries()
		if !ok {
			f.unknown("", n.path)
			continue
		}
		for _, e := range es {
			if LooksLikeCredential(e.key) {
				f.bad("", e.path, fmt.Sprintf("ConfigMap key %s looks like a credential", e.key),
					"move it to a Kubernetes Secret whose value is a Pulumi secret")
				continue
			}
			if e.unknown {
				f.unknown("", e.path)
				continue
			}
			if s, ok := e.str(); ok && pemPrivateKey.MatchString(s) {
				f.bad("", e.path, fmt.Sprintf("ConfigMap key %s holds a PEM private key", e.key),
					"move the key to a Kubernetes Secret whose value is a Pulumi secret")
			}
		}
	}
	return f.out
}

// requireSecret reports a field that is set to a plaintext value.
func requireSecret(f *finder, n node, what, fix string) {
	switch {
	case n.missing, n.isSecret():
	case n.unknown:
		f.unknown("", n.path)
	default:
		if s, ok := n.str(); ok && s == "" {
			return
		}
		f.bad("", n.path, what+" is a plaintext value, so it is stored unencrypted in the Pulumi state", fix)
	}
}

func checkProxmoxCredentials(r Resource) []Finding {
	if r.Type != "pulumi:providers:proxmoxve" {
		return nil
	}
	f := newFinder("proxmox-credentials-secret", r)
	top := root(r.Props, "")
	fix := "set it from secret config (pulumi config set --secret proxmoxve:%s ...) or wrap it with pulumi.ToSecret"
	for _, key := range []string{"apiToken", "password", "authTicket", "csrfPreventionToken", "otp"} {
		requireSecret(f, top.get(key), "the Proxmox provider's "+key, fmt.Sprintf(fix, key))
	}
	for _, key := range []string{"password", "privateKey", "socks5Password"} {
		requireSecret(f, top.at("ssh", key), "the Proxmox provider's ssh."+key, "pass it as a Pulumi secret (pulumi.ToSecret or secret config)")
	}
	return f.out
}

var remoteCommandTypes = map[string]bool{
	"command:remote:Command": true, "command:remote:CopyToRemote": true, "command:remote:CopyFile": true,
}

func checkRemoteCommandCredentials(r Resource) []Finding {
	if !remoteCommandTypes[r.Type] {
		return nil
	}
	f := newFinder("remote-command-credentials-secret", r)
	conn := root(r.Props, "").get("connection")
	for _, c := range []node{conn, conn.get("proxy")} {
		if c.unknown && !c.isSecret() {
			f.unknown("", c.path)
			break
		}
		for _, key := range []string{"privateKey", "password", "privateKeyPassword"} {
			requireSecret(f, c.get(key), "the SSH connection's "+key,
				"pass it as a Pulumi secret, e.g. config.TrySecret(ctx, \"sshPrivateKey\") or pulumi.ToSecret(...)")
		}
	}
	return f.out
}

// cloudInitPassword matches cloud-config that sets or unlocks a password.
var cloudInitPassword = regexp.MustCompile(`(?m)(^|\s)(passwd|plain_text_passwd|hashed_passwd|password)\s*:|chpasswd|lock_passwd\s*:\s*(false|False|no)`)

func checkCloudInit(r Resource) []Finding {
	if !strings.HasPrefix(r.Type, "proxmoxve:") {
		return nil
	}
	f := newFinder("cloud-init-no-password", r)
	top := root(r.Props, "")
	pw := top.at("initialization", "userAccount", "password")
	if pw.unknown {
		f.unknown("", pw.path)
	} else if s, ok := pw.str(); ok && s != "" {
		f.bad("", pw.path, "cloud-init sets a password for the VM's user",
			"remove initialization.userAccount.password and log in with SSH keys (initialization.userAccount.keys)")
	}
	walkStrings(top, func(n node, s string) {
		if !strings.Contains(s, "#cloud-config") && !strings.Contains(n.path, "sourceRaw") {
			return
		}
		if m := cloudInitPassword.FindString(s); m != "" {
			// Never echo the text: it may be a secret.
			f.bad("", n.path, fmt.Sprintf("cloud-init user data sets a password (%q)", strings.TrimSpace(m)),
				"remove password settings and chpasswd; use ssh_authorized_keys and lock_passwd: true")
		}
	}, func(n node) {
		if strings.Contains(n.path, "sourceRaw") {
			f.unknown("", n.path)
		}
	})
	return f.out
}

func checkProxmoxTLS(r Resource) []Finding {
	if r.Type != "pulumi:providers:proxmoxve" {
		return nil
	}
	f := newFinder("proxmox-insecure-tls", r)
	n := root(r.Props, "").get("insecure")
	if v, set, known := readBool(f, "", n); known && set && v {
		f.bad("", n.path, "insecure is true: the provider skips TLS verification of the Proxmox API",
			"give Proxmox a trusted certificate and remove insecure, or add an exception with a reason in the policy pack config")
	}
	// Provider inputs can arrive as strings ("true") from stack config.
	if s, ok := n.str(); ok && s == "true" {
		f.bad("", n.path, "insecure is true: the provider skips TLS verification of the Proxmox API",
			"give Proxmox a trusted certificate and remove insecure, or add an exception with a reason in the policy pack config")
	}
	return f.out
}
