package proc

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A component that dies while we wait for it is reported with its exit status and its log, not
// as a timeout.
func TestWaitForReportsAnExitWithTheLog(t *testing.T) {
	p, err := Start("demo", "/bin/sh", []string{"-c", "echo 'bind: address already in use' >&2; exit 3"}, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = WaitFor(ctx, p, "ready", func(context.Context) error { return errors.New("not yet") })
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("error = %v", err)
	}
	if !LostPortRace(p) {
		t.Error("LostPortRace = false for a component whose log says the port was taken")
	}
}

// Stop ends the whole process group: a child the component forked goes too.
func TestStopEndsTheProcessGroup(t *testing.T) {
	p, err := Start("tree", "/bin/sh", []string{"-c", "sleep 300 & wait"}, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	pgid := p.Pid()
	time.Sleep(100 * time.Millisecond) // let the shell fork its child
	if err := p.Stop(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	if !p.Exited() {
		t.Fatal("still running after Stop")
	}
	// Signal 0 to the group: ESRCH once no member (the forked sleep included) is left.
	deadline := time.Now().Add(2 * time.Second)
	for syscall.Kill(-pgid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatal("a child of the component outlived Stop")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A supervisor must notice a dead component, but not one it paused on purpose.
func TestFirstExitSkipsPausedComponents(t *testing.T) {
	dead, err := Start("etcd", "/bin/sh", []string{"-c", "exit 1"}, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	<-dead.Done()
	live, err := Start("apiserver", "/bin/sh", []string{"-c", "sleep 30"}, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = live.Stop(time.Second) }()
	ps := []*Process{live, dead}
	if err := FirstExit(ps, nil); err == nil || !strings.Contains(err.Error(), "etcd") {
		t.Fatalf("FirstExit = %v, want etcd's exit", err)
	}
	if err := FirstExit(ps, map[string]bool{"etcd": true}); err != nil {
		t.Fatalf("FirstExit with etcd paused = %v, want nil", err)
	}
}

// Components must never start on a folder holding someone else's certificates or data.
func TestFreshDirRefusesAFolderWithFiles(t *testing.T) {
	dir := t.TempDir()
	if err := FreshDir(dir + "/new"); err != nil {
		t.Fatalf("FreshDir(new) = %v", err)
	}
	if err := os.WriteFile(dir+"/new/ca.crt", []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := FreshDir(dir + "/new"); !errors.Is(err, ErrDirNotEmpty) {
		t.Fatalf("FreshDir(non-empty) = %v, want ErrDirNotEmpty", err)
	}
}

// A component that loses its port to another process is started again on new ports, and only
// then; any other failure is returned at once.
func TestWithFreePortsRetriesOnlyALostPort(t *testing.T) {
	var tries, dropped int
	err := WithFreePorts(2, func(ports []int) (*Process, error) {
		tries++
		if len(ports) != 2 || ports[0] == ports[1] {
			t.Fatalf("ports = %v, want two distinct", ports)
		}
		if tries > 1 {
			return nil, nil
		}
		p, err := Start("scheduler", "/bin/sh", []string{"-c", "echo 'listen tcp 127.0.0.1: bind: address already in use' >&2; exit 1"}, t.TempDir(), nil)
		if err != nil {
			return nil, err
		}
		<-p.Done()
		return p, p.ExitError()
	}, func(*Process) { dropped++ })
	if err != nil || tries != 2 || dropped != 1 {
		t.Fatalf("WithFreePorts = %v after %d tries, %d dropped; want success on the 2nd try", err, tries, dropped)
	}

	tries = 0
	err = WithFreePorts(1, func([]int) (*Process, error) {
		tries++
		p, err := Start("scheduler", "/bin/sh", []string{"-c", "echo 'bad flag' >&2; exit 2"}, t.TempDir(), nil)
		if err != nil {
			return nil, err
		}
		<-p.Done()
		return p, p.ExitError()
	}, func(*Process) { t.Fatal("a bad flag is not a lost port") })
	if err == nil || tries != 1 {
		t.Fatalf("WithFreePorts = %v after %d tries; want the error after one", err, tries)
	}
}

func TestWithoutDropsOnlyTheDeadProcess(t *testing.T) {
	a, b, c := &Process{Name: "etcd"}, &Process{Name: "apiserver"}, &Process{Name: "scheduler"}
	ps := []*Process{a, b, c}
	got := Without(ps, b)
	if len(got) != 2 || got[0] != a || got[1] != c {
		t.Fatalf("Without = %v, want [etcd scheduler]", got)
	}
	if ps[1] != b {
		t.Fatal("Without changed the caller's slice")
	}
}
