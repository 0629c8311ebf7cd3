package apps

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"sigs.k8s.io/yaml"
)

// prometheusConfig scrapes the api and the exporter through their Service DNS names: a static
// config needs no Kubernetes API access, so Prometheus runs without a token.
func (a PlatformArgs) prometheusConfig() (string, error) {
	ns := a.Namespaces
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
	cfg := map[string]any{
		"global":     map[string]any{"scrape_interval": "30s", "evaluation_interval": "30s"},
		"rule_files": []string{"/etc/prometheus/rules.yml"},
		"scrape_configs": []any{
			job(apiName, fmt.Sprintf("%s.%s.svc:%d", apiName, ns.API, a.API.Port), ns.API),
			job(exporterName, fmt.Sprintf("%s.%s.svc:%d", exporterName, ns.Database, exporterPort), ns.Database),
			job(prometheusName, fmt.Sprintf("localhost:%d", prometheusPort), ns.Monitoring),
		},
	}
	b, err := yaml.Marshal(cfg)
	return string(b), err
}

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
					Labels: labels(prometheusName, "monitoring"),
					// Roll the pod when the config or rules change.
					Annotations: pulumi.StringMap{"infralab.dev/config-sha256": pulumi.String(hex.EncodeToString(sum[:]))},
				},
				Spec: &corev1.PodSpecArgs{
					ServiceAccountName:           sa.Metadata.Name(),
					AutomountServiceAccountToken: pulumi.Bool(false),
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
	_, err = corev1.NewService(p.ctx, ns+"-"+prometheusName, &corev1.ServiceArgs{
		Metadata: p.meta(prometheusName, ns, "monitoring", true),
		Spec: &corev1.ServiceSpecArgs{
			Selector: selector(prometheusName),
			Ports: corev1.ServicePortArray{corev1.ServicePortArgs{
				Name: pulumi.String("web"), Port: pulumi.Int(prometheusPort), TargetPort: pulumi.String("web"), Protocol: pulumi.String("TCP"),
			}},
		},
	}, p.opts(ns)...)
	return err
}
