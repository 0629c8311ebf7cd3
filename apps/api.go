package apps

import (
	"fmt"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	policyv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/policy/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

const (
	apiSecret         = "healthcare-api-db"
	apiMetricsService = "healthcare-api-metrics"
)

// ensureAPI declares the healthcare-api: its database Secret, ServiceAccount, Deployment,
// Service and disruption budget. The environment below is the api's contract (docs/apps.md).
func (p *builder) ensureAPI() error {
	a := p.args
	ns := a.Namespaces.API
	if _, err := p.secret(apiSecret, ns, "api", map[string]pulumi.StringInput{
		"username": pulumi.String(a.API.DatabaseUser),
		"password": a.Secrets.APIDatabasePassword,
	}); err != nil {
		return err
	}
	sa, err := p.serviceAccount(apiName, ns, "api")
	if err != nil {
		return err
	}
	// Startup is probed every second so readiness is reported within a second of being true;
	// readiness every 2 s, because /readyz fails until the roles Job has made the api's role.
	httpProbe := func(path string, period, failures int) *corev1.ProbeArgs {
		return &corev1.ProbeArgs{
			HttpGet:       &corev1.HTTPGetActionArgs{Path: pulumi.String(path), Port: pulumi.String("http")},
			PeriodSeconds: pulumi.Int(period), TimeoutSeconds: pulumi.Int(3),
			FailureThreshold: pulumi.Int(failures),
		}
	}
	port := a.API.Port
	if _, err := appsv1.NewDeployment(p.ctx, ns+"-"+apiName, &appsv1.DeploymentArgs{
		Metadata: p.meta(apiName, ns, "api", true),
		Spec: &appsv1.DeploymentSpecArgs{
			Replicas: pulumi.Int(a.API.Replicas),
			Selector: &metav1.LabelSelectorArgs{MatchLabels: selector(apiName)},
			Strategy: &appsv1.DeploymentStrategyArgs{
				Type: pulumi.String("RollingUpdate"),
				// Never drop below the desired replicas during a rollout.
				RollingUpdate: &appsv1.RollingUpdateDeploymentArgs{MaxUnavailable: pulumi.Int(0), MaxSurge: pulumi.Int(1)},
			},
			Template: &corev1.PodTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{
					Labels:      labels(apiName, "api"),
					Annotations: pulumi.StringMap{annotationCredentials: credentialsDigest(a.Secrets.PostgresPassword, a.Secrets.APIDatabasePassword)},
				},
				Spec: &corev1.PodSpecArgs{
					ServiceAccountName:           sa.Metadata.Name(),
					AutomountServiceAccountToken: pulumi.Bool(false),
					EnableServiceLinks:           pulumi.Bool(false),
					SecurityContext:              podSecurity(apiUID, apiUID),
					TopologySpreadConstraints: corev1.TopologySpreadConstraintArray{corev1.TopologySpreadConstraintArgs{
						MaxSkew:     pulumi.Int(1),
						TopologyKey: pulumi.String("kubernetes.io/hostname"),
						// Spread when possible; a single-node cluster must still run every replica.
						WhenUnsatisfiable: pulumi.String("ScheduleAnyway"),
						// Tainted control-plane nodes are not a domain the api can use.
						NodeTaintsPolicy: pulumi.String("Honor"),
						LabelSelector:    &metav1.LabelSelectorArgs{MatchLabels: selector(apiName)},
					}},
					Containers: corev1.ContainerArray{corev1.ContainerArgs{
						Name:            pulumi.String(apiName),
						Image:           pulumi.String(a.API.Image),
						ImagePullPolicy: pulumi.String(a.API.PullPolicy),
						Env: corev1.EnvVarArray{
							env("PORT", fmt.Sprint(port)),
							env("DB_HOST", fmt.Sprintf("%s.%s.svc", postgresName, a.Namespaces.Database)),
							env("DB_PORT", fmt.Sprint(postgresPort)),
							env("DB_NAME", a.API.DatabaseName),
							secretEnv("DB_USER", apiSecret, "username"),
							secretEnv("DB_PASSWORD", apiSecret, "password"),
							env("DB_POOL_SIZE", fmt.Sprint(a.API.PoolSize)),
						},
						Ports: corev1.ContainerPortArray{corev1.ContainerPortArgs{
							Name: pulumi.String("http"), ContainerPort: pulumi.Int(port), Protocol: pulumi.String("TCP"),
						}},
						SecurityContext: containerSecurity(apiUID, apiUID),
						Resources:       resources(a.API.Resources),
						StartupProbe:    httpProbe("/healthz", 1, 300),
						ReadinessProbe:  httpProbe("/readyz", 2, 3),
						LivenessProbe:   httpProbe("/healthz", 10, 3),
						VolumeMounts:    corev1.VolumeMountArray{mount("tmp", "/tmp", false)},
					}},
					Volumes: corev1.VolumeArray{emptyDir("tmp", "64Mi")},
				},
			},
		},
	}, p.opts(ns)...); err != nil {
		return err
	}
	if _, err := corev1.NewService(p.ctx, ns+"-"+apiName, &corev1.ServiceArgs{
		Metadata: p.serviceMeta(apiName, ns, "api"),
		Spec: &corev1.ServiceSpecArgs{
			Type:     pulumi.String("ClusterIP"),
			Selector: selector(apiName),
			Ports: corev1.ServicePortArray{corev1.ServicePortArgs{
				Name: pulumi.String("http"), Port: pulumi.Int(port), TargetPort: pulumi.String("http"), Protocol: pulumi.String("TCP"),
			}},
		},
	}, p.opts(ns)...); err != nil {
		return err
	}
	// Prometheus scrapes every replica through this headless Service's DNS records (standalone
	// mode): through the ClusterIP Service each scrape would reach a random replica, and counters
	// alternating between two processes read as endless resets, so rate() (the error-rate alert)
	// is nonsense. Unready replicas stay listed: their 503s are exactly what must be seen.
	if a.Monitoring.Mode == MonitoringStandalone {
		if _, err := corev1.NewService(p.ctx, ns+"-"+apiMetricsService, &corev1.ServiceArgs{
			Metadata: p.serviceMeta(apiMetricsService, ns, "api"),
			Spec: &corev1.ServiceSpecArgs{
				ClusterIP:                pulumi.String("None"),
				PublishNotReadyAddresses: pulumi.Bool(true),
				Selector:                 selector(apiName),
				Ports: corev1.ServicePortArray{corev1.ServicePortArgs{
					Name: pulumi.String("http"), Port: pulumi.Int(port), TargetPort: pulumi.String("http"), Protocol: pulumi.String("TCP"),
				}},
			},
		}, p.opts(ns)...); err != nil {
			return err
		}
	}
	// One pod may be evicted at a time; with a single replica that means a short outage during a
	// drain, which beats a drain that never finishes.
	_, err = policyv1.NewPodDisruptionBudget(p.ctx, ns+"-"+apiName, &policyv1.PodDisruptionBudgetArgs{
		Metadata: p.meta(apiName, ns, "api", false),
		Spec: &policyv1.PodDisruptionBudgetSpecArgs{
			MaxUnavailable: pulumi.Int(1),
			Selector:       &metav1.LabelSelectorArgs{MatchLabels: selector(apiName)},
		},
	}, p.opts(ns)...)
	return err
}
