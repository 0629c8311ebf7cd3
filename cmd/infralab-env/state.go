package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// state is what `up`/`serve` record in DIR/state.json so `down` and `status` find the
// processes again, possibly from another shell.
type state struct {
	Supervisor   int            `json:"supervisorPid"`
	Components   map[string]int `json:"components,omitempty"`
	Kubeconfig   string         `json:"kubeconfig,omitempty"`
	Server       string         `json:"server,omitempty"`
	Etcd         string         `json:"etcd,omitempty"`
	Ready        bool           `json:"ready"`
	Error        string         `json:"error,omitempty"`
	StartedAt    time.Time      `json:"startedAt"`
	StartSeconds float64        `json:"startSeconds,omitempty"`
	// Set when the supervisor runs a node too.
	Node             string         `json:"node,omitempty"`
	NodeComponents   map[string]int `json:"nodeComponents,omitempty"`
	NodeStartSeconds float64        `json:"nodeStartSeconds,omitempty"`
}

func statePath(dir string) string      { return filepath.Join(dir, "state.json") }
func supervisorLog(dir string) string  { return filepath.Join(dir, "supervisor.log") }
func kubeconfigPath(dir string) string { return filepath.Join(dir, "kubeconfig") }
func planeDir(dir string) string       { return filepath.Join(dir, "plane") }
func nodeDir(dir string) string        { return filepath.Join(dir, "node") }

func readState(dir string) (*state, error) {
	data, err := os.ReadFile(statePath(dir))
	if err != nil {
		return nil, err
	}
	var s state
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// writeState replaces the file atomically so a reader never sees half of it.
func writeState(dir string, s *state) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := statePath(dir) + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, statePath(dir))
}

// ours reports whether pid is alive and still runs the program we recorded (its command line
// contains every want: a program name and our folder), so a recycled pid is never signalled.
func ours(pid int, want ...string) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return false
	}
	args := strings.ReplaceAll(string(cmdline), "\x00", " ")
	for _, w := range want {
		if !strings.Contains(args, w) {
			return false
		}
	}
	return true
}
