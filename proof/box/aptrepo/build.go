package aptrepo

import (
	"context"
	"os"
	"path/filepath"
	"time"
)

// WriteKubernetes writes the pkgs.k8s.io-layout repository of debs under root
// (<root>/core:/stable:/vX.Y/deb/: amd64/*.deb, Packages, Release, InRelease, Release.gpg,
// Release.key) and returns its directory.
func WriteKubernetes(ctx context.Context, root, version string, key *Key, debs []*Deb) (string, error) {
	dir := filepath.Join(root, KubernetesPath(version))
	var rel []string
	for _, d := range debs {
		if _, err := writeDeb(d, filepath.Join(dir, arch)); err != nil {
			return "", err
		}
		rel = append(rel, arch+"/"+d.FileName())
	}
	idx, err := writeIndex(ctx, dir, dir, rel)
	if err != nil {
		return "", err
	}
	if err := writeRelease(ctx, key, dir, releaseInfo{Origin: "infralab box", Label: "pkgs.k8s.io mirror"}, idx, time.Now()); err != nil {
		return "", err
	}
	pub, err := key.PublicKey(ctx)
	if err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, "Release.key"), pub, 0o644)
}
