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
	if !jumpsToOurs(strings.Fields(line)) {
		t.Error("a jump to KUBE-FORWARD is ours")
	}
	if jumpsToOurs(strings.Fields(`-A FORWARD -j DOCKER-USER`)) {
		t.Error("a jump to DOCKER-USER is not ours")
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
