package hardening

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

func rotKey(b byte) string {
	return base64.StdEncoding.EncodeToString([]byte(strings.Repeat(string(rune(b)), 32)))
}

// The order of the documented rotation: read with both, write with the new, rewrite, drop the old.
func TestRotationStepsFollowTheDocumentedOrder(t *testing.T) {
	steps, err := RotationSteps(EncryptionKeyName, rotKey('a'), "infralab-2", rotKey('b'))
	require.NoError(t, err)
	var names []string
	var keys [][]string
	for _, s := range steps {
		names = append(names, s.Name)
		var cfg struct {
			Resources []struct {
				Providers []map[string]struct {
					Keys []struct{ Name string } `json:"keys"`
				} `json:"providers"`
			} `json:"resources"`
		}
		require.NoError(t, yaml.Unmarshal(s.Config, &cfg))
		var k []string
		for _, key := range cfg.Resources[0].Providers[0]["secretbox"].Keys {
			k = append(k, key.Name)
		}
		keys = append(keys, k)
		_, identity := cfg.Resources[0].Providers[1]["identity"]
		assert.True(t, identity, "%s: identity stays last, for Secrets written before encryption", s.Name)
	}
	assert.Equal(t, []string{"add-new-key", "new-key-primary", "rewrite-secrets", "remove-old-key"}, names)
	assert.Equal(t, [][]string{{"infralab-1", "infralab-2"}, {"infralab-2", "infralab-1"}, {"infralab-2", "infralab-1"}, {"infralab-2"}}, keys)
	assert.True(t, steps[2].RewriteSecrets)
	assert.False(t, steps[0].RewriteSecrets || steps[1].RewriteSecrets || steps[3].RewriteSecrets)
}

func TestRotationStepsRefuseBadInputWithoutTheKeys(t *testing.T) {
	for _, c := range []struct{ oldName, oldKey, newName, newKey, want string }{
		{"infralab-1", rotKey('a'), "infralab-1", rotKey('b'), "a name of its own"},
		{"infralab-1", rotKey('a'), "infralab-2", rotKey('a'), "equals the old one"},
		{"infralab-1", rotKey('a'), "Bad_Name", rotKey('b'), "lower-case"},
		{"infralab-1", rotKey('a'), "infralab-2", "c2hvcnQ=", "32"},
	} {
		_, err := RotationSteps(c.oldName, c.oldKey, c.newName, c.newKey)
		require.Error(t, err)
		assert.Contains(t, err.Error(), c.want)
		assert.NotContains(t, err.Error(), rotKey('a'))
		assert.NotContains(t, err.Error(), rotKey('b'))
	}
}
