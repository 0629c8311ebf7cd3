package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

// watchHeap samples the live heap every millisecond until the returned func is called, which
// reports the largest sample: bytes allocated per op say how much garbage a run makes, this says
// how much memory it needs at once.
func watchHeap() func() uint64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	stop, done := make(chan struct{}), make(chan uint64)
	go func() {
		var peak uint64
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-stop:
				done <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 { close(stop); return <-done }
}

// withWorkers rewrites the lab stack to n workers on a /20 node network, spread round robin over
// three Proxmox hosts joined by a vSwitch, the largest shape the config allows without edits.
func withWorkers(t testing.TB, sc stackConfig, n int) stackConfig {
	t.Helper()
	var network, proxmox, cluster map[string]any
	for key, dst := range map[string]*map[string]any{"network": &network, "proxmox": &proxmox, "cluster": &cluster} {
		if err := json.Unmarshal([]byte(sc.values[key]), dst); err != nil {
			t.Fatal(err)
		}
	}
	network["nodeCidr"], network["gateway"], network["mtu"] = "10.10.0.0/20", "10.10.0.1", 1400
	hosts := []any{}
	hostKey := proxmox["nodes"].([]any)[0].(map[string]any)["sshHostKey"] // the shipped example
	for i := 1; i <= 3; i++ {
		hosts = append(hosts, map[string]any{
			"name": fmt.Sprintf("pve%d", i), "address": fmt.Sprintf("pve%d.example.com", i),
			"storage": "local-lvm", "imageStorage": "local", "bridgePorts": []string{"enp0s31f6.4000"},
			"sshHostKey": hostKey,
		})
	}
	proxmox["nodes"] = hosts
	cp := cluster["controlPlane"].(map[string]any)
	cp["nodes"] = []any{map[string]any{"name": "k8s-cp-1", "vmId": 200, "ip": "10.10.0.10"}}
	workers := []any{}
	for i := 1; i <= n; i++ {
		workers = append(workers, map[string]any{
			"name": fmt.Sprintf("k8s-worker-%d", i), "vmId": 200 + i,
			"ip": fmt.Sprintf("10.10.%d.%d", (10+i)/256, (10+i)%256),
		})
	}
	cluster["workers"].(map[string]any)["nodes"] = workers
	for key, v := range map[string]any{"network": network, "proxmox": proxmox, "cluster": cluster} {
		b, _ := json.Marshal(v)
		sc.values[key] = string(b)
	}
	return sc
}

// BenchmarkLabProgram measures the whole program's evaluation under the mock engine (config
// validation, every layer's declarations) as the cluster grows. `make bench` runs it.
func BenchmarkLabProgram(b *testing.B) {
	for _, n := range []int{3, 30, 300} {
		b.Run(fmt.Sprintf("workers=%d", n), func(b *testing.B) {
			sc := withWorkers(b, loadStack(b, "lab"), n)
			b.ReportAllocs()
			var resources int
			peak := watchHeap()
			for i := 0; i < b.N; i++ {
				rec, err := sc.run(b)
				if err != nil {
					b.Fatal(err)
				}
				resources = len(rec.resources)
			}
			b.ReportMetric(float64(resources), "resources")
			b.ReportMetric(float64(peak())/(1<<20), "peak-heap-MiB")
		})
	}
}

func TestLabProgramScalesTo300Workers(t *testing.T) {
	rec, err := withWorkers(t, loadStack(t, "lab"), 300).run(t)
	if err != nil {
		t.Fatal(err)
	}
	types := rec.types()
	// One VM and one cloud-init snippet per node: the control plane plus 300 workers.
	if got := types["proxmoxve:VM/virtualMachine:VirtualMachine"]; got != 301 {
		t.Fatalf("VMs = %d, want 301 (%v)", got, types)
	}
}
