package apps

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// The Kubernetes provider plugin is not part of a unit test: pulumi.WithMocks stands in for the
// engine and the provider and records what the program declares. The real API server run is the
// end-to-end suite (issue 7).

// Literal passwords the tests pass in as plain strings, to prove the layer turns them into
// Pulumi secrets and never writes them anywhere in clear.
const (
	pgPassword       = "pg-superuser-Secr3t"
	apiPassword      = "api-db-Secr3t"
	exporterPassword = "exporter-Secr3t"
	grafanaPassword  = "grafana-Secr3t"
)

type recorded struct {
	Type     string
	Name     string
	Custom   bool
	Provider string
	Inputs   resource.PropertyMap
}

// key names a declared object the way Kubernetes does: kind/namespace/name.
func (r recorded) key() string {
	kind := r.Type[strings.LastIndex(r.Type, ":")+1:]
	return kind + "/" + r.str("metadata", "namespace") + "/" + r.str("metadata", "name")
}

type recorder struct {
	mu  sync.Mutex
	res []recorded
}

func (m *recorder) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.res = append(m.res, recorded{Type: args.TypeToken, Name: args.Name, Custom: args.Custom, Provider: args.Provider, Inputs: args.Inputs})
	return args.Name + "-id", args.Inputs, nil
}

func (m *recorder) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	return args.Args, nil
}

// baseArgs is a valid lab-like configuration in chart mode with node-exporter and local storage.
func baseArgs() PlatformArgs {
	return PlatformArgs{
		API: APIArgs{
			Image: "ghcr.io/infralab/healthcare-api:0.3.1",
			AllowIngressFrom: []IngressSource{
				{NamespaceLabels: map[string]string{"infralab.dev/api-client": "true"}},
				{CIDR: "10.10.10.0/24"},
			},
		},
		Postgres: PostgresArgs{
			Image: "postgres:15.8-bookworm",
			Local: &LocalVolume{NodeName: "worker-1"},
		},
		Exporter: ExporterArgs{Image: "quay.io/prometheuscommunity/postgres-exporter:v0.15.0"},
		Monitoring: MonitoringArgs{
			Mode:         MonitoringChart,
			NodeExporter: true,
			KubeAPICIDRs: []string{"10.10.10.10/32"},
			NodeCIDRs:    []string{"10.10.10.0/24"},
		},
		PSAExceptions: map[string]PSAException{
			"monitoring-node": {Level: "privileged", Reason: "node-exporter reads host metrics through hostNetwork, hostPID and hostPath"},
		},
		Secrets: Secrets{
			PostgresPassword:     pulumi.String(pgPassword),
			APIDatabasePassword:  pulumi.String(apiPassword),
			ExporterPassword:     pulumi.String(exporterPassword),
			GrafanaAdminPassword: pulumi.String(grafanaPassword),
		},
	}
}

func standaloneArgs() PlatformArgs {
	a := baseArgs()
	a.Monitoring = MonitoringArgs{Mode: MonitoringStandalone, PrometheusImage: "prom/prometheus:v2.53.2"}
	a.PSAExceptions = nil
	a.Secrets.GrafanaAdminPassword = nil
	return a
}

func offArgs() PlatformArgs {
	a := baseArgs()
	a.Monitoring.Mode = MonitoringOff
	a.PSAExceptions = nil
	return a
}

// declare runs NewPlatform under mocks and returns every Kubernetes object it declared.
func declare(t *testing.T, args PlatformArgs) []recorded {
	t.Helper()
	res, err := tryDeclare(args)
	if err != nil {
		t.Fatalf("NewPlatform: %v", err)
	}
	return res
}

func tryDeclare(args PlatformArgs) ([]recorded, error) {
	m := &recorder{}
	err := pulumi.RunErr(func(ctx *pulumi.Context) error {
		k8s, err := kubernetes.NewProvider(ctx, "k8s", &kubernetes.ProviderArgs{})
		if err != nil {
			return err
		}
		_, err = NewPlatform(ctx, "apps", &args, pulumi.Provider(k8s))
		return err
	}, pulumi.WithMocks("infralab", "test", m))
	var out []recorded
	for _, r := range m.res {
		if r.Type == "pulumi:providers:kubernetes" || r.Type == "infralab:apps:Platform" {
			continue
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out, err
}

func ofType(res []recorded, typ string) []recorded {
	var out []recorded
	for _, r := range res {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

func find(t *testing.T, res []recorded, typ, ns, name string) recorded {
	t.Helper()
	for _, r := range res {
		if r.Type == typ && r.str("metadata", "namespace") == ns && r.str("metadata", "name") == name {
			return r
		}
	}
	t.Fatalf("%s %s/%s was not declared", typ, ns, name)
	return recorded{}
}

// plain turns a property value into Go values, unwrapping secrets and known outputs.
func plain(v resource.PropertyValue) any {
	switch {
	case v.IsSecret():
		return plain(v.SecretValue().Element)
	case v.IsOutput():
		return plain(v.OutputValue().Element)
	case v.IsObject():
		m := map[string]any{}
		for k, e := range v.ObjectValue() {
			m[string(k)] = plain(e)
		}
		return m
	case v.IsArray():
		var a []any
		for _, e := range v.ArrayValue() {
			a = append(a, plain(e))
		}
		return a
	case v.IsString():
		return v.StringValue()
	case v.IsNumber():
		return v.NumberValue()
	case v.IsBool():
		return v.BoolValue()
	}
	return nil
}

func (r recorded) obj() map[string]any {
	return plain(resource.NewObjectProperty(r.Inputs)).(map[string]any)
}

// get walks a path of map keys and array indexes (ints) through plain values.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

func (r recorded) get(path ...any) any { return get(r.obj(), path...) }

func (r recorded) str(path ...any) string {
	s, _ := r.get(path...).(string)
	return s
}

func asList(v any) []any {
	a, _ := v.([]any)
	return a
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// walk calls fn for every property value under v with its path; secret values are reported
// with secret=true and not descended into.
func walk(path string, v resource.PropertyValue, fn func(path string, v resource.PropertyValue, secret bool)) {
	switch {
	case v.IsSecret():
		fn(path, v, true)
	case v.IsOutput() && v.OutputValue().Secret:
		fn(path, v, true)
	case v.IsOutput():
		walk(path, v.OutputValue().Element, fn)
	case v.IsObject():
		for k, e := range v.ObjectValue() {
			walk(path+"."+string(k), e, fn)
		}
	case v.IsArray():
		for i, e := range v.ArrayValue() {
			walk(fmt.Sprintf("%s[%d]", path, i), e, fn)
		}
	default:
		fn(path, v, false)
	}
}

// podSpecs returns every workload's pod spec keyed by kind/namespace/name.
func podSpecs(res []recorded) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, r := range res {
		switch r.Type {
		case "kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet", "kubernetes:apps/v1:DaemonSet", "kubernetes:batch/v1:Job":
			out[r.key()] = asMap(r.get("spec", "template", "spec"))
		case "kubernetes:core/v1:Pod":
			out[r.key()] = asMap(r.get("spec"))
		}
	}
	return out
}
