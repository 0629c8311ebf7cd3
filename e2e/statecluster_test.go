package e2e

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/infralab/infralab/proof/controlplane"
)

// objectLookup finds the cluster object behind a state resource, whatever its kind.
type objectLookup struct {
	dyn    dynamic.Interface
	mapper meta.RESTMapper
}

func newObjectLookup(t *testing.T, cp *controlplane.ControlPlane) *objectLookup {
	t.Helper()
	cfg, err := clientcmd.RESTConfigFromKubeConfig(cp.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &objectLookup{
		dyn:    dynamic.NewForConfigOrDie(cfg),
		mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc)),
	}
}

// resource maps a state resource's apiVersion and kind (from its outputs) to the API resource.
func (o *objectLookup) resource(r stateResource) (dynamic.NamespaceableResourceInterface, *meta.RESTMapping, error) {
	apiVersion, _ := r.Outputs["apiVersion"].(string)
	kind, _ := r.Outputs["kind"].(string)
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil || kind == "" {
		return nil, nil, fmt.Errorf("%s: no apiVersion/kind in its state outputs", r.URN)
	}
	m, err := o.mapper.RESTMapping(gv.WithKind(kind).GroupKind(), gv.Version)
	if err != nil {
		return nil, nil, err
	}
	return o.dyn.Resource(m.Resource), m, nil
}

// get returns the cluster object of a state resource (its ID is "namespace/name" or "name").
func (o *objectLookup) get(r stateResource) (*unstructured.Unstructured, error) {
	res, m, err := o.resource(r)
	if err != nil {
		return nil, err
	}
	ns, name, namespaced := strings.Cut(r.ID, "/")
	if !namespaced || m.Scope.Name() != meta.RESTScopeNameNamespace {
		return res.Get(context.Background(), r.ID, metav1.GetOptions{})
	}
	return res.Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
}

// checkStateMatchesCluster proves state and cluster agree both ways: every Kubernetes object in
// the state exists with the very uid the state recorded, and every object in the cluster that
// carries the stack's managed-by label, of a kind the stack manages, is in the state.
func checkStateMatchesCluster(t *testing.T, cp *controlplane.ControlPlane, state []stateResource) {
	t.Helper()
	o := newObjectLookup(t, cp)
	inState := map[string]bool{}
	kinds := map[schema.GroupVersionResource]bool{}
	for _, r := range kubernetesObjects(state) {
		key := r.Type + " " + r.ID
		inState[key] = true
		obj, err := o.get(r)
		if err != nil {
			t.Errorf("%s is in the state but not in the cluster: %v", key, err)
			continue
		}
		md, _ := r.Outputs["metadata"].(map[string]any)
		if uid, _ := md["uid"].(string); uid != string(obj.GetUID()) {
			t.Errorf("%s: the state records uid %q, the cluster has %q", key, uid, obj.GetUID())
		}
		_, m, _ := o.resource(r)
		kinds[m.Resource] = true
	}
	typeOf := map[schema.GroupVersionResource]string{}
	for _, r := range kubernetesObjects(state) {
		_, m, _ := o.resource(r)
		typeOf[m.Resource] = r.Type
	}
	var orphans []string
	for gvr := range kinds {
		list, err := o.dyn.Resource(gvr).List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=pulumi"})
		if err != nil {
			t.Fatal(err)
		}
		for _, obj := range list.Items {
			id := obj.GetName()
			if obj.GetNamespace() != "" {
				id = obj.GetNamespace() + "/" + id
			}
			if key := typeOf[gvr] + " " + id; !inState[key] {
				orphans = append(orphans, key)
			}
		}
	}
	sort.Strings(orphans)
	for _, key := range slices.Compact(orphans) {
		t.Errorf("%s is in the cluster (managed-by=pulumi) but not in the state", key)
	}
	t.Logf("state and cluster agree on %d objects of %d kinds", len(inState), len(kinds))
}
