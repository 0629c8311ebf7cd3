package hardening

import (
	"encoding/base64"
	"go/build"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

const testKey = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=" // 32 bytes, test only

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, yaml.Unmarshal(b, &m))
	return m
}

func TestEncryptionConfigUsesKeyForSecretsThenIdentity(t *testing.T) {
	b, err := EncryptionConfig(testKey)
	require.NoError(t, err)
	m := decode(t, b)
	assert.Equal(t, "EncryptionConfiguration", m["kind"])
	res := m["resources"].([]any)[0].(map[string]any)
	assert.Equal(t, []any{"secrets"}, res["resources"])
	providers := res["providers"].([]any)
	require.Len(t, providers, 2)
	keys := providers[0].(map[string]any)["secretbox"].(map[string]any)["keys"].([]any)
	assert.Equal(t, testKey, keys[0].(map[string]any)["secret"])
	assert.Equal(t, EncryptionKeyName, keys[0].(map[string]any)["name"])
	assert.Contains(t, providers[1], "identity", "identity must come last so old plaintext Secrets stay readable")
}

func TestEncryptionKeyValidationNeverEchoesKey(t *testing.T) {
	short := base64.StdEncoding.EncodeToString([]byte("sixteen-byte-key"))
	for name, k := range map[string]string{"empty": "", "not base64": "%%%not-base64%%%", "16 bytes": short} {
		t.Run(name, func(t *testing.T) {
			_, err := EncryptionConfig(k)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "head -c 32 /dev/urandom | base64", "error must tell the user the fix")
			if k != "" {
				assert.NotContains(t, err.Error(), k)
			}
		})
	}
}

func TestAuditPolicyKeepsSecretBodiesOut(t *testing.T) {
	b, err := AuditPolicy()
	require.NoError(t, err)
	m := decode(t, b)
	assert.Equal(t, "audit.k8s.io/v1", m["apiVersion"])
	rules := m["rules"].([]any)
	// The first rule that names secrets must log Metadata only, and no earlier rule may log bodies.
	for _, r := range rules {
		rule := r.(map[string]any)
		if namesResource(rule, "secrets") {
			assert.Equal(t, "Metadata", rule["level"])
			return
		}
		assert.NotContains(t, []string{"Request", "RequestResponse"}, rule["level"], "a body-logging rule precedes the secrets rule")
	}
	t.Fatal("no rule covers secrets")
}

func TestAdmissionConfigRestrictedByDefaultKubeSystemExempt(t *testing.T) {
	b, err := AdmissionConfig()
	require.NoError(t, err)
	m := decode(t, b)
	p := m["plugins"].([]any)[0].(map[string]any)
	assert.Equal(t, "PodSecurity", p["name"])
	cfg := p["configuration"].(map[string]any)
	d := cfg["defaults"].(map[string]any)
	for _, mode := range []string{"enforce", "audit", "warn"} {
		assert.Equal(t, "restricted", d[mode], mode)
		assert.Equal(t, "latest", d[mode+"-version"], mode)
	}
	assert.Equal(t, []any{"kube-system"}, cfg["exemptions"].(map[string]any)["namespaces"])
}

func TestAuthenticationConfigAnonymousOnlyOnHealthAndClusterInfo(t *testing.T) {
	b, err := AuthenticationConfig()
	require.NoError(t, err)
	m := decode(t, b)
	anon := m["anonymous"].(map[string]any)
	assert.Equal(t, true, anon["enabled"])
	var paths []string
	for _, c := range anon["conditions"].([]any) {
		paths = append(paths, c.(map[string]any)["path"].(string))
	}
	assert.ElementsMatch(t, []string{"/livez", "/readyz", "/healthz", "/api/v1/namespaces/kube-public/configmaps/cluster-info"}, paths)
}

func TestAPIServerArgsPointAtFilesAndNeverSetAnonymousAuth(t *testing.T) {
	p := Paths{"/x/enc", "/x/audit", "/x/adm", "/x/authn", "/x/log"}
	got := map[string]string{}
	for _, a := range APIServerArgs(p) {
		_, dup := got[a.Name]
		require.False(t, dup, a.Name)
		got[a.Name] = a.Value
	}
	assert.Equal(t, "/x/enc", got["encryption-provider-config"])
	assert.Equal(t, "/x/audit", got["audit-policy-file"])
	assert.Equal(t, "/x/adm", got["admission-control-config-file"])
	assert.Equal(t, "/x/authn", got["authentication-config"])
	assert.Equal(t, "/x/log", got["audit-log-path"])
	assert.Equal(t, "Node,RBAC", got["authorization-mode"])
	assert.Equal(t, "false", got["profiling"])
	assert.Contains(t, got["enable-admission-plugins"], "NodeRestriction")
	assert.NotContains(t, got, "anonymous-auth", "kube-apiserver refuses --anonymous-auth with an anonymous authentication config")
}

func TestNodePathsLiveUnderMountedDirs(t *testing.T) {
	p := NodePaths()
	for _, f := range []string{p.EncryptionConfig, p.AuditPolicy, p.AdmissionConfig, p.AuthnConfig} {
		assert.True(t, strings.HasPrefix(f, ConfigDir+"/"), f)
	}
	assert.True(t, strings.HasPrefix(p.AuditLog, AuditLogDir+"/"))
}

// The control plane loads this package too; it must stay free of Pulumi and of other layers.
func TestImportsArePure(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	require.NoError(t, err)
	for _, imp := range pkg.Imports {
		assert.False(t, strings.Contains(imp, "pulumi") || strings.HasPrefix(imp, "github.com/infralab/"), "forbidden import %s", imp)
	}
}

func namesResource(rule map[string]any, name string) bool {
	rs, _ := rule["resources"].([]any)
	for _, gr := range rs {
		if gr.(map[string]any)["group"] != "" {
			continue
		}
		for _, r := range gr.(map[string]any)["resources"].([]any) {
			if r == name {
				return true
			}
		}
	}
	return false
}

// auditRequest is what the audit policy's rules match on.
type auditRequest struct {
	user, verb, group, resource string
	groups                      []string
	path                        string // a non-resource request when set
}

// auditLevel evaluates the policy as kube-apiserver does (k8s.io/apiserver
// pkg/audit/policy/checker.go: the first rule whose users, userGroups, verbs and resources all
// match decides; "resource/subresource" names a subresource).
func auditLevel(t *testing.T, r auditRequest) string {
	t.Helper()
	b, err := AuditPolicy()
	require.NoError(t, err)
	var p struct {
		Rules []struct {
			Level      string   `json:"level"`
			Users      []string `json:"users"`
			UserGroups []string `json:"userGroups"`
			Verbs      []string `json:"verbs"`
			Resources  []struct {
				Group     string   `json:"group"`
				Resources []string `json:"resources"`
			} `json:"resources"`
			NonResourceURLs []string `json:"nonResourceURLs"`
		} `json:"rules"`
	}
	require.NoError(t, yaml.Unmarshal(b, &p))
	in := func(list []string, v string) bool {
		for _, x := range list {
			if x == v {
				return true
			}
		}
		return false
	}
	for _, rule := range p.Rules {
		// A rule naming resources matches only resource requests, one naming URLs only
		// non-resource requests, one naming neither every request (checker.go ruleMatches).
		if r.path != "" {
			if len(rule.Resources) > 0 || (len(rule.Verbs) > 0 && !in(rule.Verbs, r.verb)) ||
				(len(rule.Users) > 0 && !in(rule.Users, r.user)) || len(rule.UserGroups) > 0 {
				continue
			}
			ok := len(rule.NonResourceURLs) == 0
			for _, u := range rule.NonResourceURLs {
				ok = ok || u == r.path || (strings.HasSuffix(u, "*") && strings.HasPrefix(r.path, strings.TrimSuffix(u, "*")))
			}
			if ok {
				return rule.Level
			}
			continue
		}
		if len(rule.NonResourceURLs) > 0 {
			continue
		}
		if len(rule.Users) > 0 && !in(rule.Users, r.user) {
			continue
		}
		if len(rule.UserGroups) > 0 {
			ok := false
			for _, g := range r.groups {
				ok = ok || in(rule.UserGroups, g)
			}
			if !ok {
				continue
			}
		}
		if len(rule.Verbs) > 0 && !in(rule.Verbs, r.verb) {
			continue
		}
		if len(rule.Resources) > 0 {
			ok := false
			for _, gr := range rule.Resources {
				ok = ok || (gr.Group == r.group && (len(gr.Resources) == 0 || in(gr.Resources, r.resource)))
			}
			if !ok {
				continue
			}
		}
		return rule.Level
	}
	return "None"
}

// Heartbeats are most of an idle cluster's writes: every kubelet renews its node Lease every
// 10 s, every leader-electing controller its Lease every few seconds, and kubelets patch their
// node and pod status. Logging each body at Request level filled the 10 x 100 MiB of retention in
// days instead of 30. Lease renewals by the components are not logged, status writes by the
// kubelets only as metadata; anyone else's writes keep their bodies.
func TestAuditPolicyDropsHeartbeatsButKeepsOtherWrites(t *testing.T) {
	kubelet := []string{"system:nodes", "system:authenticated"}
	operator := []string{"system:serviceaccounts", "system:serviceaccounts:tigera-operator", "system:authenticated"}
	admin := []string{"kubeadm:cluster-admins", "system:authenticated"}
	for name, c := range map[string]struct {
		r    auditRequest
		want string
	}{
		"kubelet renews its lease":          {auditRequest{"system:node:w1", "update", "coordination.k8s.io", "leases", kubelet, ""}, "None"},
		"API server identity lease":         {auditRequest{"system:apiserver", "update", "coordination.k8s.io", "leases", []string{"system:authenticated"}, ""}, "None"},
		"controller manager leader lease":   {auditRequest{"system:kube-controller-manager", "update", "coordination.k8s.io", "leases", nil, ""}, "None"},
		"scheduler reads its lease":         {auditRequest{"system:kube-scheduler", "get", "coordination.k8s.io", "leases", nil, ""}, "None"},
		"operator leader lease":             {auditRequest{"system:serviceaccount:tigera-operator:tigera-operator", "update", "coordination.k8s.io", "leases", operator, ""}, "None"},
		"admin rewrites a lease":            {auditRequest{"kubernetes-admin", "update", "coordination.k8s.io", "leases", admin, ""}, "Metadata"},
		"kubelet patches node status":       {auditRequest{"system:node:w1", "patch", "", "nodes/status", kubelet, ""}, "Metadata"},
		"kubelet patches pod status":        {auditRequest{"system:node:w1", "patch", "", "pods/status", kubelet, ""}, "Metadata"},
		"admin patches a node":              {auditRequest{"kubernetes-admin", "patch", "", "nodes", admin, ""}, "Request"},
		"admin patches node status":         {auditRequest{"kubernetes-admin", "patch", "", "nodes/status", admin, ""}, "Request"},
		"admin creates a deployment":        {auditRequest{"kubernetes-admin", "create", "apps", "deployments", admin, ""}, "Request"},
		"a controller reads discovery":      {auditRequest{user: "system:serviceaccount:kube-system:generic-garbage-collector", verb: "get", path: "/apis"}, "None"},
		"discovery of a group version":      {auditRequest{user: "system:serviceaccount:kube-system:resourcequota-controller", verb: "get", path: "/apis/apps/v1"}, "None"},
		"metrics are still logged":          {auditRequest{user: "prometheus", verb: "get", path: "/metrics"}, "Metadata"},
		"controller manager re-watches":     {auditRequest{"system:kube-controller-manager", "watch", "apps", "replicasets", nil, ""}, "None"},
		"kube-proxy watches services":       {auditRequest{"system:kube-proxy", "watch", "", "services", nil, ""}, "None"},
		"a kubelet watches its pods":        {auditRequest{"system:node:w1", "watch", "", "pods", kubelet, ""}, "Metadata"},
		"a service account watches secrets": {auditRequest{"system:serviceaccount:x:y", "watch", "", "secrets", operator, ""}, "Metadata"},
		"anyone writes a secret":            {auditRequest{"kubernetes-admin", "create", "", "secrets", admin, ""}, "Metadata"},
		"kubelet reads a secret (no body)":  {auditRequest{"system:node:w1", "get", "", "secrets", kubelet, ""}, "Metadata"},
	} {
		assert.Equal(t, c.want, auditLevel(t, c.r), name)
	}
}
