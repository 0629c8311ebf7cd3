package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/infralab/infralab/internal/testenv"
	"github.com/infralab/infralab/proof/controlplane"
)

// One real control plane (etcd, kube-apiserver, kube-controller-manager on loopback) serves every
// test in this package that needs an API server; each test works in namespaces of its own.
var shared struct {
	once sync.Once
	cp   *controlplane.ControlPlane
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.cp != nil {
		_ = shared.cp.Stop()
		_ = os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// realCluster returns an admin REST config of the shared control plane.
func realCluster(t *testing.T) (*rest.Config, string) {
	t.Helper()
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager"} {
		testenv.Tool(t, name)
	}
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "chaos-cp-")
		if shared.err != nil {
			return
		}
		shared.cp, shared.err = controlplane.Start(context.Background(), controlplane.Options{Dir: shared.dir, Log: io.Discard})
	})
	if shared.err != nil {
		t.Fatalf("control plane: %v", shared.err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", shared.cp.KubeconfigPath())
	if err != nil {
		t.Fatal(err)
	}
	return cfg, shared.cp.KubeconfigPath()
}

// newNamespaces creates fresh namespaces with a per-test suffix and returns their names.
func newNamespaces(t *testing.T, c kubernetes.Interface, bases ...string) []string {
	t.Helper()
	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1e6)
	var out []string
	for _, b := range bases {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: b + "-" + suffix}}
		if _, err := c.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		out = append(out, ns.Name)
	}
	return out
}

// standInKubelet marks pods Ready the way a kubelet would, because this control plane has no
// node: the real controllers then compute Deployment, StatefulSet and EndpointSlice status from
// it. Pods running skip(image) are left Pending (an image that never starts). It stops with ctx.
func standInKubelet(ctx context.Context, t *testing.T, c kubernetes.Interface, namespaces []string, skip func(*corev1.Pod) bool) {
	t.Helper()
	var ip sync.Mutex
	next := 10
	go func() {
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, ns := range namespaces {
				pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
				if err != nil {
					continue
				}
				for i := range pods.Items {
					p := &pods.Items[i]
					if p.DeletionTimestamp != nil {
						// A kubelet confirms a deletion once the containers stopped.
						_ = c.CoreV1().Pods(ns).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))})
						continue
					}
					if podReady(p) || (skip != nil && skip(p)) {
						continue
					}
					ip.Lock()
					next++
					addr := fmt.Sprintf("10.244.%d.%d", next/250, next%250+1)
					ip.Unlock()
					now := metav1.Now()
					p.Status.Phase = corev1.PodRunning
					p.Status.PodIP, p.Status.PodIPs = addr, []corev1.PodIP{{IP: addr}}
					p.Status.StartTime = &now
					p.Status.Conditions = []corev1.PodCondition{
						{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
						{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
						{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
					}
					p.Status.ContainerStatuses = nil
					for _, ctr := range p.Spec.Containers {
						p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
							Name: ctr.Name, Image: ctr.Image, Ready: true, Started: ptr(true),
							State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
						})
					}
					if _, err := c.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) && ctx.Err() == nil {
						t.Logf("stand-in kubelet: %v", err)
					}
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
}

// imageIs returns a skip function for standInKubelet: pods running image never become Ready.
func imageIs(image string) func(*corev1.Pod) bool {
	return func(p *corev1.Pod) bool {
		for _, c := range p.Spec.Containers {
			if c.Image == image {
				return true
			}
		}
		return false
	}
}

// testEnv builds a guarded Env for a scope on the real API server.
func testEnv(t *testing.T, cfg *rest.Config, namespaces, selector string, dryRun bool, limits Limits, opts Options) (*Env, *testenv.SyncBuffer) {
	t.Helper()
	scope, err := ParseScope(namespaces, selector)
	if err != nil {
		t.Fatal(err)
	}
	guarded, guard := NewGuard(cfg, scope, dryRun, limits)
	client, err := kubernetes.NewForConfig(guarded)
	if err != nil {
		t.Fatal(err)
	}
	// Read with String while the experiment may still write (its goroutines).
	out := &testenv.SyncBuffer{}
	return &Env{Client: client, Config: guarded, Scope: scope, Guard: guard, DryRun: dryRun, Opts: opts,
		Out: out, Now: time.Now}, out
}

func testLimits(d time.Duration) Limits {
	return Limits{Duration: d, RollbackTimeout: 60 * time.Second, Interval: time.Second, MaxRequests: 2000, RollbackRequests: 500}
}

// waitUntil fails the test when cond is not true within d.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
