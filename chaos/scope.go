package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Scope is an experiment's blast radius: the namespaces it may change, and the label selector
// every object it changes must match.
type Scope struct {
	Namespaces []string
	Selector   labels.Selector
}

// protectedNamespaces are never in scope: breaking them breaks the cluster, not the app.
var protectedNamespaces = []string{"kube-system", "kube-public", "kube-node-lease", "calico-system", "tigera-operator"}

// ParseScope builds a scope from the --namespace and --selector flags and refuses a blast radius
// that is empty, cluster-wide or inside a system namespace.
func ParseScope(namespaces, selector string) (Scope, error) {
	var errs []error
	var s Scope
	for _, ns := range strings.Split(namespaces, ",") {
		ns = strings.TrimSpace(ns)
		switch {
		case ns == "":
			continue
		case ns == "*" || ns == "all":
			errs = append(errs, fmt.Errorf("--namespace: %q would be cluster-wide; name each namespace", ns))
		case slices.Contains(protectedNamespaces, ns) || strings.HasPrefix(ns, "kube-"):
			errs = append(errs, fmt.Errorf("--namespace: refusing %q: system namespaces are never in a chaos blast radius", ns))
		default:
			s.Namespaces = append(s.Namespaces, ns)
		}
	}
	if len(s.Namespaces) == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("--namespace: at least one namespace is required"))
	}
	sel, err := labels.Parse(selector)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("--selector: %v", err))
	case sel.Empty():
		errs = append(errs, errors.New("--selector: an empty selector matches everything; name the app, e.g. app.kubernetes.io/name=healthcare-api"))
	default:
		s.Selector = sel
	}
	return s, errors.Join(errs...)
}

// HasNamespace reports whether ns is inside the blast radius.
func (s Scope) HasNamespace(ns string) bool { return slices.Contains(s.Namespaces, ns) }

// Check refuses an object outside the blast radius, before anything changes it.
func (s Scope) Check(kind string, obj metav1.Object) error {
	if !s.HasNamespace(obj.GetNamespace()) {
		return fmt.Errorf("blast radius: %s %s/%s is outside namespaces %v", kind, obj.GetNamespace(), obj.GetName(), s.Namespaces)
	}
	if !s.Selector.Matches(labels.Set(obj.GetLabels())) {
		return fmt.Errorf("blast radius: %s %s/%s does not match selector %q", kind, obj.GetNamespace(), obj.GetName(), s.Selector)
	}
	return nil
}

func (s Scope) String() string {
	return fmt.Sprintf("namespaces %s, selector %s", strings.Join(s.Namespaces, ","), s.Selector)
}
