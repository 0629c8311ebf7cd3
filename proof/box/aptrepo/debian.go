package aptrepo

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// DebianPackages are the Debian packages the machines install: the lab's cloud-init packages:
// list (infra/cloudinit.go), what prepare-node.sh installs when missing (ca-certificates curl
// gpg), and the dependencies of the box's own kubelet and containerd.io debs. The mirror holds
// their whole dependency closure (Depends and Pre-Depends, no Recommends, as the nodes install
// with --no-install-recommends), so no package is missing whatever the root filesystem holds.
var DebianPackages = []string{
	"qemu-guest-agent", "chrony", "ca-certificates", "curl", "gnupg", "gpg",
	"iptables", "mount", "util-linux", "libseccomp2", "libc6",
}

// MirrorDebian fetches pkgs and their dependency closure with the host's apt (`apt-get
// download`: Debian 12, signature-checked by the host's apt) into cacheDir, and returns the
// .deb paths. A file is named name_version_arch.deb, which in one Debian archive identifies its
// content, so a second run downloads nothing. The host's apt state is only read.
func MirrorDebian(ctx context.Context, cacheDir string, pkgs []string) ([]string, error) {
	names, err := closure(ctx, pkgs)
	if err != nil {
		return nil, err
	}
	files, err := candidates(ctx, names)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, err
	}
	var missing []string
	var out []string
	for _, c := range files {
		p := filepath.Join(cacheDir, c.file)
		out = append(out, p)
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, c.name+"="+c.version)
		}
	}
	if len(missing) > 0 {
		tmp, err := os.MkdirTemp(cacheDir, ".download-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		cmd := exec.CommandContext(ctx, "apt-get", append([]string{"download", "-q",
			// The download sandbox user (_apt) cannot write a root-owned temp dir.
			"-o", "APT::Sandbox::User=root"}, missing...)...)
		cmd.Dir = tmp
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("apt-get download %s: %w: %s", strings.Join(missing, " "), err, lastLines(out, 5))
		}
		entries, err := os.ReadDir(tmp)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if err := os.Rename(filepath.Join(tmp, e.Name()), filepath.Join(cacheDir, e.Name())); err != nil {
				return nil, err
			}
		}
	}
	for _, p := range out {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("apt-get download did not produce %s", filepath.Base(p))
		}
	}
	return out, nil
}

// closure is pkgs plus every real package they depend on, recursively.
func closure(ctx context.Context, pkgs []string) ([]string, error) {
	cmd := exec.CommandContext(ctx, "apt-cache", append([]string{"depends", "--recurse", "--no-recommends",
		"--no-suggests", "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances"}, pkgs...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("apt-cache depends: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		l := sc.Text()
		// Package lines start in column 0; <name> is a virtual package (its providers are
		// listed as packages of their own).
		if l == "" || l[0] == ' ' || l[0] == '<' {
			continue
		}
		seen[strings.TrimSuffix(l, ":amd64")] = true
	}
	var names []string
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

type candidate struct{ name, version, file string }

// candidates are the versions apt would install, with the file names apt-get download writes
// (an epoch's ':' becomes %3a).
func candidates(ctx context.Context, names []string) ([]candidate, error) {
	out, err := exec.CommandContext(ctx, "apt-cache", append([]string{"show", "--no-all-versions"}, names...)...).Output()
	if err != nil {
		return nil, fmt.Errorf("apt-cache show: %w", err)
	}
	var res []candidate
	for _, stanza := range strings.Split(string(out), "\n\n") {
		f := map[string]string{}
		for _, l := range strings.Split(stanza, "\n") {
			if k, v, ok := strings.Cut(l, ": "); ok && !strings.HasPrefix(l, " ") {
				f[k] = v
			}
		}
		if f["Package"] == "" {
			continue
		}
		res = append(res, candidate{f["Package"], f["Version"],
			fmt.Sprintf("%s_%s_%s.deb", f["Package"], strings.ReplaceAll(f["Version"], ":", "%3a"), f["Architecture"])})
	}
	return res, nil
}

func lastLines(b []byte, n int) string {
	l := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
