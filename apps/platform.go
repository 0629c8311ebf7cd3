package apps

import (
	"fmt"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Platform is the apps layer: namespaces, PostgreSQL, postgres_exporter, the healthcare-api, their
// network policies and monitoring.
type Platform struct {
	pulumi.ResourceState

	APINamespace        pulumi.StringOutput `pulumi:"apiNamespace"`
	DatabaseNamespace   pulumi.StringOutput `pulumi:"databaseNamespace"`
	MonitoringNamespace pulumi.StringOutput `pulumi:"monitoringNamespace"` // "" when monitoring is off
	// APIURL is the api's in-cluster URL.
	APIURL pulumi.StringOutput `pulumi:"apiURL"`
	// PostgresHost is the headless Service name the api connects to.
	PostgresHost pulumi.StringOutput `pulumi:"postgresHost"`
	// MonitoringMode is chart, standalone or off.
	MonitoringMode pulumi.StringOutput `pulumi:"monitoringMode"`
	// NextSteps are the commands that reach the api, Prometheus and Grafana from a workstation.
	NextSteps pulumi.StringArrayOutput `pulumi:"nextSteps"`
}

// builder carries what every declaration needs.
type builder struct {
	ctx        *pulumi.Context
	args       PlatformArgs
	parent     *Platform
	namespaces map[string]*corev1.Namespace
	postgres   *appsv1.StatefulSet
}

// opts parents a child to the Platform (so it inherits the provider) and, for namespaced objects,
// orders it after its namespace on create and before it on delete.
func (p *builder) opts(ns string, extra ...pulumi.ResourceOption) []pulumi.ResourceOption {
	o := []pulumi.ResourceOption{pulumi.Parent(p.parent)}
	if n, ok := p.namespaces[ns]; ok {
		o = append(o, pulumi.DependsOn([]pulumi.Resource{n}))
	}
	return append(o, extra...)
}

// NewPlatform declares the apps layer. Pass the Kubernetes provider with pulumi.Provider.
func NewPlatform(ctx *pulumi.Context, name string, args *PlatformArgs, opts ...pulumi.ResourceOption) (*Platform, error) {
	if args == nil {
		args = &PlatformArgs{}
	}
	a := args.withDefaults()
	if err := a.validate(); err != nil {
		return nil, err
	}

	platform := &Platform{}
	if err := ctx.RegisterComponentResource("infralab:apps:Platform", name, platform, opts...); err != nil {
		return nil, err
	}
	b := &builder{ctx: ctx, args: a, parent: platform, namespaces: map[string]*corev1.Namespace{}}

	// Phases in dependency order; each is small and named for what it declares.
	phases := []struct {
		name string
		run  func() error
	}{
		{"namespaces", b.ensureNamespaces},
		{"quotas", b.ensureQuotas},
		{"network policies", b.ensureNetworkPolicies},
		{"postgres", b.ensurePostgres},
		{"postgres roles", b.ensureDatabaseRoles},
		{"postgres exporter", b.ensureExporter},
		{"healthcare-api", b.ensureAPI},
		{"monitoring", b.ensureMonitoring},
	}
	for _, ph := range phases {
		if err := ph.run(); err != nil {
			return nil, fmt.Errorf("apps: %s: %w", ph.name, err)
		}
	}

	ns := a.Namespaces
	monNS := ""
	if a.Monitoring.Mode != MonitoringOff {
		monNS = ns.Monitoring
	}
	platform.APINamespace = pulumi.String(ns.API).ToStringOutput()
	platform.DatabaseNamespace = pulumi.String(ns.Database).ToStringOutput()
	platform.MonitoringNamespace = pulumi.String(monNS).ToStringOutput()
	platform.APIURL = pulumi.Sprintf("http://%s.%s.svc:%d", apiName, ns.API, a.API.Port)
	platform.PostgresHost = pulumi.Sprintf("%s.%s.svc", postgresName, ns.Database)
	platform.MonitoringMode = pulumi.String(a.Monitoring.Mode).ToStringOutput()
	platform.NextSteps = pulumi.ToStringArray(a.nextSteps()).ToStringArrayOutput()

	if err := ctx.RegisterResourceOutputs(platform, pulumi.Map{
		"apiNamespace":        platform.APINamespace,
		"databaseNamespace":   platform.DatabaseNamespace,
		"monitoringNamespace": platform.MonitoringNamespace,
		"apiURL":              platform.APIURL,
		"postgresHost":        platform.PostgresHost,
		"monitoringMode":      platform.MonitoringMode,
		"nextSteps":           platform.NextSteps,
	}); err != nil {
		return nil, err
	}
	return platform, nil
}

func (a PlatformArgs) nextSteps() []string {
	ns := a.Namespaces
	steps := []string{
		fmt.Sprintf("kubectl -n %s port-forward svc/%s %d:%d   # then curl http://127.0.0.1:%d/readyz", ns.API, apiName, a.API.Port, a.API.Port, a.API.Port),
	}
	switch a.Monitoring.Mode {
	case MonitoringChart:
		steps = append(steps,
			fmt.Sprintf("kubectl -n %s port-forward svc/%s-prometheus %d:%d", ns.Monitoring, chartRelease, prometheusPort, prometheusPort),
			fmt.Sprintf("kubectl -n %s port-forward svc/%s-grafana 3000:80   # user admin, password: the stack's Grafana admin secret", ns.Monitoring, chartRelease))
	case MonitoringStandalone:
		steps = append(steps,
			fmt.Sprintf("kubectl -n %s port-forward svc/%s %d:%d   # then open http://127.0.0.1:%d/targets", ns.Monitoring, prometheusName, prometheusPort, prometheusPort, prometheusPort))
	}
	return steps
}
