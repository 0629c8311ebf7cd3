package node

import (
	"encoding/json"
	"os"
	"path/filepath"
)

// record lists the side effects Start made, written before each is made, so that Teardown
// undoes them even from another process after a crash.
type record struct {
	path    string
	Dir     string            `json:"dir"`
	Sysctls map[string]string `json:"sysctls"` // previous values
	// SysctlsWritten holds the value the node (or one of its components) set, for each sysctl it
	// changed: teardown restores a sysctl only while it still holds that value, so a later
	// change by another program is not overwritten.
	SysctlsWritten map[string]string `json:"sysctlsWritten"`
	Bridge         string            `json:"bridge,omitempty"`
	Containerd     string            `json:"containerdSocket,omitempty"`
	Pids           map[string]int    `json:"pids"`
	Netns          []string          `json:"netns,omitempty"`
	// Entries of /run/containerd/s (shim sockets) before the node started; newer ones are ours.
	ShimSocketsBefore []string `json:"shimSocketsBefore"`
	RunContainerdNew  bool     `json:"runContainerdNew"` // /run/containerd did not exist before
	// Before is what the machine held where the node's components create things (chains,
	// ipsets, nftables tables, kubepods cgroups, /var/log/containers), read before the node
	// changed anything: teardown removes only what is not in it.
	Before *machineState `json:"before,omitempty"`
}

func recordPath(dir string) string { return filepath.Join(dir, "node-state.json") }

func newRecord(dir string) *record {
	return &record{path: recordPath(dir), Dir: dir, Sysctls: map[string]string{}, SysctlsWritten: map[string]string{},
		Pids: map[string]int{}}
}

// writtenSysctl is the value the node set for key. A record of an older infralab has no
// SysctlsWritten: the node's own sysctls then hold the values it always writes.
func (r *record) writtenSysctl(key string) (string, bool) {
	if v, ok := r.SysctlsWritten[key]; ok {
		return v, true
	}
	if r.SysctlsWritten == nil {
		for _, sc := range nodeSysctls {
			if sc.key == key {
				return sc.value, true
			}
		}
	}
	return "", false
}

func loadRecord(dir string) (*record, error) {
	data, err := os.ReadFile(recordPath(dir))
	if err != nil {
		return nil, err
	}
	r := newRecord(dir)
	r.SysctlsWritten = nil // stays nil for a record of an older infralab (writtenSysctl)
	if err := json.Unmarshal(data, r); err != nil {
		return nil, err
	}
	r.path = recordPath(dir)
	return r, nil
}

func (r *record) save() error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	tmp := r.path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, r.path)
}
