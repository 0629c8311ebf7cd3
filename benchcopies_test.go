package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// benchCopies=3 declares the apps layer three times: every namespaced object again in
// namespaces suffixed -2 and -3, the cluster-scoped StorageClass and volume only once, and no
// two resources with the same type and name (which the engine would refuse).
func TestBenchCopiesReplicateTheAppsLayer(t *testing.T) {
	count := func(copies string) (*recorder, map[string]int) {
		sc := loadStack(t, "local")
		kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
		if err := os.WriteFile(kubeconfig, []byte("apiVersion: v1\nkind: Config\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		sc.values["kubeconfig"] = kubeconfig
		if copies != "" {
			sc.values["benchCopies"] = copies
		}
		rec, err := sc.run(t)
		if err != nil {
			t.Fatal(err)
		}
		return rec, rec.types()
	}
	_, one := count("")
	rec, three := count("3")
	if three["infralab:apps:Platform"] != 3 {
		t.Fatalf("benchCopies=3 declared %d apps layers, want 3", three["infralab:apps:Platform"])
	}
	for _, typ := range []string{"kubernetes:storage.k8s.io/v1:StorageClass", "kubernetes:core/v1:PersistentVolume"} {
		if three[typ] != one[typ] {
			t.Errorf("%s: %d with 3 copies, %d with one; cluster-scoped storage belongs to the first copy only", typ, three[typ], one[typ])
		}
	}
	// node-exporter (a DaemonSet on the node's own address, in its own namespace with its own
	// NetworkPolicies) runs in the first copy only.
	onlyFirst := map[string]int{"kubernetes:apps/v1:DaemonSet": one["kubernetes:apps/v1:DaemonSet"]}
	if one["kubernetes:apps/v1:DaemonSet"] > 0 {
		onlyFirst["kubernetes:core/v1:Namespace"] = 1
	}
	nodeNS := 0
	for _, r := range rec.resources {
		if r.TypeToken == "kubernetes:networking.k8s.io/v1:NetworkPolicy" && strings.Contains(r.Name, "monitoring-node") {
			nodeNS++
		}
	}
	onlyFirst["kubernetes:networking.k8s.io/v1:NetworkPolicy"] = nodeNS
	for _, typ := range []string{"kubernetes:core/v1:Namespace", "kubernetes:apps/v1:Deployment", "kubernetes:networking.k8s.io/v1:NetworkPolicy", "kubernetes:apps/v1:DaemonSet"} {
		want := 3*(one[typ]-onlyFirst[typ]) + onlyFirst[typ]
		if three[typ] != want || one[typ] == 0 && typ != "kubernetes:apps/v1:DaemonSet" {
			t.Errorf("%s: %d with 3 copies, want %d (one copy: %d, of which %d only in the first)", typ, three[typ], want, one[typ], onlyFirst[typ])
		}
	}
	seen := map[string]bool{}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, r := range rec.resources {
		key := r.TypeToken + "::" + r.Name
		if seen[key] {
			t.Errorf("two resources %s", key)
		}
		seen[key] = true
		if r.TypeToken == "kubernetes:core/v1:Namespace" && !strings.Contains(r.Name, "-") && r.Name != "healthcare" && r.Name != "database" && r.Name != "monitoring" {
			t.Errorf("unexpected namespace %s", r.Name)
		}
	}
}
