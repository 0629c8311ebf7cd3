package images

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// corednsConfig is a default that answers nothing but health; the node mounts its own Corefile.
const corednsConfig = `.:53 {
    errors
    health :8080
}
`

func corednsBinary(b *Builder) (string, error) {
	p := filepath.Join(b.toolsDir(), "coredns")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("coredns binary: %w; run: make tools (or hack/tools.sh node)", err)
	}
	return p, nil
}

var corednsVersionRE = regexp.MustCompile(`CoreDNS-([0-9]+\.[0-9]+\.[0-9]+)`)

// corednsVersion tags the image with the version the binary reports, e.g. 1.15.0.
func corednsVersion(ctx context.Context, b *Builder) (string, error) {
	bin, err := corednsBinary(b)
	if err != nil {
		return "", err
	}
	return reportedVersion(ctx, bin, corednsVersionRE, "no CoreDNS-X.Y.Z", "-version")
}

// reportedVersion runs a binary's version command and returns the X.Y.Z that re captures; what
// names the expected form in the error.
func reportedVersion(ctx context.Context, bin string, re *regexp.Regexp, what string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s %s: %v: %s", bin, strings.Join(args, " "), err, out)
	}
	m := re.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("%s %s printed %s: %q", bin, strings.Join(args, " "), what, out)
	}
	return string(m[1]), nil
}

// addNobodyBinary puts a static binary at dest on the base layer of an image that runs as nobody.
func addNobodyBinary(f *fileSet, bin, dest string) error {
	data, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	if err := addBase(f, nobodyUser, false); err != nil {
		return err
	}
	f.addData(dest, 0o755, 0, 0, data)
	return nil
}

func collectCoreDNS(_ context.Context, b *Builder, f *fileSet) ([]string, error) {
	bin, err := corednsBinary(b)
	if err != nil {
		return nil, err
	}
	if err := addNobodyBinary(f, bin, "/coredns"); err != nil {
		return nil, err
	}
	f.addData("/etc/coredns/Corefile", 0o644, 0, 0, []byte(corednsConfig))
	return nil, nil
}
