package e2e

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// access is one question for SubjectAccessReview. An empty namespace asks cluster-wide.
type access struct {
	verb, group, resource, subresource, namespace, name string
}

func (a access) String() string {
	r := a.resource
	if a.group != "" {
		r += "." + a.group
	}
	if a.subresource != "" {
		r += "/" + a.subresource
	}
	if a.name != "" {
		r += "/" + a.name
	}
	where := "cluster-wide"
	if a.namespace != "" {
		where = "in " + a.namespace
	}
	return a.verb + " " + r + " " + where
}

// serviceAccountNeeds is what each ServiceAccount of the apps layer may do through the Kubernetes
// API. Every workload gets its Secrets from the kubelet (env and volumes) and most mount no
// token, so their lists are empty: beyond what every authenticated user has (asking about its
// own access), nothing. Two read the API: Prometheus may get nodes/metrics (the kubelets'
// /metrics and /metrics/cadvisor) and kube-state-metrics may list and watch what it reports on.
// A ServiceAccount in the cluster that is not listed here fails the test, so a new one must say
// what it needs.
var serviceAccountNeeds = map[string][]access{
	"healthcare/healthcare-api":     nil,
	"database/postgres":             nil,
	"database/postgres-exporter":    nil,
	"database/postgres-roles":       nil,
	"monitoring/prometheus":         {{verb: "get", resource: "nodes", subresource: "metrics"}},
	"monitoring/kube-state-metrics": kubeStateMetricsNeeds(),
	"monitoring/alertmanager":       nil,
	"monitoring-node/node-exporter": nil,
}

// expectedBindings are the only bindings to the stack's accounts: ClusterRoleBinding name ->
// ServiceAccount (apps/prometheus.go, apps/kubestate.go).
var expectedBindings = map[string]string{
	"infralab-monitoring-prometheus-kubelet": "monitoring/prometheus",
	"infralab-monitoring-kube-state-metrics": "monitoring/kube-state-metrics",
}

// kubeStateMetricsNeeds: list and watch, cluster-wide, exactly the resources of its --resources
// flag; so also "list pods" in every namespace, which mustNot otherwise forbids.
func kubeStateMetricsNeeds() []access {
	var out []access
	for _, r := range []struct{ group, resource string }{
		{"", "nodes"}, {"", "pods"}, {"", "namespaces"}, {"", "persistentvolumeclaims"}, {"", "persistentvolumes"},
		{"apps", "deployments"}, {"apps", "statefulsets"}, {"apps", "daemonsets"}, {"apps", "replicasets"}, {"batch", "jobs"},
	} {
		for _, verb := range []string{"list", "watch"} {
			out = append(out, access{verb: verb, group: r.group, resource: r.resource})
		}
	}
	for _, ns := range append([]string{"default", "kube-system"}, localNamespaces...) {
		out = append(out, access{verb: "list", resource: "pods", namespace: ns})
	}
	return out
}

// everyoneMay is granted to every authenticated user by the default system:basic-user role; it
// doubles as the proof that the review can answer yes for a ServiceAccount.
var everyoneMay = []access{
	{verb: "create", group: "authorization.k8s.io", resource: "selfsubjectaccessreviews"},
	{verb: "create", group: "authentication.k8s.io", resource: "selfsubjectreviews"},
}

// mustNot lists what no workload account may do, asked in its own namespace (ns), in every
// other namespace, and cluster-wide. secrets are the Secret names of the namespace.
func mustNot(ns string, others, secrets []string) []access {
	var out []access
	inNS := func(n string) []access {
		return []access{
			{verb: "list", resource: "secrets", namespace: n},
			{verb: "watch", resource: "secrets", namespace: n},
			{verb: "get", resource: "secrets", namespace: n},
			{verb: "create", resource: "secrets", namespace: n},
			{verb: "list", resource: "pods", namespace: n},
			{verb: "create", resource: "pods", namespace: n},
			{verb: "create", resource: "pods", subresource: "exec", namespace: n},
			{verb: "get", resource: "pods", subresource: "log", namespace: n},
			{verb: "list", resource: "configmaps", namespace: n},
			{verb: "create", resource: "serviceaccounts", subresource: "token", namespace: n},
			{verb: "patch", group: "apps", resource: "deployments", namespace: n},
			{verb: "create", group: "batch", resource: "jobs", namespace: n},
			{verb: "create", group: "rbac.authorization.k8s.io", resource: "rolebindings", namespace: n},
			{verb: "delete", group: "networking.k8s.io", resource: "networkpolicies", namespace: n},
			{verb: "list", resource: "services", namespace: n},
		}
	}
	out = append(out, inNS(ns)...)
	for _, s := range secrets {
		out = append(out, access{verb: "get", resource: "secrets", namespace: ns, name: s})
	}
	for _, o := range others {
		out = append(out, inNS(o)...)
	}
	return append(out,
		access{verb: "list", resource: "namespaces"},
		access{verb: "list", resource: "secrets"},
		access{verb: "get", resource: "nodes"},
		access{verb: "get", resource: "nodes", subresource: "proxy"},
		access{verb: "list", resource: "persistentvolumes"},
		access{verb: "impersonate", resource: "users"},
		access{verb: "impersonate", resource: "serviceaccounts"},
		access{verb: "escalate", group: "rbac.authorization.k8s.io", resource: "clusterroles"},
		access{verb: "bind", group: "rbac.authorization.k8s.io", resource: "clusterroles"},
		access{verb: "create", group: "certificates.k8s.io", resource: "certificatesigningrequests"},
	)
}

// checkRBACMatrix asks the API server, with SubjectAccessReview, every question of the matrix
// for every ServiceAccount the stack created, and checks that no RoleBinding or
// ClusterRoleBinding grants one of them (or its namespace's group) anything.
func checkRBACMatrix(t *testing.T, client *kubernetes.Clientset, state []stateResource) {
	ctx := context.Background()
	secretsIn := map[string][]string{}
	var accounts []string
	for _, r := range kubernetesObjects(state) {
		ns, name, _ := strings.Cut(r.ID, "/")
		switch r.Type {
		case "kubernetes:core/v1:Secret":
			secretsIn[ns] = append(secretsIn[ns], name)
		case "kubernetes:core/v1:ServiceAccount":
			accounts = append(accounts, r.ID)
		}
	}
	// The cluster, not only the state: an account made some other way must be in the matrix too.
	for _, ns := range localNamespaces {
		sas, err := client.CoreV1().ServiceAccounts(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, sa := range sas.Items {
			if id := ns + "/" + sa.Name; sa.Name != "default" && !slices.Contains(accounts, id) {
				accounts = append(accounts, id)
			}
		}
	}
	sort.Strings(accounts)
	for id := range serviceAccountNeeds {
		if !slices.Contains(accounts, id) {
			t.Errorf("ServiceAccount %s is in the matrix but the stack did not create it", id)
		}
	}

	// The review must be able to say yes, or every "denied" below proves nothing.
	admin := authzv1.SubjectAccessReviewSpec{User: "infralab-admin", Groups: []string{"system:masters", "system:authenticated"}}
	if !review(t, client, admin, access{verb: "list", resource: "secrets", namespace: "healthcare"}) {
		t.Fatal("SubjectAccessReview denies the cluster admin: the review itself is broken")
	}

	asked, denied := 0, 0
	for _, id := range accounts {
		needs, listed := serviceAccountNeeds[id]
		if !listed {
			t.Errorf("ServiceAccount %s is not in the RBAC matrix: add what it needs to serviceAccountNeeds", id)
			continue
		}
		ns, name, _ := strings.Cut(id, "/")
		subject := authzv1.SubjectAccessReviewSpec{
			User:   "system:serviceaccount:" + ns + ":" + name,
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
		}
		for _, a := range append(append([]access{}, everyoneMay...), needs...) {
			asked++
			if !review(t, client, subject, a) {
				t.Errorf("%s cannot %s, which it needs", id, a)
			}
		}
		others := slices.DeleteFunc(append([]string{"default", "kube-system"}, localNamespaces...), func(o string) bool { return o == ns })
		for _, a := range mustNot(ns, others, secretsIn[ns]) {
			asked++
			if slices.Contains(needs, a) {
				continue
			}
			if review(t, client, subject, a) {
				t.Errorf("%s can %s, which it does not need", id, a)
			} else {
				denied++
			}
		}
	}
	checkNoBindings(t, client, accounts)
	t.Logf("RBAC matrix: %d ServiceAccounts, %d SubjectAccessReviews, %d denied as required", len(accounts), asked, denied)
}

func review(t *testing.T, client *kubernetes.Clientset, subject authzv1.SubjectAccessReviewSpec, a access) bool {
	t.Helper()
	spec := subject
	spec.ResourceAttributes = &authzv1.ResourceAttributes{
		Verb: a.verb, Group: a.group, Resource: a.resource, Subresource: a.subresource, Namespace: a.namespace, Name: a.name,
	}
	res, err := client.AuthorizationV1().SubjectAccessReviews().Create(context.Background(),
		&authzv1.SubjectAccessReview{Spec: spec}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SubjectAccessReview %s for %s: %v", a, subject.User, err)
	}
	if res.Status.EvaluationError != "" {
		t.Errorf("SubjectAccessReview %s for %s: %s", a, subject.User, res.Status.EvaluationError)
	}
	return res.Status.Allowed
}

// checkNoBindings fails for any binding whose subject is one of the accounts or a group that
// contains them, apart from the API server's default bindings.
func checkNoBindings(t *testing.T, client *kubernetes.Clientset, accounts []string) {
	ctx := context.Background()
	matches := func(kind, name, ns string) bool {
		switch kind {
		case "ServiceAccount":
			return slices.Contains(accounts, ns+"/"+name)
		case "Group":
			for _, a := range accounts {
				if n, _, _ := strings.Cut(a, "/"); name == "system:serviceaccounts:"+n {
					return true
				}
			}
			return name == "system:serviceaccounts"
		}
		return false
	}
	crbs, err := client.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range crbs.Items {
		if b.Labels["kubernetes.io/bootstrapping"] == "rbac-defaults" {
			continue // the API server's own defaults, e.g. service account issuer discovery
		}
		for _, s := range b.Subjects {
			if s.Kind == "ServiceAccount" && expectedBindings[b.Name] == s.Namespace+"/"+s.Name && b.RoleRef.Name == b.Name {
				continue // what that account needs, checked by the matrix
			}
			if matches(s.Kind, s.Name, s.Namespace) {
				t.Errorf("ClusterRoleBinding %s grants %s to %s %s", b.Name, b.RoleRef.Name, s.Kind, fmt.Sprint(s.Namespace, "/", s.Name))
			}
		}
	}
	rbs, err := client.RbacV1().RoleBindings("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range rbs.Items {
		for _, s := range b.Subjects {
			if matches(s.Kind, s.Name, s.Namespace) {
				t.Errorf("RoleBinding %s/%s grants %s to %s %s/%s", b.Namespace, b.Name, b.RoleRef.Name, s.Kind, s.Namespace, s.Name)
			}
		}
	}
}
