package apps

import (
	"embed"
	"path"
	"sort"
	"strings"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apiextensions"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	helmv4 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/helm/v4"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	rbacv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/rbac/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

//go:embed dashboards/*.json
var dashboardFiles embed.FS

const (
	chartName     = "kube-prometheus-stack"
	chartRelease  = "kps"
	grafanaSecret = "grafana-admin"
	// grafanaRole is the Role the chart binds Grafana's sidecars to (rbac.useExistingRole).
	grafanaRole    = "grafana-sidecar-configmaps"
	dashboardLabel = "grafana_dashboard"
)

func (p *builder) ensureMonitoring() error {
	switch p.args.Monitoring.Mode {
	case MonitoringChart:
		return p.ensureChart()
	case MonitoringStandalone:
		return p.ensureStandalonePrometheus()
	}
	return nil
}

// ensureChart installs kube-prometheus-stack and our ServiceMonitors, alerts and dashboards.
func (p *builder) ensureChart() error {
	a := p.args
	m := a.Monitoring
	ns := a.Namespaces.Monitoring
	gs, err := p.secret(grafanaSecret, ns, "monitoring", map[string]pulumi.StringInput{
		"admin-user":     pulumi.String("admin"),
		"admin-password": a.Secrets.GrafanaAdminPassword,
	})
	if err != nil {
		return err
	}

	chartArgs := &helmv4.ChartArgs{
		Chart:     pulumi.String(chartName),
		Version:   pulumi.String(m.ChartVersion),
		Name:      pulumi.String(chartRelease),
		Namespace: pulumi.String(ns),
		SkipAwait: pulumi.Bool(a.SkipAwait),
		Values:    a.chartValues(),
	}
	if strings.HasPrefix(m.ChartRepo, "oci://") {
		chartArgs.Chart = pulumi.String(strings.TrimSuffix(m.ChartRepo, "/") + "/" + chartName)
	} else {
		chartArgs.RepositoryOpts = &helmv4.RepositoryOptsArgs{Repo: pulumi.String(m.ChartRepo)}
	}
	role, err := p.ensureGrafanaRole(ns)
	if err != nil {
		return err
	}
	deps := []pulumi.Resource{gs, role}
	if n, ok := p.namespaces[a.Namespaces.NodeExporter]; ok {
		deps = append(deps, n)
	}
	// The chart is the one place this layer accepts cluster-wide objects beyond namespaces and
	// storage: the monitoring.coreos.com CRDs (cluster-scoped by nature); an admission webhook, so
	// a malformed PrometheusRule is refused instead of breaking rule evaluation; and ClusterRoles,
	// because the operator reconciles ServiceMonitors and PrometheusRules in every namespace (ours
	// live in healthcare and database; a fixed list would silently drop one added later),
	// kube-state-metrics lists nodes and every namespace's workloads, and Prometheus discovers
	// Endpoints, Pods and Nodes and scrapes the kubelets. Grafana's sidecars need only this
	// namespace and get a Role (grafanaValues).
	chart, err := helmv4.NewChart(p.ctx, ns+"-"+chartName, chartArgs, p.opts(ns, pulumi.DependsOn(deps))...)
	if err != nil {
		return err
	}

	// Custom resources need the chart's CRDs and operator first.
	crOpts := p.opts(ns, pulumi.DependsOn([]pulumi.Resource{chart}))
	for _, sm := range []struct{ name, ns, port string }{
		{apiName, a.Namespaces.API, "http"},
		{exporterName, a.Namespaces.Database, "metrics"},
	} {
		if _, err := apiextensions.NewCustomResource(p.ctx, ns+"-servicemonitor-"+sm.name, &apiextensions.CustomResourceArgs{
			ApiVersion: pulumi.String("monitoring.coreos.com/v1"),
			Kind:       pulumi.String("ServiceMonitor"),
			Metadata:   p.crMeta(sm.name, ns),
			OtherFields: kubernetes.UntypedArgs{"spec": map[string]any{
				"selector":          map[string]any{"matchLabels": map[string]any{labelName: sm.name}},
				"namespaceSelector": map[string]any{"matchNames": []any{sm.ns}},
				"endpoints":         []any{map[string]any{"port": sm.port, "path": "/metrics", "interval": "30s"}},
			}},
		}, crOpts...); err != nil {
			return err
		}
	}
	var rules []any
	for _, r := range a.alertRules() {
		rules = append(rules, r.toMap())
	}
	if _, err := apiextensions.NewCustomResource(p.ctx, ns+"-prometheusrule-infralab", &apiextensions.CustomResourceArgs{
		ApiVersion: pulumi.String("monitoring.coreos.com/v1"),
		Kind:       pulumi.String("PrometheusRule"),
		Metadata:   p.crMeta("infralab-alerts", ns),
		OtherFields: kubernetes.UntypedArgs{"spec": map[string]any{
			"groups": []any{map[string]any{"name": alertGroup, "rules": rules}},
		}},
	}, crOpts...); err != nil {
		return err
	}
	return p.ensureDashboards(ns)
}

// crMeta labels our custom resources with the chart's release so its default selectors pick
// them up even if the NilUsesHelmValues overrides below are ever removed.
func (p *builder) crMeta(name, ns string) metav1.ObjectMetaPtrInput {
	m := p.meta(name, ns, "monitoring", false)
	m.Labels.(pulumi.StringMap)["release"] = pulumi.String(chartRelease)
	return &m
}

// ensureDashboards ships dashboards/*.json as ConfigMaps that Grafana's sidecar loads.
func (p *builder) ensureDashboards(ns string) error {
	entries, err := dashboardFiles.ReadDir("dashboards")
	if err != nil {
		return err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		body, err := dashboardFiles.ReadFile(path.Join("dashboards", e.Name()))
		if err != nil {
			return err
		}
		name := "grafana-dashboard-" + strings.TrimSuffix(e.Name(), ".json")
		meta := p.meta(name, ns, "monitoring", false)
		meta.Labels.(pulumi.StringMap)[dashboardLabel] = pulumi.String("1")
		if _, err := corev1.NewConfigMap(p.ctx, ns+"-"+name, &corev1.ConfigMapArgs{
			Metadata: meta,
			Data:     pulumi.StringMap{e.Name(): pulumi.String(string(body))},
		}, p.opts(ns)...); err != nil {
			return err
		}
	}
	return nil
}

func (r alertRule) toMap() map[string]any {
	out := map[string]any{"alert": r.Alert, "expr": r.Expr, "labels": toAny(r.Labels), "annotations": toAny(r.Annotations)}
	if r.For != "" {
		out["for"] = r.For
	}
	return out
}

func toAny(m map[string]string) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// ensureGrafanaRole replaces the Role the grafana chart would create, which grants get, list and
// watch on every ConfigMap and Secret in the monitoring namespace: the admission webhook's TLS
// key, Alertmanager's and Prometheus's config, grafana-admin. Our dashboards and the chart's
// datasource are ConfigMaps (sidecar resource "configmap"), so the sidecars get ConfigMaps only.
// They select by label, and a list or watch by label cannot be narrowed with resourceNames.
func (p *builder) ensureGrafanaRole(ns string) (*rbacv1.Role, error) {
	return rbacv1.NewRole(p.ctx, ns+"-"+grafanaRole, &rbacv1.RoleArgs{
		Metadata: p.meta(grafanaRole, ns, "monitoring", false),
		Rules: rbacv1.PolicyRuleArray{rbacv1.PolicyRuleArgs{
			ApiGroups: pulumi.StringArray{pulumi.String("")},
			Resources: pulumi.StringArray{pulumi.String("configmaps")},
			Verbs:     pulumi.ToStringArray([]string{"get", "list", "watch"}),
		}},
	}, p.opts(ns)...)
}
