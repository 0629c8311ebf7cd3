package apps

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/infralab/infralab/internal/testenv"
	"sigs.k8s.io/yaml"
)

var wantAlerts = []string{"APIHighErrorRate", "ContainerOOMKilled", "NodeDown", "PersistentVolumeAlmostFull", "PodCrashLooping", "PostgresDown", "TargetDown", "TooManyDBConnections"}

func byKey(res []recorded) map[string]recorded {
	m := map[string]recorded{}
	for _, r := range res {
		m[r.Type+" "+r.key()] = r
	}
	return m
}

// Turning monitoring off removes the chart, its custom resources and the monitoring objects that
// exist only for them, and leaves every other object exactly as it was.
func TestMonitoringOffRemovesOnlyMonitoring(t *testing.T) {
	on := byKey(declare(t, baseArgs()))
	a := baseArgs()
	a.Monitoring.Mode = MonitoringOff
	a.PSAExceptions = nil
	off := byKey(declare(t, a))

	var removed []string
	for k, r := range on {
		o, ok := off[k]
		if !ok {
			removed = append(removed, k)
			continue
		}
		if !reflect.DeepEqual(r.obj(), o.obj()) {
			t.Errorf("%s changed when monitoring was turned off", k)
		}
	}
	for k := range off {
		if _, ok := on[k]; !ok {
			t.Errorf("%s appears only with monitoring off", k)
		}
	}
	sort.Strings(removed)
	want := []string{
		"kubernetes:core/v1:ConfigMap ConfigMap/monitoring/grafana-dashboard-nodes",
		"kubernetes:core/v1:ConfigMap ConfigMap/monitoring/grafana-dashboard-pods",
		"kubernetes:core/v1:ConfigMap ConfigMap/monitoring/grafana-dashboard-postgresql",
		"kubernetes:core/v1:Namespace Namespace//monitoring",
		"kubernetes:core/v1:Namespace Namespace//monitoring-node",
		"kubernetes:core/v1:Secret Secret/monitoring/grafana-admin",
		"kubernetes:helm.sh/v4:Chart Chart//",
		"kubernetes:monitoring.coreos.com/v1:PrometheusRule PrometheusRule/monitoring/infralab-alerts",
		"kubernetes:monitoring.coreos.com/v1:ServiceMonitor ServiceMonitor/monitoring/healthcare-api",
		"kubernetes:monitoring.coreos.com/v1:ServiceMonitor ServiceMonitor/monitoring/postgres-exporter",
		"kubernetes:networking.k8s.io/v1:NetworkPolicy NetworkPolicy/database/exporter-ingress-prometheus",
		"kubernetes:networking.k8s.io/v1:NetworkPolicy NetworkPolicy/healthcare/api-ingress-prometheus",
		"kubernetes:networking.k8s.io/v1:NetworkPolicy NetworkPolicy/monitoring-node/allow-dns",
		"kubernetes:networking.k8s.io/v1:NetworkPolicy NetworkPolicy/monitoring-node/default-deny",
		"kubernetes:networking.k8s.io/v1:NetworkPolicy NetworkPolicy/monitoring/allow-dns",
		"kubernetes:networking.k8s.io/v1:NetworkPolicy NetworkPolicy/monitoring/chart-egress-kube-api",
		"kubernetes:networking.k8s.io/v1:NetworkPolicy NetworkPolicy/monitoring/chart-ingress-webhook",
		"kubernetes:networking.k8s.io/v1:NetworkPolicy NetworkPolicy/monitoring/chart-internal",
		"kubernetes:networking.k8s.io/v1:NetworkPolicy NetworkPolicy/monitoring/default-deny",
		"kubernetes:networking.k8s.io/v1:NetworkPolicy NetworkPolicy/monitoring/prometheus-egress-nodes",
		"kubernetes:networking.k8s.io/v1:NetworkPolicy NetworkPolicy/monitoring/prometheus-egress-targets",
		"kubernetes:rbac.authorization.k8s.io/v1:Role Role/monitoring/grafana-sidecar-configmaps",
	}
	if !reflect.DeepEqual(removed, want) {
		t.Errorf("monitoring off removed\n  %s\nwant\n  %s", strings.Join(removed, "\n  "), strings.Join(want, "\n  "))
	}
	// Without the chart no custom resource of its CRDs may remain.
	for k := range off {
		if strings.Contains(k, "monitoring.coreos.com") || strings.Contains(k, "helm.sh") {
			t.Errorf("%s declared with monitoring off", k)
		}
	}
}

func TestChartIsPinnedAndConfigured(t *testing.T) {
	a := baseArgs()
	a.Monitoring.Retention = "30d"
	a.Monitoring.StorageClass = "longhorn"
	a.Monitoring.StorageSize = "40Gi"
	res := declare(t, a)
	charts := ofType(res, "kubernetes:helm.sh/v4:Chart")
	if len(charts) != 1 {
		t.Fatalf("charts = %d, want 1", len(charts))
	}
	c := charts[0].obj()
	checks := map[string]any{
		"chart":            get(c, "chart"),
		"version":          get(c, "version"),
		"namespace":        get(c, "namespace"),
		"repo":             get(c, "repositoryOpts", "repo"),
		"grafana secret":   get(c, "values", "grafana", "admin", "existingSecret"),
		"retention":        get(c, "values", "prometheus", "prometheusSpec", "retention"),
		"storage class":    get(c, "values", "prometheus", "prometheusSpec", "storageSpec", "volumeClaimTemplate", "spec", "storageClassName"),
		"storage size":     get(c, "values", "prometheus", "prometheusSpec", "storageSpec", "volumeClaimTemplate", "spec", "resources", "requests", "storage"),
		"node-exporter ns": get(c, "values", "prometheus-node-exporter", "namespaceOverride"),
		"dashboard label":  get(c, "values", "grafana", "sidecar", "dashboards", "label"),
	}
	want := map[string]any{
		"chart": "kube-prometheus-stack", "version": DefaultChartVersion, "namespace": "monitoring",
		"repo": "https://prometheus-community.github.io/helm-charts", "grafana secret": "grafana-admin",
		"retention": "30d", "storage class": "longhorn", "storage size": "40Gi",
		"node-exporter ns": "monitoring-node", "dashboard label": "grafana_dashboard",
	}
	if !reflect.DeepEqual(checks, want) {
		t.Errorf("chart settings = %v\nwant %v", checks, want)
	}
	// The Grafana secret the chart points at exists in its namespace with the keys it names.
	gs := find(t, res, "kubernetes:core/v1:Secret", "monitoring", "grafana-admin")
	for _, k := range []string{"admin-user", "admin-password"} {
		if gs.get("stringData", k) == nil {
			t.Errorf("grafana-admin lacks %s", k)
		}
	}

	// ServiceMonitors select the Services we declare, by their port names.
	for _, sm := range []struct{ name, ns, port string }{{"healthcare-api", "healthcare", "http"}, {"postgres-exporter", "database", "metrics"}} {
		r := find(t, res, "kubernetes:monitoring.coreos.com/v1:ServiceMonitor", "monitoring", sm.name)
		svc := find(t, res, "kubernetes:core/v1:Service", sm.ns, sm.name)
		if !reflect.DeepEqual(r.get("spec", "selector", "matchLabels"), svc.get("spec", "selector")) {
			t.Errorf("ServiceMonitor %s selects %v, Service selects %v", sm.name, r.get("spec", "selector", "matchLabels"), svc.get("spec", "selector"))
		}
		if r.get("spec", "endpoints", 0, "port") != sm.port || svc.get("spec", "ports", 0, "name") != sm.port {
			t.Errorf("ServiceMonitor %s scrapes port %v, Service names %v", sm.name, r.get("spec", "endpoints", 0, "port"), svc.get("spec", "ports", 0, "name"))
		}
		if !reflect.DeepEqual(r.get("spec", "namespaceSelector", "matchNames"), []any{sm.ns}) {
			t.Errorf("ServiceMonitor %s looks in %v, want [%s]", sm.name, r.get("spec", "namespaceSelector"), sm.ns)
		}
	}

	rule := find(t, res, "kubernetes:monitoring.coreos.com/v1:PrometheusRule", "monitoring", "infralab-alerts")
	var names []string
	for _, r := range asList(rule.get("spec", "groups", 0, "rules")) {
		names = append(names, get(r, "alert").(string))
		if get(r, "expr") == "" || get(r, "labels", "severity") == nil || get(r, "annotations", "summary") == nil {
			t.Errorf("alert %v lacks expr, severity or summary", get(r, "alert"))
		}
	}
	sort.Strings(names)
	if !reflect.DeepEqual(names, wantAlerts) {
		t.Errorf("alerts = %v, want %v", names, wantAlerts)
	}

	// Dashboards: one ConfigMap per JSON file, labelled for the sidecar, each a valid dashboard.
	var dashboards []string
	for _, cm := range ofType(res, "kubernetes:core/v1:ConfigMap") {
		if cm.get("metadata", "labels", "grafana_dashboard") != "1" {
			continue
		}
		for file, body := range asMap(cm.get("data")) {
			var d struct {
				UID    string           `json:"uid"`
				Title  string           `json:"title"`
				Panels []map[string]any `json:"panels"`
			}
			if err := json.Unmarshal([]byte(body.(string)), &d); err != nil {
				t.Errorf("%s: %v", file, err)
			}
			if d.UID == "" || d.Title == "" || len(d.Panels) < 4 {
				t.Errorf("%s: uid %q title %q panels %d: not a usable dashboard", file, d.UID, d.Title, len(d.Panels))
			}
			dashboards = append(dashboards, file)
		}
	}
	sort.Strings(dashboards)
	if !reflect.DeepEqual(dashboards, []string{"nodes.json", "pods.json", "postgresql.json"}) {
		t.Errorf("dashboards = %v", dashboards)
	}
}

func TestStandalonePrometheus(t *testing.T) {
	res := declare(t, standaloneArgs())
	for _, r := range res {
		if strings.Contains(r.Type, "monitoring.coreos.com") || strings.Contains(r.Type, "helm.sh") {
			t.Errorf("%s declared in standalone mode", r.key())
		}
	}
	cm := find(t, res, "kubernetes:core/v1:ConfigMap", "monitoring", "prometheus")
	var cfg struct {
		RuleFiles     []string `json:"rule_files"`
		ScrapeConfigs []struct {
			Job           string `json:"job_name"`
			StaticConfigs []struct {
				Targets []string `json:"targets"`
			} `json:"static_configs"`
			DNSSDConfigs []struct {
				Names []string `json:"names"`
				Type  string   `json:"type"`
				Port  int      `json:"port"`
			} `json:"dns_sd_configs"`
		} `json:"scrape_configs"`
	}
	if err := yaml.Unmarshal([]byte(cm.str("data", "prometheus.yml")), &cfg); err != nil {
		t.Fatal(err)
	}
	targets := map[string]string{}
	for _, s := range cfg.ScrapeConfigs {
		if len(s.DNSSDConfigs) > 0 {
			d := s.DNSSDConfigs[0]
			targets[s.Job] = fmt.Sprintf("%s %s:%d", d.Type, d.Names[0], d.Port)
			continue
		}
		targets[s.Job] = s.StaticConfigs[0].Targets[0]
	}
	// Each api replica on its own: through the ClusterIP Service, scrapes would alternate
	// between replicas and their counters read as resets.
	want := map[string]string{
		"healthcare-api":    "A healthcare-api-metrics.healthcare.svc.cluster.local:8080",
		"postgres-exporter": "postgres-exporter.database.svc:9187",
		"prometheus":        "localhost:9090",
	}
	if !reflect.DeepEqual(targets, want) {
		t.Errorf("targets = %v, want %v", targets, want)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `json:"alert"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.Unmarshal([]byte(cm.str("data", "rules.yml")), &rules); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rules.Groups[0].Rules {
		names = append(names, r.Alert)
	}
	sort.Strings(names)
	if !reflect.DeepEqual(names, wantAlerts) {
		t.Errorf("standalone alerts = %v, want %v", names, wantAlerts)
	}
	dep := find(t, res, "kubernetes:apps/v1:Deployment", "monitoring", "prometheus")
	if dep.get("metadata", "labels", labelName) != "prometheus" || dep.get("spec", "template", "metadata", "labels", labelName) != "prometheus" {
		t.Error("standalone Prometheus pods lack the label the scrape NetworkPolicies select")
	}
}

// promtool (Debian's prometheus 2.42) checks the generated config and rules for real and runs
// unit tests of the alerts' behaviour.
func TestPromtoolAcceptsConfigAndRules(t *testing.T) {
	promtool := testenv.Tool(t, "promtool")
	a := standaloneArgs().withDefaults()
	dir := t.TempDir()
	cfg, err := a.prometheusConfig()
	if err != nil {
		t.Fatal(err)
	}
	rules, err := a.rulesFile()
	if err != nil {
		t.Fatal(err)
	}
	rulesPath := filepath.Join(dir, "rules.yml")
	cfg = strings.ReplaceAll(cfg, "/etc/prometheus/rules.yml", rulesPath)
	write(t, filepath.Join(dir, "prometheus.yml"), cfg)
	write(t, rulesPath, rules)
	write(t, filepath.Join(dir, "alerts_test.yml"), alertUnitTests)
	for _, args := range [][]string{
		{"check", "config", filepath.Join(dir, "prometheus.yml")},
		{"check", "rules", rulesPath},
		{"test", "rules", filepath.Join(dir, "alerts_test.yml")},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// alertUnitTests are promtool unit tests: each alert fires on the condition it names and stays
// quiet otherwise.
const alertUnitTests = `
rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'pg_up{instance="e:9187"}'
        values: '1 1 0 0 0 0'
      - series: 'pg_stat_activity_count{instance="e:9187",state="active"}'
        values: '10 10 85 85 85 85 85 85 85 85'
      - series: 'pg_settings_max_connections{instance="e:9187"}'
        values: '100x10'
      - series: 'kubelet_volume_stats_used_bytes{namespace="database",persistentvolumeclaim="data-postgres-0"}'
        values: '90x10'
      - series: 'kubelet_volume_stats_capacity_bytes{namespace="database",persistentvolumeclaim="data-postgres-0"}'
        values: '100x10'
      - series: 'kube_node_status_condition{node="worker-1",condition="Ready",status="true"}'
        values: '1 0 0 0 0 0 0 0'
    alert_rule_test:
      - eval_time: 1m
        alertname: PostgresDown
        exp_alerts: []
      - eval_time: 4m
        alertname: PostgresDown
        exp_alerts:
          - exp_labels: {severity: critical, instance: "e:9187"}
            exp_annotations:
              summary: PostgreSQL is down or not scraped
              description: postgres_exporter cannot reach PostgreSQL (pg_up is 0) or the exporter itself is missing.
      - eval_time: 3m
        alertname: TooManyDBConnections
        exp_alerts: []
      - eval_time: 8m
        alertname: TooManyDBConnections
        exp_alerts:
          - exp_labels: {severity: warning, instance: "e:9187"}
            exp_annotations:
              summary: PostgreSQL connections above 80% of max_connections
              description: 85% of max_connections are in use; check api.poolSize x replicas (the seed's real limit was connection pooling).
      - eval_time: 6m
        alertname: PersistentVolumeAlmostFull
        exp_alerts:
          - exp_labels: {severity: warning, namespace: database, persistentvolumeclaim: data-postgres-0}
            exp_annotations:
              summary: PVC database/data-postgres-0 is above 85%
              description: The volume is 90% full; grow it before the database stops accepting writes.
      - eval_time: 7m
        alertname: NodeDown
        exp_alerts:
          - exp_labels: {severity: critical, node: worker-1, condition: Ready, status: "true"}
            exp_annotations:
              summary: Node worker-1 is not Ready
              description: Node worker-1 has not been Ready for 5 minutes; its pods are not being served.

  # Container alerts: one container of each pair matches, its neighbour must stay quiet.
  # kube-state-metrics exposes last_terminated_reason only once a container has terminated, so the
  # series is absent (_) before the restart, as it is on a real cluster.
  - interval: 1m
    input_series:
      # In CrashLoopBackOff from 2m on; the other container is waiting for another reason.
      - series: 'kube_pod_container_status_waiting_reason{namespace="healthcare",pod="healthcare-api-7d9f",container="api",reason="CrashLoopBackOff"}'
        values: '0 0 1x20'
      - series: 'kube_pod_container_status_waiting_reason{namespace="healthcare",pod="healthcare-api-5c2b",container="api",reason="CrashLoopBackOff"}'
        values: '0x22'
      # Both restart once at 5m: postgres because it was OOMKilled, the api for another reason.
      - series: 'kube_pod_container_status_restarts_total{namespace="database",pod="postgres-0",container="postgres"}'
        values: '0x4 1x20'
      - series: 'kube_pod_container_status_last_terminated_reason{namespace="database",pod="postgres-0",container="postgres",reason="OOMKilled"}'
        values: '_ _ _ _ _ 1x20'
      - series: 'kube_pod_container_status_restarts_total{namespace="healthcare",pod="healthcare-api-5c2b",container="api"}'
        values: '0x4 1x20'
      - series: 'kube_pod_container_status_last_terminated_reason{namespace="healthcare",pod="healthcare-api-5c2b",container="api",reason="Error"}'
        values: '_ _ _ _ _ 1x20'
    alert_rule_test:
      # Pending for its 10 minutes, then firing for the crash-looping container only.
      - eval_time: 11m
        alertname: PodCrashLooping
        exp_alerts: []
      - eval_time: 13m
        alertname: PodCrashLooping
        exp_alerts:
          - exp_labels: {severity: warning, namespace: healthcare, pod: healthcare-api-7d9f, container: api, reason: CrashLoopBackOff}
            exp_annotations:
              summary: healthcare/healthcare-api-7d9f is crash-looping
              description: 'Container api keeps restarting; check ` + "`kubectl logs --previous`" + `.'
      # The restart counts while it is inside the 10-minute window: the alert fires from the
      # restart on (5m) until it leaves the window (15m), also for a container younger than that.
      - eval_time: 4m
        alertname: ContainerOOMKilled
        exp_alerts: []
      - eval_time: 6m
        alertname: ContainerOOMKilled
        exp_alerts:
          - exp_labels: {severity: warning, namespace: database, pod: postgres-0, container: postgres}
            exp_annotations:
              summary: database/postgres-0 was OOMKilled
              description: Container postgres exceeded its memory limit in the last 10 minutes; raise the limit or fix the leak.
      - eval_time: 12m
        alertname: ContainerOOMKilled
        exp_alerts:
          - exp_labels: {severity: warning, namespace: database, pod: postgres-0, container: postgres}
            exp_annotations:
              summary: database/postgres-0 was OOMKilled
              description: Container postgres exceeded its memory limit in the last 10 minutes; raise the limit or fix the leak.
      - eval_time: 16m
        alertname: ContainerOOMKilled
        exp_alerts: []
`

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}
