package stacks

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// mapSource is config as the Pulumi engine hands it to a program: structured values as JSON
// strings, secrets decrypted and flagged.
type mapSource struct {
	values  map[string]string
	secrets map[string]bool
}

func (m mapSource) Get(key string) (string, bool) { v, ok := m.values[key]; return v, ok }
func (m mapSource) IsSecret(key string) bool      { return m.secrets[key] }

// readStackFile loads stacks/Pulumi.<stack>.yaml the way the CLI does.
func readStackFile(t *testing.T, stack string) mapSource {
	t.Helper()
	values, err := ReadStackFile("Pulumi." + stack + ".yaml")
	if err != nil {
		t.Fatal(err)
	}
	return mapSource{values: values, secrets: map[string]bool{}}
}

// testKeys is an SSH key pair made for one test run; no key material lives in the repo.
type testKeys struct{ public, private string }

func newTestKeys(t *testing.T) testKeys {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return testKeys{
		public:  strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))),
		private: string(pem.EncodeToMemory(block)),
	}
}

// setSecret stores a value as `pulumi config set --secret` would.
func (m mapSource) setSecret(key, value string) {
	m.values[key] = value
	m.secrets[key] = true
}

func (m mapSource) withAllSecrets(t *testing.T, keys testKeys) mapSource {
	t.Helper()
	m.setSecret(KeyProxmoxAPIToken, "infralab@pve!pulumi=0b7d5f3e-9f3c-4a55-8a3e-2f4f8d4c1a90")
	m.setSecret(KeySSHPrivateKey, keys.private)
	m.setSecret(KeyProxmoxSSHPrivateKey, keys.private)
	m.setSecret(KeyProxmoxJumpPrivateKey, newTestKeys(t).private) // a key of its own
	m.setSecret(KeyEncryptionKey, base64.StdEncoding.EncodeToString(make([]byte, 32)))
	for _, k := range []string{KeyPostgresPassword, KeyAPIDBPassword, KeyExporterDBPassword, KeyGrafanaAdminPassword} {
		m.setSecret(k, fmt.Sprintf("test-%s", k))
	}
	return m
}
