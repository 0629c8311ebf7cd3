package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/infralab/infralab/internal/testenv"
	"github.com/infralab/infralab/policy/corpus"
	"github.com/infralab/infralab/proof/controlplane"
)

// TestPolicyAgreesWithPodSecurity sends every pod spec of the policy corpus (Linux, user-namespace
// and Windows sections) to a real kube-apiserver (the embedded control plane) in a namespace
// enforcing Pod Security restricted, with server-side dry run. The two must agree both ways:
// whatever the API server rejects, the pack reports (so every spec the pack passes is admitted),
// and whatever it admits, the pack's Pod Security rules pass (no false mandatory violation; the
// pack's own rules, such as a read-only root filesystem, are stricter on purpose and pass on
// every valid spec of the corpus).
func TestPolicyAgreesWithPodSecurity(t *testing.T) {
	for _, tool := range []string{"kube-apiserver", "kube-controller-manager", "etcd"} {
		testenv.Tool(t, tool)
	}
	ctx := context.Background()
	cp, err := controlplane.Start(ctx, controlplane.Options{Dir: t.TempDir(), Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cp.Stop(); err != nil {
			t.Errorf("stopping the control plane: %v", err)
		}
	})
	cfg, err := clientcmd.BuildConfigFromFlags("", cp.KubeconfigPath())
	if err != nil {
		t.Fatal(err)
	}
	cfg.WarningHandler = nil
	cfg.QPS, cfg.Burst = 200, 400 // client-go defaults to 5 requests a second
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const ns = "policy-corpus"
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: ns, Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{
		Name: corpus.ServiceAccount}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	specs := corpus.Generate()
	// Dry-run creates are independent: a few at a time keeps the run short on a busy machine.
	pods := make([]*corev1.Pod, len(specs))
	for i, s := range specs {
		var podSpec corev1.PodSpec
		data, err := json.Marshal(s.Pod)
		if err == nil {
			err = json.Unmarshal(data, &podSpec)
		}
		if err != nil {
			t.Fatalf("corpus spec %s does not decode as a PodSpec: %v", s.Name, err)
		}
		pods[i] = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: ns, Annotations: s.Annotations}, Spec: podSpec}
	}
	apiErrs := make([]error, len(specs))
	var wg sync.WaitGroup
	next := make(chan int)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				_, apiErrs[i] = client.CoreV1().Pods(ns).Create(ctx, pods[i], metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			}
		}()
	}
	for i := range specs {
		next <- i
	}
	close(next)
	wg.Wait()

	var admitted, rejected, reportedByPack, rejectedByPSA, missedByPack, falseAlarms int
	var missed []string
	sections := map[string]int{}
	for i, s := range specs {
		sections[s.Section]++
		apiErr := apiErrs[i]
		findings := corpus.Evaluate(s)
		psaFindings := corpus.EvaluatePodSecurity(s)
		if apiErr == nil {
			admitted++
		} else {
			rejected++
			if strings.Contains(apiErr.Error(), "violates PodSecurity") {
				rejectedByPSA++
			} else if len(s.Mutations) == 1 {
				t.Logf("%s: rejected by validation before Pod Security: %v", s.Name, apiErr)
			}
		}
		if len(findings) > 0 {
			reportedByPack++
		}
		switch {
		case apiErr != nil && len(findings) == 0:
			missedByPack++
			missed = append(missed, fmt.Sprintf("%s %v: rejected by the API server but passed by the pack: %v", s.Name, s.Mutations, apiErr))
		case apiErr == nil && len(psaFindings) > 0:
			falseAlarms++
			missed = append(missed, fmt.Sprintf("%s %v: admitted by the API server but reported by the pack's Pod Security rules: %s", s.Name, s.Mutations, psaFindings[0].Message()))
		case len(s.Mutations) == 0 && apiErr != nil:
			t.Errorf("%s: a valid spec was rejected: %v", s.Name, apiErr)
		case len(s.Mutations) == 0 && len(findings) > 0:
			t.Errorf("%s: a valid spec was reported by the pack: %s", s.Name, findings[0].Message())
		}
	}
	sort.Strings(missed)
	for _, m := range missed {
		t.Error(m)
	}
	summary := fmt.Sprintf("policy corpus: %d pod specs (linux %d, userns %d, windows %d); kube-apiserver admitted %d, rejected %d (%d by PodSecurity restricted); "+
		"the pack reported %d; disagreements: %d (rejected but passed by the pack: %d, admitted but reported by its Pod Security rules: %d)",
		len(specs), sections["linux"], sections["userns"], sections["windows"], admitted, rejected, rejectedByPSA, reportedByPack,
		missedByPack+falseAlarms, missedByPack, falseAlarms)
	t.Log(summary)
	if out := os.Getenv("INFRALAB_POLICY_AGREEMENT_OUT"); out != "" {
		_ = os.WriteFile(out, []byte(summary+"\n"), 0o644)
	}
	if rejectedByPSA == 0 {
		t.Fatal("the API server rejected nothing for Pod Security: is the namespace not enforcing restricted?")
	}
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
