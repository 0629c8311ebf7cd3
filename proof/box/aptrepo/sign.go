package aptrepo

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Key is the box's repository signing key: an ed25519 key generated once per box in a GnuPG home
// under the box state dir (never in git, never in the repository root), without a passphrase:
// it signs only the box's own repository, and lives as long as the box.
type Key struct {
	Home        string // GnuPG home, 0700
	Fingerprint string // 40 upper-case hex digits, what the stack key pins
}

// EnsureKey loads the key in stateDir/gnupg, generating it on first use.
func EnsureKey(ctx context.Context, stateDir string) (*Key, error) {
	home := filepath.Join(stateDir, "gnupg")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(home, 0o700); err != nil {
		return nil, err
	}
	k := &Key{Home: home}
	fpr, err := k.fingerprint(ctx)
	if err != nil {
		return nil, err
	}
	if fpr == "" {
		if _, err := k.gpg(ctx, nil, "--passphrase", "", "--quick-generate-key",
			"infralab box apt repository <apt@box.infralab.invalid>", "ed25519", "sign", "never"); err != nil {
			return nil, fmt.Errorf("generate the box's apt signing key: %w", err)
		}
		if fpr, err = k.fingerprint(ctx); err != nil || fpr == "" {
			return nil, fmt.Errorf("the generated key has no fingerprint (%v)", err)
		}
	}
	k.Fingerprint = fpr
	return k, nil
}

func (k *Key) fingerprint(ctx context.Context) (string, error) {
	out, err := k.gpg(ctx, nil, "--with-colons", "--list-secret-keys")
	if err != nil {
		// An empty home has no keyring yet: gpg says so with exit status 2.
		if strings.Contains(err.Error(), "No secret key") || len(out) == 0 {
			return "", nil
		}
		return "", err
	}
	want := false
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Split(l, ":")
		switch {
		case f[0] == "sec":
			want = true
		case f[0] == "fpr" && want && len(f) > 9:
			return f[9], nil
		}
	}
	return "", nil
}

// PublicKey is the armoured public key (what Release.key and /linux/debian/gpg serve).
func (k *Key) PublicKey(ctx context.Context) ([]byte, error) {
	return k.gpg(ctx, nil, "--armor", "--export", k.Fingerprint)
}

// Sign writes InRelease (clear-signed) and Release.gpg (detached) next to release.
func (k *Key) Sign(ctx context.Context, release string) error {
	dir := filepath.Dir(release)
	if _, err := k.gpg(ctx, nil, "--local-user", k.Fingerprint, "--digest-algo", "SHA512",
		"--clearsign", "--output", filepath.Join(dir, "InRelease"), release); err != nil {
		return err
	}
	_, err := k.gpg(ctx, nil, "--local-user", k.Fingerprint, "--digest-algo", "SHA512",
		"--armor", "--detach-sign", "--output", filepath.Join(dir, "Release.gpg"), release)
	return err
}

// Close stops the gpg-agent the key's home started.
func (k *Key) Close() {
	_ = exec.Command("gpgconf", "--homedir", k.Home, "--kill", "all").Run()
}

func (k *Key) gpg(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "gpg", append([]string{"--homedir", k.Home, "--batch", "--yes",
		"--pinentry-mode", "loopback", "--no-tty"}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("gpg %s: %w: %s", args[len(args)-1], err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
