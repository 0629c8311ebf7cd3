package hardening

import (
	"fmt"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"
)

// Encryption-at-rest key rotation, in the order of the Kubernetes documentation ("Rotate a
// decryption key", kubernetes.io/docs/tasks/administer-cluster/encrypt-data/): every API
// server must be able to read with the new key before any writes with it, and every Secret must
// be rewritten with the new key before the old one goes. Adding the new key second and then
// rewriting (before it is primary) would re-encrypt everything with the old key again, so the
// rewrite comes after the new key is primary. Each step is one EncryptionConfiguration, applied
// by writing the file and restarting the API server; the rewrite step keeps the previous one.
// Each step is idempotent: writing the same file again changes nothing, and rewriting a Secret
// already stored with the primary key stores it with that key again.

// RotationStep is one step of a rotation.
type RotationStep struct {
	Name string
	// Config is the EncryptionConfiguration the API server runs with during and after the step.
	Config []byte
	// RewriteSecrets: the step is `kubectl get secrets -A -o json | kubectl replace -f -`
	// (RewriteSecretsCommand), which stores every Secret again with the primary key.
	RewriteSecrets bool
}

// RewriteSecretsCommand rewrites every Secret through the API server, so each is stored with the
// current primary key (the command the Kubernetes documentation gives).
const RewriteSecretsCommand = "kubectl get secrets --all-namespaces -o json | kubectl replace -f -"

var keyNameRe = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$`)

// EncryptedPrefixFor is how a Secret encrypted with the key named name starts in etcd.
func EncryptedPrefixFor(name string) string { return "k8s:enc:secretbox:v1:" + name + ":" }

// RotationSteps renders the four steps from the key in use (oldName, oldKey) to a new one. The
// names appear in etcd (EncryptedPrefixFor), so they must differ; errors never hold a key.
func RotationSteps(oldName, oldKey, newName, newKey string) ([]RotationStep, error) {
	for _, n := range []string{oldName, newName} {
		if !keyNameRe.MatchString(n) {
			return nil, fmt.Errorf("encryption key name %q: want lower-case letters, digits and '-', at most 32", n)
		}
	}
	if oldName == newName {
		return nil, fmt.Errorf("the new encryption key needs a name of its own, not %q (the name tells which key a Secret is stored with)", oldName)
	}
	for _, k := range []string{oldKey, newKey} {
		if err := ValidateEncryptionKey(k); err != nil {
			return nil, err
		}
	}
	if strings.TrimSpace(oldKey) == strings.TrimSpace(newKey) {
		return nil, fmt.Errorf("the new encryption key equals the old one: generate a new one with `head -c 32 /dev/urandom | base64`")
	}
	old := key{Name: oldName, Secret: strings.TrimSpace(oldKey)}
	neu := key{Name: newName, Secret: strings.TrimSpace(newKey)}
	steps := []struct {
		name    string
		keys    []key
		rewrite bool
	}{
		{"add-new-key", []key{old, neu}, false},
		{"new-key-primary", []key{neu, old}, false},
		{"rewrite-secrets", []key{neu, old}, true},
		{"remove-old-key", []key{neu}, false},
	}
	var out []RotationStep
	for _, s := range steps {
		cfg, err := yaml.Marshal(encryptionConfiguration{
			APIVersion: "apiserver.config.k8s.io/v1",
			Kind:       "EncryptionConfiguration",
			Resources: []encryptionResource{{
				Resources: []string{"secrets"},
				Providers: []encryptionProvider{{Secretbox: &keysConfig{Keys: s.keys}}, {Identity: &struct{}{}}},
			}},
		})
		if err != nil {
			return nil, err
		}
		out = append(out, RotationStep{Name: s.name, Config: cfg, RewriteSecrets: s.rewrite})
	}
	return out, nil
}
