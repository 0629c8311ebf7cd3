package apps

import (
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"time"
)

// validateStandaloneComponents checks what the standalone Prometheus needs for each component
// it runs: every dependency is named by its field, so a stack cannot turn one on half-way.
func (a PlatformArgs) validateStandaloneComponents(e *errList) {
	m := a.Monitoring
	checkDuration(e, "monitoring.scrapeInterval", m.ScrapeInterval)
	if m.NodeExporterImage != "" || m.KubeStateMetricsImage != "" || m.AlertmanagerImage != "" {
		checkPull(e, "monitoring.componentPullPolicy", m.ComponentPullPolicy)
	}
	for i, addr := range m.NodeAddresses {
		if net.ParseIP(addr) == nil {
			e.add(fmt.Sprintf("monitoring.nodeAddresses[%d]", i), "%q is not an IP address: Prometheus scrapes each node's kubelet on <address>:10250 (e.g. 10.244.0.1)", addr)
		}
	}
	switch {
	case m.NodeExporter && m.NodeExporterImage == "":
		e.add("monitoring.nodeExporterImage", "required with nodeExporter in standalone mode: a pinned node-exporter image (e.g. infralab.local/node-exporter:1.5.0-deb12)")
	case m.NodeExporter:
		checkImage(e, "monitoring.nodeExporterImage", m.NodeExporterImage)
		if len(m.NodeAddresses) == 0 {
			e.add("monitoring.nodeAddresses", "required with nodeExporter: Prometheus scrapes node-exporter on each node's address, port 9100")
		}
	case m.NodeExporterImage != "":
		e.add("monitoring.nodeExporterImage", "is set but monitoring.nodeExporter is false; set nodeExporter: true (it needs a privileged namespace) or remove the image")
	}
	if m.KubeStateMetricsImage != "" {
		checkImage(e, "monitoring.kubeStateMetricsImage", m.KubeStateMetricsImage)
		if len(m.KubeAPICIDRs) == 0 {
			e.add("monitoring.kubeAPICIDRs", "required with kubeStateMetricsImage: kube-state-metrics watches the API server and needs egress there (e.g. 10.244.0.1/32)")
		}
		for i, c := range m.KubeAPICIDRs {
			checkCIDR(e, fmt.Sprintf("monitoring.kubeAPICIDRs[%d]", i), c)
		}
		if m.KubeAPIPort < 1 || m.KubeAPIPort > 65535 {
			e.add("monitoring.kubeAPIPort", "must be a port, got %d", m.KubeAPIPort)
		}
	}
	if m.AlertmanagerImage != "" {
		checkImage(e, "monitoring.alertmanagerImage", m.AlertmanagerImage)
		if m.AlertWebhookURL == "" {
			e.add("monitoring.alertWebhookURL", "required with alertmanagerImage: Alertmanager's receiver, e.g. http://10.244.0.1:9095/alerts")
		} else if _, _, err := webhookPeer(m.AlertWebhookURL); err != nil {
			e.add("monitoring.alertWebhookURL", "%v", err)
		}
	} else if m.AlertWebhookURL != "" {
		e.add("monitoring.alertWebhookURL", "is set but monitoring.alertmanagerImage is not; Alertmanager delivers to the webhook, so set its image too")
	}
}

// webhookPeer returns the IP and port a webhook URL reaches, for Alertmanager's egress policy.
func webhookPeer(raw string) (net.IP, int, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, 0, fmt.Errorf("%q must be an http(s) URL such as http://10.244.0.1:9095/alerts", raw)
	}
	ip := net.ParseIP(u.Hostname())
	if ip == nil {
		return nil, 0, fmt.Errorf("%q: the host must be an IP address, which Alertmanager's NetworkPolicy opens (a DNS name has no fixed address to allow)", raw)
	}
	port := 80
	if u.Scheme == "https" {
		port = 443
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, 0, fmt.Errorf("%q: port %q is not a port", raw, p)
		}
		port = n
	}
	return ip, port, nil
}

// validateAlertFor accepts overrides only for alerts that exist, with Prometheus durations.
func (a PlatformArgs) validateAlertFor(e *errList) {
	known := map[string]bool{}
	var names []string
	for _, r := range a.alertRules() {
		known[r.Alert] = true
		names = append(names, r.Alert)
	}
	keys := make([]string, 0, len(a.Monitoring.AlertFor))
	for k := range a.Monitoring.AlertFor {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f := "monitoring.alertFor." + k
		if !known[k] {
			e.add(f, "no alert %q; the alerts are %v", k, names)
			continue
		}
		if _, err := time.ParseDuration(a.Monitoring.AlertFor[k]); err != nil {
			e.add(f, "%q is not a duration such as 30s or 2m", a.Monitoring.AlertFor[k])
		}
	}
}
