package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The lock file names the holder's node folder, so that the next Start finds a node whose
// process died before its teardown.
func TestLockFileNamesTheNodeFolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.lock")
	f, prev, err := takeLock(path)
	if err != nil || prev != "" {
		t.Fatalf("first lock: %q, %v", prev, err)
	}
	if err := claimLock(f, "/srv/node-a"); err != nil {
		t.Fatal(err)
	}
	// flock conflicts between two opens of the file even in one process: a second node.
	if _, _, err := takeLock(path); err == nil || !strings.Contains(err.Error(), "/srv/node-a") {
		t.Fatalf("a second lock must fail naming the holder's folder: %v", err)
	}
	f.Close() // the holder dies: the kernel releases the lock, the content stays
	f, prev, err = takeLock(path)
	if err != nil || prev != "/srv/node-a" {
		t.Fatalf("after the holder died: %q, %v; want its folder", prev, err)
	}
	if err := claimLock(f, "/srv/b"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if data, _ := os.ReadFile(path); string(data) != fmt.Sprintf("pid %d\ndir /srv/b\n", os.Getpid()) {
		t.Errorf("lock file = %q (claimLock must replace, not append)", data)
	}
	for content, want := range map[string]string{"pid 12": "", "pid 12\ndir /a b\n": "/a b", "": ""} {
		if _, dir := parseLock(content); dir != want {
			t.Errorf("parseLock(%q) dir = %q, want %q", content, dir, want)
		}
	}
}

// A previous node whose record is still there is torn down from that record before anything
// else, with the teardown injected here so that the machine is not touched.
func TestStartUndoesThePreviousNodeFirst(t *testing.T) {
	prev := t.TempDir()
	rec := newRecord(prev)
	rec.Bridge = BridgeName
	rec.Sysctls["vm.overcommit_memory"] = "0"
	if err := rec.save(); err != nil {
		t.Fatal(err)
	}
	var calls []string
	var failWith error
	td := func(dir string, r *record, n *Node, log io.Writer) error {
		calls = append(calls, dir)
		if n != nil || r.Bridge != BridgeName || r.Sysctls["vm.overcommit_memory"] != "0" {
			t.Errorf("teardown got node %v, record %+v: want the previous node's record and no live node", n, r)
		}
		if failWith != nil {
			return failWith
		}
		return os.Remove(r.path) // as teardown does when it undid everything
	}
	var log bytes.Buffer
	if err := recoverPrevious(prev, &log, td); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 || calls[0] != prev || !strings.Contains(log.String(), "undoing what its record") {
		t.Fatalf("teardown calls %q, log %q", calls, log.String())
	}
	// Torn down (no record), no folder known, or an old lock file: nothing to do.
	for _, dir := range []string{prev, "", filepath.Join(prev, "missing")} {
		if err := recoverPrevious(dir, io.Discard, td); err != nil || len(calls) != 1 {
			t.Fatalf("recoverPrevious(%q): %v, %d calls", dir, err, len(calls))
		}
	}
	// A failed teardown keeps the record and stops the new node from starting.
	if err := rec.save(); err != nil {
		t.Fatal(err)
	}
	failWith = errors.New("chain busy")
	err := recoverPrevious(prev, io.Discard, td)
	if err == nil || !strings.Contains(err.Error(), recordPath(prev)) || !strings.Contains(err.Error(), "chain busy") {
		t.Fatalf("a failed recovery must name the record and the failure: %v", err)
	}
	if !fileExists(recordPath(prev)) {
		t.Error("the record must stay after a failed recovery")
	}
}

// Teardown restores a sysctl only while it holds the value the node wrote.
func TestSysctlRestoreLeavesOtherProgramsValues(t *testing.T) {
	for _, c := range []struct {
		old, written string
		known        bool
		cur          string
		restore      bool
		why          string
	}{
		{"0", "1", true, "1", true, ""},                  // ours: back to 0
		{"0", "1", true, "0", false, ""},                 // already back
		{"0", "1", true, "2", false, "another program"},  // changed since: left
		{"0", "", false, "1", false, "did not write it"}, // a watched one nobody recorded as ours
		{"1", "1", true, "1", false, ""},                 // the node wrote what was there
	} {
		restore, why := sysctlRestore(c.old, c.written, c.known, c.cur)
		if restore != c.restore || (c.why == "") != (why == "") || !strings.Contains(why, c.why) {
			t.Errorf("sysctlRestore(%+v) = %v, %q", c, restore, why)
		}
	}
	// A record of an older infralab has no written values: the node's own sysctls are known.
	dir := t.TempDir()
	if err := os.WriteFile(recordPath(dir), []byte(`{"dir":"x","sysctls":{"kernel.panic":"1"},"pids":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	old, err := loadRecord(dir)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := old.writtenSysctl("kernel.panic"); !ok || v != "10" {
		t.Errorf("old record: kernel.panic written = %q, %v; want 10", v, ok)
	}
	if _, ok := old.writtenSysctl("net.ipv4.conf.all.route_localnet"); ok {
		t.Error("old record: a watched sysctl has no known written value")
	}
	rec := newRecord(dir)
	rec.Sysctls["kernel.panic"] = "1"
	if err := rec.save(); err != nil {
		t.Fatal(err)
	}
	if rec, err = loadRecord(dir); err != nil {
		t.Fatal(err)
	}
	if _, ok := rec.writtenSysctl("kernel.panic"); ok {
		t.Error("a current record says what the node wrote; kernel.panic is not in it")
	}
}

// With the previous node's record gone, Start refuses naming what is left and how to remove it.
// (Reads the machine only: the bridge and cgroups.)
func TestRefusalNamesWhatIsLeftAndHowToCleanIt(t *testing.T) {
	before := &machineState{Chains: []string{"iptables nat KUBE-SERVICES", "iptables filter CNI-FORWARD"}}
	msg := foreignNodeState(context.Background(), before, "/tmp/gone-node")
	for _, want := range []string{"iptables nat KUBE-SERVICES", "kube-proxy --cleanup", "-X CHAIN", "ipset destroy",
		"/tmp/gone-node", "sysctl -w", "vm.overcommit_memory"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q: %s", want, msg)
		}
	}
	if strings.Contains(msg, "CNI-FORWARD") {
		t.Errorf("CNI-FORWARD is no kube-proxy chain: %s", msg)
	}
	if _, err := os.Stat("/sys/class/net/" + BridgeName); err != nil {
		if msg := foreignNodeState(context.Background(), &machineState{}, "/tmp/gone-node"); msg != "" {
			t.Errorf("nothing in the way, got %q", msg)
		}
	}
}
