package images

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
	out, err := exec.CommandContext(ctx, bin, "-version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s -version: %v: %s", bin, err, out)
	}
	m := corednsVersionRE.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("%s -version printed no CoreDNS-X.Y.Z: %q", bin, out)
	}
	return string(m[1]), nil
}

func collectCoreDNS(_ context.Context, b *Builder, f *fileSet) ([]string, error) {
	bin, err := corednsBinary(b)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	if err := addBase(f, nobodyUser, false); err != nil {
		return nil, err
	}
	f.addData("/coredns", 0o755, 0, 0, data)
	f.addData("/etc/coredns/Corefile", 0o644, 0, 0, []byte(corednsConfig))
	return nil, nil
}
