package stacks

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
)

var (
	durationRE = regexp.MustCompile(`^[1-9][0-9]*(h|d|w|y)$`)
	digestRE   = regexp.MustCompile(`@sha256:[0-9a-f]{64}$`)
)

func validateApps(cfg *Config, c *errs) {
	a := &cfg.Apps
	names := []struct{ path, name string }{
		{"apps.namespaces.api", a.Namespaces.API},
		{"apps.namespaces.database", a.Namespaces.Database},
		{"apps.namespaces.monitoring", a.Namespaces.Monitoring},
	}
	if a.Monitoring.NodeExporter {
		names = append(names, struct{ path, name string }{"apps.namespaces.nodeExporter", a.Namespaces.NodeExporterNamespace()})
	}
	ns := map[string]string{}
	for _, n := range names {
		switch prev, dup := ns[n.name]; {
		case !dnsLabelRE.MatchString(n.name):
			c.add(n.path, fmt.Sprintf("%q is not a namespace name", n.name), "use a DNS label such as healthcare")
		case n.name == "default" || strings.HasPrefix(n.name, "kube-"):
			c.add(n.path, fmt.Sprintf("%q is a system namespace", n.name), "use a namespace of your own; infralab applies default-deny policies to it")
		case dup:
			c.add(n.path, fmt.Sprintf("%q is also %s", n.name, prev), "give each component its own namespace")
		default:
			ns[n.name] = n.path
		}
	}

	image(a.API.Image, "apps.api.image", c)
	pullPolicy(a.API.PullPolicy, "apps.api.pullPolicy", c)
	atLeastOne(a.API.Replicas, "apps.api.replicas", c)
	atLeastOne(a.API.DBPoolSize, "apps.api.dbPoolSize", c)
	for i, from := range a.API.AllowIngressFrom {
		if !dnsLabelRE.MatchString(from) {
			c.add(fmt.Sprintf("apps.api.allowIngressFrom[%d]", i), fmt.Sprintf("%q is not a namespace name", from), "list namespaces whose pods may call the api")
		}
	}

	p := &a.Postgres
	image(p.Image, "apps.postgres.image", c)
	image(p.ExporterImage, "apps.postgres.exporterImage", c)
	pullPolicy(p.PullPolicy, "apps.postgres.pullPolicy", c)
	if !dnsLabelRE.MatchString(p.StorageClass) {
		c.add("apps.postgres.storageClass", fmt.Sprintf("%q is not a StorageClass name", p.StorageClass), "e.g. local-storage, or a replicated class such as longhorn")
	}
	quantity(p.StorageSize, "apps.postgres.storageSize", "1Gi", c)
	if lv := p.LocalVolume; lv != nil {
		if !dnsLabelRE.MatchString(lv.NodeName) {
			c.add("apps.postgres.localVolume.nodeName", fmt.Sprintf("%q is not a node name", lv.NodeName), "name the Kubernetes node that holds the data, e.g. k8s-worker-1")
		} else if cfg.Mode == ModeLab && !isWorker(cfg, lv.NodeName) {
			c.add("apps.postgres.localVolume.nodeName", fmt.Sprintf("%q is not in cluster.workers.nodes", lv.NodeName), "pin the volume to one of the workers")
		}
		if !strings.HasPrefix(lv.Path, "/") {
			c.add("apps.postgres.localVolume.path", fmt.Sprintf("%q is not an absolute path", lv.Path), "e.g. /var/lib/infralab/postgres")
		}
	}

	validateMonitoring(cfg, c)
	validateNodeExporter(a, c)

	for i, e := range a.PodSecurityExceptions {
		path := fmt.Sprintf("apps.podSecurityExceptions[%d]", i)
		if _, ok := ns[e.Namespace]; !ok {
			c.add(path+".namespace", fmt.Sprintf("%q is not a namespace infralab creates", e.Namespace), "name one of apps.namespaces")
		}
		if e.Level != "baseline" && e.Level != "privileged" {
			c.add(path+".level", fmt.Sprintf("%q is not a relaxed Pod Security level", e.Level), "use baseline or privileged")
		}
		if strings.TrimSpace(e.Reason) == "" {
			c.add(path+".reason", "is empty", "say why this namespace needs more than restricted, e.g. node-exporter reads host /proc")
		}
	}

	requireSecret(cfg.Secrets.PostgresPassword, c, "pulumi config set --secret postgresPassword \"$(openssl rand -base64 24)\"")
	requireSecret(cfg.Secrets.APIDBPassword, c, "pulumi config set --secret apiDbPassword \"$(openssl rand -base64 24)\"")
	requireSecret(cfg.Secrets.ExporterDBPassword, c, "pulumi config set --secret exporterDbPassword \"$(openssl rand -base64 24)\"")
}

// validateNodeExporter keeps the one workload that needs host access explicit: it runs only with
// a recorded reason for relaxing its namespace.
func validateNodeExporter(a *Apps, c *errs) {
	if !a.Monitoring.NodeExporter {
		return
	}
	switch a.Monitoring.Mode {
	case "chart":
	case "standalone":
		if a.Monitoring.NodeExporterImage == "" {
			c.add("apps.monitoring.nodeExporterImage", "is required with nodeExporter in standalone mode", "name the node-exporter image, e.g. infralab.local/node-exporter:1.5.0-deb12 (make demo sets the one it built)")
		}
		if len(a.Monitoring.NodeAddresses) == 0 {
			c.add("apps.monitoring.nodeAddresses", "is required with nodeExporter in standalone mode", "list the nodes' IPs, e.g. [10.244.0.1] for the embedded node")
		}
	case "off":
		c.add("apps.monitoring.nodeExporter", fmt.Sprintf("needs monitoring mode chart or standalone, not %q", a.Monitoring.Mode), "set apps.monitoring.mode, or remove nodeExporter")
		return
	default:
		return // the mode itself is reported
	}
	ns := a.Namespaces.NodeExporterNamespace()
	for _, e := range a.PodSecurityExceptions {
		if e.Namespace == ns && e.Level == "privileged" {
			return
		}
	}
	c.add("apps.monitoring.nodeExporter", fmt.Sprintf("runs in namespace %q, which has no privileged Pod Security exception", ns),
		fmt.Sprintf("node-exporter uses hostNetwork, hostPID and hostPath: add to apps.podSecurityExceptions {namespace: %s, level: privileged, reason: ...} (and the same namespace to the policy pack config), or remove nodeExporter", ns))
}

func validateMonitoring(cfg *Config, c *errs) {
	m := &cfg.Apps.Monitoring
	switch m.Mode {
	case "chart":
		if semverRE.FindStringSubmatch(m.ChartVersion) == nil {
			c.add("apps.monitoring.chartVersion", fmt.Sprintf("%q is not an exact chart version", m.ChartVersion), "pin kube-prometheus-stack, e.g. 88.6.5")
		}
		requireSecret(cfg.Secrets.GrafanaAdminPassword, c, "pulumi config set --secret grafanaAdminPassword \"$(openssl rand -base64 24)\"")
	case "standalone":
		image(m.PrometheusImage, "apps.monitoring.prometheusImage", c)
		pullPolicy(m.PullPolicy, "apps.monitoring.pullPolicy", c)
		validateStandaloneComponents(m, c)
	case "off":
		return
	default:
		c.add("apps.monitoring.mode", fmt.Sprintf("%q is not a monitoring mode", m.Mode), "use chart (kube-prometheus-stack), standalone (one Prometheus, no CRDs) or off")
		return
	}
	if !durationRE.MatchString(m.Retention) {
		c.add("apps.monitoring.retention", fmt.Sprintf("%q is not a retention period", m.Retention), "e.g. 15d")
	}
	switch {
	case m.Mode == "standalone" && (m.StorageClass != "" || m.StorageSize != ""):
		c.add("apps.monitoring.storageClass", "is only used in chart mode; the standalone Prometheus keeps its data in an emptyDir", "remove storageClass and storageSize, or use apps.monitoring.mode: chart")
	case m.StorageClass == "" && m.StorageSize != "":
		c.add("apps.monitoring.storageSize", "is set without apps.monitoring.storageClass, so it would be ignored (Prometheus keeps its data in an emptyDir)", "name a provisioning StorageClass, or remove storageSize")
	case m.StorageClass != "":
		if !dnsLabelRE.MatchString(m.StorageClass) {
			c.add("apps.monitoring.storageClass", fmt.Sprintf("%q is not a StorageClass name", m.StorageClass), "e.g. longhorn")
		}
		quantity(m.StorageSize, "apps.monitoring.storageSize", "1Gi", c)
	}
}

// image insists on an exact tag or digest: a moving tag makes two `up`s deploy different code.
func image(ref, path string, c *errs) {
	if ref == "" {
		c.add(path, "is required", "name an image with an exact tag, e.g. registry/name:1.2.3")
		return
	}
	if digestRE.MatchString(ref) {
		return
	}
	if strings.Contains(ref, "@") {
		c.add(path, fmt.Sprintf("%q has a malformed digest", ref), "a digest is @sha256: followed by 64 lowercase hex digits; or pin a tag instead")
		return
	}
	name := ref[strings.LastIndex(ref, "/")+1:]
	i := strings.LastIndex(name, ":")
	switch {
	case i < 0 || i == len(name)-1:
		c.add(path, fmt.Sprintf("%q has no tag", ref), "pin an exact tag or digest, e.g. "+ref+":1.2.3")
	case name[i+1:] == "latest":
		c.add(path, fmt.Sprintf("%q uses :latest", ref), "pin an exact tag or digest; :latest changes under you")
	}
}

func pullPolicy(p, path string, c *errs) {
	switch p {
	case "", "Always", "IfNotPresent", "Never":
	default:
		c.add(path, fmt.Sprintf("%q is not a pull policy", p), "use Always, IfNotPresent or Never (Never for images loaded locally)")
	}
}

func atLeastOne(n int, path string, c *errs) {
	if n < 1 {
		c.add(path, fmt.Sprintf("%d is below 1", n), "set it to 1 or more")
	}
}

func isWorker(cfg *Config, name string) bool {
	for _, vm := range cfg.Cluster.Workers.Nodes {
		if vm.Name == name {
			return true
		}
	}
	return false
}

// validateStandaloneComponents checks the standalone Prometheus's companions; each dependency
// is named by its path (the apps layer repeats these checks for its own callers).
func validateStandaloneComponents(m *Monitoring, c *errs) {
	for _, img := range []struct{ ref, path string }{
		{m.NodeExporterImage, "apps.monitoring.nodeExporterImage"},
		{m.KubeStateMetricsImage, "apps.monitoring.kubeStateMetricsImage"},
		{m.AlertmanagerImage, "apps.monitoring.alertmanagerImage"},
	} {
		if img.ref != "" {
			image(img.ref, img.path, c)
		}
	}
	for i, addr := range m.NodeAddresses {
		if net.ParseIP(addr) == nil {
			c.add(fmt.Sprintf("apps.monitoring.nodeAddresses[%d]", i), fmt.Sprintf("%q is not an IP address", addr), "list the nodes' IPs, e.g. 10.244.0.1")
		}
	}
	if m.KubeStateMetricsImage != "" && len(m.KubeAPICIDRs) == 0 {
		c.add("apps.monitoring.kubeAPICIDRs", "is required with kubeStateMetricsImage", "kube-state-metrics watches the API server: name its address, e.g. [10.244.0.1/32] for the embedded node's API proxy")
	}
	for i, cidr := range m.KubeAPICIDRs {
		if _, _, err := net.ParseCIDR(cidr); err != nil {
			c.add(fmt.Sprintf("apps.monitoring.kubeAPICIDRs[%d]", i), fmt.Sprintf("%q is not a CIDR", cidr), "e.g. 10.244.0.1/32")
		}
	}
	if m.KubeAPIPort != 0 && (m.KubeAPIPort < 1 || m.KubeAPIPort > 65535) {
		c.add("apps.monitoring.kubeAPIPort", fmt.Sprintf("%d is not a port", m.KubeAPIPort), "e.g. 6443")
	}
	switch {
	case m.AlertmanagerImage != "" && m.AlertWebhookURL == "":
		c.add("apps.monitoring.alertWebhookURL", "is required with alertmanagerImage", "name Alertmanager's webhook receiver, e.g. http://10.244.0.1:9095/alerts")
	case m.AlertWebhookURL != "" && m.AlertmanagerImage == "":
		c.add("apps.monitoring.alertWebhookURL", "is set without alertmanagerImage, so nothing would deliver to it", "set apps.monitoring.alertmanagerImage, or remove alertWebhookURL")
	case m.AlertWebhookURL != "":
		u, err := url.Parse(m.AlertWebhookURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || net.ParseIP(u.Hostname()) == nil {
			c.add("apps.monitoring.alertWebhookURL", fmt.Sprintf("%q is not an http(s) URL with an IP address host", m.AlertWebhookURL),
				"e.g. http://10.244.0.1:9095/alerts: Alertmanager's egress NetworkPolicy opens that address")
		}
	}
}
