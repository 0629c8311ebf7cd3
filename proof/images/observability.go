package images

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

// The images below complete the local stack's monitoring: host metrics (node-exporter),
// object state (kube-state-metrics) and alert routing (Alertmanager). The first and last come
// from Debian packages like the exporter; kube-state-metrics is not packaged in Debian, so it is
// the binary hack/tools.sh builds from the Go proxy, like CoreDNS.

func collectNodeExporter(_ context.Context, _ *Builder, f *fileSet) ([]string, error) {
	if err := addBase(f, nobodyUser, true); err != nil {
		return nil, err
	}
	if err := f.addHost("/usr/bin/prometheus-node-exporter"); err != nil {
		return nil, fmt.Errorf("%w; run: apt-get install -y prometheus-node-exporter", err)
	}
	return []string{"prometheus-node-exporter"}, nil
}

// alertmanagerConfig is a default that routes nowhere; the apps layer mounts its own.
const alertmanagerConfig = `route:
  receiver: none
receivers:
  - name: none
`

func collectAlertmanager(_ context.Context, _ *Builder, f *fileSet) ([]string, error) {
	if err := addBase(f, nobodyUser, true); err != nil {
		return nil, err
	}
	if err := f.addHost("/usr/bin/prometheus-alertmanager"); err != nil {
		return nil, fmt.Errorf("%w; run: apt-get install -y prometheus-alertmanager", err)
	}
	// Notification templates (default.tmpl) and Debian's placeholder UI.
	if err := f.addTree("/usr/share/prometheus/alertmanager", nil); err != nil {
		return nil, err
	}
	f.addData("/etc/alertmanager/alertmanager.yml", 0o644, 0, 0, []byte(alertmanagerConfig))
	f.addDir("/alertmanager", 0o755, nobodyUser.uid, nobodyUser.gid)
	return []string{"prometheus-alertmanager"}, addCACerts(f)
}

func kubeStateMetricsBinary(b *Builder) (string, error) {
	p := filepath.Join(b.toolsDir(), "kube-state-metrics")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("kube-state-metrics binary: %w; run: make tools (or hack/tools.sh node)", err)
	}
	return p, nil
}

var ksmVersionRE = regexp.MustCompile(`version v?([0-9]+\.[0-9]+\.[0-9]+)`)

// kubeStateMetricsVersion tags the image with the version the binary reports, e.g. 2.17.0
// (hack/tools.sh stamps it; an unstamped build prints none and is refused).
func kubeStateMetricsVersion(ctx context.Context, b *Builder) (string, error) {
	bin, err := kubeStateMetricsBinary(b)
	if err != nil {
		return "", err
	}
	return reportedVersion(ctx, bin, ksmVersionRE, "no version X.Y.Z (build it with hack/tools.sh node)", "version")
}

func collectKubeStateMetrics(_ context.Context, b *Builder, f *fileSet) ([]string, error) {
	bin, err := kubeStateMetricsBinary(b)
	if err != nil {
		return nil, err
	}
	if err := addNobodyBinary(f, bin, "/kube-state-metrics"); err != nil {
		return nil, err
	}
	return nil, nil
}
