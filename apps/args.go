package apps

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Monitoring modes.
const (
	// MonitoringChart installs kube-prometheus-stack with ServiceMonitors, PrometheusRules and dashboards.
	MonitoringChart = "chart"
	// MonitoringStandalone runs one hardened Prometheus with static scrape targets and the same rules,
	// for clusters where the chart cannot be installed (the local stack).
	MonitoringStandalone = "standalone"
	// MonitoringOff deploys no monitoring at all; everything else is unchanged.
	MonitoringOff = "off"
)

// PlatformArgs configures the apps layer. Zero values take the defaults documented on each field.
type PlatformArgs struct {
	Namespaces Namespaces
	API        APIArgs
	Postgres   PostgresArgs
	Exporter   ExporterArgs
	Monitoring MonitoringArgs
	Quotas     Quotas
	Secrets    Secrets

	// PSAExceptions relaxes Pod Security enforcement for a namespace this layer creates, keyed by
	// namespace name. Audit and warn stay at restricted so every violation is still reported. The
	// reason is written to the namespace annotation infralab.dev/psa-exception-reason, but that
	// does not satisfy the policy pack: its config needs a matching namespace-pod-security
	// exception, and until it has one the pack's violation quotes the reason and the entry to add.
	PSAExceptions map[string]PSAException

	// SkipAwait sets pulumi.com/skipAwait on objects whose readiness needs a kubelet (workloads,
	// Services, Jobs, PersistentVolumes). Only for a control plane without nodes.
	SkipAwait bool
}

// Namespaces names the namespaces this layer creates.
type Namespaces struct {
	API          string // default "healthcare"
	Database     string // default "database"
	Monitoring   string // default "monitoring"; created unless monitoring is off
	NodeExporter string // default "monitoring-node"; created only when node-exporter runs
}

// Resources are a container's requests and limits as Kubernetes quantities. Ephemeral storage
// (logs, the writable layer and every emptyDir on the node's disk) is limited like memory, so a
// pod that fills it is evicted instead of filling the node's disk; the limit must cover the
// pod's emptyDir sizeLimits.
type Resources struct {
	RequestsCPU              string
	RequestsMemory           string
	LimitsCPU                string
	LimitsMemory             string
	RequestsEphemeralStorage string
	LimitsEphemeralStorage   string
}

// IngressSource is one allowed origin of traffic to the api. Set CIDR alone, or any of the label
// selectors; NamespaceLabels and PodLabels together mean "these pods in these namespaces".
type IngressSource struct {
	NamespaceLabels map[string]string
	PodLabels       map[string]string
	CIDR            string
}

// APIArgs configures the healthcare-api Deployment.
type APIArgs struct {
	Image      string // required; pinned tag or digest
	PullPolicy string // default IfNotPresent
	Replicas   int    // default 2 (the seed stayed available through an OOM kill with 2)
	// PoolSize is the api's database connection pool per replica (DB_POOL_SIZE). Default 5.
	// Validation checks that (Replicas+1 surge) * PoolSize fits Postgres.MaxConnections.
	PoolSize  int
	Port      int // default 8080
	Resources Resources
	// AllowIngressFrom lists who may reach the api on its port. Empty means nobody but Prometheus.
	AllowIngressFrom []IngressSource
	DatabaseName     string // default "healthcare"
	DatabaseUser     string // default "healthcare"
}

// LocalVolume binds the Postgres volume to a directory on one node (the seed's layout).
type LocalVolume struct {
	NodeName string // required: kubernetes.io/hostname of the node holding the data
	Path     string // default /var/lib/infralab/postgres; must exist on the node
}

// PostgresArgs configures the PostgreSQL StatefulSet.
type PostgresArgs struct {
	Image      string // required; pinned tag or digest, psql >= 15 (the role script uses \getenv)
	PullPolicy string // default IfNotPresent
	// UID and GID default to 10999: at or above 10000 (policy rule pod-high-uid-gid), so no
	// account of the node owns what the database process owns. Our image
	// (proof/images) creates its postgres user and directories with these ids; the official
	// image (user 999) runs under any id: its docker-entrypoint.sh fakes the passwd entry initdb
	// needs with nss_wrapper (docker-library/postgres 15/bookworm/docker-entrypoint.sh,
	// docker_init_database_dir). A database initialised by another id must be handed over
	// first (docs/runbooks/replace-a-node.md).
	UID int64
	GID int64
	// StorageClass is the PVC's class. Default "infralab-local". With Local set this layer declares
	// the class (no provisioner) and one PersistentVolume; otherwise the class must already exist
	// (e.g. a replicated class such as longhorn).
	StorageClass   string
	StorageSize    string // default 10Gi
	Local          *LocalVolume
	Resources      Resources
	MaxConnections int // default 100
}

// ExporterArgs configures postgres_exporter.
type ExporterArgs struct {
	Image      string // required; pinned tag or digest
	PullPolicy string // default IfNotPresent
	Resources  Resources
}

// MonitoringArgs configures monitoring.
type MonitoringArgs struct {
	Mode string // chart | standalone | off; default chart

	// Chart mode.
	ChartVersion string // default DefaultChartVersion
	ChartRepo    string // default https://prometheus-community.github.io/helm-charts
	Retention    string // default 15d (also standalone)
	StorageClass string // Prometheus PVC class; empty = no persistence (emptyDir)
	StorageSize  string // default 20Gi when StorageClass is set
	// NodeExporter installs node-exporter in Namespaces.NodeExporter (the chart's in chart mode,
	// ours with NodeExporterImage in standalone mode). It needs host access, so PSAExceptions
	// must name that namespace with level privileged and a reason.
	NodeExporter bool
	// KubeAPICIDRs are the API server addresses; the operator, kube-state-metrics and Prometheus
	// need egress there. Required in chart mode and for standalone kube-state-metrics.
	KubeAPICIDRs []string
	KubeAPIPort  int // default 6443
	// NodeCIDRs are the nodes' addresses, scraped on 10250 (kubelet) and 9100 (node-exporter).
	// Required in chart mode.
	NodeCIDRs []string

	// Standalone mode.
	PrometheusImage      string // required in standalone mode; pinned tag or digest
	PrometheusPullPolicy string // default IfNotPresent
	PrometheusResources  Resources

	// Standalone mode, what kube-prometheus-stack brings in chart mode. Each runs when its image
	// is set: NodeExporter (with NodeExporterImage) in Namespaces.NodeExporter, kube-state-metrics
	// and Alertmanager in the monitoring namespace.
	NodeExporterImage     string // pinned tag or digest; needs NodeExporter and NodeAddresses
	KubeStateMetricsImage string // pinned tag or digest; needs KubeAPICIDRs (it watches the API)
	AlertmanagerImage     string // pinned tag or digest; needs AlertWebhookURL
	// PullPolicy of the three images above. Default IfNotPresent.
	ComponentPullPolicy string
	// NodeAddresses are the nodes' IPs: Prometheus scrapes each kubelet (/metrics and cAdvisor's
	// /metrics/cadvisor) on 10250 with its ServiceAccount token, and node-exporter on 9100.
	// Empty: no kubelet or node-exporter targets.
	NodeAddresses []string
	// AlertWebhookURL is Alertmanager's one receiver, a webhook (http or https; the host must be
	// an IP address, which the NetworkPolicy opens).
	AlertWebhookURL string
	// ScrapeInterval of the standalone Prometheus, also its rule evaluation interval. Default 30s.
	ScrapeInterval string
	// AlertFor replaces the `for:` duration of the named alerts (both modes), e.g. to prove them
	// in a test in minutes. Shipped durations are documented in docs/apps.md; the override is
	// visible in the stack config.
	AlertFor map[string]string

	// ConnectionsAlertRatio fires TooManyDBConnections above this share of max_connections. Default 0.8.
	ConnectionsAlertRatio float64
}

// NamespaceQuota is a ResourceQuota for one app namespace.
type NamespaceQuota struct {
	RequestsCPU     string
	RequestsMemory  string
	LimitsCPU       string
	LimitsMemory    string
	Pods            int
	PVCs            int
	RequestsStorage string
}

// Quotas holds the ResourceQuota of each app namespace.
type Quotas struct {
	API      NamespaceQuota
	Database NamespaceQuota
}

// Secrets are the credentials, always Pulumi secrets (plain inputs are wrapped with ToSecret).
type Secrets struct {
	PostgresPassword     pulumi.StringInput // superuser "postgres"
	APIDatabasePassword  pulumi.StringInput // the api's own role
	ExporterPassword     pulumi.StringInput // postgres_exporter's pg_monitor role
	GrafanaAdminPassword pulumi.StringInput // chart mode only
}

// PSAException relaxes Pod Security enforcement of one namespace.
type PSAException struct {
	Level  string // baseline | privileged
	Reason string // required; written to the namespace annotation for operators and the pack's message
}
