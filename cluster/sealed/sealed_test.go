package sealed

import (
	"crypto/rand"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const secret = "c2VjcmV0Ym94LWtleS1mb3ItdGVzdHMtb25seS0zMmI="

func TestSealOpensOnlyWithItsKeys(t *testing.T) {
	k := Derive(secret)
	assert.Equal(t, k, Derive(secret), "the same secret gives the same keys (a stable stdin)")
	parsed, err := ParseStdin(k.Stdin())
	require.NoError(t, err)
	assert.Equal(t, k, parsed)

	text, err := Seal(k, []byte("client-key-data: KEY"), rand.Reader)
	require.NoError(t, err)
	assert.NotContains(t, text, "KEY")
	got, err := Open(k, text+"\n")
	require.NoError(t, err)
	assert.Equal(t, "client-key-data: KEY", string(got))

	other := Derive("another secret")
	_, err = Open(other, text)
	assert.ErrorIs(t, err, ErrNotSealed, "other keys")

	// Any changed character fails the MAC, in the body or in the tag.
	for _, i := range []int{len(prefix) + 3, len(text) / 2, len(text) - 1} {
		b := []byte(text)
		b[i] ^= 1
		_, err := Open(k, string(b))
		assert.ErrorIs(t, err, ErrNotSealed, "flipped byte %d", i)
	}
}

// A plain value (what a phase printed before it sealed) is refused, and the error does not quote it.
func TestOpenRefusesPlainTextWithoutEchoingIt(t *testing.T) {
	k := Derive(secret)
	for _, plain := range []string{"", "apiVersion: v1\nclient-key-data: KEYDATA\n", `{"token":"abcdef.0123456789abcdef"}`, prefix + "x:y"} {
		_, err := Open(k, plain)
		require.ErrorIs(t, err, ErrNotSealed)
		assert.NotContains(t, err.Error(), "KEYDATA")
		assert.NotContains(t, err.Error(), "0123456789abcdef")
	}
}

func TestParseStdinRefusesOtherLines(t *testing.T) {
	k := Derive(secret)
	for _, s := range []string{"", "infralab-seal-v1", strings.ToUpper(k.Stdin()), strings.Replace(k.Stdin(), "v1", "v2", 1),
		"infralab-seal-v1 " + strings.Repeat("a", 63) + " " + strings.Repeat("b", 64)} {
		_, err := ParseStdin(s)
		assert.Error(t, err, "%q", s)
	}
}
