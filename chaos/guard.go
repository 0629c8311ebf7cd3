package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
)

// Guard sits, as an http.RoundTripper, under every API request the experiment makes. It enforces the
// blast radius on the server's own view of each object (not on what the experiment believes),
// refuses every change in dry-run mode, and counts requests against the budget.
type Guard struct {
	// lookup is a plain transport of the unguarded config, for reading an object's labels: the
	// transport a request came through may be an exec stream's upgrading one.
	lookup    http.RoundTripper
	lookupErr error
	scope     Scope
	dryRun    bool

	mu        sync.Mutex
	used      int
	limit     int
	reserve   int
	rollback  bool
	nodes     map[string]bool
	onlyPod   string // "namespace/name" once AllowOnlyPod narrowed the blast radius to one pod
	mutations int
	refused   []string
}

// ErrRefused marks a request the guard would not send.
var ErrRefused = errors.New("chaos guard refused the request")

// ErrBudget marks a request over the request budget.
var ErrBudget = errors.New("request budget exhausted")

// mutableResources are the only kinds an experiment may change (subresources included).
var mutableResources = []string{
	"deployments", "deployments/scale", "statefulsets", "statefulsets/scale",
	"pods", "pods/eviction", "pods/exec",
}

// NewGuard wraps cfg so that every request goes through a guard; it returns the guarded copy.
func NewGuard(cfg *rest.Config, scope Scope, dryRun bool, limits Limits) (*rest.Config, *Guard) {
	g := &Guard{scope: scope, dryRun: dryRun, limit: limits.MaxRequests, reserve: limits.RollbackRequests, nodes: map[string]bool{}}
	g.lookup, g.lookupErr = rest.TransportFor(cfg)
	c := rest.CopyConfig(cfg)
	// JSON, so the guard can read the labels of an object being created.
	c.ContentType = "application/json"
	c.AcceptContentTypes = "application/json"
	c.QPS, c.Burst = 10, 20
	// Every transport built from the config (the clientset's, each exec stream's) is wrapped
	// with a guard of its own in front of it, all sharing g's scope and budget.
	c.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return &guarded{g: g, next: rt}
	})
	return c, g
}

// BeginRollback gives the rollback its reserved share of the budget.
func (g *Guard) BeginRollback() {
	g.mu.Lock()
	g.rollback = true
	g.mu.Unlock()
}

// Stats returns requests sent, mutations sent, and what was refused.
func (g *Guard) Stats() (requests, mutations int, refused []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.used, g.mutations, append([]string(nil), g.refused...)
}

// AllowNode lets the experiment cordon a node, but only a node that runs a pod inside the scope.
func (g *Guard) AllowNode(ctx context.Context, env *Env, node string) error {
	for _, ns := range g.scope.Namespaces {
		pods, err := env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{
			LabelSelector: g.scope.Selector.String(), FieldSelector: "spec.nodeName=" + node,
		})
		if err != nil {
			return err
		}
		if len(pods.Items) > 0 {
			g.mu.Lock()
			g.nodes[node] = true
			g.mu.Unlock()
			return nil
		}
	}
	return fmt.Errorf("blast radius: node %s runs no pod matching %s", node, g.scope)
}

// AllowOnlyPod narrows the blast radius to one pod for the rest of the run: from then on every
// change must target that pod (or one of its subresources, such as pods/exec) and still match
// the scope; every other change, to another pod or any other kind, is refused.
func (g *Guard) AllowOnlyPod(namespace, name string) {
	g.mu.Lock()
	g.onlyPod = namespace + "/" + name
	g.mu.Unlock()
}

// guarded is one transport behind the guard.
type guarded struct {
	g    *Guard
	next http.RoundTripper
}

func (t *guarded) RoundTrip(req *http.Request) (*http.Response, error) {
	g := t.g
	if err := g.take(); err != nil {
		return nil, err
	}
	if !isMutation(req.Method) {
		return t.next.RoundTrip(req)
	}
	if err := g.allow(req); err != nil {
		g.mu.Lock()
		g.refused = append(g.refused, req.Method+" "+req.URL.Path+": "+err.Error())
		g.mu.Unlock()
		return nil, err
	}
	g.mu.Lock()
	g.mutations++
	g.mu.Unlock()
	return t.next.RoundTrip(req)
}

func (g *Guard) take() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	max := g.limit
	if g.rollback {
		max += g.reserve
	}
	if g.used >= max {
		return fmt.Errorf("%w: %d requests sent (limit %d)", ErrBudget, g.used, max)
	}
	g.used++
	return nil
}

func isMutation(method string) bool {
	return method != http.MethodGet && method != http.MethodHead && method != http.MethodOptions
}

func refusef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRefused, fmt.Sprintf(format, args...))
}

// apiPath is a parsed resource URL.
type apiPath struct {
	namespace, resource, name, sub string
	prefix                         string // "/api/v1" or "/apis/group/version"
}

func parseAPIPath(p string) (apiPath, bool) {
	seg := strings.Split(strings.Trim(p, "/"), "/")
	var a apiPath
	switch {
	case len(seg) >= 2 && seg[0] == "api":
		a.prefix, seg = "/api/"+seg[1], seg[2:]
	case len(seg) >= 3 && seg[0] == "apis":
		a.prefix, seg = "/apis/"+seg[1]+"/"+seg[2], seg[3:]
	default:
		return a, false
	}
	if len(seg) >= 2 && seg[0] == "namespaces" {
		if len(seg) == 2 {
			a.resource, a.name = "namespaces", seg[1]
			return a, true
		}
		a.namespace, seg = seg[1], seg[2:]
	}
	if len(seg) == 0 {
		return a, false
	}
	a.resource = seg[0]
	if len(seg) > 1 {
		a.name = seg[1]
	}
	if len(seg) > 2 {
		a.sub = strings.Join(seg[2:], "/")
	}
	return a, true
}

func (g *Guard) allow(req *http.Request) error {
	if g.dryRun && !slices.Contains(req.URL.Query()["dryRun"], "All") {
		return refusef("--dry-run: %s %s would change the cluster", req.Method, req.URL.Path)
	}
	a, ok := parseAPIPath(req.URL.Path)
	if !ok {
		return refusef("%s %s is not a resource path", req.Method, req.URL.Path)
	}
	if a.namespace == "" {
		g.mu.Lock()
		node := a.resource == "nodes" && a.sub == "" && g.nodes[a.name]
		g.mu.Unlock()
		if node && req.Method == http.MethodPatch {
			return nil
		}
		return refusef("%s of cluster-scoped %s %q is outside the blast radius", req.Method, a.resource, a.name)
	}
	if !g.scope.HasNamespace(a.namespace) {
		return refusef("namespace %q is outside the blast radius %v", a.namespace, g.scope.Namespaces)
	}
	g.mu.Lock()
	only := g.onlyPod
	g.mu.Unlock()
	if only != "" && (a.resource != "pods" || a.namespace+"/"+a.name != only) {
		return refusef("%s %s/%s: this run may change pod %s only", a.resource, a.namespace, a.name, only)
	}
	kind := a.resource
	if a.sub != "" {
		kind += "/" + a.sub
	}
	if !slices.Contains(mutableResources, kind) {
		return refusef("%s of %s is not something a chaos experiment changes", req.Method, kind)
	}
	var lbls map[string]string
	var err error
	if a.name == "" {
		if req.Method != http.MethodPost {
			return refusef("%s on a whole collection of %s", req.Method, a.resource)
		}
		lbls, err = bodyLabels(req)
	} else {
		lbls, err = g.serverLabels(req, a)
	}
	if err != nil {
		return err
	}
	if !g.scope.Selector.Matches(labels.Set(lbls)) {
		return refusef("%s %s/%s does not match selector %q", a.resource, a.namespace, a.name, g.scope.Selector)
	}
	return nil
}

// bodyLabels reads metadata.labels of an object being created, and puts the body back.
func bodyLabels(req *http.Request) (map[string]string, error) {
	if req.Body == nil {
		return nil, refusef("create without a body")
	}
	b, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(bytes.NewReader(b))
	var obj struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	if err := json.Unmarshal(b, &obj); err != nil {
		return nil, refusef("cannot read the labels of the object being created: %v", err)
	}
	return obj.Metadata.Labels, nil
}

// serverLabels fetches the target object's current labels from the API server.
func (g *Guard) serverLabels(req *http.Request, a apiPath) (map[string]string, error) {
	if g.lookupErr != nil {
		return nil, refusef("cannot read %s %s/%s to check its labels: %v", a.resource, a.namespace, a.name, g.lookupErr)
	}
	get, err := http.NewRequestWithContext(req.Context(), http.MethodGet, "", nil)
	if err != nil {
		return nil, err
	}
	u := *req.URL
	u.Path = a.prefix + "/namespaces/" + a.namespace + "/" + a.resource + "/" + a.name
	u.RawQuery = ""
	get.URL = &u
	get.Host = req.Host
	get.Header = req.Header.Clone()
	get.Header.Set("Accept", "application/json")
	get.Header.Del("Content-Type")
	get.Header.Del("Connection")
	get.Header.Del("Upgrade")
	resp, err := g.lookup.RoundTrip(get)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, refusef("cannot read %s %s/%s to check its labels: HTTP %d", a.resource, a.namespace, a.name, resp.StatusCode)
	}
	var obj struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	if err := json.Unmarshal(b, &obj); err != nil {
		return nil, err
	}
	return obj.Metadata.Labels, nil
}
