package apps

import "github.com/pulumi/pulumi/sdk/v3/go/pulumi"

// The Helm v4 Chart renders every object of kube-prometheus-stack as a Pulumi resource, so the
// policy pack checks the chart's Deployments, DaemonSet and Jobs exactly like ours: each needs the
// restricted security context, requests and limits, and either no API token or the opt-in
// annotation with a reason. The chart's defaults meet none of that completely, so the values below
// set it per component. Key names are those of kube-prometheus-stack's values.yaml and of its
// grafana, kube-state-metrics and prometheus-node-exporter subcharts.

// The non-root users the chart's pods run as, all at or above 10000 (policy rule
// pod-high-uid-gid) so none is an account of the node.
const (
	// grafanaUID replaces the image's 472: Grafana runs under any uid once initChownData is off
	// (the grafana chart's values.yaml says so); fsGroup gives it its storage emptyDir.
	grafanaUID  = 10472
	chartNobody = 65534 // operator, kube-state-metrics, node-exporter and the webhook jobs run as nobody
	// Prometheus and Alertmanager (images' default user: nobody) move from the chart's 1000:2000.
	// A volume written as 1000:2000 stays usable: on the next mount the kubelet gives it to the
	// new fsGroup and adds group read and write (fsGroupChangePolicy of the operator's pods is the
	// default, Always).
	chartPromUID = 65534
	chartPromGID = 65534
)

// Requests and limits of the chart's containers. MonitoringArgs has no field for them (its
// PrometheusResources size the standalone Prometheus, which scrapes two targets), so they are
// sized here for the lab: three nodes, one Prometheus replica, 15 days of retention.
var (
	// Grafana's storage and /tmp emptyDirs (dashboards, sqlite) count toward its ephemeral limit.
	grafanaResources        = Resources{"100m", "192Mi", "500m", "512Mi", "128Mi", "1Gi"}
	grafanaSidecarResources = Resources{"20m", "64Mi", "100m", "128Mi", "16Mi", "64Mi"}
	operatorResources       = Resources{"50m", "64Mi", "200m", "256Mi", "16Mi", "64Mi"}
	// The operator passes only cpu and memory on to the config-reloader sidecars it adds.
	configReloaderResources = Resources{"10m", "32Mi", "100m", "64Mi", "16Mi", "64Mi"}
	webhookJobResources     = Resources{"10m", "32Mi", "100m", "64Mi", "16Mi", "64Mi"}
	kubeStateResources      = Resources{"20m", "64Mi", "200m", "256Mi", "16Mi", "64Mi"}
	// Alertmanager keeps its silences and notification log in an emptyDir.
	alertmanagerResources = Resources{"20m", "64Mi", "200m", "128Mi", "64Mi", "512Mi"}
	// Without a storageClass the TSDB lives in an emptyDir that counts toward this limit;
	// prometheusRetentionSize keeps it below (chartValues).
	chartPrometheusResources = Resources{"250m", "1Gi", "1", "2Gi", "1Gi", "12Gi"}
	nodeExporterResources    = Resources{"20m", "32Mi", "200m", "64Mi", "16Mi", "64Mi"}
)

// prometheusRetentionSize bounds a TSDB kept in an emptyDir, so Prometheus deletes old blocks
// before the kubelet evicts the pod for its ephemeral-storage limit.
const prometheusRetentionSize = "10GB"

// Pull policies of the chart's images, explicit (policy rule pod-image-pull-policy): the lab
// pulls them from their registries, IfNotPresent so a restart does not depend on the registry.
func chartPull() pulumi.Map { return pulumi.Map{"pullPolicy": pulumi.String("IfNotPresent")} }

// Probe notes (policy rule pod-probes-distinct): kube-state-metrics already probes /livez and
// /readyz. Grafana's chart probes /api/health for both; its liveness moves to /healthz, which
// answers while the web server runs and touches no database. The operator's and node-exporter's
// templates render the same GET for both probes with no value to change the path; neither
// endpoint depends on anything that can be down, so the pair cannot restart a healthy pod, and
// stacks/policy.lab.json grants those two an exception with that reason (the operator's by its
// Pulumi name, which the provider makes "<chart resource>:<namespace>/<object>":
// pulumi-kubernetes provider/v4 pkg/provider/yaml/v2/yaml.go).

// Why each chart component that mounts a ServiceAccount token needs the Kubernetes API; the
// policy pack reads these from the pod annotation AnnotationNeedsAPIAccess.
const (
	operatorAPIReason   = "reconciles Prometheus, Alertmanager, ServiceMonitor and PrometheusRule objects in every namespace into StatefulSets, Secrets and Services"
	kubeStateAPIReason  = "lists and watches nodes, pods, workloads and PVCs cluster-wide to export their state as metrics"
	grafanaAPIReason    = "the dashboard and datasource sidecars watch labelled ConfigMaps in their own namespace"
	prometheusAPIReason = "discovers the Endpoints, Pods and Nodes that ServiceMonitors select"
	webhookJobAPIReason = "creates the admission webhook's TLS Secret and patches the webhook configurations with its CA bundle"
)

// chartValues are the kube-prometheus-stack values. Components that kubeadm binds to 127.0.0.1
// (controller-manager, scheduler, etcd, kube-proxy metrics) are not scraped: they would only
// produce "target down" alerts.
func (a PlatformArgs) chartValues() pulumi.Map {
	m := a.Monitoring
	promSpec := pulumi.Map{
		"retention": pulumi.String(m.Retention),
		// Select every ServiceMonitor/PrometheusRule, not only the chart's own.
		"serviceMonitorSelectorNilUsesHelmValues": pulumi.Bool(false),
		"podMonitorSelectorNilUsesHelmValues":     pulumi.Bool(false),
		"ruleSelectorNilUsesHelmValues":           pulumi.Bool(false),
		// The operator builds this StatefulSet at run time, so the policy pack never sees it, but
		// Pod Security restricted in the namespace does. The operator itself gives the prometheus
		// and config-reloader containers readOnlyRootFilesystem, no privilege escalation and no
		// capabilities; the pod context below adds the non-root user and seccomp they inherit.
		"securityContext":              chartPodSecurity(chartPromUID, chartPromGID),
		"resources":                    chartResources(chartPrometheusResources),
		"automountServiceAccountToken": pulumi.Bool(true),
		"podMetadata":                  pulumi.Map{"annotations": apiAccess(prometheusAPIReason)},
	}
	if m.StorageClass == "" {
		promSpec["retentionSize"] = pulumi.String(prometheusRetentionSize)
	}
	if m.StorageClass != "" {
		promSpec["storageSpec"] = pulumi.Map{"volumeClaimTemplate": pulumi.Map{"spec": pulumi.Map{
			"storageClassName": pulumi.String(m.StorageClass),
			"accessModes":      pulumi.StringArray{pulumi.String("ReadWriteOnce")},
			"resources":        pulumi.Map{"requests": pulumi.Map{"storage": pulumi.String(m.StorageSize)}},
		}}}
	}
	return pulumi.Map{
		"fullnameOverride":      pulumi.String(chartRelease),
		"kubeControllerManager": pulumi.Map{"enabled": pulumi.Bool(false)},
		"kubeScheduler":         pulumi.Map{"enabled": pulumi.Bool(false)},
		"kubeEtcd":              pulumi.Map{"enabled": pulumi.Bool(false)},
		"kubeProxy":             pulumi.Map{"enabled": pulumi.Bool(false)},
		"nodeExporter":          pulumi.Map{"enabled": pulumi.Bool(m.NodeExporter)},
		"prometheus-node-exporter": pulumi.Map{
			// Host access is confined to its own namespace with an explicit PSA exception.
			"namespaceOverride": pulumi.String(a.Namespaces.NodeExporter),
			// node-exporter cannot meet pod-host-access or pod-volume-types: it reads the host's
			// /proc, /sys and / through hostPath and needs hostNetwork and hostPID to report the
			// node's interfaces and processes rather than its own. Everything else is hardened.
			"serviceAccount":           pulumi.Map{"automountServiceAccountToken": pulumi.Bool(false)},
			"image":                    chartPull(),
			"securityContext":          chartPodSecurity(chartNobody, chartNobody),
			"containerSecurityContext": chartContainerSecurity(chartNobody, chartNobody),
			"resources":                chartResources(nodeExporterResources),
		},
		"prometheusOperator": a.operatorValues(),
		"kube-state-metrics": pulumi.Map{
			"automountServiceAccountToken": pulumi.Bool(true),
			"podAnnotations":               apiAccess(kubeStateAPIReason),
			"image":                        chartPull(),
			// This subchart renders its pod securityContext only with enabled: true.
			"securityContext":          withEntry(chartPodSecurity(chartNobody, chartNobody), "enabled", pulumi.Bool(true)),
			"containerSecurityContext": chartContainerSecurity(chartNobody, chartNobody),
			"resources":                chartResources(kubeStateResources),
		},
		"alertmanager": pulumi.Map{
			// Alertmanager only receives alerts and sends notifications: no API token at all.
			"serviceAccount": pulumi.Map{"automountServiceAccountToken": pulumi.Bool(false)},
			"alertmanagerSpec": pulumi.Map{
				"automountServiceAccountToken": pulumi.Bool(false),
				// As for Prometheus, the operator sets the container-level context.
				"securityContext": chartPodSecurity(chartPromUID, chartPromGID),
				"resources":       chartResources(alertmanagerResources),
			},
		},
		"prometheus": pulumi.Map{"prometheusSpec": promSpec},
		"grafana":    a.grafanaValues(),
	}
}

func (a PlatformArgs) operatorValues() pulumi.Map {
	return pulumi.Map{
		"automountServiceAccountToken": pulumi.Bool(true),
		"podAnnotations":               apiAccess(operatorAPIReason),
		"image":                        chartPull(),
		"securityContext":              chartPodSecurity(chartNobody, chartNobody),
		"containerSecurityContext":     chartContainerSecurity(chartNobody, chartNobody),
		"resources":                    chartResources(operatorResources),
		// The config-reloader sidecar the operator adds to Prometheus and Alertmanager pods.
		"prometheusConfigReloader": pulumi.Map{"resources": chartResources(configReloaderResources)},
		// The Helm v4 Chart deploys hook Jobs as ordinary Jobs, so the pack checks the two
		// certificate Jobs (admission-create, admission-patch) like any other workload.
		"admissionWebhooks": pulumi.Map{
			"patch": pulumi.Map{
				"podAnnotations":  apiAccess(webhookJobAPIReason),
				"image":           chartPull(),
				"securityContext": chartPodSecurity(chartNobody, chartNobody),
				"resources":       chartResources(webhookJobResources),
			},
			"createSecretJob": pulumi.Map{"securityContext": chartContainerSecurity(chartNobody, chartNobody)},
			"patchWebhookJob": pulumi.Map{"securityContext": chartContainerSecurity(chartNobody, chartNobody)},
		},
	}
}

func (a PlatformArgs) grafanaValues() pulumi.Map {
	return pulumi.Map{
		"admin": pulumi.Map{
			"existingSecret": pulumi.String(grafanaSecret),
			"userKey":        pulumi.String("admin-user"),
			"passwordKey":    pulumi.String("admin-password"),
		},
		"testFramework": pulumi.Map{"enabled": pulumi.Bool(false)},
		// Our dashboards and the chart's datasource live in the monitoring namespace, so the
		// sidecars need a Role there, not the chart's default ClusterRole over every namespace's
		// ConfigMaps and Secrets; searchNamespace "" makes them watch only their own namespace,
		// and the Role is ours (ensureGrafanaRole): ConfigMaps only, no Secrets.
		"rbac": pulumi.Map{"namespaced": pulumi.Bool(true), "useExistingRole": pulumi.String(grafanaRole)},
		"sidecar": pulumi.Map{
			"dashboards": pulumi.Map{
				"enabled":         pulumi.Bool(true),
				"label":           pulumi.String(dashboardLabel),
				"labelValue":      pulumi.String("1"),
				"searchNamespace": pulumi.String(""),
				"resource":        pulumi.String("configmap"),
			},
			"datasources": pulumi.Map{"resource": pulumi.String("configmap")},
			"image":       chartPull(),
			// One setting for every sidecar (dashboards, datasources) and their init variants.
			"securityContext": chartContainerSecurity(grafanaUID, grafanaUID),
			"resources":       chartResources(grafanaSidecarResources),
		},
		// The token is mounted for the sidecars; Grafana itself never uses it.
		"automountServiceAccountToken": pulumi.Bool(true),
		"podAnnotations":               apiAccess(grafanaAPIReason),
		"image":                        chartPull(),
		// Helm merges this into the chart's probe (GET /api/health on 3000, as readiness); only
		// the path changes.
		"livenessProbe":            pulumi.Map{"httpGet": pulumi.Map{"path": pulumi.String("/healthz")}},
		"securityContext":          chartPodSecurity(grafanaUID, grafanaUID),
		"containerSecurityContext": chartContainerSecurity(grafanaUID, grafanaUID),
		"resources":                chartResources(grafanaResources),
		// With a read-only root Grafana writes only to /var/lib/grafana (the chart's storage
		// emptyDir) and /tmp.
		"extraEmptyDirMounts": pulumi.Array{pulumi.Map{"name": pulumi.String("tmp"), "mountPath": pulumi.String("/tmp")}},
		// init-chown-data runs as root with CHOWN and only matters with persistence, which is off;
		// fsGroup already gives Grafana its storage.
		"initChownData":           pulumi.Map{"enabled": pulumi.Bool(false)},
		"downloadDashboardsImage": chartPull(),
		// Rendered only if dashboards are ever given as values; hardened so that cannot slip through.
		"downloadDashboards": pulumi.Map{
			"securityContext": chartContainerSecurity(grafanaUID, grafanaUID),
			"resources":       chartResources(grafanaSidecarResources),
		},
		"grafana.ini": pulumi.Map{"analytics": pulumi.Map{
			"check_for_updates": pulumi.Bool(false),
			"reporting_enabled": pulumi.Bool(false),
		}},
	}
}

// chartPodSecurity is podSecurity as chart values.
func chartPodSecurity(uid, gid int) pulumi.Map {
	return pulumi.Map{
		"runAsNonRoot":   pulumi.Bool(true),
		"runAsUser":      pulumi.Int(uid),
		"runAsGroup":     pulumi.Int(gid),
		"fsGroup":        pulumi.Int(gid),
		"seccompProfile": pulumi.Map{"type": pulumi.String("RuntimeDefault")},
	}
}

// chartContainerSecurity is containerSecurity as chart values. Every field is set even where the
// pod context would cover it: the pack and Pod Security read the container first.
func chartContainerSecurity(uid, gid int) pulumi.Map {
	return pulumi.Map{
		"runAsNonRoot":             pulumi.Bool(true),
		"runAsUser":                pulumi.Int(uid),
		"runAsGroup":               pulumi.Int(gid),
		"allowPrivilegeEscalation": pulumi.Bool(false),
		"privileged":               pulumi.Bool(false),
		"readOnlyRootFilesystem":   pulumi.Bool(true),
		"capabilities":             pulumi.Map{"drop": pulumi.StringArray{pulumi.String("ALL")}},
		"seccompProfile":           pulumi.Map{"type": pulumi.String("RuntimeDefault")},
	}
}

func chartResources(r Resources) pulumi.Map {
	return pulumi.Map{
		"requests": pulumi.Map{"cpu": pulumi.String(r.RequestsCPU), "memory": pulumi.String(r.RequestsMemory),
			"ephemeral-storage": pulumi.String(r.RequestsEphemeralStorage)},
		"limits": pulumi.Map{"cpu": pulumi.String(r.LimitsCPU), "memory": pulumi.String(r.LimitsMemory),
			"ephemeral-storage": pulumi.String(r.LimitsEphemeralStorage)},
	}
}

// apiAccess is the pod annotation that opts a chart component in to its ServiceAccount token.
func apiAccess(reason string) pulumi.Map {
	return pulumi.Map{AnnotationNeedsAPIAccess: pulumi.String(reason)}
}

func withEntry(m pulumi.Map, key string, v pulumi.Input) pulumi.Map {
	m[key] = v
	return m
}
