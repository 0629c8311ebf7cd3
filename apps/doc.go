// Package apps declares the workloads infralab runs on a Kubernetes cluster: the healthcare-api,
// PostgreSQL with postgres_exporter, and monitoring (kube-prometheus-stack, a standalone Prometheus,
// or none), together with the namespaces, Pod Security labels, NetworkPolicies, ServiceAccounts,
// Secrets, quotas and disruption budgets that keep them secure by default.
//
// NewPlatform is the only entry point. It takes typed PlatformArgs (this package never imports the
// stack config; main.go maps one to the other) and a Kubernetes provider passed with the standard
// pulumi.Provider option. Every child is parented to the Platform component, so it inherits that
// provider. Bad arguments fail with every error listed by field path before any resource is declared.
package apps
