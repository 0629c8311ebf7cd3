package apps

import (
	"fmt"
	"strings"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	rbacv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/rbac/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// ksmResources are the objects kube-state-metrics reports on: what the dashboards and alerts
// query (nodes, pods, PVCs) and the workloads that own pods. Each is listed and watched, so the
// list is also its ClusterRole.
var ksmResources = []struct{ group, resource, flag string }{
	{"", "nodes", "nodes"},
	{"", "pods", "pods"},
	{"", "namespaces", "namespaces"},
	{"", "persistentvolumeclaims", "persistentvolumeclaims"},
	{"", "persistentvolumes", "persistentvolumes"},
	{"apps", "deployments", "deployments"},
	{"apps", "statefulsets", "statefulsets"},
	{"apps", "daemonsets", "daemonsets"},
	{"apps", "replicasets", "replicasets"},
	{"batch", "jobs", "jobs"},
}

func (a PlatformArgs) kubeStateMetricsOn() bool {
	return a.Monitoring.Mode == MonitoringStandalone && a.Monitoring.KubeStateMetricsImage != ""
}

// kubeStateMetricsResources is the container's requests and limits: it holds every watched
// object in memory, a few MiB on a small cluster.
var kubeStateMetricsResources = Resources{"20m", "48Mi", "200m", "128Mi", "16Mi", "64Mi"}

// ensureKubeStateMetrics runs kube-state-metrics with a read-only ClusterRole over exactly the
// resources it is told to collect.
func (p *builder) ensureKubeStateMetrics() error {
	a := p.args
	ns := a.Namespaces.Monitoring
	sa, err := p.serviceAccount(ksmName, ns, "monitoring")
	if err != nil {
		return err
	}
	name := "infralab-" + ns + "-" + ksmName
	var rules rbacv1.PolicyRuleArray
	var flags []string
	for _, r := range ksmResources {
		rules = append(rules, rbacv1.PolicyRuleArgs{
			ApiGroups: pulumi.StringArray{pulumi.String(r.group)},
			Resources: pulumi.StringArray{pulumi.String(r.resource)},
			Verbs:     pulumi.ToStringArray([]string{"list", "watch"}),
		})
		flags = append(flags, r.flag)
	}
	role, err := rbacv1.NewClusterRole(p.ctx, name, &rbacv1.ClusterRoleArgs{
		Metadata: p.meta(name, "", "monitoring", false),
		Rules:    rules,
	}, p.opts("")...)
	if err != nil {
		return err
	}
	if _, err := rbacv1.NewClusterRoleBinding(p.ctx, name, &rbacv1.ClusterRoleBindingArgs{
		Metadata: p.meta(name, "", "monitoring", false),
		RoleRef: rbacv1.RoleRefArgs{
			ApiGroup: pulumi.String("rbac.authorization.k8s.io"), Kind: pulumi.String("ClusterRole"), Name: role.Metadata.Name().Elem(),
		},
		Subjects: rbacv1.SubjectArray{rbacv1.SubjectArgs{
			Kind: pulumi.String("ServiceAccount"), Name: pulumi.String(ksmName), Namespace: pulumi.String(ns),
		}},
	}, p.opts(ns)...); err != nil {
		return err
	}
	probe := func(path, port string, delay, period int) *corev1.ProbeArgs {
		return &corev1.ProbeArgs{
			HttpGet:             &corev1.HTTPGetActionArgs{Path: pulumi.String(path), Port: pulumi.String(port)},
			InitialDelaySeconds: pulumi.Int(delay), PeriodSeconds: pulumi.Int(period), TimeoutSeconds: pulumi.Int(5),
		}
	}
	if _, err := appsv1.NewDeployment(p.ctx, ns+"-"+ksmName, &appsv1.DeploymentArgs{
		Metadata: p.meta(ksmName, ns, "monitoring", true),
		Spec: &appsv1.DeploymentSpecArgs{
			Replicas: pulumi.Int(1),
			Selector: &metav1.LabelSelectorArgs{MatchLabels: selector(ksmName)},
			Template: &corev1.PodTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{
					Labels: labels(ksmName, "monitoring"),
					Annotations: pulumi.StringMap{
						AnnotationNeedsAPIAccess: pulumi.String("lists and watches nodes, pods, PVCs and workloads to export their state (read-only ClusterRole)"),
					},
				},
				Spec: &corev1.PodSpecArgs{
					ServiceAccountName:           sa.Metadata.Name(),
					AutomountServiceAccountToken: pulumi.Bool(true),
					EnableServiceLinks:           pulumi.Bool(false),
					SecurityContext:              podSecurity(nobodyUID, nobodyUID),
					Containers: corev1.ContainerArray{corev1.ContainerArgs{
						Name:            pulumi.String(ksmName),
						Image:           pulumi.String(a.Monitoring.KubeStateMetricsImage),
						ImagePullPolicy: pulumi.String(a.Monitoring.ComponentPullPolicy),
						Args: pulumi.ToStringArray([]string{
							fmt.Sprintf("--port=%d", ksmPort),
							fmt.Sprintf("--telemetry-port=%d", ksmTelemetryPort),
							"--resources=" + strings.Join(flags, ","),
						}),
						Ports: corev1.ContainerPortArray{
							corev1.ContainerPortArgs{Name: pulumi.String("http"), ContainerPort: pulumi.Int(ksmPort), Protocol: pulumi.String("TCP")},
							corev1.ContainerPortArgs{Name: pulumi.String("telemetry"), ContainerPort: pulumi.Int(ksmTelemetryPort), Protocol: pulumi.String("TCP")},
						},
						SecurityContext: containerSecurity(nobodyUID, nobodyUID),
						Resources:       resources(kubeStateMetricsResources),
						// Upstream's probes: live while the API answers /livez through it, ready
						// once its registry holds metrics.
						LivenessProbe: probe("/livez", "http", 10, 15),
						// Every 2 s from the start: with a 5 s delay and a 15 s period the pod was
						// reported ready up to 20 s after it was (an `up` waits for that).
						ReadinessProbe: probe("/readyz", "telemetry", 0, 2),
					}},
				},
			},
		},
	}, p.opts(ns)...); err != nil {
		return err
	}
	_, err = corev1.NewService(p.ctx, ns+"-"+ksmName, &corev1.ServiceArgs{
		Metadata: p.serviceMeta(ksmName, ns, "monitoring"),
		Spec: &corev1.ServiceSpecArgs{
			Selector: selector(ksmName),
			Ports: corev1.ServicePortArray{corev1.ServicePortArgs{
				Name: pulumi.String("http"), Port: pulumi.Int(ksmPort), TargetPort: pulumi.String("http"), Protocol: pulumi.String("TCP"),
			}},
		},
	}, p.opts(ns)...)
	return err
}
