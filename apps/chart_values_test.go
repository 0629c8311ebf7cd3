package apps

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
)

// The Helm v4 Chart's workloads never reach these unit tests as objects (under mocks the Chart is
// one opaque resource), so the hardening is checked where it is decided: in the values each
// component's template turns into its pod spec.
func TestChartWorkloadsAreHardened(t *testing.T) {
	charts := ofType(declare(t, baseArgs()), "kubernetes:helm.sh/v4:Chart")
	if len(charts) != 1 {
		t.Fatalf("charts = %d, want 1", len(charts))
	}
	values := asMap(charts[0].get("values"))

	type path = []any
	components := []struct {
		name string
		// pod is the pod-level securityContext.
		pod path
		// containers are container-level securityContexts; none where the operator writes them.
		containers []path
		resources  []path
		// annotations holds the pod annotations; nil for a component that gets no token.
		annotations path
		automount   path
		// images hold the values whose pullPolicy must be explicit; none for operator-built pods.
		images []path
	}{
		{name: "grafana",
			pod: path{"grafana", "securityContext"},
			containers: []path{{"grafana", "containerSecurityContext"}, {"grafana", "sidecar", "securityContext"},
				{"grafana", "downloadDashboards", "securityContext"}},
			resources:   []path{{"grafana", "resources"}, {"grafana", "sidecar", "resources"}, {"grafana", "downloadDashboards", "resources"}},
			annotations: path{"grafana", "podAnnotations"},
			automount:   path{"grafana", "automountServiceAccountToken"},
			images:      []path{{"grafana", "image"}, {"grafana", "sidecar", "image"}, {"grafana", "downloadDashboardsImage"}}},
		{name: "prometheus-operator",
			pod:         path{"prometheusOperator", "securityContext"},
			containers:  []path{{"prometheusOperator", "containerSecurityContext"}},
			resources:   []path{{"prometheusOperator", "resources"}, {"prometheusOperator", "prometheusConfigReloader", "resources"}},
			annotations: path{"prometheusOperator", "podAnnotations"},
			automount:   path{"prometheusOperator", "automountServiceAccountToken"},
			images:      []path{{"prometheusOperator", "image"}}},
		{name: "admission webhook jobs",
			pod: path{"prometheusOperator", "admissionWebhooks", "patch", "securityContext"},
			containers: []path{{"prometheusOperator", "admissionWebhooks", "createSecretJob", "securityContext"},
				{"prometheusOperator", "admissionWebhooks", "patchWebhookJob", "securityContext"}},
			resources:   []path{{"prometheusOperator", "admissionWebhooks", "patch", "resources"}},
			annotations: path{"prometheusOperator", "admissionWebhooks", "patch", "podAnnotations"},
			images:      []path{{"prometheusOperator", "admissionWebhooks", "patch", "image"}}},
		{name: "kube-state-metrics",
			pod:         path{"kube-state-metrics", "securityContext"},
			containers:  []path{{"kube-state-metrics", "containerSecurityContext"}},
			resources:   []path{{"kube-state-metrics", "resources"}},
			annotations: path{"kube-state-metrics", "podAnnotations"},
			automount:   path{"kube-state-metrics", "automountServiceAccountToken"},
			images:      []path{{"kube-state-metrics", "image"}}},
		{name: "prometheus",
			pod:         path{"prometheus", "prometheusSpec", "securityContext"},
			resources:   []path{{"prometheus", "prometheusSpec", "resources"}},
			annotations: path{"prometheus", "prometheusSpec", "podMetadata", "annotations"},
			automount:   path{"prometheus", "prometheusSpec", "automountServiceAccountToken"}},
		{name: "alertmanager",
			pod:       path{"alertmanager", "alertmanagerSpec", "securityContext"},
			resources: []path{{"alertmanager", "alertmanagerSpec", "resources"}},
			automount: path{"alertmanager", "alertmanagerSpec", "automountServiceAccountToken"}},
		{name: "node-exporter",
			pod:        path{"prometheus-node-exporter", "securityContext"},
			containers: []path{{"prometheus-node-exporter", "containerSecurityContext"}},
			resources:  []path{{"prometheus-node-exporter", "resources"}},
			automount:  path{"prometheus-node-exporter", "serviceAccount", "automountServiceAccountToken"},
			images:     []path{{"prometheus-node-exporter", "image"}}},
	}
	for _, c := range components {
		t.Run(c.name, func(t *testing.T) {
			psc := asMap(get(values, c.pod...))
			if psc["runAsNonRoot"] != true || get(psc, "seccompProfile", "type") != "RuntimeDefault" {
				t.Errorf("pod securityContext %v lacks runAsNonRoot/seccomp RuntimeDefault", psc)
			}
			// Policy rule pod-high-uid-gid: no id of the node's own accounts.
			for _, k := range []string{"runAsUser", "runAsGroup", "fsGroup"} {
				if id, _ := psc[k].(float64); id < 10000 {
					t.Errorf("pod securityContext.%s = %v, want an id of 10000 or more", k, psc[k])
				}
			}
			for _, p := range c.images {
				if pp := get(values, append(p, "pullPolicy")...); pp != "IfNotPresent" {
					t.Errorf("%s.pullPolicy = %v, want IfNotPresent set explicitly", keyPath(p), pp)
				}
			}
			for _, p := range c.containers {
				checkHardened(t, c.name+" "+keyPath(p), asMap(get(values, p...)))
			}
			for _, p := range c.resources {
				checkChartResources(t, c.name+" "+keyPath(p), asMap(get(values, p...)))
			}
			if c.annotations != nil {
				reason, _ := get(values, append(c.annotations, AnnotationNeedsAPIAccess)...).(string)
				if strings.TrimSpace(reason) == "" {
					t.Errorf("%s: no %s reason, but the component mounts a token", keyPath(c.annotations), AnnotationNeedsAPIAccess)
				}
				if c.automount != nil && get(values, c.automount...) != true {
					t.Errorf("%s = %v, want true next to the opt-in", keyPath(c.automount), get(values, c.automount...))
				}
			} else if get(values, c.automount...) != false {
				t.Errorf("%s = %v, want false: the component has no API access opt-in", keyPath(c.automount), get(values, c.automount...))
			}
		})
	}

	// kube-state-metrics drops its pod securityContext entirely unless enabled is true.
	if get(values, "kube-state-metrics", "securityContext", "enabled") != true {
		t.Error("kube-state-metrics.securityContext.enabled is not true, so the chart would render no pod securityContext")
	}
	// Grafana's chart probes /api/health for readiness and liveness; liveness must differ.
	if get(values, "grafana", "livenessProbe", "httpGet", "path") != "/healthz" {
		t.Errorf("grafana.livenessProbe = %v, want GET /healthz (readiness keeps /api/health)", get(values, "grafana", "livenessProbe"))
	}
	// A TSDB in an emptyDir stays below Prometheus' ephemeral-storage limit.
	if get(values, "prometheus", "prometheusSpec", "retentionSize") != prometheusRetentionSize {
		t.Errorf("prometheusSpec.retentionSize = %v, want %s with no storageClass", get(values, "prometheus", "prometheusSpec", "retentionSize"), prometheusRetentionSize)
	}
	// Grafana's init-chown-data runs as root; with persistence off nothing needs it.
	if get(values, "grafana", "initChownData", "enabled") != false {
		t.Error("grafana.initChownData is not disabled")
	}
	// Grafana's sidecars read only the monitoring namespace, through a Role.
	if get(values, "grafana", "rbac", "namespaced") != true || get(values, "grafana", "sidecar", "dashboards", "searchNamespace") != "" {
		t.Errorf("grafana rbac %v, dashboards searchNamespace %q: want a namespaced Role and the pod's own namespace",
			get(values, "grafana", "rbac"), get(values, "grafana", "sidecar", "dashboards", "searchNamespace"))
	}
	// ... bound to our ConfigMaps-only Role, and they look for ConfigMaps, never Secrets.
	if get(values, "grafana", "rbac", "useExistingRole") != grafanaRole ||
		get(values, "grafana", "sidecar", "dashboards", "resource") != "configmap" ||
		get(values, "grafana", "sidecar", "datasources", "resource") != "configmap" {
		t.Errorf("grafana rbac %v, sidecar %v: want useExistingRole %s and resource configmap for dashboards and datasources",
			get(values, "grafana", "rbac"), get(values, "grafana", "sidecar"), grafanaRole)
	}
}

func checkChartResources(t *testing.T, name string, r map[string]any) {
	t.Helper()
	for _, res := range []string{"cpu", "memory", "ephemeral-storage"} {
		req, _ := get(r, "requests", res).(string)
		lim, _ := get(r, "limits", res).(string)
		rq, err1 := resource.ParseQuantity(req)
		lq, err2 := resource.ParseQuantity(lim)
		if err1 != nil || err2 != nil {
			t.Errorf("%s: %s request %q / limit %q are not both quantities", name, res, req, lim)
			continue
		}
		if rq.Cmp(lq) > 0 {
			t.Errorf("%s: %s request %s exceeds the limit %s", name, res, req, lim)
		}
	}
}

func keyPath(p []any) string {
	var parts []string
	for _, k := range p {
		parts = append(parts, k.(string))
	}
	return strings.Join(parts, ".")
}
