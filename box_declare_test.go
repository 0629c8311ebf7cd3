package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"golang.org/x/crypto/ssh"

	clusterlayer "github.com/infralab/infralab/cluster"
	"github.com/infralab/infralab/internal/testenv"
	"github.com/infralab/infralab/proof/box/declared"
	"github.com/infralab/infralab/proof/box/jumphost"
	"github.com/infralab/infralab/stacks"
)

// The box (proof/box) evaluates this very program with a box stack config under a mock engine
// that captures what it declares and, for `make box`, runs the cluster layer's commands over real
// SSH on the box's machines (proof/box/declared). Package main cannot be imported, so this file
// is where the program meets that engine: a normal test of the box plan's shape, and
// TestBoxDeclared, the entry `make box` runs (INFRALAB_BOX set).

// runBoxProgram evaluates the program with the box stack config against eng.
func runBoxProgram(t testing.TB, box *declared.Box, eng *declared.Engine) error {
	t.Helper()
	lab, err := stacks.ReadStackFile(filepath.Join("stacks", "Pulumi.lab.yaml"))
	if err != nil {
		return err
	}
	values, secrets, err := box.StackConfig(lab)
	if err != nil {
		return err
	}
	// Secrets of layers the box does not run for real (no Proxmox API; the apps are applied by a
	// real `pulumi up` of the local stack), generated per run.
	u := randomHex(16)
	secrets[stacks.KeyProxmoxAPIToken] = "infralab@pve!box=" + u[:8] + "-" + u[8:12] + "-4" + u[13:16] + "-8" + u[17:20] + "-" + u[20:]
	for _, k := range []string{stacks.KeyPostgresPassword, stacks.KeyAPIDBPassword, stacks.KeyExporterDBPassword, stacks.KeyGrafanaAdminPassword} {
		secrets[k] = randomHex(16)
	}
	cfg := map[string]string{}
	var secretKeys []string
	for k, v := range values {
		cfg[stacks.Namespace+":"+k] = v
	}
	for k, v := range secrets {
		cfg[stacks.Namespace+":"+k] = v
		secretKeys = append(secretKeys, stacks.Namespace+":"+k)
	}
	if eng.Phases == nil {
		eng.Phases = clusterlayer.PhaseNames()
	}
	if runner, ok := eng.Runner.(*declared.SSH); ok && runner.Mask != nil {
		for _, v := range secrets {
			runner.Mask.Add(v)
		}
	}
	b, _ := json.Marshal(cfg)
	keys, _ := json.Marshal(secretKeys)
	t.Setenv(pulumi.EnvConfig, string(b))
	t.Setenv(pulumi.EnvConfigSecretKeys, string(keys))
	return pulumi.RunErr(run, pulumi.WithMocks("infralab", "box", eng))
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

// testBox is a box description with generated keys, as proof/box writes it after first boot.
func testBox(t testing.TB) *declared.Box {
	t.Helper()
	dir := t.TempDir()
	key := func(name string) (file, pub string) {
		p, priv, _ := ed25519.GenerateKey(rand.Reader)
		block, _ := ssh.MarshalPrivateKey(priv, "")
		file = filepath.Join(dir, name)
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		sp, _ := ssh.NewPublicKey(p)
		return file, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp)))
	}
	sshKey, _ := key("ssh")
	jumpKey, _ := key("jump")
	enc := filepath.Join(dir, "encryption")
	if err := os.WriteFile(enc, []byte(base64.StdEncoding.EncodeToString(make([]byte, 32))), 0o600); err != nil {
		t.Fatal(err)
	}
	_, jumpHost := key("jump-host")
	b := &declared.Box{
		Jump: declared.Machine{Name: "pve1", Address: "10.77.0.2", HostKey: jumpHost}, JumpUser: "infralab-jump",
		NodeCIDR: "10.77.0.0/24", Gateway: "10.77.0.1", DNS: []string{"10.77.0.1"},
		SSHPrivateKeyFile: sshKey, JumpPrivateKeyFile: jumpKey, EncryptionKeyFile: enc,
		// The machines share this host's cgroup v1 kernel.
		Kubernetes: map[string]any{"allowCgroupV1": true},
	}
	for i, n := range []string{"k8s-cp-1", "k8s-worker-1", "k8s-worker-2"} {
		_, hk := key("host-" + n)
		b.Machines = append(b.Machines, declared.Machine{Name: n, Address: fmt.Sprintf("10.77.0.%d", 10+i), HostKey: hk})
	}
	return b
}

// standIn plays the nodes' stdout when nothing runs, so every phase is declared (main_test.go).
func standIn(args pulumi.MockResourceArgs) string {
	switch {
	case strings.HasSuffix(args.Name, "-"+clusterlayer.PhaseFetchKubeconfig):
		return sealLikeTheNode(args, "apiVersion: v1\nkind: Config\n")
	case strings.HasSuffix(args.Name, "-"+clusterlayer.PhaseJoinToken) && !strings.HasSuffix(args.Name, "-"+clusterlayer.PhaseDeleteJoinToken):
		return sealLikeTheNode(args, `{"token":"abcdef.0123456789abcdef","caCertHash":"sha256:`+strings.Repeat("ab", 32)+`"}`)
	}
	return "ok"
}

// The box stack puts every cluster phase on the box's machines, through the box's jump host
// with its forwarding-only login, and each VM's user-data carries the box's login key; the plan
// written for the box holds no secret.
func TestBoxStackDeclaresTheClusterPhasesOnTheMachines(t *testing.T) {
	box := testBox(t)
	eng := &declared.Engine{StandIn: standIn}
	if err := runBoxProgram(t, box, eng); err != nil {
		t.Fatal(err)
	}
	plan := eng.Plan()
	addrs := box.Names()
	nodesOf := map[string][]string{}
	for _, c := range plan.Commands {
		if !strings.HasPrefix(c.Name, "cluster-") {
			continue
		}
		node := addrs[c.Connection.Host]
		if node == "" {
			t.Errorf("%s connects to %s, no machine of the box", c.Name, c.Connection.Host)
		}
		if p := c.Connection.Proxy; p == nil || p.Host != box.Jump.Address || p.User != box.JumpUser || p.HostKey != box.Jump.HostKey {
			t.Errorf("%s does not go through the box's jump login: %+v", c.Name, p)
		}
		if c.Connection.User != "infralab" || c.Create == "" {
			t.Errorf("%s: user %q, create %d bytes", c.Name, c.Connection.User, len(c.Create))
		}
		nodesOf[c.Phase] = append(nodesOf[c.Phase], node)
	}
	all := []string{"k8s-cp-1", "k8s-worker-1", "k8s-worker-2"}
	for phase, want := range map[string][]string{
		clusterlayer.PhaseWaitSSH: all, clusterlayer.PhasePrepareNode: all,
		clusterlayer.PhaseKubeadmInit: {"k8s-cp-1"}, clusterlayer.PhaseFetchKubeconfig: {"k8s-cp-1"},
		clusterlayer.PhaseJoinToken: {"k8s-cp-1"}, clusterlayer.PhaseJoinWorker: {"k8s-worker-1", "k8s-worker-2"},
		clusterlayer.PhaseWaitNodesReady: {"k8s-cp-1"}, clusterlayer.PhaseCalico: {"k8s-cp-1"},
	} {
		got := slices.Sorted(slices.Values(nodesOf[phase]))
		if !slices.Equal(got, want) {
			t.Errorf("phase %s runs on %v, want %v", phase, got, want)
		}
	}
	// The order the executor will follow is the program's: each worker joins with the token's
	// output and after its own node is prepared.
	for _, w := range []string{"k8s-worker-1", "k8s-worker-2"} {
		join := plan.Command("cluster-" + clusterlayer.PhaseJoinWorker + "-" + w)
		if join == nil {
			t.Fatalf("no join-worker for %s", w)
		}
		if !slices.Contains(join.InputsFrom["stdin"], "cluster-"+clusterlayer.PhaseJoinToken) {
			t.Errorf("%s's stdin does not come from join-token: %v", join.Name, join.InputsFrom)
		}
		if !slices.Contains(join.DependsOn, "cluster-"+clusterlayer.PhasePrepareNode+"-"+w) {
			t.Errorf("%s does not wait for its node's prepare-node: %v", join.Name, join.DependsOn)
		}
	}
	if init := plan.Command("cluster-" + clusterlayer.PhaseKubeadmInit); init == nil {
		t.Errorf("no kubeadm-init")
	} else {
		m := regexp.MustCompile(`KUBEADM_CONFIG_B64='([^']*)'`).FindStringSubmatch(init.Create)
		var cfg []byte
		if m != nil {
			cfg, _ = base64.StdEncoding.DecodeString(m[1])
		}
		if !strings.Contains(string(cfg), "failCgroupV1: false") {
			t.Errorf("the box's kubernetes.allowCgroupV1 does not reach kubeadm-init's kubelet config")
		}
	}
	if len(plan.Snippets) != 3 {
		t.Fatalf("want one user-data snippet per VM, got %d", len(plan.Snippets))
	}
	raw, _ := os.ReadFile(box.SSHPrivateKeyFile)
	signer, _ := ssh.ParsePrivateKey(raw)
	pub := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	for _, s := range plan.Snippets {
		if !strings.HasPrefix(s.Content, "#cloud-config") || !strings.Contains(s.Content, pub) {
			t.Errorf("%s (%s) is no cloud-config with the box's login key", s.Resource, s.FileName)
		}
	}
	if k := plan.Providers["lab"].Kubeconfig.Value; !strings.Contains(k, "kind: Config") {
		t.Errorf("the lab provider did not get the kubeconfig the phases produced: %q", k)
	}
	b, err := json.Marshal(plan)
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := os.ReadFile(box.EncryptionKeyFile)
	for _, secret := range []string{string(raw), string(enc), "PRIVATE KEY", "abcdef.0123456789abcdef"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("the plan JSON holds a secret (%.20s...)", secret)
		}
	}
}

// A box description that does not fit the lab stack is refused with every problem at once.
func TestBoxStackConfigReportsEveryMismatch(t *testing.T) {
	box := testBox(t)
	box.Machines[2].Name = "k8s-w-2"
	box.Jump.Address = ""
	_, _, err := box.StackConfig(mustReadLab(t))
	for _, want := range []string{"no machine for cluster.workers.nodes[1] (k8s-worker-2)", "machine k8s-w-2 is no node", "jump.address and jumpUser are required"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
}

func mustReadLab(t *testing.T) map[string]string {
	t.Helper()
	lab, err := stacks.ReadStackFile(filepath.Join("stacks", "Pulumi.lab.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return lab
}

// TestBoxDeclared is `make box`'s entry (skipped unless INFRALAB_BOX names a box description):
// it writes the plan (plan.json and user-data-<vm>, mode 0600) into INFRALAB_BOX_OUT, and with
// INFRALAB_BOX_RUN=1 runs the cluster layer's declared create scripts over real SSH on the box's
// machines, then writes the kubeconfig the program built from their outputs and phases.json, and
// prints the per-phase table. This exercises the declared scripts and their order for real, not
// pulumi-command's lifecycle (proof/box/declared).
func TestBoxDeclared(t *testing.T) {
	path := os.Getenv("INFRALAB_BOX")
	if path == "" {
		t.Skip("INFRALAB_BOX is not set: make box runs this")
	}
	box, err := declared.ReadBox(path)
	if err != nil {
		t.Fatal(err)
	}
	out := os.Getenv("INFRALAB_BOX_OUT")
	if out == "" {
		out = filepath.Dir(path)
	}
	if err := os.MkdirAll(out, 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(out, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	eng := &declared.Engine{StandIn: standIn, InstanceIDs: map[string]string{}}
	for _, m := range box.Machines {
		if m.InstanceID != "" {
			eng.InstanceIDs[m.Name] = m.InstanceID
		}
	}
	var runner *declared.SSH
	run := os.Getenv("INFRALAB_BOX_RUN") == "1"
	if js := box.StartJump; js != nil {
		addr, _, _ := strings.Cut(js.Address, "/")
		box.Jump.Name, box.Jump.Address = "pve1", addr
		if run {
			box.Jump.HostKey = startJump(t, box)
		}
	}
	if run {
		if err := box.CheckOnLink(); err != nil {
			t.Fatal(err)
		}
		runner = &declared.SSH{HostKeys: box.HostKeys(), Names: box.Names(), Out: os.Stdout, Mask: &declared.Masker{}}
		eng.Runner, eng.StandIn = runner, nil
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		defer cancel()
		eng.Context = ctx
	}
	runErr := runBoxProgram(t, box, eng)
	plan := eng.Plan()
	b, _ := json.MarshalIndent(plan, "", "  ")
	write("plan.json", b)
	// One file per VM, named as the VM: infralab-box up --user-data-dir reads them so.
	if err := os.MkdirAll(filepath.Join(out, "user-data"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, s := range plan.Snippets {
		write(filepath.Join("user-data", strings.TrimPrefix(s.Resource, "infra-user-data-")), []byte(s.Content))
	}
	if runner != nil {
		phases, total := declared.Times(eng.Results(), func(c *declared.Command) string {
			node, _, _ := strings.Cut(runner.Label(c), "/")
			return node
		})
		tb, _ := json.MarshalIndent(map[string]any{"phases": phases, "total": total}, "", "  ")
		write("phases.json", tb)
		fmt.Println()
		declared.WriteTable(os.Stdout, phases, total)
		if k := plan.Providers["lab"].Kubeconfig.Value; runErr == nil && k != "" {
			write("kubeconfig", []byte(k))
		}
	}
	if runErr != nil {
		t.Fatal(runErr)
	}
}

// updateRunner runs a command's declared update instead of its create: for wait-ssh that is the
// connection check pulumi-command runs on a changed connection (cluster/command.go
// connectionCheck), harmless on this host.
type updateRunner struct{ *declared.SSH }

func (u updateRunner) Run(ctx context.Context, c *declared.Command) (string, error) {
	cc := *c
	cc.Create = c.Update
	return u.SSH.Run(ctx, &cc)
}

// The box stack's declared connections work for real: the lab program's own wait-ssh connection
// for k8s-cp-1 (user infralab, the box key, through the jump host with the forwarding-only login
// and its pinned key) reaches an OpenSSH machine in a namespace on a bridge this test creates,
// and runs the declared connection check there (sudo -n true).
func TestBoxStackConnectionsReachTheMachineThroughTheJumpHost(t *testing.T) {
	testenv.RequireRoot(t)
	sshd := testenv.Tool(t, "sshd")
	testenv.Tool(t, "ip")
	testenv.Tool(t, "sudo")
	n := 20 + os.Getpid()%200
	net3 := fmt.Sprintf("10.216.%d", n)
	bridge := fmt.Sprintf("ilxbb%d", n)
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	ip("link", "add", bridge, "type", "bridge")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", bridge).Run() })
	ip("addr", "add", net3+".1/24", "dev", bridge)
	ip("link", "set", bridge, "up")

	box := testBox(t)
	box.NodeCIDR, box.Gateway, box.DNS = net3+".0/24", net3+".1", []string{net3 + ".1"}
	for i := range box.Machines {
		box.Machines[i].Address = fmt.Sprintf("%s.%d", net3, 10+i)
	}
	cp := &box.Machines[0]

	// The jump host, with the jump login's real key.
	jumpPriv, _ := os.ReadFile(box.JumpPrivateKeyFile)
	jumpSigner, _ := ssh.ParsePrivateKey(jumpPriv)
	dir, err := os.MkdirTemp("", "box-connection-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	jcfg := jumphost.Config{Name: fmt.Sprintf("ilx-bj-%d", n), Bridge: bridge, Address: net3 + ".2/24", User: box.JumpUser,
		AuthorizedKey: string(ssh.MarshalAuthorizedKey(jumpSigner.PublicKey())), PermitOpen: []string{cp.Address + ":22"}, Dir: filepath.Join(dir, "jump")}
	j, err := jumphost.Start(jcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = jumphost.Stop(jcfg) })
	box.Jump.Address, box.Jump.HostKey = net3+".2", j.HostKey

	// k8s-cp-1: an OpenSSH machine whose login infralab (uid 0 here, so sudo -n works without a
	// sudoers file) accepts the box key, as cloud-init sets it up.
	cp.HostKey = startMachineSSHD(t, sshd, fmt.Sprintf("ilx-bm-%d", n), bridge, cp.Address+"/24", filepath.Join(dir, "cp"), box.SSHPrivateKeyFile)

	out := &strings.Builder{}
	runner := &declared.SSH{HostKeys: box.HostKeys(), Names: box.Names(), Out: out, Mask: &declared.Masker{}}
	want := "cluster-" + clusterlayer.PhaseWaitSSH + "-k8s-cp-1"
	eng := &declared.Engine{StandIn: standIn, Runner: updateRunner{runner}, Select: func(c *declared.Command) bool { return c.Name == want }}
	if err := runBoxProgram(t, box, eng); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	res := eng.Results()
	if len(res) != 1 || res[0].Command.Name != want || res[0].Err != nil || res[0].Command.Update != "sudo -n true" {
		t.Fatalf("results %+v\n%s", res, out.String())
	}
	if !strings.Contains(out.String(), "[k8s-cp-1/wait-ssh] done in") {
		t.Errorf("no duration printed:\n%s", out.String())
	}
}

// startMachineSSHD runs an sshd in a new namespace plugged into bridge, with a login infralab
// (uid 0) for the key in keyFile, and returns its host key.
func startMachineSSHD(t *testing.T, sshd, ns, bridge, cidr, dir, keyFile string) string {
	t.Helper()
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v %s", name, args, err, out)
		}
	}
	if err := os.MkdirAll(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	run("ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	hostIf := "v-" + ns
	run("ip", "link", "add", hostIf, "type", "veth", "peer", "name", "eth0", "netns", ns)
	run("ip", "link", "set", hostIf, "master", bridge)
	run("ip", "link", "set", hostIf, "up")
	run("ip", "-n", ns, "addr", "add", cidr, "dev", "eth0")
	run("ip", "-n", ns, "link", "set", "eth0", "up")
	run("ip", "-n", ns, "link", "set", "lo", "up")
	raw, _ := os.ReadFile(keyFile)
	signer, err := ssh.ParsePrivateKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, _ := ssh.MarshalPrivateKey(priv, "")
	passwd, _ := os.ReadFile("/etc/passwd")
	addr, _, _ := strings.Cut(cidr, "/")
	for name, content := range map[string]string{
		"host_ed25519":    string(pem.EncodeToMemory(block)),
		"authorized_keys": string(ssh.MarshalAuthorizedKey(signer.PublicKey())),
		"passwd":          strings.TrimRight(string(passwd), "\n") + "\ninfralab:x:0:0::/root:/bin/bash\n",
		"sshd_config": strings.Join([]string{"ListenAddress " + addr + ":22", "HostKey " + filepath.Join(dir, "host_ed25519"),
			"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"), "AllowUsers infralab", "PermitRootLogin yes",
			"PasswordAuthentication no", "UsePAM no", "StrictModes no", "PidFile none", "LogLevel ERROR"}, "\n") + "\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_ = os.Chmod(filepath.Join(dir, "host_ed25519"), 0o600)
	_ = os.MkdirAll("/run/sshd", 0o755)
	cmd := exec.Command("ip", "netns", "exec", ns, "unshare", "--mount", "--propagation", "private", "sh", "-c",
		`mount --bind "$1" /etc/passwd && exec "$2" -D -e -f "$3"`, "sh", filepath.Join(dir, "passwd"), sshd, filepath.Join(dir, "sshd_config"))
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for i := 0; ; i++ {
		if exec.Command("ip", "netns", "exec", ns, "bash", "-c", "exec 3<>/dev/tcp/"+addr+"/22").Run() == nil {
			break
		}
		if i > 100 {
			t.Fatalf("machine sshd never listened: %s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	sp, _ := ssh.NewPublicKey(pub)
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp)))
}

// startJump starts the box's jump host for this run (stopped when it ends) and returns its host
// key. Its directory is outside the 0700 state dir: sshd reads authorized_keys as the jump login.
func startJump(t *testing.T, box *declared.Box) string {
	t.Helper()
	raw, err := os.ReadFile(box.JumpPrivateKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(raw)
	if err != nil {
		t.Fatalf("jumpPrivateKeyFile: %v", err)
	}
	var permit []string
	for _, m := range box.Machines {
		permit = append(permit, m.Address+":22")
	}
	dir, err := os.MkdirTemp("", "infralab-box-jump-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	cfg := jumphost.Config{Name: "ilbox-jump", Bridge: box.StartJump.Bridge, Address: box.StartJump.Address, User: box.JumpUser,
		AuthorizedKey: string(ssh.MarshalAuthorizedKey(signer.PublicKey())), PermitOpen: permit, Dir: filepath.Join(dir, "jump")}
	j, err := jumphost.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = jumphost.Stop(cfg) })
	return j.HostKey
}
