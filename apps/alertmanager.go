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

const alertmanagerSecret = "alertmanager-config"

var standaloneAlertmanagerResources = Resources{"20m", "32Mi", "200m", "128Mi", "64Mi", "512Mi"}

func (a PlatformArgs) alertmanagerOn() bool {
	return a.Monitoring.Mode == MonitoringStandalone && a.Monitoring.AlertmanagerImage != ""
}

// alertmanagerConfig routes every alert to the stack's one webhook, resolved ones included, so
// whoever listens learns both when something breaks and when it is fixed.
func (a PlatformArgs) alertmanagerConfig() (string, error) {
	cfg := map[string]any{
		"route": map[string]any{
			"receiver": "webhook",
			"group_by": []string{"alertname", "namespace"},
			// A first notification within 10 s of the alert firing, changes within a minute.
			"group_wait":      "10s",
			"group_interval":  "1m",
			"repeat_interval": "4h",
		},
		"receivers": []any{map[string]any{
			"name":            "webhook",
			"webhook_configs": []any{map[string]any{"url": a.Monitoring.AlertWebhookURL, "send_resolved": true}},
		}},
	}
	b, err := yaml.Marshal(cfg)
	return string(b), err
}

// ensureAlertmanager runs one Alertmanager that Prometheus sends its alerts to. Its config is a
// Secret: a webhook URL often carries a token.
func (p *builder) ensureAlertmanager() error {
	a := p.args
	ns := a.Namespaces.Monitoring
	cfg, err := a.alertmanagerConfig()
	if err != nil {
		return err
	}
	if _, err := p.secret(alertmanagerSecret, ns, "monitoring", map[string]pulumi.StringInput{
		"alertmanager.yml": pulumi.String(cfg),
	}); err != nil {
		return err
	}
	sa, err := p.serviceAccount(alertmanagerName, ns, "monitoring")
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(cfg))
	probe := func(path string, delay int) *corev1.ProbeArgs {
		return &corev1.ProbeArgs{
			HttpGet:             &corev1.HTTPGetActionArgs{Path: pulumi.String(path), Port: pulumi.String("web")},
			InitialDelaySeconds: pulumi.Int(delay), PeriodSeconds: pulumi.Int(15), TimeoutSeconds: pulumi.Int(5),
		}
	}
	if _, err := appsv1.NewDeployment(p.ctx, ns+"-"+alertmanagerName, &appsv1.DeploymentArgs{
		Metadata: p.meta(alertmanagerName, ns, "monitoring", true),
		Spec: &appsv1.DeploymentSpecArgs{
			Replicas: pulumi.Int(1),
			Selector: &metav1.LabelSelectorArgs{MatchLabels: selector(alertmanagerName)},
			// One instance: clustering is off, two would notify twice.
			Strategy: &appsv1.DeploymentStrategyArgs{Type: pulumi.String("Recreate")},
			Template: &corev1.PodTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{
					Labels: labels(alertmanagerName, "monitoring"),
					// Hash of the config without the URL in the clear: the pod rolls when it changes.
					Annotations: pulumi.StringMap{"infralab.dev/config-sha256": pulumi.ToSecret(pulumi.String(hex.EncodeToString(sum[:]))).(pulumi.StringOutput)},
				},
				Spec: &corev1.PodSpecArgs{
					ServiceAccountName:           sa.Metadata.Name(),
					AutomountServiceAccountToken: pulumi.Bool(false),
					EnableServiceLinks:           pulumi.Bool(false),
					SecurityContext:              podSecurity(nobodyUID, nobodyUID),
					Containers: corev1.ContainerArray{corev1.ContainerArgs{
						Name:            pulumi.String(alertmanagerName),
						Image:           pulumi.String(a.Monitoring.AlertmanagerImage),
						ImagePullPolicy: pulumi.String(a.Monitoring.ComponentPullPolicy),
						Args: pulumi.ToStringArray([]string{
							"--config.file=/etc/alertmanager/alertmanager.yml",
							"--storage.path=/alertmanager",
							fmt.Sprintf("--web.listen-address=:%d", alertmanagerPort),
							// No peers: an empty listen address turns the gossip cluster off.
							"--cluster.listen-address=",
						}),
						Ports: corev1.ContainerPortArray{corev1.ContainerPortArgs{
							Name: pulumi.String("web"), ContainerPort: pulumi.Int(alertmanagerPort), Protocol: pulumi.String("TCP"),
						}},
						SecurityContext: containerSecurity(nobodyUID, nobodyUID),
						Resources:       resources(standaloneAlertmanagerResources),
						ReadinessProbe:  probe("/-/ready", 3),
						LivenessProbe:   probe("/-/healthy", 15),
						VolumeMounts: corev1.VolumeMountArray{
							mount("config", "/etc/alertmanager", true),
							mount("data", "/alertmanager", false),
						},
					}},
					Volumes: corev1.VolumeArray{
						corev1.VolumeArgs{Name: pulumi.String("config"), Secret: &corev1.SecretVolumeSourceArgs{SecretName: pulumi.String(alertmanagerSecret)}},
						emptyDir("data", "64Mi"),
					},
				},
			},
		},
	}, p.opts(ns)...); err != nil {
		return err
	}
	_, err = corev1.NewService(p.ctx, ns+"-"+alertmanagerName, &corev1.ServiceArgs{
		Metadata: p.serviceMeta(alertmanagerName, ns, "monitoring"),
		Spec: &corev1.ServiceSpecArgs{
			Selector: selector(alertmanagerName),
			Ports: corev1.ServicePortArray{corev1.ServicePortArgs{
				Name: pulumi.String("web"), Port: pulumi.Int(alertmanagerPort), TargetPort: pulumi.String("web"), Protocol: pulumi.String("TCP"),
			}},
		},
	}, p.opts(ns)...)
	return err
}
