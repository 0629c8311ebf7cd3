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

// WriteDocker writes the download.docker.com-layout repository of debs under root
// (<root>/linux/debian/dists/bookworm/{InRelease,stable/binary-amd64/Packages},
// pool in dists/bookworm/pool/stable/amd64, key at <root>/linux/debian/gpg).
func WriteDocker(ctx context.Context, root string, key *Key, debs []*Deb) error {
	base := filepath.Join(root, "linux", "debian")
	dist := filepath.Join(base, "dists", Codename)
	var rel []string
	for _, d := range debs {
		if _, err := writeDeb(d, filepath.Join(dist, "pool", "stable", arch)); err != nil {
			return err
		}
		rel = append(rel, "dists/"+Codename+"/pool/stable/"+arch+"/"+d.FileName())
	}
	idx, err := writeIndex(ctx, base, filepath.Join(dist, "stable", "binary-"+arch), rel)
	if err != nil {
		return err
	}
	info := releaseInfo{Origin: "infralab box", Label: "download.docker.com mirror", Suite: Codename, Codename: Codename, Components: "stable"}
	if err := writeRelease(ctx, key, dist, info, idx, time.Now()); err != nil {
		return err
	}
	pub, err := key.PublicKey(ctx)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(base, "gpg"), pub, 0o644)
}

// WriteDebian writes the deb.debian.org-layout repository of the .deb files debs (from
// MirrorDebian) under root (<root>/debian/dists/bookworm/main/binary-amd64, pool/main).
func WriteDebian(ctx context.Context, root string, key *Key, debs []string) error {
	base := filepath.Join(root, "debian")
	var rel []string
	for _, p := range debs {
		r := "pool/main/" + filepath.Base(p)
		if err := linkOrCopy(p, filepath.Join(base, r)); err != nil {
			return err
		}
		rel = append(rel, r)
	}
	dist := filepath.Join(base, "dists", Codename)
	idx, err := writeIndex(ctx, base, filepath.Join(dist, "main", "binary-"+arch), rel)
	if err != nil {
		return err
	}
	info := releaseInfo{Origin: "infralab box", Label: "Debian mirror", Suite: Codename, Codename: Codename, Components: "main"}
	return writeRelease(ctx, key, dist, info, idx, time.Now())
}
