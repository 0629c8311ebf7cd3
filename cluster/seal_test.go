package cluster

import (
	"crypto/rand"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/infralab/infralab/cluster/sealed"
	"github.com/infralab/infralab/internal/testenv"
)

// seal.sh (openssl enc + an HMAC from sha256sum) and package sealed are two sides of one format:
// what the shell seals, Go opens. The keys include the bytes 0x36 and 0x5c, which the HMAC pads
// turn into NUL bytes, and values of every length around the AES block size.
func TestSealShOpensInGo(t *testing.T) {
	testenv.Tool(t, "openssl")
	lib, err := loadScript(Scripts(), sealLib)
	require.NoError(t, err)
	keyLines := []string{
		sealed.Derive(fakeEncryptionKey).Stdin(),
		"infralab-seal-v1 " + strings.Repeat("36", 32) + " " + strings.Repeat("5c36", 16) + "\n",
		"infralab-seal-v1 " + strings.Repeat("00", 32) + " " + strings.Repeat("ff00", 16) + "\n",
	}
	values := []string{"", "x", strings.Repeat("k", 15), strings.Repeat("k", 16), strings.Repeat("k", 17),
		"apiVersion: v1\nclient-key-data: " + fakeClientKey + "\n" + strings.Repeat("0123456789", 700)}
	for _, line := range keyLines {
		keys, err := sealed.ParseStdin(line)
		require.NoError(t, err)
		for _, v := range values {
			cmd := exec.Command("bash", "-c", lib+"\nread_seal_keys <<<\"${KEYS}\"\nprintf %s \"${VALUE}\" | seal\n")
			cmd.Env = []string{"PATH=/usr/bin:/bin", "PHASE=test", "KEYS=" + line, "VALUE=" + v}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			require.NoError(t, err, stderr.String())
			require.Equal(t, 1, strings.Count(string(out), "\n"), "one line")
			assert.NotContains(t, string(out), fakeClientKey)
			got, err := sealed.Open(keys, string(out))
			require.NoError(t, err, "value of %d bytes", len(v))
			assert.Equal(t, v, string(got))

			// The Go side seals the same way (the mock engine uses it).
			again, err := sealed.Seal(keys, []byte(v), rand.Reader)
			require.NoError(t, err)
			got, err = sealed.Open(keys, again)
			require.NoError(t, err)
			assert.Equal(t, v, string(got))
		}
	}
}

// Without keys on stdin, the secret phases stop before touching anything.
func TestSecretPhasesRefuseToRunWithoutKeys(t *testing.T) {
	for _, s := range []string{"fetch-kubeconfig.sh", "join-token.sh"} {
		script, err := loadScript(Scripts(), s, sealLib)
		require.NoError(t, err)
		cmd := exec.Command("bash", "-c", script, s)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "PHASE=test", "STATE_DIR=/nonexistent", "TOKEN_TTL=1h", "TOKEN_DESCRIPTION=x"}
		cmd.Stdin = strings.NewReader("")
		out, err := cmd.CombinedOutput()
		require.Error(t, err, s)
		assert.Contains(t, string(out), "no sealing keys on stdin", s)
	}
}
