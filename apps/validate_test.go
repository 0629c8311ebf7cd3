package apps

import (
	"strings"
	"testing"
)

func TestBadArgsFailBeforeAnyResource(t *testing.T) {
	cases := map[string]struct {
		mutate func(*PlatformArgs)
		want   []string
	}{
		"moving tags and missing images": {func(a *PlatformArgs) {
			a.API.Image = "ghcr.io/infralab/healthcare-api:latest"
			a.Postgres.Image = "postgres"
			a.Exporter.Image = ""
		}, []string{"api.image: ", `moving tag "latest"`, "postgres.image: \"postgres\" has no tag", "exporter.image: required"}},
		"pool does not fit max_connections": {func(a *PlatformArgs) {
			a.API.Replicas = 4
			a.API.PoolSize = 20
		}, []string{"postgres.maxConnections: 100 is too small: 5 api pods (replicas 4 + 1 surge) x poolSize 20 = 100"}},
		"node-exporter without exception": {func(a *PlatformArgs) {
			a.PSAExceptions = nil
		}, []string{"psaExceptions.monitoring-node: node-exporter uses hostNetwork"}},
		"exception without reason or for a foreign namespace": {func(a *PlatformArgs) {
			a.PSAExceptions["kube-system"] = PSAException{Level: "root"}
		}, []string{`psaExceptions.kube-system: namespace "kube-system" is not created by this layer`,
			`psaExceptions.kube-system.level: "root" must be baseline or privileged`, "psaExceptions.kube-system.reason: required"}},
		"chart mode without network facts": {func(a *PlatformArgs) {
			a.Monitoring.KubeAPICIDRs = nil
			a.Monitoring.NodeCIDRs = []string{"10.10.10.0"}
			a.Secrets.GrafanaAdminPassword = nil
		}, []string{"monitoring.kubeAPICIDRs: required in chart mode", `monitoring.nodeCIDRs[0]: "10.10.10.0" is not a CIDR`,
			"secrets.grafanaAdminPassword: required in chart mode"}},
		"local storage without a node": {func(a *PlatformArgs) {
			a.Postgres.Local = &LocalVolume{Path: "data"}
		}, []string{"postgres.local.nodeName: required", `postgres.local.path: "data" must be a clean absolute directory`}},
		"quota below a rollout": {func(a *PlatformArgs) {
			a.Quotas.API.LimitsMemory = "512Mi"
			a.Quotas.API.Pods = 2
		}, []string{"quotas.api.limitsMemory: 512Mi is below what the workloads need during a rollout (768Mi)", "quotas.api.pods: 2 is below the 3 pods"}},
		"unknown mode, bad ingress source, missing secrets": {func(a *PlatformArgs) {
			a.Monitoring.Mode = "prometheus"
			a.API.AllowIngressFrom = []IngressSource{{}}
			a.Secrets.PostgresPassword = nil
		}, []string{`monitoring.mode: "prometheus" is not one of chart, standalone, off`,
			"api.allowIngressFrom[0]: empty source would allow every pod", "secrets.postgresPassword: required"}},
		"requests above limits and duplicate namespaces": {func(a *PlatformArgs) {
			a.API.Resources = Resources{"2", "128Mi", "1", "256Mi", "64Mi", "256Mi"}
			a.Namespaces.Database = "healthcare"
		}, []string{"api.resources.requestsCPU: 2 exceeds the limit 1", `namespaces.database: "healthcare" is already used by namespaces.api`}},
		"standalone without image": {func(a *PlatformArgs) {
			*a = standaloneArgs()
			a.Monitoring.PrometheusImage = ""
			a.Monitoring.Retention = "forever"
		}, []string{"monitoring.prometheusImage: required", `monitoring.retention: "forever" is not a Prometheus duration`}},
		"standalone with a storage class it cannot use": {func(a *PlatformArgs) {
			*a = standaloneArgs()
			a.Monitoring.StorageClass = "longhorn"
			a.Monitoring.StorageSize = "lots"
		}, []string{`monitoring.storageClass: "longhorn" has no effect in standalone mode`, "use mode chart for a persistent volume",
			`monitoring.storageSize: "lots" is not a Kubernetes quantity`}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			a := baseArgs()
			c.mutate(&a)
			res, err := tryDeclare(a)
			if err == nil {
				t.Fatal("NewPlatform accepted bad arguments")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if len(res) != 0 {
				t.Errorf("%d resources declared before the error", len(res))
			}
		})
	}
}

func TestDefaultsAreValid(t *testing.T) {
	for mode, args := range modes {
		if err := args().withDefaults().validate(); err != nil {
			t.Errorf("%s: %v", mode, err)
		}
	}
}
