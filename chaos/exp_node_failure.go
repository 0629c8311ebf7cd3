package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// NodeFailure fails one worker (Proxmox VM stop, or cordon and drain of the in-scope pods) and
// measures how long the stateless pods take to run elsewhere and how long PostgreSQL on local
// storage stays down.
type NodeFailure struct {
	node     string
	vmid     int
	viaVM    bool
	cordoned bool
	injected time.Time
	apiBack  bool
	pgDownAt time.Time
	pgBack   bool
	evicted  []string
	pgOnNode bool

	// abort conditions
	readyNodes map[string]bool // nodes other than the target that were Ready at inject
	apiZeroAt  time.Time       // since when the api Service has had no ready endpoint
	minReady   int             // fewest ready api endpoints seen
}

// unavailableGrace is how long the api may have no ready endpoint before the run aborts.
func unavailableGrace(o Options) time.Duration {
	if o.AbortAfterUnavailable > 0 {
		return o.AbortAfterUnavailable
	}
	return defaultAbortAfterUnavailable
}

func (*NodeFailure) Name() string { return "node-failure" }

func (*NodeFailure) Hypothesis() string {
	return "When a worker fails, the stateless api pods run Ready on other nodes within the recovery SLO; " +
		"PostgreSQL on local storage stays down until that node returns (the seed's 25-hour outage)."
}

func (*NodeFailure) Defaults() Defaults {
	return Defaults{Namespaces: "healthcare,database", Selector: "app.kubernetes.io/part-of=infralab", Duration: 20 * time.Minute, Requests: 4000}
}

func (e *NodeFailure) Plan(env *Env) []string {
	node := env.Opts.Node
	if node == "" {
		node = "the node running the pod matching " + env.Opts.PostgresSelector
	}
	how := "cordon it and evict only the in-scope pods on it (Eviction API: PodDisruptionBudgets apply); pods of other apps stay"
	if env.Opts.VMPower != nil {
		how = "stop its VM through the Proxmox API (hard power-off; PROXMOX_API_TOKEN is never printed)"
	}
	return []string{
		fmt.Sprintf("steady state: pods matching %s and %s are Ready within %s", env.Opts.StatelessSelector, env.Opts.PostgresSelector, env.Scope),
		fmt.Sprintf("pick %s; refuse a node with no in-scope pod", node),
		"inject: " + how,
		fmt.Sprintf("observe: time until every %s pod is Ready on another node (SLO %s), and how long %s pods are not Ready", env.Opts.StatelessSelector, env.Opts.RecoverySLO, env.Opts.PostgresSelector),
		fmt.Sprintf("abort if Service %s has no ready endpoint for %s (--abort-after-unavailable), or if any node other than the failed one that was Ready goes NotReady (or disappears)", env.Opts.Service, unavailableGrace(env.Opts)),
		"rollback: start the VM again / uncordon the node, then wait for PostgreSQL to be Ready; measure its total downtime",
	}
}

func (e *NodeFailure) SteadyState(ctx context.Context, env *Env) error {
	for _, sel := range []string{env.Opts.StatelessSelector, env.Opts.PostgresSelector} {
		pods, err := scopedPods(ctx, env, sel)
		if err != nil {
			return err
		}
		ready := 0
		for i := range pods {
			if podReady(&pods[i]) {
				ready++
			}
		}
		if ready == 0 {
			return fmt.Errorf("no Ready pod matches %s within %s", sel, env.Scope)
		}
	}
	n, found, err := serviceReadyEndpoints(ctx, env, env.Opts.Service)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("Service %s has no EndpointSlice in %v: pass the api's Service with --service", env.Opts.Service, env.Scope.Namespaces)
	}
	if n < 1 {
		return fmt.Errorf("Service %s has no ready endpoint", env.Opts.Service)
	}
	if e.injected.IsZero() { // before inject
		e.minReady = n
		env.Record("ready_endpoints_before", float64(n), "endpoints", "Service "+env.Opts.Service)
	}
	return nil
}

// readyNodeSet returns the nodes whose Ready condition is True.
func readyNodeSet(ctx context.Context, env *Env) (map[string]bool, error) {
	l, err := env.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for i := range l.Items {
		if nodeReady(&l.Items[i]) {
			out[l.Items[i].Name] = true
		}
	}
	return out, nil
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (e *NodeFailure) pickNode(ctx context.Context, env *Env) (string, error) {
	if env.Opts.Node != "" {
		return env.Opts.Node, nil
	}
	pods, err := scopedPods(ctx, env, env.Opts.PostgresSelector)
	if err != nil {
		return "", err
	}
	for _, p := range pods {
		if p.Spec.NodeName != "" {
			return p.Spec.NodeName, nil
		}
	}
	return "", fmt.Errorf("no scheduled pod matches %s; pass --node", env.Opts.PostgresSelector)
}

func (e *NodeFailure) Inject(ctx context.Context, env *Env) error {
	node, err := e.pickNode(ctx, env)
	if err != nil {
		return err
	}
	if err := env.Guard.AllowNode(ctx, env, node); err != nil {
		return err
	}
	n, err := env.Client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if _, cp := n.Labels["node-role.kubernetes.io/control-plane"]; cp {
		return fmt.Errorf("blast radius: %s is a control-plane node; only workers are failed", node)
	}
	e.node = node
	// The nodes that must stay Ready: every Ready node but the one failed on purpose.
	ready, err := readyNodeSet(ctx, env)
	if err != nil {
		return err
	}
	delete(ready, node)
	e.readyNodes = ready
	pg, err := scopedPods(ctx, env, env.Opts.PostgresSelector)
	if err != nil {
		return err
	}
	for _, p := range pg {
		if p.Spec.NodeName == node {
			e.pgOnNode = true
		}
	}
	e.injected = env.Now()
	if env.Opts.VMPower != nil {
		if id, ok := env.Opts.VMPower.VMFor(node); ok {
			e.vmid, e.viaVM = id, true
			env.Logf("inject", "stopping VM %d (node %s) through the Proxmox API", id, node)
			return env.Opts.VMPower.Stop(ctx, id)
		}
		env.Logf("inject", "no --proxmox-vm for node %s: falling back to cordon and drain", node)
	}
	if err := e.setUnschedulable(ctx, env, true); err != nil {
		return err
	}
	e.cordoned = true
	env.Logf("inject", "cordoned %s; evicting in-scope pods", node)
	for _, ns := range env.Scope.Namespaces {
		pods, err := env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{
			LabelSelector: env.Scope.Selector.String(), FieldSelector: "spec.nodeName=" + node,
		})
		if err != nil {
			return err
		}
		for _, p := range pods.Items {
			ev := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace}}
			if err := env.Client.CoreV1().Pods(p.Namespace).EvictV1(ctx, ev); err != nil {
				// A PodDisruptionBudget said no: that is a finding, not a reason to stop.
				env.Logf("inject", "eviction of %s/%s refused: %v", p.Namespace, p.Name, err)
				continue
			}
			e.evicted = append(e.evicted, p.Namespace+"/"+p.Name)
		}
	}
	env.Record("pods_evicted", float64(len(e.evicted)), "pods", "")
	return nil
}

func (e *NodeFailure) setUnschedulable(ctx context.Context, env *Env, v bool) error {
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"unschedulable": v}})
	_, err := env.Client.CoreV1().Nodes().Patch(ctx, e.node, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	return err
}

func (e *NodeFailure) Observe(ctx context.Context, env *Env) (Verdict, error) {
	since := env.Now().Sub(e.injected)
	api, err := scopedPods(ctx, env, env.Opts.StatelessSelector)
	if err != nil {
		return Pending, err
	}
	if !e.apiBack && len(api) > 0 && allReadyElsewhere(api, e.node) {
		e.apiBack = true
		env.Record("stateless_recovery_seconds", since.Seconds(), "s", "every api pod Ready on another node")
	}
	pg, err := scopedPods(ctx, env, env.Opts.PostgresSelector)
	if err != nil {
		return Pending, err
	}
	pgReady := false
	for i := range pg {
		if podReady(&pg[i]) && pg[i].Spec.NodeName != e.node {
			pgReady = true
		}
	}
	if !pgReady && e.pgDownAt.IsZero() {
		e.pgDownAt = env.Now()
		env.Logf("observe", "PostgreSQL is not Ready (its local volume is on %s)", e.node)
	}
	if pgReady && !e.pgDownAt.IsZero() && !e.pgBack {
		e.pgBack = true
		env.Record("postgres_unavailable_seconds", env.Now().Sub(e.pgDownAt).Seconds(), "s", "recovered while the node was down")
	}
	if err := e.checkAbort(ctx, env); err != nil {
		return Refuted, err
	}
	switch {
	case e.apiBack && (e.pgBack || since >= env.Opts.RecoverySLO):
		return Held, nil
	case !e.apiBack && since >= env.Opts.RecoverySLO:
		env.Record("stateless_recovery_seconds", -1, "s", "not recovered within the SLO "+env.Opts.RecoverySLO.String())
		return Refuted, nil
	}
	return Pending, nil
}

// checkAbort returns an abort error when the api has had no ready endpoint for longer than the
// grace period, or when a node other than the failed one stopped being Ready: the failure spread
// beyond the one worker the experiment took down.
func (e *NodeFailure) checkAbort(ctx context.Context, env *Env) error {
	n, _, err := serviceReadyEndpoints(ctx, env, env.Opts.Service)
	if err != nil {
		return err
	}
	e.minReady = min(e.minReady, n)
	now := env.Now()
	switch {
	case n > 0 && !e.apiZeroAt.IsZero():
		env.Logf("observe", "Service %s has %d ready endpoints again after %s without one", env.Opts.Service, n, now.Sub(e.apiZeroAt).Round(time.Second))
		e.apiZeroAt = time.Time{}
	case n == 0 && e.apiZeroAt.IsZero():
		e.apiZeroAt = now
		env.Logf("observe", "Service %s has no ready endpoint; aborting if that lasts %s", env.Opts.Service, unavailableGrace(env.Opts))
	case n == 0 && now.Sub(e.apiZeroAt) >= unavailableGrace(env.Opts):
		down := now.Sub(e.apiZeroAt)
		env.Record("api_unavailable_seconds", down.Seconds(), "s", "no ready endpoint when the run aborted")
		return abortf("Service %s has had no ready endpoint for %s (--abort-after-unavailable %s): the api is down, not failing over",
			env.Opts.Service, down.Round(time.Second), unavailableGrace(env.Opts))
	}
	ready, err := readyNodeSet(ctx, env)
	if err != nil {
		return err
	}
	var lost []string
	for name := range e.readyNodes {
		if !ready[name] {
			lost = append(lost, name)
		}
	}
	if len(lost) > 0 {
		slices.Sort(lost)
		env.Record("other_nodes_not_ready", float64(len(lost)), "nodes", strings.Join(lost, ","))
		return abortf("node %s went NotReady (or disappeared) besides the failed node %s: the failure spread beyond one worker",
			strings.Join(lost, ", "), e.node)
	}
	return nil
}

func allReadyElsewhere(pods []corev1.Pod, node string) bool {
	for i := range pods {
		if !podReady(&pods[i]) || pods[i].Spec.NodeName == node {
			return false
		}
	}
	return true
}

func (e *NodeFailure) Rollback(ctx context.Context, env *Env) error {
	if !e.injected.IsZero() {
		env.Record("ready_endpoints_min", float64(e.minReady), "endpoints", "Service "+env.Opts.Service+" during the run")
	}
	switch {
	case e.viaVM:
		env.Logf("rollback", "starting VM %d", e.vmid)
		if err := env.Opts.VMPower.Start(ctx, e.vmid); err != nil {
			return err
		}
		if err := waitFor(ctx, 5*time.Second, func() (bool, error) {
			s, err := env.Opts.VMPower.Status(ctx, e.vmid)
			return s == "running", err
		}); err != nil {
			return err
		}
	case e.cordoned:
		env.Logf("rollback", "uncordoning %s", e.node)
		if err := e.setUnschedulable(ctx, env, false); err != nil {
			return err
		}
	default:
		return nil
	}
	if !e.pgOnNode || e.pgDownAt.IsZero() || e.pgBack {
		return nil
	}
	env.Logf("rollback", "waiting for PostgreSQL to be Ready again")
	err := waitFor(ctx, 3*time.Second, func() (bool, error) {
		pg, err := scopedPods(ctx, env, env.Opts.PostgresSelector)
		if err != nil {
			return false, err
		}
		for i := range pg {
			if podReady(&pg[i]) {
				return true, nil
			}
		}
		return false, nil
	})
	if err == nil {
		env.Record("postgres_unavailable_seconds", env.Now().Sub(e.pgDownAt).Seconds(), "s", "until the node came back")
	}
	return err
}
