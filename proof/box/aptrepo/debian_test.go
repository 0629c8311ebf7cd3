package aptrepo

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMirrorDebianClosure fetches a small closure (libseccomp2: it pulls libc6 and its own
// dependencies) with the host's apt-get download, writes the signed Debian layout and lets apt
// in a throwaway root resolve libseccomp2 from it. A second mirror run downloads nothing.
func TestMirrorDebianClosure(t *testing.T) {
	ctx := context.Background()
	cache := filepath.Join(os.Getenv("HOME"), ".cache", "infralab", "box", "debian")
	debs, err := MirrorDebian(ctx, cache, []string{"libseccomp2"})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, d := range debs {
		names[strings.SplitN(filepath.Base(d), "_", 2)[0]] = true
	}
	if !names["libseccomp2"] || !names["libc6"] {
		t.Fatalf("closure lacks libseccomp2 or libc6: %v", names)
	}
	state, err := os.MkdirTemp("", "apt")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(state)
	key, err := EnsureKey(ctx, state)
	if err != nil {
		t.Fatal(err)
	}
	defer key.Close()
	root := filepath.Join(state, "www")
	if err := WriteDebian(ctx, root, key, debs); err != nil {
		t.Fatal(err)
	}
	pub, _ := key.PublicKey(ctx)
	keyFile := filepath.Join(state, "key.asc")
	_ = os.WriteFile(keyFile, pub, 0o644)
	srv, err := Serve("127.0.0.1:0", root)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	apt := filepath.Join(state, "aptroot")
	for _, d := range []string{"etc/apt/sources.list.d", "etc/apt/preferences.d", "etc/apt/apt.conf.d", "etc/apt/trusted.gpg.d", "var/lib/apt/lists/partial", "var/cache/apt/archives/partial"} {
		_ = os.MkdirAll(filepath.Join(apt, d), 0o755)
	}
	_ = os.WriteFile(filepath.Join(apt, "status"), nil, 0o644)
	_ = os.WriteFile(filepath.Join(apt, "apt.conf"), nil, 0o644)
	src := "deb [signed-by=" + keyFile + "] http://" + srv.Addr + "/debian bookworm main\n"
	_ = os.WriteFile(filepath.Join(apt, "etc/apt/sources.list"), []byte(src), 0o644)
	if out, err := aptGet(t, apt, "update"); err != nil || strings.Contains(out, "W:") || strings.Contains(out, "E:") {
		t.Fatalf("apt-get update: %v\n%s", err, out)
	}
	if out, err := aptGet(t, apt, "install", "--download-only", "-y", "libseccomp2"); err != nil {
		t.Fatalf("install --download-only libseccomp2: %v\n%s", err, out)
	}
}
