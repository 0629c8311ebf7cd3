package images

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
)

// dpkgVersion is the installed version of a Debian package, or an error telling how to install it.
func dpkgVersion(ctx context.Context, pkg string) (string, error) {
	out, err := exec.CommandContext(ctx, "dpkg-query", "-W", "-f=${db:Status-Status} ${Version}", pkg).Output()
	fields := strings.Fields(string(out))
	if err != nil || len(fields) != 2 || fields[0] != "installed" {
		return "", fmt.Errorf("debian package %s is not installed; run: apt-get install -y %s", pkg, pkg)
	}
	return fields[1], nil
}

// dpkgFiles lists the files a package installed (directories included).
func dpkgFiles(ctx context.Context, pkg string) ([]string, error) {
	out, err := exec.CommandContext(ctx, "dpkg-query", "-L", pkg).Output()
	if err != nil {
		return nil, fmt.Errorf("dpkg-query -L %s: %w", pkg, err)
	}
	var files []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "/") && l != "/." {
			files = append(files, l)
		}
	}
	return files, nil
}

// dpkgDepends returns the installed packages that pkg depends on (every installed alternative).
func dpkgDepends(ctx context.Context, pkg string) ([]string, error) {
	out, err := exec.CommandContext(ctx, "dpkg-query", "-W", "-f=${Depends},${Pre-Depends}", pkg).Output()
	if err != nil {
		return nil, fmt.Errorf("dpkg-query depends of %s: %w", pkg, err)
	}
	var deps []string
	for _, clause := range strings.Split(string(out), ",") {
		for _, alt := range strings.Split(clause, "|") {
			name := strings.TrimSpace(alt)
			if i := strings.IndexAny(name, " ("); i >= 0 {
				name = name[:i]
			}
			name = strings.TrimSuffix(name, ":any")
			if name == "" {
				continue
			}
			if _, err := dpkgVersion(ctx, name); err == nil {
				deps = append(deps, name)
			}
		}
	}
	return deps, nil
}

// packageClosure follows Depends from roots through the packages that keep returns true for.
// Libraries outside it come in through ldd instead, file by file, not package by package.
func packageClosure(ctx context.Context, roots []string, keep func(string) bool) ([]string, error) {
	seen := map[string]bool{}
	queue := append([]string(nil), roots...)
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		if _, err := dpkgVersion(ctx, p); err != nil {
			return nil, err
		}
		seen[p] = true
		deps, err := dpkgDepends(ctx, p)
		if err != nil {
			return nil, err
		}
		for _, d := range deps {
			if keep(d) && !seen[d] {
				queue = append(queue, d)
			}
		}
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

var debSuffix = regexp.MustCompile(`deb\d+(u\d+)?`)

// imageTag turns a Debian version into a tag: "15.18-0+deb12u1" -> "15.18-deb12u1",
// "2.42.0+ds-5+deb12u1" -> "2.42.0-deb12u1", "0.11.1-3+b5" -> "0.11.1-deb12".
func imageTag(debVersion, debianMajor string) string {
	v := debVersion
	if i := strings.Index(v, ":"); i >= 0 {
		v = v[i+1:]
	}
	upstream, revision := v, ""
	if i := strings.LastIndex(v, "-"); i >= 0 {
		upstream, revision = v[:i], v[i+1:]
	}
	if i := strings.IndexAny(upstream, "+~"); i >= 0 {
		upstream = upstream[:i]
	}
	suffix := debSuffix.FindString(revision)
	if suffix == "" {
		suffix = "deb" + debianMajor
	}
	return sanitizeTag(upstream + "-" + suffix)
}

func sanitizeTag(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '-'
	}, s)
}

// debianMajor reads "12" from /etc/debian_version ("12.12").
func debianMajor() string {
	b, err := os.ReadFile("/etc/debian_version")
	if err != nil {
		return "unknown"
	}
	v := strings.TrimSpace(string(b))
	if i := strings.Index(v, "."); i > 0 {
		v = v[:i]
	}
	return sanitizeTag(v)
}
