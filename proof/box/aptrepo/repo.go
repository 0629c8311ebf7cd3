package aptrepo

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// The three repositories the box serves under one root, each in its upstream's URL layout, so a
// node's sources.list differs from upstream only in the base URL:
//
//	<base>/core:/stable:/v1.35/deb/        pkgs.k8s.io: a flat repository ("deb <url> /"),
//	                                       Release.key beside it
//	<base>/linux/debian/dists/bookworm/    download.docker.com: suite bookworm, component stable,
//	                                       pool under dists/bookworm/pool/stable/amd64, key at
//	                                       <base>/linux/debian/gpg
//	<base>/debian/dists/bookworm/          deb.debian.org: suite bookworm, component main (the
//	                                       Debian packages cloud-init and prepare-node install)
const (
	Codename = "bookworm"
	arch     = "amd64"
)

// KubernetesPath is the pkgs.k8s.io repository path for a Kubernetes version x.y.z.
func KubernetesPath(version string) string {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return "core:/stable:/v" + version + "/deb"
	}
	return "core:/stable:/v" + parts[0] + "." + parts[1] + "/deb"
}

// indexEntry is one stanza of a Packages file: the package's control file plus where it is.
func indexEntry(ctx context.Context, debPath, filename string) (string, error) {
	control, err := exec.CommandContext(ctx, "dpkg-deb", "--field", debPath).Output()
	if err != nil {
		return "", fmt.Errorf("dpkg-deb --field %s: %w", debPath, err)
	}
	f, err := os.Open(debPath)
	if err != nil {
		return "", err
	}
	defer f.Close()
	m, s := md5.New(), sha256.New()
	n, err := io.Copy(io.MultiWriter(m, s), f)
	if err != nil {
		return "", err
	}
	c := strings.TrimRight(string(control), "\n")
	// Description (and its continuation lines) last, as Debian's indexes have it.
	head, desc := c, ""
	if i := strings.Index(c, "\nDescription:"); i >= 0 {
		head, desc = c[:i], c[i:]
	}
	return fmt.Sprintf("%s\nFilename: %s\nSize: %d\nMD5sum: %s\nSHA256: %s%s\n", head, filename, n,
		hex.EncodeToString(m.Sum(nil)), hex.EncodeToString(s.Sum(nil)), desc), nil
}

// writeIndex writes Packages and Packages.gz in dir for debs (paths relative to base, the
// directory Filename: is relative to) and returns their paths.
func writeIndex(ctx context.Context, base, dir string, debs []string) ([]string, error) {
	sort.Strings(debs)
	var b strings.Builder
	for i, d := range debs {
		e, err := indexEntry(ctx, filepath.Join(base, d), d)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(e)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	plain := filepath.Join(dir, "Packages")
	if err := os.WriteFile(plain, []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	if _, err := w.Write([]byte(b.String())); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	if err := os.WriteFile(plain+".gz", gz.Bytes(), 0o644); err != nil {
		return nil, err
	}
	return []string{plain, plain + ".gz"}, nil
}

// releaseInfo is the head of a Release file.
type releaseInfo struct {
	Origin, Label, Suite, Codename, Components string
}

// writeRelease writes dir/Release listing indexes (paths relative to dir) and signs it.
func writeRelease(ctx context.Context, key *Key, dir string, info releaseInfo, indexes []string, now time.Time) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Origin: %s\nLabel: %s\n", info.Origin, info.Label)
	if info.Suite != "" {
		fmt.Fprintf(&b, "Suite: %s\nCodename: %s\n", info.Suite, info.Codename)
	}
	fmt.Fprintf(&b, "Date: %s\nArchitectures: %s\n", now.UTC().Format(time.RFC1123Z), arch)
	if info.Components != "" {
		fmt.Fprintf(&b, "Components: %s\n", info.Components)
	}
	b.WriteString("Description: infralab box mirror (signed with the box's own key)\n")
	type sum struct {
		md5, sha string
		size     int64
		rel      string
	}
	var sums []sum
	for _, p := range indexes {
		body, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		m, s := md5.Sum(body), sha256.Sum256(body)
		sums = append(sums, sum{hex.EncodeToString(m[:]), hex.EncodeToString(s[:]), int64(len(body)), filepath.ToSlash(rel)})
	}
	b.WriteString("MD5Sum:\n")
	for _, s := range sums {
		fmt.Fprintf(&b, " %s %d %s\n", s.md5, s.size, s.rel)
	}
	b.WriteString("SHA256:\n")
	for _, s := range sums {
		fmt.Fprintf(&b, " %s %d %s\n", s.sha, s.size, s.rel)
	}
	release := filepath.Join(dir, "Release")
	if err := os.WriteFile(release, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return key.Sign(ctx, release)
}

// writeDeb builds d into dir (created) and returns the file's path.
func writeDeb(d *Deb, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	p := filepath.Join(dir, d.FileName())
	tmp, err := os.CreateTemp(dir, ".deb-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if err := d.Build(tmp); err != nil {
		tmp.Close()
		return "", fmt.Errorf("build %s: %w", d.FileName(), err)
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return "", err
	}
	return p, os.Rename(tmp.Name(), p)
}

// linkOrCopy puts src at dst (hard link when on one filesystem: the Debian cache is large).
func linkOrCopy(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	_ = os.Remove(dst)
	if os.Link(src, dst) == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
