package e2e

import (
	"strings"
	"testing"

	"github.com/infralab/infralab/cluster/hardening"
)

// checkSecretsEncrypted reads every Secret of the stack straight from etcd, as someone with a
// copy of etcd's data would, and finds only ciphertext: the EncryptionConfiguration of the lab
// cluster is in force and no generated password is readable.
func checkSecretsEncrypted(t *testing.T, ls *localStack, state []stateResource) {
	n := 0
	for _, r := range kubernetesObjects(state) {
		if r.Type != "kubernetes:core/v1:Secret" {
			continue
		}
		n++
		raw := etcdGet(t, ls.cp, "/registry/secrets/"+r.ID)
		if !strings.HasPrefix(raw, hardening.EncryptedPrefix) {
			t.Errorf("Secret %s is stored as %q..., want the prefix %q", r.ID, truncate(raw, 24), hardening.EncryptedPrefix)
		}
		for key, v := range ls.secrets {
			if strings.Contains(raw, v) {
				t.Errorf("Secret %s holds the value of %s in clear in etcd", r.ID, key)
			}
		}
	}
	if n < 3 {
		t.Fatalf("the state holds %d Secrets, want the api's, Postgres' and the exporter's", n)
	}
	t.Logf("%d Secrets read raw from etcd: all start with %s", n, hardening.EncryptedPrefix)
}
