package apps

import (
	"fmt"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

const exporterSecret = "postgres-exporter"

// ensureExporter runs postgres_exporter as its own Deployment with its own ServiceAccount and
// Secret, logging in as the pg_monitor role that sql/roles.sql creates.
func (p *builder) ensureExporter() error {
	a := p.args
	ns := a.Namespaces.Database
	if _, err := p.secret(exporterSecret, ns, "monitoring", map[string]pulumi.StringInput{
		"user":     pulumi.String(exporterRole),
		"password": a.Secrets.ExporterPassword,
	}); err != nil {
		return err
	}
	sa, err := p.serviceAccount(exporterName, ns, "monitoring")
	if err != nil {
		return err
	}
	// Readiness: the landing page answers once the exporter serves; every 2 s with no delay, so
	// the Deployment's await (and so `pulumi up`) ends within ~2 s of it serving. Liveness: the port
	// listens. Neither touches the database, so a database outage shows as pg_up 0, not restarts.
	readiness := &corev1.ProbeArgs{
		HttpGet:             &corev1.HTTPGetActionArgs{Path: pulumi.String("/"), Port: pulumi.String("metrics")},
		InitialDelaySeconds: pulumi.Int(0), PeriodSeconds: pulumi.Int(2), TimeoutSeconds: pulumi.Int(5),
	}
	liveness := &corev1.ProbeArgs{
		TcpSocket:           &corev1.TCPSocketActionArgs{Port: pulumi.String("metrics")},
		InitialDelaySeconds: pulumi.Int(30), PeriodSeconds: pulumi.Int(20), TimeoutSeconds: pulumi.Int(5),
	}
	if _, err := appsv1.NewDeployment(p.ctx, ns+"-"+exporterName, &appsv1.DeploymentArgs{
		Metadata: p.meta(exporterName, ns, "monitoring", true),
		Spec: &appsv1.DeploymentSpecArgs{
			Replicas: pulumi.Int(1),
			Selector: &metav1.LabelSelectorArgs{MatchLabels: selector(exporterName)},
			Strategy: &appsv1.DeploymentStrategyArgs{
				Type:          pulumi.String("RollingUpdate"),
				RollingUpdate: &appsv1.RollingUpdateDeploymentArgs{MaxUnavailable: pulumi.Int(0), MaxSurge: pulumi.Int(1)},
			},
			Template: &corev1.PodTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{
					Labels:      labels(exporterName, "monitoring"),
					Annotations: pulumi.StringMap{annotationCredentials: credentialsDigest(a.Secrets.PostgresPassword, a.Secrets.ExporterPassword)},
				},
				Spec: &corev1.PodSpecArgs{
					ServiceAccountName:           sa.Metadata.Name(),
					AutomountServiceAccountToken: pulumi.Bool(false),
					EnableServiceLinks:           pulumi.Bool(false),
					SecurityContext:              podSecurity(exporterUID, exporterUID),
					Containers: corev1.ContainerArray{corev1.ContainerArgs{
						Name:            pulumi.String(exporterName),
						Image:           pulumi.String(a.Exporter.Image),
						ImagePullPolicy: pulumi.String(a.Exporter.PullPolicy),
						Args:            pulumi.StringArray{pulumi.Sprintf("--web.listen-address=:%d", exporterPort)},
						Env: corev1.EnvVarArray{
							env("DATA_SOURCE_URI", fmt.Sprintf("%s:%d/postgres?sslmode=disable", postgresName, postgresPort)),
							secretEnv("DATA_SOURCE_USER", exporterSecret, "user"),
							secretEnv("DATA_SOURCE_PASS", exporterSecret, "password"),
						},
						Ports: corev1.ContainerPortArray{corev1.ContainerPortArgs{
							Name: pulumi.String("metrics"), ContainerPort: pulumi.Int(exporterPort), Protocol: pulumi.String("TCP"),
						}},
						SecurityContext: containerSecurity(exporterUID, exporterUID),
						Resources:       resources(a.Exporter.Resources),
						ReadinessProbe:  readiness,
						LivenessProbe:   liveness,
					}},
				},
			},
		},
	}, p.opts(ns)...); err != nil {
		return err
	}
	_, err = corev1.NewService(p.ctx, ns+"-"+exporterName, &corev1.ServiceArgs{
		Metadata: p.serviceMeta(exporterName, ns, "monitoring"),
		Spec: &corev1.ServiceSpecArgs{
			Selector: selector(exporterName),
			Ports: corev1.ServicePortArray{corev1.ServicePortArgs{
				Name: pulumi.String("metrics"), Port: pulumi.Int(exporterPort), TargetPort: pulumi.String("metrics"), Protocol: pulumi.String("TCP"),
			}},
		},
	}, p.opts(ns)...)
	return err
}
