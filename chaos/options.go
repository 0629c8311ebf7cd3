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
	Proxmox           ProxmoxConfig
	VMPower           VMPower // built from Proxmox when it is configured

	// pg-migration
	From, To         string
	Database, DBUser string

	// oom-kill
	HogCommand string
	Service    string

	// postgres-alert
	PrometheusURL string
	AlertName     string
	AlertMargin   time.Duration
}

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
