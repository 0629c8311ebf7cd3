package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// experiments lists the five scenarios in the order the seed lab ran them.
func experiments() []Experiment {
	return []Experiment{&BadRollout{}, &NodeFailure{}, &PGMigration{}, &OOMKill{}, &PostgresAlert{}}
}

func find(name string) Experiment {
	for _, e := range experiments() {
		if e.Name() == name {
			return e
		}
	}
	return nil
}

func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: chaos EXPERIMENT [flags]\n\nRuns one chaos experiment against the cluster of the current kubeconfig, within a\nblast radius (--namespace, --selector), then rolls it back and writes measurements.json and\na postmortem draft. Start with --dry-run.\n\nExperiments:\n")
	for _, e := range experiments() {
		d := e.(defaulter).Defaults()
		fmt.Fprintf(w, "  %-15s %s\n  %-15s default scope: namespaces %s, selector %s\n", e.Name(), e.Hypothesis(), "", d.Namespaces, d.Selector)
	}
	fmt.Fprintf(w, "\nFlags:\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// cli holds the parsed command line.
type cli struct {
	kubeconfig, context, namespaces, selector, out string
	dryRun                                         bool
	limits                                         Limits
	opts                                           Options
}

func newFlags(c *cli) *flag.FlagSet {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
	fs.StringVar(&c.context, "context", "", "kubeconfig context (default: the current one)")
	fs.StringVar(&c.namespaces, "namespace", "", "comma-separated namespaces the experiment may change (default: the experiment's)")
	fs.StringVar(&c.selector, "selector", "", "label selector every changed object must match (default: the experiment's)")
	fs.BoolVar(&c.dryRun, "dry-run", false, "print the plan and run the read-only probes; change nothing")
	fs.StringVar(&c.out, "out", "chaos-results", "folder for measurements.json and postmortem.md")
	fs.DurationVar(&c.limits.Duration, "duration", 0, "bound on steady state + inject + observe (default: the experiment's)")
	fs.DurationVar(&c.limits.RollbackTimeout, "rollback-timeout", 5*time.Minute, "bound on the rollback")
	fs.DurationVar(&c.limits.Interval, "interval", 2*time.Second, "time between observations (>= 1s)")
	fs.IntVar(&c.limits.MaxRequests, "max-requests", 0, "API request budget before the rollback (default: the experiment's)")
	fs.IntVar(&c.limits.RollbackRequests, "rollback-requests", 500, "extra API requests reserved for the rollback")
	o := &c.opts
	fs.StringVar(&o.Target, "target", "", "the Deployment or StatefulSet to act on (default: the experiment's)")
	fs.StringVar(&o.BadImage, "bad-image", "registry.invalid/infralab/never-ready:0", "bad-rollout: image that never becomes ready")
	fs.Func("progress-deadline", "bad-rollout: progressDeadlineSeconds during the run (default: keep the Deployment's)", func(v string) error {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 1 || n > 3600 {
			return fmt.Errorf("want whole seconds in [1, 3600], got %q", v)
		}
		o.ProgressDeadline = int32(n)
		return nil
	})
	fs.IntVar(&o.MinAvailable, "min-available", 1, "bad-rollout: abort when available replicas fall below this")
	fs.StringVar(&o.Node, "node", "", "node-failure: node to fail (default: the node running the Postgres pod)")
	fs.StringVar(&o.StatelessSelector, "stateless-selector", "app.kubernetes.io/name=healthcare-api", "node-failure: pods that must come back elsewhere")
	fs.StringVar(&o.PostgresSelector, "postgres-selector", "app.kubernetes.io/name=postgres", "node-failure: the Postgres pods")
	fs.DurationVar(&o.RecoverySLO, "recovery-slo", 10*time.Minute, "node-failure: stateless pods must be Ready elsewhere within this")
	fs.DurationVar(&o.AbortAfterUnavailable, "abort-after-unavailable", defaultAbortAfterUnavailable, "node-failure, oom-kill: abort and roll back when --service has had no ready endpoint this long")
	fs.StringVar(&o.Proxmox.URL, "proxmox-url", "", "node-failure: Proxmox API, e.g. https://10.0.0.1:8006 (token from $PROXMOX_API_TOKEN)")
	fs.StringVar(&o.Proxmox.Node, "proxmox-node", "", "node-failure: Proxmox node name that hosts the VMs")
	fs.Var(&o.Proxmox.VMs, "proxmox-vm", "node-failure: KUBE_NODE=VMID, repeatable")
	fs.StringVar(&o.Proxmox.CAFile, "proxmox-ca", "", "node-failure: CA bundle for the Proxmox API certificate")
	fs.StringVar(&o.From, "from", "deployment/postgres", "pg-migration: the running Postgres Deployment")
	fs.StringVar(&o.To, "to", "statefulset/postgres", "pg-migration: the StatefulSet to migrate to")
	fs.StringVar(&o.Database, "database", "healthcare", "pg-migration: database whose rows are counted")
	fs.StringVar(&o.DBUser, "db-user", "postgres", "pg-migration: role for psql over the pod's local socket")
	fs.StringVar(&o.Service, "service", "healthcare-api", "oom-kill, node-failure: the api Service whose ready endpoints are watched (abort conditions)")
	fs.StringVar(&o.PrometheusURL, "prometheus-url", "", "postgres-alert: Prometheus base URL, e.g. http://127.0.0.1:9090 (kubectl port-forward)")
	fs.StringVar(&o.AlertName, "alert", "PostgresDown", "postgres-alert: the alert that must fire")
	fs.DurationVar(&o.AlertMargin, "alert-margin", 2*time.Minute, "postgres-alert: scrape + evaluation slack on top of the rule's for: duration")
	fs.DurationVar(&o.MaxDowntime, "max-downtime", defaultMaxDowntime, "postgres-alert: abort and scale PostgreSQL back when it has been down this long without the alert firing")
	return fs
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c cli
	fs := newFlags(&c)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, "run `chaos --help` for the experiments and flags") }
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		usage(stdout, fs)
		return 0
	}
	exp := find(args[0])
	if exp == nil {
		fmt.Fprintf(stderr, "chaos: unknown experiment %q; want one of %s\n", args[0], names())
		return 2
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := c.complete(exp); err != nil {
		fmt.Fprintf(stderr, "chaos: %v\n", err)
		return 2
	}
	res, err := c.execute(ctx, exp, stdout)
	if res != nil {
		dir, werr := res.Write(c.out)
		if werr != nil {
			fmt.Fprintf(stderr, "chaos: writing results: %v\n", werr)
			return 1
		}
		fmt.Fprintf(stdout, "\noutcome: %s\nresults: %s/measurements.json\npostmortem draft: %s/postmortem.md (fill in the TODOs)\n", res.Outcome, dir, dir)
	}
	if err != nil {
		fmt.Fprintf(stderr, "chaos: %v\n", err)
		return 1
	}
	return 0
}

func names() string {
	var n []string
	for _, e := range experiments() {
		n = append(n, e.Name())
	}
	return strings.Join(n, ", ")
}

// complete fills defaults and validates every flag before anything talks to the cluster.
func (c *cli) complete(exp Experiment) error {
	d := exp.(defaulter).Defaults()
	if c.namespaces == "" {
		c.namespaces = d.Namespaces
	}
	if c.selector == "" {
		c.selector = d.Selector
	}
	if c.opts.Target == "" {
		c.opts.Target = d.Target
	}
	if c.limits.Duration == 0 {
		c.limits.Duration = d.Duration
	}
	if c.limits.MaxRequests == 0 {
		c.limits.MaxRequests = d.Requests
	}
	_, err := ParseScope(c.namespaces, c.selector)
	errs := []error{err, c.limits.Validate()}
	if c.opts.AbortAfterUnavailable <= 0 {
		errs = append(errs, fmt.Errorf("--abort-after-unavailable: %s must be positive", c.opts.AbortAfterUnavailable))
	}
	if c.opts.MaxDowntime <= 0 {
		errs = append(errs, fmt.Errorf("--max-downtime: %s must be positive", c.opts.MaxDowntime))
	}
	return errors.Join(errs...)
}

func (c *cli) execute(ctx context.Context, exp Experiment, stdout io.Writer) (*Result, error) {
	cfg, kctx, err := loadKubeconfig(c.kubeconfig, c.context)
	if err != nil {
		return nil, err
	}
	scope, _ := ParseScope(c.namespaces, c.selector)
	guarded, guard := NewGuard(cfg, scope, c.dryRun, c.limits)
	client, err := kubernetes.NewForConfig(guarded)
	if err != nil {
		return nil, err
	}
	if c.opts.Proxmox.Configured() {
		p, err := NewProxmox(c.opts.Proxmox, os.Getenv("PROXMOX_API_TOKEN"))
		if err != nil {
			return nil, err
		}
		c.opts.VMPower = p
	}
	fmt.Fprintf(stdout, "chaos %s on context %q (%s)%s\n", exp.Name(), kctx, cfg.Host, map[bool]string{true: " [DRY RUN]"}[c.dryRun])
	env := &Env{Client: client, Config: guarded, Scope: scope, Guard: guard, DryRun: c.dryRun, Opts: c.opts, Out: stdout, Now: time.Now}
	return Runner{Limits: c.limits}.Run(ctx, exp, env)
}
