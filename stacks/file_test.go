package stacks

import (
	"os"
	"path/filepath"
	"testing"
)

// A user's stack file holds encrypted secrets after `pulumi config set --secret`; reading it
// without the CLI skips them instead of failing, and keeps every plain key.
func TestReadStackFileSkipsEncryptedSecrets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "Pulumi.lab.yaml")
	doc := "encryptionsalt: v1:abc\nconfig:\n  infralab:mode: lab\n  infralab:proxmoxApiToken:\n    secure: v1:Zm9vYmFy\n  infralab:network:\n    bridge: vmbr1\n"
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ReadStackFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got[KeyProxmoxAPIToken]; ok {
		t.Errorf("the encrypted token was passed on as a value: %q", got[KeyProxmoxAPIToken])
	}
	if got["mode"] != "lab" || got["network"] != `{"bridge":"vmbr1"}` {
		t.Errorf("plain keys = %v", got)
	}
}
