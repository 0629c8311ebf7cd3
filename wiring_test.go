package main

import (
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"

	clusterlayer "github.com/infralab/infralab/cluster"
	"github.com/infralab/infralab/stacks"
)

// The lab stack reads its own previous outputs back (a StackReference to itself) and hands them
// to the cluster layer: a stored kubeconfig near NotAfter makes the next generation, and so a
// re-fetch; one far from it changes nothing.
func TestLabStackPassesItsPreviousCertificatesToTheCluster(t *testing.T) {
	trigger := func(notAfter time.Time) (string, *recorder) {
		rec := &recorder{previous: resource.PropertyMap{
			"certificatesNotAfter": resource.NewProperty(notAfter.UTC().Format(time.RFC3339)),
			"kubeconfigGeneration": resource.NewProperty(4.0),
		}}
		if _, err := loadStack(t, "lab").runWith(t, rec); err != nil {
			t.Fatal(err)
		}
		for _, r := range rec.resources {
			if r.Name == "cluster-fetch-kubeconfig" {
				for _, v := range r.Inputs["triggers"].ArrayValue() {
					if strings.HasPrefix(v.StringValue(), "kubeconfigGeneration=") {
						return v.StringValue(), rec
					}
				}
			}
		}
		t.Fatal("cluster-fetch-kubeconfig has no kubeconfigGeneration trigger")
		return "", nil
	}
	far, rec := trigger(time.Now().Add(200 * 24 * time.Hour))
	if far != "kubeconfigGeneration=4" {
		t.Errorf("nothing due: %s, want kubeconfigGeneration=4", far)
	}
	if near, _ := trigger(time.Now().Add(5 * 24 * time.Hour)); near != "kubeconfigGeneration=5" {
		t.Errorf("5 days left: %s, want kubeconfigGeneration=5", near)
	}
	for _, r := range rec.resources {
		if r.TypeToken == "pulumi:pulumi:StackReference" {
			if name := r.Inputs["name"].StringValue(); !strings.HasSuffix(name, "test") {
				t.Errorf("the stack reference reads %q, not this stack", name)
			}
			return
		}
	}
	t.Error("the lab stack declares no StackReference to its previous deployment")
}

// The window's bounds are checked twice (stack config and cluster args); they must agree.
func TestCertRenewBoundsAgree(t *testing.T) {
	if stacks.MinCertRenewDays != clusterlayer.MinCertRenewDays || stacks.MaxCertRenewDays != clusterlayer.MaxCertRenewDays {
		t.Errorf("stacks %d-%d, cluster %d-%d", stacks.MinCertRenewDays, stacks.MaxCertRenewDays, clusterlayer.MinCertRenewDays, clusterlayer.MaxCertRenewDays)
	}
}

// The version the last deployment recorded reaches the cluster layer's validation: a skipped
// minor is refused before any cluster resource, with the field path and the path to take.
func TestLabStackRefusesASkippedMinorFromItsPreviousVersion(t *testing.T) {
	rec := &recorder{previous: resource.PropertyMap{"kubernetesVersion": resource.NewProperty("1.33.9")}}
	_, err := loadStack(t, "lab").runWith(t, rec)
	if err == nil || !strings.Contains(err.Error(), "kubernetes.version (cluster.kubernetesVersion): the cluster runs 1.33.9: 1.33.9 to 1.35.4 skips 1.34.<newest patch>") {
		t.Fatalf("want the skipped minor refused, got %v", err)
	}
	for _, r := range rec.resources {
		if r.TypeToken != "pulumi:pulumi:StackReference" {
			t.Errorf("%s (%s) registered for a refused upgrade", r.Name, r.TypeToken)
		}
	}
	rec = &recorder{previous: resource.PropertyMap{"kubernetesVersion": resource.NewProperty("1.34.12")}}
	if _, err := loadStack(t, "lab").runWith(t, rec); err != nil {
		t.Errorf("1.34.12 to 1.35.4 is one minor: %v", err)
	}
}
