package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"

	"github.com/infralab/infralab/internal/controlplane"
	"github.com/infralab/infralab/internal/images"
	"github.com/infralab/infralab/internal/node"
	"github.com/infralab/infralab/internal/testenv"
)

// nodeStack is the local stack deployed for real: hardened control plane, a real node, and
// `pulumi up` under the real CLI.
type nodeStack struct {
	cp      *controlplane.ControlPlane
	node    *node.Node
	client  *kubernetes.Clientset
	cli     *pulumiCLI
	kubectl string
	refs    map[string]string // image name -> ref
}

func newNodeStack(t *testing.T) *nodeStack {
	t.Helper()
	testenv.RequireRoot(t) // containerd, the kubelet, iptables and a bridge
	testenv.ExclusiveNode(t)
	for _, tool := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kubelet", "kube-scheduler",
		"kube-proxy", "kube-router", "coredns", "kubectl"} {
		testenv.Tool(t, tool)
	}
	for _, bin := range []string{"containerd", "ctr", "runc", "ipset", "iptables"} {
		if _, err := exec.LookPath(bin); err != nil {
			if testenv.Required() {
				t.Fatalf("%s is not installed: run hack/deps.sh", bin)
			}
			t.Skipf("%s is not installed", bin)
		}
	}
	ctx := context.Background()
	imgDir := filepath.Join(testenv.CacheDir(), "images")
	begin := time.Now()
	results, err := (&images.Builder{OutDir: imgDir, RepoDir: testenv.RepoRoot()}).Build(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("images built or cached in %.1fs", time.Since(begin).Seconds())
	refs := map[string]string{}
	for _, r := range results {
		refs[r.Name] = r.Ref
	}

	h, err := controlplane.LabHardening()
	if err != nil {
		t.Fatal(err)
	}
	cp, err := controlplane.Start(ctx, controlplane.Options{Dir: t.TempDir(), Hardening: h})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	var log strings.Builder
	begin = time.Now()
	n, err := node.Start(ctx, node.Options{Dir: t.TempDir(), ControlPlane: node.FromControlPlane(cp),
		ImagesIndex: filepath.Join(imgDir, "images.json"), Log: &log, WaitForLock: 15 * time.Minute})
	if err != nil {
		t.Fatalf("node: %v\n%s", err, log.String())
	}
	t.Logf("node ready in %.1fs:\n%s", time.Since(begin).Seconds(), log.String())
	t.Cleanup(func() {
		if err := n.Stop(); err != nil {
			t.Errorf("node teardown: %v", err)
		}
		checkNodeLeftNothing(t, n.Dir())
	})
	cfg, err := clientcmd.RESTConfigFromKubeConfig(cp.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	ns := &nodeStack{cp: cp, node: n, client: kubernetes.NewForConfigOrDie(cfg), kubectl: testenv.Tool(t, "kubectl"), refs: refs}

	root := testenv.RepoRoot()
	ws := newPulumiWorkspace(t, cp.KubeconfigPath())
	ns.cli = ws.project(t, root, "local", filepath.Join(root, "stacks", "Pulumi.local.yaml"))
	ns.cli.setConfig(t, "kubeconfig", cp.KubeconfigPath())
	for _, key := range localSecretKeys {
		ns.cli.setSecret(t, key, "e2e-"+randomHex(t)+randomHex(t))
	}
	// As hack/demo.sh does with a node: wait for readiness, the exact images just built, and a
	// volume folder of the test's own.
	for k, v := range map[string]string{
		"apps.skipAwait":                     "false",
		"apps.api.image":                     refs["healthcare-api"],
		"apps.postgres.image":                refs["postgres"],
		"apps.postgres.exporterImage":        refs["postgres-exporter"],
		"apps.monitoring.prometheusImage":    refs["prometheus"],
		"apps.postgres.localVolume.path":     t.TempDir(),
		"apps.postgres.localVolume.nodeName": n.Name(),
	} {
		ns.cli.must(t, ns.cli.stackArgs("config", "set", "--path", k, v)...)
	}
	return ns
}

func TestNodeRunsTheLocalStack(t *testing.T) {
	s := newNodeStack(t)
	ctx := context.Background()
	appNamespaces := []string{"healthcare", "database", "monitoring"}

	if !t.Run("up waits until every workload is ready", func(t *testing.T) {
		_, took, err := s.cli.run(t, s.cli.stackArgs("up", "--yes", "--skip-preview")...)
		if err != nil {
			t.Fatalf("pulumi up: %v", err)
		}
		t.Logf("pulumi up with readiness took %.1fs", took.Seconds())
	}) {
		t.FailNow()
	}

	t.Run("every pod is Ready under Pod Security restricted", func(t *testing.T) {
		for _, name := range appNamespaces {
			nsObj, err := s.client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := nsObj.Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
				t.Errorf("namespace %s enforces %q, want restricted", name, got)
			}
			pods := s.pods(t, name)
			if len(pods) == 0 {
				t.Errorf("namespace %s has no pods", name)
			}
			for _, p := range pods {
				if p.Status.Phase == corev1.PodSucceeded {
					continue // the roles Job
				}
				if !podReady(&p) {
					t.Errorf("pod %s/%s is %s and not Ready", name, p.Name, p.Status.Phase)
				}
			}
		}
	})

	t.Run("containers run non-root, without capabilities, with no_new_privs, seccomp and a read-only root", func(t *testing.T) {
		pids := s.containerPids(t)
		checked := 0
		for _, nsName := range appNamespaces {
			for _, p := range s.pods(t, nsName) {
				if p.Status.Phase != corev1.PodRunning {
					continue
				}
				for _, c := range p.Status.ContainerStatuses {
					pid, ok := pids[strings.TrimPrefix(c.ContainerID, "containerd://")]
					if !ok {
						t.Errorf("%s/%s %s: no running process found through the CRI", nsName, p.Name, c.Name)
						continue
					}
					st := procStatus(t, pid)
					where := fmt.Sprintf("%s/%s container %s (pid %d)", nsName, p.Name, c.Name, pid)
					uid := strings.Fields(st["Uid"])
					if len(uid) == 0 || uid[0] == "0" || uid[1] == "0" {
						t.Errorf("%s runs as uid %v", where, uid)
					}
					if c.Name == "healthcare-api" && uid[0] != "10001" {
						t.Errorf("%s runs as uid %s, want 10001", where, uid[0])
					}
					if st["CapEff"] != "0000000000000000" {
						t.Errorf("%s: CapEff %s, want none", where, st["CapEff"])
					}
					if st["NoNewPrivs"] != "1" {
						t.Errorf("%s: NoNewPrivs %s", where, st["NoNewPrivs"])
					}
					if st["Seccomp"] != "2" {
						t.Errorf("%s: Seccomp %s, want 2 (filter)", where, st["Seccomp"])
					}
					if !rootReadOnly(t, pid) {
						t.Errorf("%s: root filesystem is writable", where)
					}
					checked++
				}
			}
		}
		if checked < 5 {
			t.Errorf("checked only %d containers", checked)
		}
		t.Logf("checked %d containers from /proc", checked)
	})

	api := s.serviceURL(t, "healthcare", "healthcare-api")
	var patientID int
	t.Run("the api writes and reads a patient through its Service", func(t *testing.T) {
		body := `{"name":"Ada Lovelace","birth_date":"1815-12-10"}`
		code, out := httpDo(t, "POST", api+"/patients", body)
		if code != 201 {
			t.Fatalf("POST /patients: %d %s", code, out)
		}
		var p struct {
			ID   int    `json:"id"`
			Name string `json:"name"`
		}
		if err := json.Unmarshal([]byte(out), &p); err != nil || p.ID == 0 {
			t.Fatalf("POST /patients answered %s (%v)", out, err)
		}
		patientID = p.ID
		code, out = httpDo(t, "GET", fmt.Sprintf("%s/patients/%d", api, p.ID), "")
		if code != 200 || !strings.Contains(out, "Ada Lovelace") {
			t.Fatalf("GET /patients/%d: %d %s", p.ID, code, out)
		}
	})

	t.Run("the patient survives a Postgres pod restart (PVC)", func(t *testing.T) {
		if patientID == 0 {
			t.Skip("no patient was written")
		}
		old := s.pod(t, "database", "postgres-0")
		if err := s.client.CoreV1().Pods("database").Delete(ctx, "postgres-0", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		begin := time.Now()
		eventually(t, 3*time.Minute, "postgres-0 back and Ready", func() error {
			p, err := s.client.CoreV1().Pods("database").Get(ctx, "postgres-0", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if p.UID == old.UID || !podReady(p) {
				return fmt.Errorf("not yet replaced and Ready")
			}
			return nil
		})
		eventually(t, time.Minute, "the api reads the patient again", func() error {
			code, out := httpDo(t, "GET", fmt.Sprintf("%s/patients/%d", api, patientID), "")
			if code != 200 || !strings.Contains(out, "Ada Lovelace") {
				return fmt.Errorf("%d %s", code, out)
			}
			return nil
		})
		t.Logf("Postgres replaced and data read back in %.1fs", time.Since(begin).Seconds())
		// /readyz checks the database, so both api replicas went unready with it; the tests
		// after this one need them back.
		eventually(t, 2*time.Minute, "both api replicas Ready again", func() error {
			dep, err := s.client.AppsV1().Deployments("healthcare").Get(ctx, "healthcare-api", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if dep.Status.ReadyReplicas != 2 {
				return fmt.Errorf("%d ready", dep.Status.ReadyReplicas)
			}
			return nil
		})
		t.Logf("both api replicas Ready %.1fs after the Postgres pod was deleted", time.Since(begin).Seconds())
	})

	t.Run("NetworkPolicies hold with real connections", func(t *testing.T) {
		apiPod := s.readyPod(t, "healthcare", "app.kubernetes.io/name=healthcare-api")
		pg := s.pod(t, "database", "postgres-0")
		dns := s.pod(t, "kube-system", s.readyPod(t, "kube-system", "k8s-app=kube-dns"))
		probe := s.probePod(t)
		cases := []struct {
			name          string
			ns, pod       string
			host          string
			port          int
			wantConnected bool
		}{
			{"api -> postgres Service :5432 (allowed)", "healthcare", apiPod, "postgres.database.svc.cluster.local", 5432, true},
			{"api -> postgres pod :5432 (allowed)", "healthcare", apiPod, pg.Status.PodIP, 5432, true},
			{"probe in another namespace -> coredns :9153 (no policy: control)", "e2e-probe", probe, dns.Status.PodIP, 9153, true},
			{"probe in another namespace -> postgres pod :5432 (denied)", "e2e-probe", probe, pg.Status.PodIP, 5432, false},
			{"probe in another namespace -> postgres Service :5432 (denied)", "e2e-probe", probe, "postgres.database.svc.cluster.local", 5432, false},
			{"api -> coredns :9153, outside its egress allow-list (rejected)", "healthcare", apiPod, dns.Status.PodIP, 9153, false},
		}
		for _, c := range cases {
			got := s.connect(t, c.ns, c.pod, c.host, c.port)
			connected := strings.HasPrefix(got, "connected")
			if connected != c.wantConnected {
				t.Errorf("%s: %s", c.name, got)
			} else {
				t.Logf("%s: %s", c.name, got)
			}
		}
	})

	t.Run("an OOM-killed container restarts while the api stays available", func(t *testing.T) {
		s.ensureProbeNamespace(t)
		hog := restrictedPod("oom-hog", s.refs["healthcare-api"], []string{"python3", "-c",
			"b = bytearray(512 * 1024 * 1024)\nimport time\ntime.sleep(600)"})
		hog.Spec.Containers[0].Resources = corev1.ResourceRequirements{
			Limits: corev1.ResourceList{corev1.ResourceMemory: mustQuantity("64Mi")}}
		if _, err := s.client.CoreV1().Pods("e2e-probe").Create(ctx, hog, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		failures, probes := make(chan int, 1), 0
		go func() {
			bad := 0
			client := &http.Client{Timeout: 2 * time.Second}
			for {
				select {
				case <-stop:
					failures <- bad
					return
				case <-time.After(200 * time.Millisecond):
				}
				probes++
				resp, err := client.Get(api + "/readyz")
				if err != nil || resp.StatusCode != 200 {
					bad++
				}
				if resp != nil {
					resp.Body.Close()
				}
			}
		}()
		eventually(t, 2*time.Minute, "oom-hog OOMKilled with exit 137 and restarted", func() error {
			p, err := s.client.CoreV1().Pods("e2e-probe").Get(ctx, "oom-hog", metav1.GetOptions{})
			if err != nil {
				return err
			}
			for _, c := range p.Status.ContainerStatuses {
				term := c.LastTerminationState.Terminated
				if term != nil && term.Reason == "OOMKilled" && term.ExitCode == 137 && c.RestartCount >= 1 {
					t.Logf("oom-hog: %s exit %d, restarts %d", term.Reason, term.ExitCode, c.RestartCount)
					return nil
				}
			}
			return fmt.Errorf("status %+v", p.Status.ContainerStatuses)
		})
		close(stop)
		if bad := <-failures; bad > 0 {
			t.Errorf("the api failed %d of %d readiness probes through its Service during the OOM kills", bad, probes)
		}
		dep, err := s.client.AppsV1().Deployments("healthcare").Get(ctx, "healthcare-api", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if dep.Status.ReadyReplicas != 2 {
			t.Errorf("healthcare-api has %d ready replicas, want 2", dep.Status.ReadyReplicas)
		}
		_ = s.client.CoreV1().Pods("e2e-probe").Delete(ctx, "oom-hog", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	})

	t.Run("Prometheus scrapes the api and Postgres", func(t *testing.T) {
		prom := s.serviceURL(t, "monitoring", "prometheus")
		eventually(t, 90*time.Second, "api and postgres-exporter targets up, pg_up 1", func() error {
			code, out := httpDo(t, "GET", prom+"/api/v1/targets?state=active", "")
			if code != 200 {
				return fmt.Errorf("targets: %d", code)
			}
			var tr struct {
				Data struct {
					ActiveTargets []struct {
						Labels    map[string]string `json:"labels"`
						Health    string            `json:"health"`
						LastError string            `json:"lastError"`
					} `json:"activeTargets"`
				} `json:"data"`
			}
			if err := json.Unmarshal([]byte(out), &tr); err != nil {
				return err
			}
			up := map[string]bool{}
			for _, a := range tr.Data.ActiveTargets {
				up[a.Labels["job"]] = a.Health == "up"
			}
			if !up["healthcare-api"] || !up["postgres-exporter"] {
				return fmt.Errorf("targets: %s", out)
			}
			_, q := httpDo(t, "GET", prom+"/api/v1/query?query=pg_up", "")
			if !strings.Contains(q, `"1"]`) {
				return fmt.Errorf("pg_up: %s", q)
			}
			return nil
		})
	})

	_ = s.client.CoreV1().Namespaces().Delete(ctx, "e2e-probe", metav1.DeleteOptions{})

	t.Run("a second up changes nothing", func(t *testing.T) {
		out, _, err := s.cli.run(t, s.cli.stackArgs("up", "--yes", "--skip-preview", "--expect-no-changes")...)
		if err != nil {
			t.Fatalf("second up: %v", err)
		}
		if regexp.MustCompile(`(?m)^\s+[-+~]\s*\d+ (created|updated|deleted|replaced)`).MatchString(out) {
			t.Errorf("second up changed something:\n%s", out)
		}
		if !regexp.MustCompile(`(?m)^\s+\d+ unchanged$`).MatchString(out) {
			t.Errorf("second up does not report its resources unchanged")
		}
	})

	t.Run("destroy leaves no pod, volume or iptables rule of the stack", func(t *testing.T) {
		if _, _, err := s.cli.run(t, s.cli.stackArgs("destroy", "--yes", "--skip-preview")...); err != nil {
			t.Fatalf("destroy: %v", err)
		}
		eventually(t, 2*time.Minute, "namespaces, volumes and rules gone", func() error {
			for _, name := range append(appNamespaces, "e2e-probe") {
				if _, err := s.client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{}); err == nil {
					return fmt.Errorf("namespace %s still exists", name)
				}
			}
			pvs, err := s.client.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
			if err != nil || len(pvs.Items) > 0 {
				return fmt.Errorf("persistent volumes left: %d (%v)", len(pvs.Items), err)
			}
			rules := iptablesSave(t)
			for _, name := range appNamespaces {
				if strings.Contains(rules, " "+name+"/") || strings.Contains(rules, "\""+name+"/") {
					return fmt.Errorf("iptables still mentions namespace %s", name)
				}
			}
			// KUBE-NWPLCY-DEFAULT serves every pod; one chain per policy has a hash for a name.
			if m := regexp.MustCompile(`(?m)^:KUBE-NWPLCY-[A-Z0-9]{16}\b`).FindAllString(rules, -1); len(m) > 0 {
				return fmt.Errorf("kube-router still has chains of %d NetworkPolicies", len(m))
			}
			return nil
		})
	})
}

func (s *nodeStack) pods(t *testing.T, ns string) []corev1.Pod {
	t.Helper()
	list, err := s.client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func (s *nodeStack) pod(t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	p, err := s.client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (s *nodeStack) readyPod(t *testing.T, ns, selector string) string {
	t.Helper()
	list, err := s.client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range list.Items {
		if podReady(&p) {
			return p.Name
		}
	}
	t.Fatalf("no Ready pod in %s with %s", ns, selector)
	return ""
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// serviceURL is http://CLUSTER-IP:PORT of a Service: the node routes the Service range to its
// bridge, so the test reaches Services the way a pod does, through kube-proxy.
func (s *nodeStack) serviceURL(t *testing.T, ns, name string) string {
	t.Helper()
	svc, err := s.client.CoreV1().Services(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("http://%s:%d", svc.Spec.ClusterIP, svc.Spec.Ports[0].Port)
}

// containerPids maps container IDs to their init process, from containerd's CRI.
func (s *nodeStack) containerPids(t *testing.T) map[string]int {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+s.node.ContainerdSocket(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rs := runtimeapi.NewRuntimeServiceClient(conn)
	ctx := context.Background()
	list, err := rs.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
		State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}}})
	if err != nil {
		t.Fatal(err)
	}
	pidRE := regexp.MustCompile(`"pid":\s*(\d+)`)
	out := map[string]int{}
	for _, c := range list.Containers {
		st, err := rs.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: c.Id, Verbose: true})
		if err != nil {
			continue
		}
		if m := pidRE.FindStringSubmatch(st.Info["info"]); m != nil {
			out[c.Id], _ = strconv.Atoi(m[1])
		}
	}
	return out
}

func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

// rootReadOnly reads the container's own mount table: its "/" must be mounted ro.
func rootReadOnly(t *testing.T, pid int) bool {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 5 && f[4] == "/" {
			for _, opt := range strings.Split(f[5], ",") {
				if opt == "ro" {
					return true
				}
			}
			return false
		}
	}
	return false
}

func restrictedPod(name, image string, command []string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](10001),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			Containers: []corev1.Container{{Name: name, Image: image, ImagePullPolicy: corev1.PullNever, Command: command,
				SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}}},
			TerminationGracePeriodSeconds: ptr.To[int64](0),
		},
	}
}

func (s *nodeStack) ensureProbeNamespace(t *testing.T) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "e2e-probe", Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted"}}}
	if _, err := s.client.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "default ServiceAccount in e2e-probe", func() error {
		_, err := s.client.CoreV1().ServiceAccounts("e2e-probe").Get(context.Background(), "default", metav1.GetOptions{})
		return err
	})
}

// probePod is a pod in a namespace without NetworkPolicies, running python3 from the api image.
func (s *nodeStack) probePod(t *testing.T) string {
	t.Helper()
	s.ensureProbeNamespace(t)
	p := restrictedPod("probe", s.refs["healthcare-api"], []string{"python3", "-c", "import time\ntime.sleep(3600)"})
	if _, err := s.client.CoreV1().Pods("e2e-probe").Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "probe pod Ready", func() error {
		p, err := s.client.CoreV1().Pods("e2e-probe").Get(context.Background(), "probe", metav1.GetOptions{})
		if err != nil || !podReady(p) {
			return fmt.Errorf("not ready (%v)", err)
		}
		return nil
	})
	return "probe"
}

const connectScript = `import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close()
    print("connected")
except Exception as e:
    print("blocked:", type(e).__name__, e)
`

// connect opens a TCP connection from inside a pod (kubectl exec through the kubelet) and
// reports "connected" or why not.
func (s *nodeStack) connect(t *testing.T, ns, pod, host string, port int) string {
	t.Helper()
	cmd := exec.Command(s.kubectl, "--kubeconfig", s.cp.KubeconfigPath(), "-n", ns, "exec", pod, "--",
		"python3", "-c", connectScript, host, strconv.Itoa(port))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl exec %s/%s: %v\n%s", ns, pod, err, out)
	}
	return strings.TrimSpace(string(out))
}

func httpDo(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = bytes.NewBufferString(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

func eventually(t *testing.T, limit time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, limit, err)
		}
		time.Sleep(time.Second)
	}
}

func iptablesSave(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("iptables-save").CombinedOutput()
	if err != nil {
		t.Fatalf("iptables-save: %v\n%s", err, out)
	}
	return string(out)
}

// checkNodeLeftNothing: after the node's teardown no chain, ipset, bridge, mount or process of
// the node remains on the machine.
func checkNodeLeftNothing(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat("/sys/class/net/" + node.BridgeName); err == nil {
		t.Errorf("bridge %s still exists", node.BridgeName)
	}
	if m := regexp.MustCompile(`(?m)^:(KUBE-|CNI-)\S+`).FindAllString(iptablesSave(t), -1); len(m) > 0 {
		t.Errorf("iptables chains left: %v", m)
	}
	if out, err := exec.Command("ipset", "list", "-n").CombinedOutput(); err == nil && strings.TrimSpace(string(out)) != "" {
		t.Errorf("ipsets left: %s", out)
	}
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), dir) {
		t.Errorf("mounts under %s left", dir)
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); strings.Contains(string(cmd), dir) {
			t.Errorf("process %s still runs: %s", e.Name(), strings.ReplaceAll(string(cmd), "\x00", " "))
		}
	}
}

func mustQuantity(s string) resource.Quantity { return resource.MustParse(s) }
