package main

import "time"

// Options are the experiment-specific settings from the command line. Each experiment reads the
// fields it needs; Defaults fill what the user left empty.
type Options struct {
	// Target names the Deployment or StatefulSet an experiment acts on.
	Target string

	// bad-rollout
	BadImage         string
	ProgressDeadline int32 // seconds; 0 keeps the Deployment's own
	MinAvailable     int

	// node-failure
	Node              string
	StatelessSelector string
	PostgresSelector  string
	RecoverySLO       time.Duration
	// AbortAfterUnavailable aborts (and rolls back) when the api Service (Service) has had no
	// ready endpoint for this long; 0 means defaultAbortAfterUnavailable.
	AbortAfterUnavailable time.Duration
	Proxmox               ProxmoxConfig
	VMPower               VMPower // built from Proxmox when it is configured

	// pg-migration
	From, To         string
	Database, DBUser string

	// oom-kill, node-failure: the api Service whose ready endpoints are watched
	Service string

	// postgres-alert
	PrometheusURL string
	AlertName     string
	AlertMargin   time.Duration
	// MaxDowntime aborts (and scales PostgreSQL back) when it has been down this long without
	// the alert firing; 0 means defaultMaxDowntime.
	MaxDowntime time.Duration
}

const (
	// defaultAbortAfterUnavailable is node-failure's and oom-kill's grace for an api with no
	// ready endpoint.
	defaultAbortAfterUnavailable = 60 * time.Second
	// defaultMaxDowntime is postgres-alert's downtime cap: the shipped PostgresDown rule's
	// `for` (1m) + the default --alert-margin (2m) + 2m. It does not grow with the rule's
	// `for`, so a rule with a long window cannot stretch the outage.
	defaultMaxDowntime = 5 * time.Minute
)

// Defaults is an experiment's default blast radius and limits.
type Defaults struct {
	Namespaces string
	Selector   string
	Target     string
	Duration   time.Duration
	Requests   int
}

// defaulter is implemented by experiments that have defaults (all of ours do).
type defaulter interface{ Defaults() Defaults }
