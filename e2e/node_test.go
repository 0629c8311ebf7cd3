package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"

	"github.com/infralab/infralab/internal/memhog"
	"github.com/infralab/infralab/internal/testenv"
	"github.com/infralab/infralab/proof/controlplane"
	"github.com/infralab/infralab/proof/images"
	"github.com/infralab/infralab/proof/node"
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
	// webhook receives Alertmanager's notifications; superuserPassword is the stack's
	// postgresPassword, for the faults that need SQL.
	webhook           *webhook
	superuserPassword string
}

// newNodeStack starts the embedded control plane and node with the default images, plus the
// images named in extra (built only when named, e.g. images.CNPGNames).
func newNodeStack(t *testing.T, extra ...string) *nodeStack {
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
	var names []string // nil: the default images
	if len(extra) > 0 {
		names = append(images.Names(), extra...)
	}
	results, err := (&images.Builder{OutDir: imgDir, RepoDir: testenv.RepoRoot()}).Build(ctx, names)
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
		checkNodeLeftNothing(t, n)
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
		v := "e2e-" + randomHex(t) + randomHex(t)
		if key == "postgresPassword" {
			ns.superuserPassword = v
		}
		ns.cli.setSecret(t, key, v)
	}
	ns.webhook = startWebhook(t)
	// As hack/demo.sh does with a node: wait for readiness, the exact images just built, and a
	// volume folder of the test's own.
	for k, v := range map[string]string{
		"apps.skipAwait":                        "false",
		"apps.api.image":                        refs["healthcare-api"],
		"apps.postgres.image":                   refs["postgres"],
		"apps.postgres.exporterImage":           refs["postgres-exporter"],
		"apps.monitoring.prometheusImage":       refs["prometheus"],
		"apps.monitoring.kubeStateMetricsImage": refs["kube-state-metrics"],
		"apps.monitoring.nodeExporterImage":     refs["node-exporter"],
		"apps.monitoring.alertmanagerImage":     refs["alertmanager"],
		"apps.monitoring.alertWebhookURL":       ns.webhook.url,
		// Faster scrapes and evaluations bound each fault's wait (docs/apps.md: scrapeInterval).
		"apps.monitoring.scrapeInterval":     "10s",
		"apps.postgres.localVolume.path":     t.TempDir(),
		"apps.postgres.localVolume.nodeName": n.Name(),
	} {
		ns.cli.must(t, ns.cli.stackArgs("config", "set", "--path", k, v)...)
	}
	for alert, d := range alertFor {
		ns.cli.must(t, ns.cli.stackArgs("config", "set", "--path", "apps.monitoring.alertFor."+alert, d)...)
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

	t.Run("an api replica OOM-killed over its memory limit restarts while the api stays available", func(t *testing.T) {
		s.oomKillOneAPIReplica(t, api)
	})

	t.Run("chaos oom-kill kills one real api replica and measures its restart and the Service's endpoints", func(t *testing.T) {
		s.chaosOOMKill(t)
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

	t.Run("observability: dashboards have data, every alert fires for a real fault, resolves, and reaches the webhook", func(t *testing.T) {
		s.observability(t, api)
	})

	_ = s.client.CoreV1().Namespaces().Delete(ctx, "e2e-probe", metav1.DeleteOptions{})
	_ = s.client.CoreV1().Namespaces().Delete(ctx, alertsNS, metav1.DeleteOptions{})

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
		nudges := 0
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
				var left []string
				for _, line := range strings.Split(rules, "\n") {
					if strings.Contains(line, " "+name+"/") || strings.Contains(line, "\""+name+"/") {
						left = append(left, line)
					}
				}
				if len(left) > 0 && onlyStaleRejects(left) && nudges < 3 {
					nudges++
					s.nudgeKubeProxy(t)
					return fmt.Errorf("kube-proxy's REJECT rules of deleted Services came back (%d); nudged kube-proxy to sync", len(left))
				}
				if len(left) > 0 {
					return fmt.Errorf("iptables still mentions namespace %s in %d rules, e.g.\n%s\nnode: %v\nkube-proxy log:\n%s", name, len(left),
						strings.Join(left[:min(len(left), 5)], "\n"), s.node.Err(), tailFile(s.node.LogPath("kube-proxy"), 25))
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

// checkNodeLeftNothing: after the node's teardown nothing of the node remains on the machine and
// nothing that was there before it is gone (node.Leftovers: processes, mounts, the bridge,
// every sysctl back to its value, chains, ipsets, nftables tables, kubepods cgroups and
// /var/log/containers links and folders that did not exist before).
func checkNodeLeftNothing(t *testing.T, n *node.Node) {
	t.Helper()
	for _, l := range n.Leftovers() {
		t.Errorf("node leftover: %s", l)
	}
}

// oomKillOneAPIReplica OOM-kills the api container of one of the Deployment's replicas, the
// real thing behind the api's Service, and checks that the api stays available through the
// Service while that replica is killed, restarted and made Ready again.
//
// How the api container itself gets OOM-killed, with no trigger in the api: a process exec'd
// into the container writes into a memfd until the container's memory cgroup is over its limit.
// The memfd's pages are charged to the container's cgroup and cannot be reclaimed (shmem, no
// swap here), but they are in no process's RSS (written with write(2), never mapped). The
// kernel's OOM killer picks the process with the largest RSS among those with the same
// oom_score_adj (every process of a container has the container's), which is the api's python,
// the container's PID 1, exactly as when the api itself grows past its limit. The container
// then ends with SIGKILL (exit 137), containerd reports OOMKilled, and the kubelet restarts it
// in the same pod; the writer dies with the container's PID namespace and its memfd with it.
// Rejected: a separate hog pod (not behind the Service: the availability check could not fail
// for OOM reasons); an exec'd process allocating memory of its own (it would be the largest
// process, the kernel kills it, and the api container neither dies nor restarts).
//
// vm.oom_kill_allocating_task is not a precondition: the kernel honours it for a global OOM
// only, never for a memory cgroup's (mm/oom_kill.c: is_memcg_oom), which always picks the
// largest process of the cgroup.
//
// Availability: a client requests /readyz through the Service's ClusterIP (kube-proxy, as a pod
// would) every 100 ms from before the kill until the replica is Ready again, each request on a
// new connection (no keep-alive: one kept connection would reach one replica only, and kube-proxy
// balances connections, not requests). Before the kill the test checks, from the kernel's
// connection tracking, that the client's connections reached both replicas. In iptables mode
// kube-proxy keeps sending new connections to the killed replica's address, where nothing
// listens any more ("connection refused"), until the kubelet has marked the pod unready, the
// EndpointSlice says so and kube-proxy has synced: an abrupt kill cannot be hidden from clients
// without retries. So failures are allowed only from the start of the writer until kube-proxy's
// rules no longer send anything to the killed replica's address (polled with `iptables -t nat
// -S`; within 30 s of the kill), plus half a second for a request sent just before; in that
// window some requests must succeed (the other replica answers); and there must be none before
// it and none after it, including while the restarted container starts and rejoins the Service.
func (s *nodeStack) oomKillOneAPIReplica(t *testing.T, api string) {
	ctx := context.Background()
	const selector = "app.kubernetes.io/name=healthcare-api"
	endpoints := func() (map[string]bool, error) { // pod name -> ready, from the Service's EndpointSlices
		list, err := s.client.DiscoveryV1().EndpointSlices("healthcare").List(ctx, metav1.ListOptions{
			LabelSelector: discoveryv1.LabelServiceName + "=healthcare-api"})
		if err != nil {
			return nil, err
		}
		out := map[string]bool{}
		for _, sl := range list.Items {
			for _, ep := range sl.Endpoints {
				if ep.TargetRef != nil {
					out[ep.TargetRef.Name] = ep.Conditions.Ready != nil && *ep.Conditions.Ready
				}
			}
		}
		return out, nil
	}
	allReady := func() error {
		dep, err := s.client.AppsV1().Deployments("healthcare").Get(ctx, "healthcare-api", metav1.GetOptions{})
		if err != nil {
			return err
		}
		eps, err := endpoints()
		if err != nil {
			return err
		}
		ready := 0
		for _, r := range eps {
			if r {
				ready++
			}
		}
		if dep.Status.ReadyReplicas != 2 || ready != 2 {
			return fmt.Errorf("%d ready replicas, %d ready endpoints %v", dep.Status.ReadyReplicas, ready, eps)
		}
		return nil
	}
	eventually(t, 2*time.Minute, "both api replicas Ready and endpoints of the Service", allReady)

	victim := s.pod(t, "healthcare", s.readyPod(t, "healthcare", selector))
	container := victim.Spec.Containers[0]
	limit := container.Resources.Limits.Memory().Value()
	if limit == 0 {
		t.Fatalf("%s has no memory limit", victim.Name)
	}
	restartsBefore := victim.Status.ContainerStatuses[0].RestartCount
	apiPods, err := s.client.CoreV1().Pods("healthcare").List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	podOfIP := map[string]string{}
	for _, p := range apiPods.Items {
		podOfIP[p.Status.PodIP] = p.Name
	}
	// kube-proxy's rule for the victim: the DNAT of its KUBE-SEP chain.
	toVictim := "--to-destination " + victim.Status.PodIP + ":"
	victimInRules := func() bool {
		out, err := exec.Command("iptables", "-w", "-t", "nat", "-S").CombinedOutput()
		return err != nil || strings.Contains(string(out), toVictim) // an error counts as "not dropped yet"
	}
	if !victimInRules() {
		t.Fatalf("kube-proxy's rules send nothing to %s (%s) before the kill", victim.Name, victim.Status.PodIP)
	}

	type result struct {
		at  time.Time
		err string // "" when the api answered 200
	}
	var (
		mu         sync.Mutex
		results    []result
		localPorts = map[string]bool{} // the client's connections, by source port
		unreadyAt  time.Time           // first time the EndpointSlice showed the victim unready or gone
		droppedAt  time.Time           // first time kube-proxy's rules no longer sent anything to the victim
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	finish := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer finish()
	wg.Add(2)
	// The client, through the Service.
	go func() {
		defer wg.Done()
		dialer := &net.Dialer{Timeout: 2 * time.Second}
		client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
			DisableKeepAlives: true, // a new connection, balanced by kube-proxy, for every request
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := dialer.DialContext(ctx, network, addr)
				if err == nil {
					_, port, _ := net.SplitHostPort(c.LocalAddr().String())
					mu.Lock()
					localPorts[port] = true
					mu.Unlock()
				}
				return c, err
			},
		}}
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			r := result{at: time.Now()}
			resp, err := client.Get(api + "/readyz")
			switch {
			case err != nil:
				r.err = err.Error()
			case resp.StatusCode != 200:
				r.err = resp.Status
			}
			if resp != nil {
				resp.Body.Close()
			}
			mu.Lock()
			results = append(results, r)
			mu.Unlock()
		}
	}()
	hogStart := time.Now().Add(time.Hour) // set when the writer starts
	// Watch the EndpointSlice for the killed replica leaving the Service.
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			mu.Lock()
			started, waitingDrop := time.Now().After(hogStart), droppedAt.IsZero()
			mu.Unlock()
			if !started {
				continue
			}
			eps, err := endpoints()
			dropped := waitingDrop && !victimInRules()
			mu.Lock()
			if err == nil && !eps[victim.Name] && unreadyAt.IsZero() {
				unreadyAt = time.Now()
			}
			if dropped {
				droppedAt = time.Now()
			}
			mu.Unlock()
		}
	}()
	time.Sleep(3 * time.Second) // requests before the kill

	// Every request went on its own connection; the kernel's connection tracking says which
	// replica each one reached (the reply's source is the pod kube-proxy picked).
	mu.Lock()
	ours := map[string]bool{}
	for p := range localPorts {
		ours[p] = true
	}
	mu.Unlock()
	perPod := connectionsPerPod(t, api, ours, podOfIP)
	for _, name := range podOfIP {
		if perPod[name] == 0 {
			t.Fatalf("none of the client's %d connections through the Service reached %s (%v): both replicas must answer before the kill",
				len(ours), name, perPod)
		}
	}
	t.Logf("before the kill the client's %d connections reached the replicas %v", len(ours), perPod)

	mu.Lock()
	hogStart = time.Now()
	mu.Unlock()
	// At most the limit plus 64 MiB: if the limit did not hold, the writer stops and says so.
	args := append([]string{"--kubeconfig", s.cp.KubeconfigPath(), "-n", "healthcare", "exec", victim.Name,
		"-c", container.Name, "--"}, memhog.Command(limit+64<<20, 120)...)
	cmd := exec.Command(s.kubectl, args...)
	out, err := cmd.CombinedOutput()
	killedAt := time.Now()
	if strings.Contains(string(out), "writer failed") || !strings.Contains(string(out), "writing") {
		t.Fatalf("the writer in %s did not do its part (%v): %s", victim.Name, err, strings.TrimSpace(string(out)))
	}
	if strings.Contains(string(out), "was not killed") {
		swaps, _ := os.ReadFile("/proc/swaps")
		t.Fatalf("the api container was not OOM-killed: %s (the writer's pages can go to swap if the machine has any: %s)",
			strings.TrimSpace(string(out)), strings.TrimSpace(string(swaps)))
	}
	t.Logf("writer in %s ended after %.1fs: %v %s", victim.Name, killedAt.Sub(hogStart).Seconds(), err, strings.TrimSpace(string(out)))

	eventually(t, 3*time.Minute, "the api container OOMKilled (137), restarted in the same pod and Ready", func() error {
		p, err := s.client.CoreV1().Pods("healthcare").Get(ctx, victim.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.UID != victim.UID {
			return fmt.Errorf("the pod was replaced, not restarted")
		}
		c := p.Status.ContainerStatuses[0]
		term := c.LastTerminationState.Terminated
		if term == nil || c.RestartCount <= restartsBefore {
			return fmt.Errorf("not restarted yet: %+v", c)
		}
		if term.Reason != "OOMKilled" || term.ExitCode != 137 {
			t.Fatalf("the api container ended with %s, exit %d, want OOMKilled, 137", term.Reason, term.ExitCode)
		}
		if !podReady(p) {
			return fmt.Errorf("restarted (%s, exit %d, restarts %d) but not Ready yet", term.Reason, term.ExitCode, c.RestartCount)
		}
		t.Logf("%s: %s exit %d, restarts %d -> %d, Ready again %.1fs after the kill", p.Name, term.Reason, term.ExitCode,
			restartsBefore, c.RestartCount, time.Since(killedAt).Seconds())
		return nil
	})
	eventually(t, time.Minute, "both api replicas Ready and endpoints of the Service again", allReady)
	time.Sleep(2 * time.Second) // requests after the return
	finish()

	if unreadyAt.IsZero() {
		t.Fatalf("the EndpointSlice never showed %s unready", victim.Name)
	}
	if d := unreadyAt.Sub(killedAt); d > 10*time.Second {
		t.Errorf("the EndpointSlice showed the killed replica unready only %.1fs after the kill", d.Seconds())
	}
	if droppedAt.IsZero() {
		t.Fatalf("kube-proxy's rules never stopped sending connections to %s (%s)", victim.Name, victim.Status.PodIP)
	}
	if d := droppedAt.Sub(killedAt); d > 30*time.Second {
		t.Errorf("kube-proxy dropped the killed replica from its rules only %.1fs after the kill", d.Seconds())
	}
	// Half a second for a request sent just before the rules changed and polling's delay.
	windowEnd := droppedAt.Add(500 * time.Millisecond)
	var failed, inWindow, okInWindow int
	for _, r := range results {
		in := !r.at.Before(hogStart) && !r.at.After(windowEnd)
		if in {
			inWindow++
		}
		switch {
		case r.err == "" && in:
			okInWindow++
		case r.err != "" && in:
			failed++
		case r.err != "":
			t.Errorf("a request through the api's Service failed at %s, outside the kill window (%s to %s): %s",
				r.at.Format("15:04:05.000"), hogStart.Format("15:04:05.000"), windowEnd.Format("15:04:05.000"), r.err)
		}
	}
	if okInWindow == 0 {
		t.Errorf("no request through the api's Service succeeded while one replica was killed (%d failed)", failed)
	}
	t.Logf("%d requests through the Service: %d from the writer's start until 0.5 s after kube-proxy dropped the killed replica "+
		"(endpoint unready %.1fs, rules without it %.1fs after the kill), %d of them refused by the killed replica; none failed otherwise",
		len(results), inWindow, unreadyAt.Sub(killedAt).Seconds(), droppedAt.Sub(killedAt).Seconds(), failed)
}

// chaosOOMKill runs the chaos command's oom-kill experiment (chaos/exp_oom_kill.go, built from
// this repository and run as a user would) against the local stack's api with the node's
// kubeconfig, and checks what it wrote to measurements.json against the cluster: the hypothesis
// held, exactly one change went through its guard (the exec of the writer), the api container
// of exactly one replica ended OOMKilled with exit 137 and restarted once in the same pod, that
// pod was Ready again within 60 s, and the Service never had fewer than 1 ready endpoint.
func (s *nodeStack) chaosOOMKill(t *testing.T) {
	ctx := context.Background()
	const selector = "app.kubernetes.io/name=healthcare-api"
	bin := filepath.Join(t.TempDir(), "chaos")
	build := exec.Command("go", "build", "-o", bin, "./chaos")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./chaos: %v\n%s", err, out)
	}
	before := map[string]corev1.Pod{}
	eventually(t, 2*time.Minute, "both api replicas Ready", func() error {
		list, err := s.client.CoreV1().Pods("healthcare").List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return err
		}
		clear(before)
		for _, p := range list.Items {
			if !podReady(&p) {
				return fmt.Errorf("%s not Ready", p.Name)
			}
			before[p.Name] = p
		}
		if len(before) != 2 {
			return fmt.Errorf("%d api pods", len(before))
		}
		return nil
	})

	dir := t.TempDir()
	cmd := exec.Command(bin, "oom-kill", "--kubeconfig", s.cp.KubeconfigPath(), "--interval", "1s", "--duration", "3m",
		"--abort-after-unavailable", "20s", "--out", dir)
	out, err := cmd.CombinedOutput()
	t.Logf("chaos oom-kill:\n%s", out)
	if err != nil {
		t.Fatalf("chaos oom-kill: %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "oom-kill-*", "measurements.json"))
	if len(files) != 1 {
		t.Fatalf("want one measurements.json, got %v", files)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Outcome, SteadyStateAfter string
		RolledBack                bool
		Mutations                 int
		Refused                   []string
		Measurements              []struct {
			Name  string
			Value float64
			Note  string
		}
	}
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	m := map[string]float64{}
	notes := map[string]string{}
	for _, x := range res.Measurements {
		m[x.Name], notes[x.Name] = x.Value, x.Note
	}
	if res.Outcome != "hypothesis-held" || !res.RolledBack || res.SteadyStateAfter != "ok" {
		t.Errorf("outcome %s, rolled back %v, steady state after %q", res.Outcome, res.RolledBack, res.SteadyStateAfter)
	}
	if res.Mutations != 1 || len(res.Refused) != 0 {
		t.Errorf("want one change through the guard (the exec of the writer), got %d, refused %v", res.Mutations, res.Refused)
	}
	if m["exit_code"] != 137 || notes["exit_code"] != "OOMKilled" {
		t.Errorf("exit_code %v (%s), want 137 (OOMKilled)", m["exit_code"], notes["exit_code"])
	}
	if m["restart_count_after"] != m["restart_count_before"]+1 {
		t.Errorf("restart count %v -> %v, want one restart", m["restart_count_before"], m["restart_count_after"])
	}
	if r, ok := m["restart_seconds"]; !ok || r <= 0 || r > 60 {
		t.Errorf("restart_seconds %v (recorded %v), want within 60 s", r, ok)
	}
	if v, ok := m["ready_endpoints_min"]; !ok || v < 1 {
		t.Errorf("ready_endpoints_min %v (recorded %v), want >= 1", v, ok)
	}
	if m["ready_endpoints_before"] != 2 || m["memory_limit_bytes"] != float64(256<<20) {
		t.Errorf("ready_endpoints_before %v, memory_limit_bytes %v", m["ready_endpoints_before"], m["memory_limit_bytes"])
	}
	for _, name := range []string{"time_to_oom_seconds", "endpoints_restored_seconds"} {
		if v, ok := m[name]; !ok || v <= 0 || v > 60 {
			t.Errorf("%s %v (recorded %v), want within 60 s", name, v, ok)
		}
	}

	// The cluster's own view: exactly one replica's api container was OOM-killed and restarted
	// in the same pod, the one measurements.json names; the other one was left alone.
	var killed []string
	for name, old := range before {
		p := s.pod(t, "healthcare", name)
		if p.UID != old.UID {
			t.Errorf("pod %s was replaced, not restarted", name)
			continue
		}
		c, c0 := p.Status.ContainerStatuses[0], old.Status.ContainerStatuses[0]
		if c.RestartCount == c0.RestartCount {
			continue
		}
		killed = append(killed, name)
		term := c.LastTerminationState.Terminated
		if c.RestartCount != c0.RestartCount+1 || term == nil || term.Reason != "OOMKilled" || term.ExitCode != 137 || !podReady(p) {
			t.Errorf("pod %s: restarts %d -> %d, last state %+v, Ready %v", name, c0.RestartCount, c.RestartCount, term, podReady(p))
		}
		if !strings.HasPrefix(notes["memory_limit_bytes"], name+"/") {
			t.Errorf("the cluster shows %s killed, measurements.json names %q", name, notes["memory_limit_bytes"])
		}
	}
	if len(killed) != 1 {
		t.Errorf("want exactly one api replica killed and restarted, got %v", killed)
	}
	t.Logf("chaos oom-kill: %s, %v killed: time to OOM %.1fs, Ready again %.1fs, endpoints back %.1fs after the kill, ready endpoints min %v",
		res.Outcome, killed, m["time_to_oom_seconds"], m["restart_seconds"], m["endpoints_restored_seconds"], m["ready_endpoints_min"])
}

// connectionsPerPod counts, from the kernel's connection tracking, the client's TCP connections
// to the Service at url (by source port, in ports) per pod that answered them (podOfIP names
// the pod of each address). Each entry reads "... src=CLIENT dst=CLUSTERIP sport=P dport=PORT
// ... src=POD dst=CLIENT ...": the reply's source is the endpoint kube-proxy picked. Entries of
// closed connections stay (TIME_WAIT, 120 s), so the requests of the last seconds are all there.
func connectionsPerPod(t *testing.T, url string, ports map[string]bool, podOfIP map[string]string) map[string]int {
	t.Helper()
	host, port, err := net.SplitHostPort(strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	table, err := os.ReadFile("/proc/net/nf_conntrack")
	if err != nil { // a kernel without the /proc file: conntrack(8) prints the same entries
		if table, err = exec.Command("conntrack", "-L", "-p", "tcp").Output(); err != nil {
			t.Fatalf("reading connection tracking (/proc/net/nf_conntrack, or conntrack -L: apt-get install conntrack): %v", err)
		}
	}
	out := map[string]int{}
	for _, line := range strings.Split(string(table), "\n") {
		v := map[string][]string{}
		for _, f := range strings.Fields(line) {
			if k, x, ok := strings.Cut(f, "="); ok {
				v[k] = append(v[k], x)
			}
		}
		if len(v["src"]) < 2 || len(v["sport"]) < 1 || len(v["dport"]) < 1 || v["dst"][0] != host || v["dport"][0] != port || !ports[v["sport"][0]] {
			continue
		}
		name := podOfIP[v["src"][1]]
		if name == "" {
			name = "not an api pod: " + v["src"][1]
		}
		out[name]++
	}
	return out
}

// tailFile returns the last n lines of a log, for a failure message.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// onlyStaleRejects reports whether every line is kube-proxy's filter-table REJECT for a Service
// without endpoints. kube-router's NetworkPolicy sync saves the whole filter table, edits it and
// restores it (kube-router v2.1.0, netpol fullPolicySync: iptables-save, then iptables-restore
// -T filter), so a rule kube-proxy deleted in between comes back; kube-proxy 1.35 rewrites its
// filter chains only when a Service or endpoint changes (its periodic full sync is hourly).
func onlyStaleRejects(lines []string) bool {
	for _, l := range lines {
		if !strings.Contains(l, "has no endpoints") || !strings.Contains(l, "-j REJECT") {
			return false
		}
	}
	return true
}

// nudgeKubeProxy creates and deletes a Service, which makes kube-proxy rewrite its filter chains
// from the API's current state: the check that follows then shows whether anything of the
// destroyed stack is still in kube-proxy's view, rather than a rule kube-router put back.
func (s *nodeStack) nudgeKubeProxy(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-kube-proxy-resync", Namespace: "default"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 9, Protocol: corev1.ProtocolTCP}}},
	}
	if _, err := s.client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Logf("nudge: create Service: %v", err)
		return
	}
	time.Sleep(2 * time.Second)
	if err := s.client.CoreV1().Services("default").Delete(ctx, svc.Name, metav1.DeleteOptions{}); err != nil {
		t.Logf("nudge: delete Service: %v", err)
	}
	t.Log("nudged kube-proxy: stale REJECT rules of deleted Services were back in the filter table (kube-router's save/restore race)")
}
