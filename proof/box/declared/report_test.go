package declared

import (
	"strings"
	"testing"
	"time"
)

func TestPhaseOfReadsTheLongestPhaseName(t *testing.T) {
	phases := []string{"join-token", "join-worker", "delete-join-token", "wait-ssh", "kubeadm-init"}
	for name, want := range map[string][2]string{
		"cluster-join-token":            {"join-token", ""},
		"cluster-delete-join-token":     {"delete-join-token", ""},
		"cluster-join-worker-k8s-w-1":   {"join-worker", "k8s-w-1"},
		"cluster-wait-ssh-k8s-cp-1":     {"wait-ssh", "k8s-cp-1"},
		"infra-host-nat-pve1":           {"", ""},
		"cluster-kubeadm-initial-thing": {"", ""},
	} {
		p, n := phaseOf(name, phases)
		if p != want[0] || n != want[1] {
			t.Errorf("phaseOf(%q) = %q, %q; want %q, %q", name, p, n, want[0], want[1])
		}
	}
}

// The table is the measured rebuild time: per node the command's duration, per phase the span
// from its first start to its last end, and the whole run's span.
func TestTimesTableShowsEachNodeAndThePhaseWallTime(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 16, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	res := []Result{
		{Command: &Command{Phase: "wait-ssh", Node: "cp"}, Start: at(0), End: at(2)},
		{Command: &Command{Phase: "wait-ssh", Node: "w1"}, Start: at(0.5), End: at(3)},
		{Command: &Command{Phase: "kubeadm-init", Connection: Connection{Host: "10.0.0.1"}}, Start: at(3), End: at(43)},
		{Command: &Command{Phase: "join-worker", Node: "w1"}, Start: at(43), End: at(50), Err: errTest},
	}
	node := func(c *Command) string {
		if c.Node != "" {
			return c.Node
		}
		return "cp"
	}
	phases, total := Times(res, node)
	if total != 50*time.Second || len(phases) != 3 || phases[0].Phase != "wait-ssh" || phases[0].Wall != 3*time.Second {
		t.Fatalf("times = %+v, total %v", phases, total)
	}
	var b strings.Builder
	WriteTable(&b, phases, total)
	want := []string{"phase cp w1 wall", "wait-ssh 2s 2.5s 3s", "kubeadm-init 40s - 40s", "join-worker - 7s FAILED 7s", "total 50s"}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("table:\n%s", b.String())
	}
	for i, w := range want {
		if got := strings.Join(strings.Fields(lines[i]), " "); got != w {
			t.Errorf("row %d = %q, want %q", i, got, w)
		}
	}
}

type testErr struct{}

func (testErr) Error() string { return "failed" }

var errTest error = testErr{}

func TestMaskerHidesWholeValuesAndTheirLines(t *testing.T) {
	m := &Masker{}
	key := "-----BEGIN KEY-----\nAAAAbase64materialline1xx\nAAAAbase64materialline2yy\n-----END KEY-----\n"
	m.Add(key, "ok", "tok3n-value")
	got := m.Apply("a " + key + " b AAAAbase64materialline2yy c tok3n-value ok")
	if strings.Contains(got, "material") || strings.Contains(got, "tok3n") || !strings.HasSuffix(got, " ok") {
		t.Fatalf("masked: %q", got)
	}
}
