// Package rootfs locates the box machines' Debian 12 root filesystem: one tree built by mmdebstrap
// from Debian packages (build.sh, packages.txt, customize.sh) and cached outside the clone under
// INFRALAB_CACHE/box/rootfs-<hash of those three files>. hack/tools.sh box builds it (atomically,
// under a lock); this package computes the same path, so a changed recipe is never confused with an
// old tree. Every machine mounts it read-only as the lower layer of its own overlayfs.
package rootfs

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
)

// The recipe is embedded so the key is computed from exactly the files hack/tools.sh hashes.
var (
	//go:embed packages.txt
	packages []byte
	//go:embed build.sh
	buildScript []byte
	//go:embed customize.sh
	customizeScript []byte
)

// Key is the first 16 hex digits of sha256(packages.txt ‖ build.sh ‖ customize.sh), as
// `cat packages.txt build.sh customize.sh | sha256sum | cut -c1-16` in hack/tools.sh.
func Key() string {
	h := sha256.New()
	h.Write(packages)
	h.Write(buildScript)
	h.Write(customizeScript)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Dir is the cache folder of the current recipe's tree under cacheDir (INFRALAB_CACHE).
func Dir(cacheDir string) string {
	return filepath.Join(cacheDir, "box", "rootfs-"+Key())
}

// Tree returns the built root filesystem under cacheDir, or an error saying how to build it.
func Tree(cacheDir string) (string, error) {
	dir := Dir(cacheDir)
	if _, err := os.Stat(filepath.Join(dir, ".done")); err != nil {
		return "", fmt.Errorf("rootfs: the box machines' root filesystem %s is not built: run `hack/tools.sh box` (make box does)", dir)
	}
	return filepath.Join(dir, "tree"), nil
}
