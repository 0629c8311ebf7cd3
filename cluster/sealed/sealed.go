// Package sealed is the envelope in which the cluster layer's secret phases (fetch-kubeconfig,
// join-token) hand their value back over SSH.
//
// pulumi-command puts a failed command's whole stdout and stderr into its error text, whatever
// `logging` says (provider/pkg/provider/remote/commandOutputs.go in pulumi-command v1.1.0:
// `fmt.Errorf("%w: running %q:\n%s", err, cmd, stdouterrbuf.String())`), and that error reaches
// the terminal and the CI log. A phase that printed the admin kubeconfig or a join token in the
// clear would leak it on any failure after the print, a dropped SSH session included. So the
// node prints only a sealed copy: encrypted and authenticated with keys that travel on the
// command's secret stdin, and opened here, inside an Apply, where the value stays a secret.
//
// The node side (cluster/scripts/seal.sh) uses only openssl and coreutils, and no key ever
// appears in a process's arguments:
//
//	blob = base64(openssl enc -aes-256-ctr -pbkdf2 -iter 10000 -md sha256 -salt -pass env:...)
//	text = "infralab-sealed-v1:" + blob + ":" + hex(HMAC-SHA256(mac key, "infralab-sealed-v1:" + blob))
//
// openssl's output is "Salted__", an 8-byte salt, then the ciphertext; the AES key and the
// initial counter are PBKDF2-HMAC-SHA256(password, salt, 10000 iterations, 32+16 bytes)
// (OpenSSL 3.0 apps/enc.c). The HMAC is computed by the script with sha256sum (RFC 2104).
package sealed

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

const (
	// prefix starts every sealed text and is covered by its MAC.
	prefix = "infralab-sealed-v1:"
	// keysVersion starts the stdin line that carries the keys to the node.
	keysVersion = "infralab-seal-v1"
	// iterations is what the script passes to openssl enc -iter.
	iterations = 10000
	saltMagic  = "Salted__"
)

// Keys are the two keys a phase seals with: the password openssl derives the AES key from, and
// the HMAC key. Both are secrets.
type Keys struct {
	enc, mac string // 64 lower-case hex characters each
}

// Derive computes the keys from a secret the stack already holds (the cluster's Secret
// encryption key), one HMAC-SHA256 per key with its own label, so a sealed text can be opened
// only by whoever holds that secret, and the key itself never travels. The same secret always
// gives the same keys, so the phases' stdin does not change from one run to the next.
func Derive(secret string) Keys {
	label := func(l string) string {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte("infralab/cluster/sealed/" + l + "/v1"))
		return hex.EncodeToString(m.Sum(nil))
	}
	return Keys{enc: label("enc"), mac: label("mac")}
}

// Stdin is the line the scripts' read_seal_keys reads.
func (k Keys) Stdin() string { return keysVersion + " " + k.enc + " " + k.mac + "\n" }

// Secrets are the key strings, for tests that look for leaks.
func (k Keys) Secrets() []string { return []string{k.enc, k.mac} }

// ParseStdin reads a Stdin line back (the mock engine does, to seal as the node would).
func ParseStdin(s string) (Keys, error) {
	f := strings.Fields(s)
	if len(f) != 3 || f[0] != keysVersion || !isHex64(f[1]) || !isHex64(f[2]) {
		return Keys{}, errors.New("sealed: not a key line")
	}
	return Keys{enc: f[1], mac: f[2]}, nil
}

func isHex64(s string) bool {
	if len(s) != 64 || strings.ToLower(s) != s {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// ErrNotSealed is returned for a text that is not a sealed value or fails its MAC. Errors never
// quote the text: if it were a plain secret, the error would leak it.
var ErrNotSealed = errors.New("sealed: not a sealed value, or sealed with other keys")

// Open verifies and decrypts a sealed text (a trailing newline is ignored).
func Open(k Keys, text string) ([]byte, error) {
	text = strings.TrimRight(text, "\n")
	body, tagHex, ok := cut(text)
	if !ok || !strings.HasPrefix(body, prefix) {
		return nil, ErrNotSealed
	}
	tag, err := hex.DecodeString(tagHex)
	if err != nil || !hmac.Equal(tag, mac(k, body)) {
		return nil, ErrNotSealed
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(body, prefix))
	if err != nil || len(raw) < len(saltMagic)+8 || string(raw[:len(saltMagic)]) != saltMagic {
		return nil, ErrNotSealed
	}
	salt, ct := raw[len(saltMagic):len(saltMagic)+8], raw[len(saltMagic)+8:]
	stream, err := ctr(k, salt)
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(ct))
	stream.XORKeyStream(out, ct)
	return out, nil
}

// Seal does what the node does (seal.sh), in Go: for the mock engine, and to check the two
// against each other.
func Seal(k Keys, plaintext []byte, random io.Reader) (string, error) {
	salt := make([]byte, 8)
	if _, err := io.ReadFull(random, salt); err != nil {
		return "", err
	}
	stream, err := ctr(k, salt)
	if err != nil {
		return "", err
	}
	ct := make([]byte, len(plaintext))
	stream.XORKeyStream(ct, plaintext)
	raw := append(append([]byte(saltMagic), salt...), ct...)
	body := prefix + base64.StdEncoding.EncodeToString(raw)
	return body + ":" + hex.EncodeToString(mac(k, body)), nil
}

// cut splits "body:tag" at the last colon (base64 has none).
func cut(s string) (body, tag string, ok bool) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}

func mac(k Keys, body string) []byte {
	key, _ := hex.DecodeString(k.mac)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(body))
	return m.Sum(nil)
}

// ctr is openssl enc's AES-256-CTR stream for this password and salt.
func ctr(k Keys, salt []byte) (cipher.Stream, error) {
	dk, err := pbkdf2.Key(sha256.New, k.enc, salt, iterations, 32+aes.BlockSize)
	if err != nil {
		return nil, fmt.Errorf("sealed: %w", err)
	}
	block, err := aes.NewCipher(dk[:32])
	if err != nil {
		return nil, fmt.Errorf("sealed: %w", err)
	}
	return cipher.NewCTR(block, dk[32:]), nil
}
