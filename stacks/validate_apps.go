package stacks

import (
	"fmt"
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
	case "standalone", "off":
		c.add("apps.monitoring.nodeExporter", fmt.Sprintf("needs monitoring mode chart, not %q", a.Monitoring.Mode), "node-exporter comes with kube-prometheus-stack; set apps.monitoring.mode: chart or remove nodeExporter")
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
