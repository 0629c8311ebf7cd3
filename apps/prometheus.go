package apps

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	rbacv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/rbac/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"sigs.k8s.io/yaml"
)

// prometheusConfig scrapes the api and the exporter through their Service DNS names, and, when
// configured, kube-state-metrics, node-exporter and each node's kubelet (its own metrics and
// cAdvisor's) on the kubelet's authenticated port with Prometheus's ServiceAccount token. All
// targets are static: Prometheus needs no list or watch access to the API.
func (a PlatformArgs) prometheusConfig() (string, error) {
	ns := a.Namespaces
	m := a.Monitoring
	job := func(name, target, namespace string) map[string]any {
		return map[string]any{
			"job_name":     name,
			"metrics_path": "/metrics",
			"static_configs": []any{map[string]any{
				"targets": []string{target},
				"labels":  map[string]string{"namespace": namespace, "service": name},
			}},
		}
	}
	// Every api replica on its own (the headless Service's A records), labelled like the others.
	apiJob := map[string]any{
		"job_name":     apiName,
		"metrics_path": "/metrics",
		"dns_sd_configs": []any{map[string]any{
			"names": []string{fmt.Sprintf("%s.%s.svc.cluster.local", apiMetricsService, ns.API)},
			"type":  "A", "port": a.API.Port, "refresh_interval": "30s",
		}},
		"relabel_configs": []any{
			map[string]any{"target_label": "namespace", "replacement": ns.API},
			map[string]any{"target_label": "service", "replacement": apiName},
		},
	}
	scrapes := []any{
		apiJob,
		job(exporterName, fmt.Sprintf("%s.%s.svc:%d", exporterName, ns.Database, exporterPort), ns.Database),
		job(prometheusName, fmt.Sprintf("localhost:%d", prometheusPort), ns.Monitoring),
	}
	if a.kubeStateMetricsOn() {
		// Its series carry the namespace and pod they describe: keep those over the target's.
		scrapes = append(scrapes, map[string]any{
			"job_name":     ksmName,
			"honor_labels": true,
			"static_configs": []any{map[string]any{
				"targets": []string{fmt.Sprintf("%s.%s.svc:%d", ksmName, ns.Monitoring, ksmPort)},
			}},
		})
	}
	if len(m.NodeAddresses) > 0 {
		var kubelets, nodeExporters []string
		for _, addr := range m.NodeAddresses {
			kubelets = append(kubelets, net.JoinHostPort(addr, "10250"))
			nodeExporters = append(nodeExporters, net.JoinHostPort(addr, fmt.Sprint(nodeExporterPort)))
		}
		kubelet := func(name, path string) map[string]any {
			return map[string]any{
				"job_name":     name,
				"metrics_path": path,
				"scheme":       "https",
				// cAdvisor's and the kubelet's series name their pod's namespace, pod and container.
				"honor_labels":  true,
				"authorization": map[string]any{"credentials_file": saTokenPath},
				// The kubelet's serving certificate is signed by the cluster CA (docs/node.md);
				// no insecure_skip_verify.
				"tls_config":     map[string]any{"ca_file": saCAPath},
				"static_configs": []any{map[string]any{"targets": kubelets}},
			}
		}
		scrapes = append(scrapes, kubelet("kubelet", "/metrics"), kubelet("cadvisor", "/metrics/cadvisor"))
		if a.nodeExporterOn() {
			scrapes = append(scrapes, map[string]any{
				"job_name":       nodeExporterName,
				"static_configs": []any{map[string]any{"targets": nodeExporters}},
			})
		}
	}
	cfg := map[string]any{
		"global":         map[string]any{"scrape_interval": m.ScrapeInterval, "evaluation_interval": m.ScrapeInterval},
		"rule_files":     []string{"/etc/prometheus/rules.yml"},
		"scrape_configs": scrapes,
	}
	if a.alertmanagerOn() {
		cfg["alerting"] = map[string]any{"alertmanagers": []any{map[string]any{
			"static_configs": []any{map[string]any{
				"targets": []string{fmt.Sprintf("%s.%s.svc:%d", alertmanagerName, ns.Monitoring, alertmanagerPort)},
			}},
		}}}
	}
	b, err := yaml.Marshal(cfg)
	return string(b), err
}

// prometheusNeedsToken: only the kubelet scrape uses Prometheus's ServiceAccount token.
func (a PlatformArgs) prometheusNeedsToken() bool { return len(a.Monitoring.NodeAddresses) > 0 }

const (
	saTokenPath = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	saCAPath    = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
)

// ensureStandalonePrometheus runs one hardened Prometheus with the static config and the rules.
func (p *builder) ensureStandalonePrometheus() error {
	a := p.args
	ns := a.Namespaces.Monitoring
	cfg, err := a.prometheusConfig()
	if err != nil {
		return err
	}
	rules, err := a.rulesFile()
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(cfg + "\x00" + rules))
	cm, err := corev1.NewConfigMap(p.ctx, ns+"-"+prometheusName, &corev1.ConfigMapArgs{
		Metadata: p.meta(prometheusName, ns, "monitoring", false),
		Data:     pulumi.StringMap{"prometheus.yml": pulumi.String(cfg), "rules.yml": pulumi.String(rules)},
	}, p.opts(ns)...)
	if err != nil {
		return err
	}
	sa, err := p.serviceAccount(prometheusName, ns, "monitoring")
	if err != nil {
		return err
	}
	// Readiness every 2 s with no delay, so the StatefulSet's await ends within ~2 s of ready.
	probe := func(path string, delay, period int) *corev1.ProbeArgs {
		return &corev1.ProbeArgs{
			HttpGet:             &corev1.HTTPGetActionArgs{Path: pulumi.String(path), Port: pulumi.String("web")},
			InitialDelaySeconds: pulumi.Int(delay), PeriodSeconds: pulumi.Int(period), TimeoutSeconds: pulumi.Int(5),
		}
	}
	// Roll the pod when the config or rules change.
	podAnnotations := pulumi.StringMap{"infralab.dev/config-sha256": pulumi.String(hex.EncodeToString(sum[:]))}
	if a.prometheusNeedsToken() {
		podAnnotations[AnnotationNeedsAPIAccess] = pulumi.String("scrapes the kubelets' /metrics and /metrics/cadvisor on 10250, which authorize its token for nodes/metrics")
		if err := p.ensurePrometheusKubeletAccess(ns); err != nil {
			return err
		}
	}
	dataSize := "2Gi"
	if a.Monitoring.StorageSize != "" {
		dataSize = a.Monitoring.StorageSize
	}
	if _, err := appsv1.NewDeployment(p.ctx, ns+"-"+prometheusName, &appsv1.DeploymentArgs{
		Metadata: p.meta(prometheusName, ns, "monitoring", true),
		Spec: &appsv1.DeploymentSpecArgs{
			Replicas: pulumi.Int(1),
			Selector: &metav1.LabelSelectorArgs{MatchLabels: selector(prometheusName)},
			// Two Prometheus pods would scrape and alert twice; the TSDB is an emptyDir anyway.
			Strategy: &appsv1.DeploymentStrategyArgs{Type: pulumi.String("Recreate")},
			Template: &corev1.PodTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{
					Labels:      labels(prometheusName, "monitoring"),
					Annotations: podAnnotations,
				},
				Spec: &corev1.PodSpecArgs{
					ServiceAccountName:           sa.Metadata.Name(),
					AutomountServiceAccountToken: pulumi.Bool(a.prometheusNeedsToken()),
					EnableServiceLinks:           pulumi.Bool(false),
					SecurityContext:              podSecurity(prometheusUID, prometheusUID),
					Containers: corev1.ContainerArray{corev1.ContainerArgs{
						Name:            pulumi.String(prometheusName),
						Image:           pulumi.String(a.Monitoring.PrometheusImage),
						ImagePullPolicy: pulumi.String(a.Monitoring.PrometheusPullPolicy),
						Args: pulumi.ToStringArray([]string{
							"--config.file=/etc/prometheus/prometheus.yml",
							"--storage.tsdb.path=/prometheus",
							"--storage.tsdb.retention.time=" + a.Monitoring.Retention,
							fmt.Sprintf("--web.listen-address=:%d", prometheusPort),
						}),
						Ports: corev1.ContainerPortArray{corev1.ContainerPortArgs{
							Name: pulumi.String("web"), ContainerPort: pulumi.Int(prometheusPort), Protocol: pulumi.String("TCP"),
						}},
						SecurityContext: containerSecurity(prometheusUID, prometheusUID),
						Resources:       resources(a.Monitoring.PrometheusResources),
						ReadinessProbe:  probe("/-/ready", 0, 2),
						LivenessProbe:   probe("/-/healthy", 30, 15),
						VolumeMounts: corev1.VolumeMountArray{
							mount("config", "/etc/prometheus", true),
							mount("data", "/prometheus", false),
						},
					}},
					Volumes: corev1.VolumeArray{
						corev1.VolumeArgs{Name: pulumi.String("config"), ConfigMap: &corev1.ConfigMapVolumeSourceArgs{Name: cm.Metadata.Name()}},
						emptyDir("data", dataSize),
					},
				},
			},
		},
	}, p.opts(ns)...); err != nil {
		return err
	}
	if _, err := corev1.NewService(p.ctx, ns+"-"+prometheusName, &corev1.ServiceArgs{
		Metadata: p.serviceMeta(prometheusName, ns, "monitoring"),
		Spec: &corev1.ServiceSpecArgs{
			Selector: selector(prometheusName),
			Ports: corev1.ServicePortArray{corev1.ServicePortArgs{
				Name: pulumi.String("web"), Port: pulumi.Int(prometheusPort), TargetPort: pulumi.String("web"), Protocol: pulumi.String("TCP"),
			}},
		},
	}, p.opts(ns)...); err != nil {
		return err
	}
	// What kube-prometheus-stack brings in chart mode, each when configured.
	for _, step := range []struct {
		on  bool
		run func() error
	}{
		{a.kubeStateMetricsOn(), p.ensureKubeStateMetrics},
		{a.nodeExporterOn(), p.ensureNodeExporter},
		{a.alertmanagerOn(), p.ensureAlertmanager},
	} {
		if step.on {
			if err := step.run(); err != nil {
				return err
			}
		}
	}
	return nil
}

// ensurePrometheusKubeletAccess lets Prometheus's ServiceAccount read the kubelets' metrics
// endpoints, which the kubelet authorizes as nodes/metrics (get) through a SubjectAccessReview.
// Nothing else: no nodes/proxy (that would be exec on every node), no list of any object.
func (p *builder) ensurePrometheusKubeletAccess(ns string) error {
	name := "infralab-" + ns + "-prometheus-kubelet"
	role, err := rbacv1.NewClusterRole(p.ctx, name, &rbacv1.ClusterRoleArgs{
		Metadata: p.meta(name, "", "monitoring", false),
		Rules: rbacv1.PolicyRuleArray{rbacv1.PolicyRuleArgs{
			ApiGroups: pulumi.StringArray{pulumi.String("")},
			Resources: pulumi.StringArray{pulumi.String("nodes/metrics")},
			Verbs:     pulumi.StringArray{pulumi.String("get")},
		}},
	}, p.opts("")...)
	if err != nil {
		return err
	}
	_, err = rbacv1.NewClusterRoleBinding(p.ctx, name, &rbacv1.ClusterRoleBindingArgs{
		Metadata: p.meta(name, "", "monitoring", false),
		RoleRef: rbacv1.RoleRefArgs{
			ApiGroup: pulumi.String("rbac.authorization.k8s.io"), Kind: pulumi.String("ClusterRole"), Name: role.Metadata.Name().Elem(),
		},
		Subjects: rbacv1.SubjectArray{rbacv1.SubjectArgs{
			Kind: pulumi.String("ServiceAccount"), Name: pulumi.String(prometheusName), Namespace: pulumi.String(ns),
		}},
	}, p.opts(ns)...)
	return err
}
