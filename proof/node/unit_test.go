package node

import (
	"reflect"
	"strings"
	"testing"

	"github.com/infralab/infralab/cluster/hardening"
)

// The kubelet keeps the lab cluster's hardening (docs/node.md lists what differs and why).
func TestKubeletConfigKeepsLabHardening(t *testing.T) {
	n := &Node{dir: "/x", opts: Options{NodeName: DefaultNodeName, ControlPlane: ControlPlane{CACert: "/pki/ca.crt"}}}
	c := kubeletConfig(n)
	want := map[string]any{
		"readOnlyPort": 0, "seccompDefault": true, "protectKernelDefaults": true, "podPidsLimit": podPidsLimit,
		"eventRecordQPS": 5, "streamingConnectionIdleTimeout": "4h0m0s", "tlsMinVersion": "VersionTLS12",
		"authorization": map[string]any{"mode": "Webhook"},
		"authentication": map[string]any{
			"anonymous": map[string]any{"enabled": false},
			"webhook":   map[string]any{"enabled": true},
			"x509":      map[string]any{"clientCAFile": "/pki/ca.crt"},
		},
		"tlsCipherSuites": strings.Split(hardening.TLSCipherSuites(), ","),
		"address":         NodeIP,
	}
	for k, v := range want {
		if !reflect.DeepEqual(c[k], v) {
			t.Errorf("kubelet %s = %#v, want %#v", k, c[k], v)
		}
	}
}

func TestIptablesRuleParsing(t *testing.T) {
	line := `-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD`
	f := unquoteFields(line)
	if len(f) != 8 || f[5] != "kubernetes forwarding rules" || f[7] != "KUBE-FORWARD" {
		t.Fatalf("unquoteFields = %q", f)
	}
	if got := jumpTarget(f); got != "KUBE-FORWARD" {
		t.Errorf("jumpTarget = %q", got)
	}
	if got := jumpTarget(unquoteFields(`-A KUBE-SVC-X -g KUBE-SEP-Y`)); got != "KUBE-SEP-Y" {
		t.Errorf("jumpTarget of a goto = %q", got)
	}
	if got := jumpTarget(unquoteFields(`-A INPUT -p tcp --dport 22 -m comment --comment "-j X"`)); got != "" {
		t.Errorf("a comment is not a jump: %q", got)
	}
}

// Teardown removes only what did not exist before the node: added picks it.
func TestAddedKeepsWhatExistedBefore(t *testing.T) {
	before := []string{"iptables filter CNI-FORWARD", "iptables nat KUBE-KUBELET-CANARY"}
	now := []string{"iptables filter CNI-FORWARD", "iptables nat KUBE-KUBELET-CANARY", "iptables nat KUBE-SERVICES", "ip6tables nat KUBE-KUBELET-CANARY"}
	got := added(before, now)
	want := []string{"iptables nat KUBE-SERVICES", "ip6tables nat KUBE-KUBELET-CANARY"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("added = %q, want %q", got, want)
	}
	if got := added(before, before); len(got) != 0 {
		t.Errorf("nothing new, got %q", got)
	}
}

func TestEmptyNftTable(t *testing.T) {
	empty := "table ip filter {\n\tchain INPUT {\n\t\ttype filter hook input priority filter; policy accept;\n\t}\n}\n"
	if !emptyNftTable(empty) || !emptyNftTable("table ip mangle {\n}\n") {
		t.Error("a table with only accepting built-in chains is empty")
	}
	for name, listing := range map[string]string{
		"a rule":        "table ip filter {\n\tchain INPUT {\n\t\ttype filter hook input priority filter; policy accept;\n\t\tcounter packets 0 bytes 0 accept\n\t}\n}\n",
		"a drop policy": "table ip filter {\n\tchain INPUT {\n\t\ttype filter hook input priority filter; policy drop;\n\t}\n}\n",
		"a user chain":  "table ip filter {\n\tchain DOCKER {\n\t}\n}\n",
		"a set":         "table ip filter {\n\tset s {\n\t\ttype ipv4_addr\n\t}\n}\n",
	} {
		if emptyNftTable(listing) {
			t.Errorf("a table with %s is not empty", name)
		}
	}
}

func TestMissingDirs(t *testing.T) {
	d := t.TempDir()
	if got := missingDirs(d); len(got) != 0 {
		t.Errorf("missingDirs(existing) = %q", got)
	}
	want := []string{d + "/a", d + "/a/b"}
	if got := missingDirs(d + "/a/b"); !reflect.DeepEqual(got, want) {
		t.Errorf("missingDirs = %q, want %q (parents first)", got, want)
	}
}

func TestNetnsFromContainerdInfo(t *testing.T) {
	info := `{"pid": 12, "runtimeSpec": {}, "netNamespacePath": "/var/run/netns/cni-1234", "image": "x"}`
	if got := netnsFromInfo(info); got != "/var/run/netns/cni-1234" {
		t.Fatalf("netnsFromInfo = %q", got)
	}
	if got := netnsFromInfo(`{"pid": 12}`); got != "" {
		t.Fatalf("netnsFromInfo without a path = %q", got)
	}
}
