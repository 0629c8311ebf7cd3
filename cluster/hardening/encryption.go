package hardening

import (
	"encoding/base64"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"
)

// EncryptionKeyName names the key inside the provider; etcd values are prefixed with
// "k8s:enc:secretbox:v1:" + EncryptionKeyName + ":".
const EncryptionKeyName = "infralab-1"

// EncryptedPrefix is how an encrypted Secret's raw etcd value starts.
const EncryptedPrefix = "k8s:enc:secretbox:v1:" + EncryptionKeyName + ":"

type encryptionConfiguration struct {
	APIVersion string               `json:"apiVersion"`
	Kind       string               `json:"kind"`
	Resources  []encryptionResource `json:"resources"`
}

type encryptionResource struct {
	Resources []string             `json:"resources"`
	Providers []encryptionProvider `json:"providers"`
}

// Exactly one field is set per provider entry, as the API requires.
type encryptionProvider struct {
	Secretbox *keysConfig `json:"secretbox,omitempty"`
	Identity  *struct{}   `json:"identity,omitempty"`
}

type keysConfig struct {
	Keys []key `json:"keys"`
}

type key struct {
	Name   string `json:"name"`
	Secret string `json:"secret"`
}

// EncryptionConfig renders an EncryptionConfiguration that encrypts Secrets with secretbox
// (XSalsa20-Poly1305; the upstream docs rate it stronger than aescbc and, unlike aesgcm, it
// needs no rotation every 200k writes). identity comes second so Secrets written before
// encryption was turned on can still be read. keyBase64 must be 32 random bytes, base64.
func EncryptionConfig(keyBase64 string) ([]byte, error) {
	if err := ValidateEncryptionKey(keyBase64); err != nil {
		return nil, err
	}
	cfg := encryptionConfiguration{
		APIVersion: "apiserver.config.k8s.io/v1",
		Kind:       "EncryptionConfiguration",
		Resources: []encryptionResource{{
			Resources: []string{"secrets"},
			Providers: []encryptionProvider{
				{Secretbox: &keysConfig{Keys: []key{{Name: EncryptionKeyName, Secret: strings.TrimSpace(keyBase64)}}}},
				{Identity: &struct{}{}},
			},
		}},
	}
	return yaml.Marshal(cfg)
}

// ValidateEncryptionKey checks a key before any file is rendered. Its error never contains the key.
func ValidateEncryptionKey(keyBase64 string) error {
	k := strings.TrimSpace(keyBase64)
	if k == "" {
		return fmt.Errorf("encryption key is empty: generate one with `head -c 32 /dev/urandom | base64` and store it as a Pulumi secret")
	}
	raw, err := base64.StdEncoding.DecodeString(k)
	if err != nil {
		return fmt.Errorf("encryption key is not standard base64: generate one with `head -c 32 /dev/urandom | base64`")
	}
	if len(raw) != 32 {
		return fmt.Errorf("encryption key decodes to %d bytes, secretbox needs exactly 32: generate one with `head -c 32 /dev/urandom | base64`", len(raw))
	}
	return nil
}
