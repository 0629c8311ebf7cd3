package stacks

import (
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// remove deletes the field at a path instead of setting it.
type remove struct{}

// plaintext keeps a top-level secret's value but marks it as set without --secret.
type plaintext struct{}

// edit is one change to a valid stack: a path as the user writes it, and its new value.
type edit struct {
	path  string
	value any
}

// validLab is the shipped lab stack with every secret set and a fresh SSH key pair in place of the
// file's example public key.
func validLab(t *testing.T) mapSource {
	t.Helper()
	keys := newTestKeys(t)
	src := readStackFile(t, "lab").withAllSecrets(t, keys)
	src.apply(t, edit{"ssh.publicKey", keys.public})
	return src
}

func validLocal(t *testing.T) mapSource {
	t.Helper()
	return readStackFile(t, "local").withAllSecrets(t, newTestKeys(t))
}

var indexRE = regexp.MustCompile(`^(.*)\[(\d+)\]$`)

// apply changes the source as a user editing Pulumi.<stack>.yaml would.
func (m mapSource) apply(t *testing.T, edits ...edit) {
	t.Helper()
	for _, e := range edits {
		key, rest, nested := strings.Cut(e.path, ".")
		if !nested {
			switch v := e.value.(type) {
			case remove:
				delete(m.values, key)
				delete(m.secrets, key)
			case plaintext:
				m.secrets[key] = false
			case string:
				m.values[key] = v
			default:
				t.Fatalf("top-level key %s needs a string", key)
			}
			continue
		}
		var doc any
		if err := json.Unmarshal([]byte(m.values[key]), &doc); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		doc = setPath(t, doc, strings.Split(rest, "."), e.value)
		b, _ := json.Marshal(doc)
		m.values[key] = string(b)
	}
}

func setPath(t *testing.T, node any, parts []string, value any) any {
	t.Helper()
	if len(parts) == 0 {
		return value
	}
	field, idx := parts[0], -1
	if m := indexRE.FindStringSubmatch(field); m != nil {
		field = m[1]
		idx, _ = strconv.Atoi(m[2])
	}
	obj, ok := node.(map[string]any)
	if !ok {
		obj = map[string]any{}
	}
	if idx < 0 {
		if _, rm := value.(remove); rm && len(parts) == 1 {
			delete(obj, field)
			return obj
		}
		obj[field] = setPath(t, obj[field], parts[1:], value)
		return obj
	}
	list, _ := obj[field].([]any)
	if idx >= len(list) {
		t.Fatalf("%s[%d]: index out of range", field, idx)
	}
	if _, rm := value.(remove); rm && len(parts) == 1 {
		obj[field] = slices.Delete(list, idx, idx+1)
		return obj
	}
	list[idx] = setPath(t, list[idx], parts[1:], value)
	obj[field] = list
	return obj
}

func TestShippedStacksValidate(t *testing.T) {
	for name, src := range map[string]mapSource{"lab": validLab(t), "local": validLocal(t)} {
		t.Run(name, func(t *testing.T) {
			cfg, err := Load(src)
			if err != nil {
				t.Fatalf("shipped stack %s does not validate:\n%v", name, err)
			}
			if string(cfg.Mode) != name {
				t.Fatalf("mode = %q", cfg.Mode)
			}
		})
	}
}

func TestShippedLabMirrorsReferenceHomelab(t *testing.T) {
	cfg, err := Load(validLab(t))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(cfg.Proxmox.Nodes); n != 1 {
		t.Errorf("proxmox nodes = %d, want 1", n)
	}
	if n := len(cfg.Cluster.ControlPlane.Nodes); n != 1 {
		t.Errorf("control planes = %d, want 1", n)
	}
	if n := len(cfg.Cluster.Workers.Nodes); n != 2 {
		t.Errorf("workers = %d, want 2", n)
	}
	if cfg.Apps.Monitoring.Mode != "chart" || cfg.Apps.Postgres.LocalVolume == nil {
		t.Errorf("lab must run kube-prometheus-stack and PostgreSQL on local storage, got %+v", cfg.Apps)
	}
}

func TestInvalidConfigs(t *testing.T) {
	lab := func(t *testing.T) mapSource { return validLab(t) }
	local := func(t *testing.T) mapSource { return validLocal(t) }
	cases := []struct {
		name  string
		base  func(*testing.T) mapSource
		edits []edit
		want  []string // exact set of failing paths
	}{
		{"mode missing", lab, []edit{{"mode", remove{}}}, []string{"mode"}},
		{"mode unknown", lab, []edit{{"mode", "prod"}}, []string{"mode"}},
		{"endpoint http", lab, []edit{{"proxmox.endpoint", "http://pve:8006/"}}, []string{"proxmox.endpoint"}},
		{"endpoint missing", lab, []edit{{"proxmox.endpoint", ""}}, []string{"proxmox.endpoint"}},
		{"token missing", lab, []edit{{KeyProxmoxAPIToken, remove{}}}, []string{KeyProxmoxAPIToken}},
		{"token bad shape", lab, []edit{{KeyProxmoxAPIToken, "root:password"}}, []string{KeyProxmoxAPIToken}},
		{"proxmox nodes empty", lab, []edit{{"proxmox.nodes", []any{}}}, []string{"proxmox.nodes"}},
		{"proxmox node name", lab, []edit{{"proxmox.nodes[0].name", "PVE_1"}}, []string{"proxmox.nodes[0].name"}},
		{"proxmox cpu type", lab, []edit{{"proxmox.cpuType", "Skylake"}}, []string{"proxmox.cpuType"}},
		{"proxmox storage", lab, []edit{{"proxmox.nodes[0].storage", ""}}, []string{"proxmox.nodes[0].storage"}},
		{"proxmox image storage", lab, []edit{{"proxmox.nodes[0].imageStorage", ""}}, []string{"proxmox.nodes[0].imageStorage"}},
		{"host address missing", lab, []edit{{"proxmox.nodes[0].address", remove{}}}, []string{"proxmox.nodes[0].address"}},
		{"host ssh user missing", lab, []edit{{"proxmox.hostSshUser", ""}}, []string{"proxmox.hostSshUser"}},
		{"host ssh key missing", lab, []edit{{KeyProxmoxSSHPrivateKey, remove{}}}, []string{KeyProxmoxSSHPrivateKey}},
		{"host key missing", lab, []edit{{"proxmox.nodes[0].sshHostKey", remove{}}}, []string{"proxmox.nodes[0].sshHostKey"}},
		{"host key garbage", lab, []edit{{"proxmox.nodes[0].sshHostKey", "ssh-ed25519 notakey"}}, []string{"proxmox.nodes[0].sshHostKey"}},
		{"host key rsa", lab, []edit{{"proxmox.nodes[0].sshHostKey", testRSAHostKey}}, []string{"proxmox.nodes[0].sshHostKey"}},
		{"host key is a private key", lab, []edit{{"proxmox.nodes[0].sshHostKey", "-----BEGIN OPENSSH PRIVATE KEY-----"}}, []string{"proxmox.nodes[0].sshHostKey"}},
		{"jump user without key", lab, []edit{{KeyProxmoxJumpPrivateKey, remove{}}}, []string{KeyProxmoxJumpPrivateKey}},
		{"jump key without user", lab, []edit{{"proxmox.jumpUser", remove{}}}, []string{"proxmox.jumpUser"}},
		{"jump user root", lab, []edit{{"proxmox.jumpUser", "root"}}, []string{"proxmox.jumpUser"}},
		{"jump user is the host user", lab, []edit{{"proxmox.jumpUser", "infralab"}}, []string{"proxmox.jumpUser"}},
		{"jump key garbage", lab, []edit{{KeyProxmoxJumpPrivateKey, "-----BEGIN NOTHING-----"}}, []string{KeyProxmoxJumpPrivateKey}},
		{"jump key plaintext", lab, []edit{{KeyProxmoxJumpPrivateKey, plaintext{}}}, []string{KeyProxmoxJumpPrivateKey}},
		{"unknown field", lab, []edit{{"proxmox.insecur", true}}, []string{"proxmox"}},
		{"wrong type", lab, []edit{{"cluster.workers.cores", "two"}}, []string{"cluster.workers.cores"}},
		{"bridge missing", lab, []edit{{"network.bridge", ""}}, []string{"network.bridge"}},
		{"node cidr invalid", lab, []edit{{"network.nodeCidr", "10.10.10.0/33"}}, []string{"network.nodeCidr"}},
		{"node cidr host bits", lab, []edit{{"network.nodeCidr", "10.10.10.5/24"}}, []string{"network.nodeCidr"}},
		{"pod cidr overlaps nodes", lab, []edit{{"network.podCidr", "10.10.0.0/16"}}, []string{"network.podCidr"}},
		{"service cidr overlaps pods", lab, []edit{{"network.serviceCidr", "192.168.128.0/20"}}, []string{"network.serviceCidr"}},
		{"gateway outside", lab, []edit{{"network.gateway", "10.10.11.1"}}, []string{"network.gateway"}},
		{"mtu too small", lab, []edit{{"network.mtu", 500}}, []string{"network.mtu"}},
		{"dns bad", lab, []edit{{"network.dns[1]", "dns.google"}}, []string{"network.dns[1]"}},
		{"image http", lab, []edit{{"image.url", "http://example.com/x.qcow2"}}, []string{"image.url"}},
		{"image checksum short", lab, []edit{{"image.checksum", "abc123"}}, []string{"image.checksum"}},
		{"image algorithm", lab, []edit{{"image.checksumAlgorithm", "md5"}}, []string{"image.checksumAlgorithm"}},
		{"k8s version wildcard", lab, []edit{{"kubernetes.version", "1.35.x"}}, []string{"kubernetes.version"}},
		{"k8s version too old", lab, []edit{{"kubernetes.version", "1.28.2"}}, []string{"kubernetes.version"}},
		{"k8s version 1.33", lab, []edit{{"kubernetes.version", "1.33.5"}}, []string{"kubernetes.version"}},
		{"k8s version with v", lab, []edit{{"kubernetes.version", "v1.35.4"}}, []string{"kubernetes.version"}},
		{"calico version", lab, []edit{{"kubernetes.calicoVersion", "latest"}}, []string{"kubernetes.calicoVersion"}},
		{"pod pids limit", lab, []edit{{"kubernetes.podPidsLimit", 64}}, []string{"kubernetes.podPidsLimit"}},
		{"cert renew days", lab, []edit{{"kubernetes.certRenewDays", 400}}, []string{"kubernetes.certRenewDays"}},
		{"calico checksum", lab, []edit{{"kubernetes.calicoManifestSha256", "abc"}}, []string{"kubernetes.calicoManifestSha256"}},
		{"calico crds checksum", lab, []edit{{"kubernetes.calicoCrdsSha256", "abc"}}, []string{"kubernetes.calicoCrdsSha256"}},
		{"calico manifest base without a scheme", lab, []edit{{"kubernetes.calicoManifestBaseUrl", "10.77.0.1:8080/calico"}}, []string{"kubernetes.calicoManifestBaseUrl"}},
		{"calico manifest base with a trailing slash", lab, []edit{{"kubernetes.calicoManifestBaseUrl", "http://10.77.0.1:8080/calico/"}}, []string{"kubernetes.calicoManifestBaseUrl"}},
		{"calico manifest base with credentials", lab, []edit{{"kubernetes.calicoManifestBaseUrl", "https://u:p@mirror.example/calico"}}, []string{"kubernetes.calicoManifestBaseUrl"}},
		{"containerd version wildcard", lab, []edit{{"kubernetes.containerdVersion", "2.3"}}, []string{"kubernetes.containerdVersion"}},
		{"containerd 1.x", lab, []edit{{"kubernetes.containerdVersion", "1.7.28"}}, []string{"kubernetes.containerdVersion"}},
		{"image repository with a scheme", lab, []edit{{"kubernetes.imageRepository", "https://10.77.0.1:5000/k8s"}}, []string{"kubernetes.imageRepository"}},
		{"image repository without a path", lab, []edit{{"kubernetes.imageRepository", "10.77.0.1:5000"}}, []string{"kubernetes.imageRepository"}},
		{"image repository CA alone", lab, []edit{{"kubernetes.imageRepositoryCa", "-----BEGIN CERTIFICATE-----"}}, []string{"kubernetes.imageRepositoryCa"}},
		{"image repository CA not PEM", lab, []edit{{"kubernetes.imageRepository", "10.77.0.1:5000/k8s"}, {"kubernetes.imageRepositoryCa", "not a certificate"}}, []string{"kubernetes.imageRepositoryCa"}},
		{"ssh user root", lab, []edit{{"ssh.user", "root"}}, []string{"ssh.user"}},
		{"ssh public key garbage", lab, []edit{{"ssh.publicKey", "ssh-rsa notakey"}}, []string{"ssh.publicKey"}},
		{"ssh private key missing", lab, []edit{{KeySSHPrivateKey, remove{}}}, []string{KeySSHPrivateKey}},
		{"ssh private key garbage", lab, []edit{{KeySSHPrivateKey, "-----BEGIN NOTHING-----"}}, []string{KeySSHPrivateKey}},
		{"ssh keys do not match", lab, []edit{{"ssh.publicKey", newTestKeys(t).public}}, []string{KeySSHPrivateKey}},
		{"encryption key short", lab, []edit{{KeyEncryptionKey, "c2hvcnQ="}}, []string{KeyEncryptionKey}},
		{"cp cores", lab, []edit{{"cluster.controlPlane.cores", 1}}, []string{"cluster.controlPlane.cores"}},
		{"cp memory unparsable", lab, []edit{{"cluster.controlPlane.memory", "4 gigs"}}, []string{"cluster.controlPlane.memory"}},
		{"worker memory too small", lab, []edit{{"cluster.workers.memory", "512Mi"}}, []string{"cluster.workers.memory"}},
		{"worker disk unparsable", lab, []edit{{"cluster.workers.disk", "lots"}}, []string{"cluster.workers.disk"}},
		{"cp memory decimal unit", lab, []edit{{"cluster.controlPlane.memory", "4G"}}, []string{"cluster.controlPlane.memory"}},
		{"worker disk decimal unit", lab, []edit{{"cluster.workers.disk", "50G"}}, []string{"cluster.workers.disk"}},
		{"worker disk not whole GiB", lab, []edit{{"cluster.workers.disk", "40.5Gi"}}, []string{"cluster.workers.disk"}},
		{"worker memory in bytes", lab, []edit{{"cluster.workers.memory", "4294967296"}}, []string{"cluster.workers.memory"}},
		{"two control planes", lab, []edit{{"cluster.controlPlane.nodes", []any{
			map[string]any{"name": "cp-a", "vmId": 300, "ip": "10.10.10.30"},
			map[string]any{"name": "cp-b", "vmId": 301, "ip": "10.10.10.31"},
		}}}, []string{"cluster.controlPlane.nodes"}},
		{"no workers", lab, []edit{{"cluster.workers.nodes", []any{}}, {"apps.postgres.localVolume", remove{}}}, []string{"cluster.workers.nodes"}},
		{"name not dns", lab, []edit{{"cluster.workers.nodes[0].name", "Worker_1"}, {"apps.postgres.localVolume.nodeName", "k8s-worker-2"}}, []string{"cluster.workers.nodes[0].name"}},
		{"name duplicate", lab, []edit{{"cluster.workers.nodes[1].name", "k8s-worker-1"}}, []string{"cluster.workers.nodes[1].name"}},
		{"vmid duplicate", lab, []edit{{"cluster.workers.nodes[1].vmId", 200}}, []string{"cluster.workers.nodes[1].vmId"}},
		{"vmid range", lab, []edit{{"cluster.workers.nodes[0].vmId", 99}}, []string{"cluster.workers.nodes[0].vmId"}},
		{"ip outside cidr", lab, []edit{{"cluster.workers.nodes[1].ip", "10.10.20.12"}}, []string{"cluster.workers.nodes[1].ip"}},
		{"ip duplicate", lab, []edit{{"cluster.workers.nodes[1].ip", "10.10.10.10"}}, []string{"cluster.workers.nodes[1].ip"}},
		{"ip is gateway", lab, []edit{{"cluster.workers.nodes[0].ip", "10.10.10.1"}}, []string{"cluster.workers.nodes[0].ip"}},
		{"ip is network", lab, []edit{{"cluster.workers.nodes[0].ip", "10.10.10.0"}}, []string{"cluster.workers.nodes[0].ip"}},
		{"ip is broadcast", lab, []edit{{"cluster.workers.nodes[0].ip", "10.10.10.255"}}, []string{"cluster.workers.nodes[0].ip"}},
		{"ip not ipv4", lab, []edit{{"cluster.controlPlane.nodes[0].ip", "fd00::10"}}, []string{"cluster.controlPlane.nodes[0].ip"}},
		{"placement unknown", lab, []edit{{"cluster.workers.nodes[0].proxmoxNode", "pve9"}}, []string{"cluster.workers.nodes[0].proxmoxNode"}},
		{"api image latest", lab, []edit{{"apps.api.image", "ghcr.io/infralab/healthcare-api:latest"}}, []string{"apps.api.image"}},
		{"api image no tag", lab, []edit{{"apps.api.image", "registry:5000/healthcare-api"}}, []string{"apps.api.image"}},
		{"exporter image missing", lab, []edit{{"apps.postgres.exporterImage", ""}}, []string{"apps.postgres.exporterImage"}},
		{"api replicas zero", lab, []edit{{"apps.api.replicas", 0}}, []string{"apps.api.replicas"}},
		{"pool size zero", lab, []edit{{"apps.api.dbPoolSize", 0}}, []string{"apps.api.dbPoolSize"}},
		{"pull policy", lab, []edit{{"apps.api.pullPolicy", "Sometimes"}}, []string{"apps.api.pullPolicy"}},
		{"ingress namespace", lab, []edit{{"apps.api.allowIngressFrom[0]", "Ingress NGINX"}}, []string{"apps.api.allowIngressFrom[0]"}},
		{"namespace system", lab, []edit{{"apps.namespaces.database", "kube-system"}}, []string{"apps.namespaces.database"}},
		{"namespace duplicate", lab, []edit{{"apps.namespaces.monitoring", "healthcare"}}, []string{"apps.namespaces.monitoring"}},
		{"storage size", lab, []edit{{"apps.postgres.storageSize", "ten gigs"}}, []string{"apps.postgres.storageSize"}},
		{"local volume not a worker", lab, []edit{{"apps.postgres.localVolume.nodeName", "k8s-cp-1"}}, []string{"apps.postgres.localVolume.nodeName"}},
		{"local volume relative path", lab, []edit{{"apps.postgres.localVolume.path", "data/pg"}}, []string{"apps.postgres.localVolume.path"}},
		{"monitoring mode", lab, []edit{{"apps.monitoring.mode", "full"}}, []string{"apps.monitoring.mode"}},
		{"chart version range", lab, []edit{{"apps.monitoring.chartVersion", "^80"}}, []string{"apps.monitoring.chartVersion"}},
		{"monitoring size without class", lab, []edit{{"apps.monitoring.storageSize", "20Gi"}}, []string{"apps.monitoring.storageSize"}},
		{"standalone storage class", local, []edit{{"apps.monitoring.storageClass", "longhorn"}, {"apps.monitoring.storageSize", "20Gi"}}, []string{"apps.monitoring.storageClass"}},
		{"bench copies not a number", local, []edit{{"benchCopies", "ten"}}, []string{"benchCopies"}},
		{"bench copies too many", local, []edit{{"benchCopies", "500"}}, []string{"benchCopies"}},
		{"bench copies negative", local, []edit{{"benchCopies", "-1"}}, []string{"benchCopies"}},
		{"bench copies on lab", lab, []edit{{"benchCopies", "10"}}, []string{"benchCopies"}},
		{"monitoring pull policy", local, []edit{{"apps.monitoring.pullPolicy", "Sometimes"}}, []string{"apps.monitoring.pullPolicy"}},
		{"retention", lab, []edit{{"apps.monitoring.retention", "two weeks"}}, []string{"apps.monitoring.retention"}},
		{"grafana secret plaintext", lab, []edit{{KeyGrafanaAdminPassword, "admin"}}, []string{KeyGrafanaAdminPassword}},
		{"psa exception without reason", lab, []edit{{"apps.podSecurityExceptions", []any{
			map[string]any{"namespace": "monitoring-node", "level": "privileged", "reason": " "},
		}}}, []string{"apps.podSecurityExceptions[0].reason"}},
		{"node exporter without psa exception", lab, []edit{{"apps.podSecurityExceptions", remove{}}}, []string{"apps.monitoring.nodeExporter"}},
		{"node exporter standalone without psa exception", local, []edit{{"apps.podSecurityExceptions", remove{}}}, []string{"apps.monitoring.nodeExporter"}},
		{"node exporter standalone without image", local, []edit{{"apps.monitoring.nodeExporterImage", remove{}}}, []string{"apps.monitoring.nodeExporterImage"}},
		{"node address not an ip", local, []edit{{"apps.monitoring.nodeAddresses[0]", "infralab-node"}}, []string{"apps.monitoring.nodeAddresses[0]"}},
		{"kube-state-metrics without api cidrs", local, []edit{{"apps.monitoring.kubeAPICIDRs", remove{}}}, []string{"apps.monitoring.kubeAPICIDRs"}},
		{"alert webhook with a dns host", local, []edit{{"apps.monitoring.alertWebhookURL", "http://hooks.example.com/alerts"}}, []string{"apps.monitoring.alertWebhookURL"}},
		{"alertmanager without webhook", local, []edit{{"apps.monitoring.alertWebhookURL", remove{}}}, []string{"apps.monitoring.alertWebhookURL"}},
		{"token plaintext", lab, []edit{{KeyProxmoxAPIToken, plaintext{}}}, []string{KeyProxmoxAPIToken}},
		{"ssh private key plaintext", lab, []edit{{KeySSHPrivateKey, plaintext{}}}, []string{KeySSHPrivateKey}},
		{"host ssh key plaintext", lab, []edit{{KeyProxmoxSSHPrivateKey, plaintext{}}}, []string{KeyProxmoxSSHPrivateKey}},
		{"encryption key plaintext", lab, []edit{{KeyEncryptionKey, plaintext{}}}, []string{KeyEncryptionKey}},
		{"endpoint without host", lab, []edit{{"proxmox.endpoint", "https://:8006/"}}, []string{"proxmox.endpoint"}},
		{"host ssh user with host", lab, []edit{{"proxmox.hostSshUser", "root@pve"}}, []string{"proxmox.hostSshUser"}},
		{"proxmox storage id", lab, []edit{{"proxmox.nodes[0].storage", "local lvm"}}, []string{"proxmox.nodes[0].storage"}},
		{"host address is a url", lab, []edit{{"proxmox.nodes[0].address", "https://pve.example.com:8006"}}, []string{"proxmox.nodes[0].address"}},
		{"bridge port name", lab, []edit{{"proxmox.nodes[0].bridgePorts", []any{"vlan 4000"}}}, []string{"proxmox.nodes[0].bridgePorts[0]"}},
		{"vms spread without bridge ports", lab, []edit{{"proxmox.nodes", []any{
			map[string]any{"name": "pve1", "address": "pve.example.com", "storage": "local-lvm", "imageStorage": "local", "sshHostKey": testHostKey},
			map[string]any{"name": "pve2", "address": "pve2.example.com", "storage": "local-lvm", "imageStorage": "local", "sshHostKey": testHostKey},
		}}},
			[]string{"proxmox.nodes[0].bridgePorts", "proxmox.nodes[1].bridgePorts"}},
		{"bridge name too long", lab, []edit{{"network.bridge", "vmbr-private"}}, []string{"network.bridge"}},
		{"uplink missing", lab, []edit{{"network.uplink", remove{}}}, []string{"network.uplink"}},
		{"uplink is the bridge", lab, []edit{{"network.uplink", "vmbr1"}}, []string{"network.uplink"}},
		{"node cidr too small", lab, []edit{{"network.nodeCidr", "10.10.10.0/30"}, {"network.gateway", "10.10.10.1"},
			{"cluster.controlPlane.nodes[0].ip", "10.10.10.2"}, {"cluster.workers.nodes", []any{map[string]any{"name": "k8s-worker-1", "vmId": 201, "ip": "10.10.10.3"}}}},
			[]string{"network.nodeCidr", "cluster.workers.nodes[0].ip"}},
		{"gateway is network address", lab, []edit{{"network.gateway", "10.10.10.0"}}, []string{"network.gateway"}},
		{"search domain", lab, []edit{{"network.searchDomain", "Lab_Internal"}}, []string{"network.searchDomain"}},
		{"image url without host", lab, []edit{{"image.url", "https:///debian.qcow2"}}, []string{"image.url"}},
		{"image .img without file name", lab, []edit{{"image.url", "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img"}}, []string{"image.url"}},
		{"image file name extension", lab, []edit{{"image.fileName", "noble.img"}}, []string{"image.fileName"}},
		{"ssh user starts with digit", lab, []edit{{"ssh.user", "1admin"}}, []string{"ssh.user"}},
		{"api image malformed digest", lab, []edit{{"apps.api.image", "ghcr.io/infralab/healthcare-api@sha256:abc"}}, []string{"apps.api.image"}},
		{"local kubeconfig missing", local, []edit{{"kubeconfig", remove{}}}, []string{"kubeconfig"}},
		{"local standalone image latest", local, []edit{{"apps.monitoring.prometheusImage", "prom/prometheus:latest"}}, []string{"apps.monitoring.prometheusImage"}},
		{"local postgres password missing", local, []edit{{KeyPostgresPassword, remove{}}}, []string{KeyPostgresPassword}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := tc.base(t)
			src.apply(t, tc.edits...)
			// A plaintext value set by an edit is not a secret unless the edit came from --secret.
			for _, e := range tc.edits {
				if e.path == KeyGrafanaAdminPassword {
					src.secrets[e.path] = false
				}
			}
			cfg, err := Load(src)
			if err == nil {
				t.Fatalf("config validated, want errors at %v (cfg %+v)", tc.want, cfg)
			}
			var list Errors
			if !errors.As(err, &list) {
				t.Fatalf("error is %T, want Errors", err)
			}
			got := list.Paths()
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("paths = %v, want %v\n%v", got, want, err)
			}
			for _, e := range list {
				if e.Hint == "" {
					t.Errorf("%s has no hint", e.Path)
				}
			}
		})
	}
	if len(cases) < 30 {
		t.Fatalf("only %d invalid configs", len(cases))
	}
}

// VM sizes are what Proxmox gets: memory in MiB, disk in GiB. A decimal unit (50G = 50*10^9
// bytes = 46.6 GiB) used to be truncated without a word; now it is refused with the binary spelling
// to use, and a size that is not a whole unit is refused instead of being rounded down.
func TestVMSizesAreBinaryAndWhole(t *testing.T) {
	for _, tc := range []struct {
		path, value, want string
	}{
		{"cluster.workers.disk", "50G", `cluster.workers.disk: "50G" is a decimal size (50G = 50000000000 bytes = 46.6Gi) (fix: VM sizes take binary units: write 50Gi, or 46Gi for what 50G truncated to before)`},
		{"cluster.controlPlane.memory", "4G", `cluster.controlPlane.memory: "4G" is a decimal size (4G = 4000000000 bytes = 3814.7Mi) (fix: VM sizes take binary units: write 4Gi, or 3814Mi for what 4G truncated to before)`},
		{"cluster.workers.disk", "40.5Gi", `cluster.workers.disk: 40.5Gi is not a whole number of Gi (fix: Proxmox sizes VM disks in whole Gi: write 40Gi or 41Gi)`},
		{"cluster.workers.memory", "2049.5Mi", `cluster.workers.memory: 2049.5Mi is not a whole number of Mi (fix: Proxmox sizes VM memory in whole Mi: write 2049Mi or 2050Mi)`},
	} {
		src := validLab(t)
		src.apply(t, edit{tc.path, tc.value})
		_, err := Load(src)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %s: want %q in\n%v", tc.path, tc.value, tc.want, err)
		}
	}
	// Binary sizes that are whole units stay valid, fractions of a larger unit included.
	src := validLab(t)
	src.apply(t, edit{"cluster.workers.memory", "2.5Gi"}, edit{"cluster.workers.disk", "1Ti"}, edit{"cluster.controlPlane.memory", "6144Mi"})
	if _, err := Load(src); err != nil {
		t.Fatalf("binary sizes refused:\n%v", err)
	}
}

// Every problem is reported in one run, not one per `pulumi up`.
func TestAllErrorsReportedTogether(t *testing.T) {
	src := validLab(t)
	src.apply(t,
		edit{"proxmox.endpoint", "http://pve"},
		edit{"cluster.workers.nodes[1].ip", "10.10.20.12"},
		edit{"apps.api.image", "api:latest"},
		edit{"kubernetes.version", "1.28"},
	)
	_, err := Load(src)
	var list Errors
	if !errors.As(err, &list) || len(list) != 4 {
		t.Fatalf("want 4 errors, got %v", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"cluster.workers.nodes[1].ip: 10.10.20.12 is not inside network.nodeCidr 10.10.10.0/24",
		"nothing was declared",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
}

// Secrets are checked for shape, but their values never appear in an error.
func TestSecretValuesNeverInErrors(t *testing.T) {
	src := validLab(t)
	const token = "root@pam:hunter2-not-a-token"
	const key = "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END OPENSSH PRIVATE KEY-----"
	src.setSecret(KeyProxmoxAPIToken, token)
	src.setSecret(KeySSHPrivateKey, key)
	src.setSecret(KeyEncryptionKey, "dG9vLXNob3J0")
	_, err := Load(src)
	if err == nil {
		t.Fatal("want errors")
	}
	for _, secret := range []string{"hunter2", "c2VjcmV0LWtleS1tYXRlcmlhbA", "dG9vLXNob3J0"} {
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error leaks a secret value:\n%v", err)
		}
	}
}

// Variants a user is told they may use must validate: an Ubuntu image named for Proxmox's
// import storage, and VMs spread over two hosts joined at layer 2.
func TestValidVariants(t *testing.T) {
	for name, edits := range map[string][]edit{
		"ubuntu 24.04 image": {
			{"image.url", "https://cloud-images.ubuntu.com/noble/20251120/noble-server-cloudimg-amd64.img"},
			{"image.fileName", "noble-server-cloudimg-amd64.qcow2"},
			{"image.checksumAlgorithm", "sha256"},
			{"image.checksum", strings.Repeat("ab", 32)},
		},
		"two proxmox hosts on a vswitch": {
			{"proxmox.nodes", []any{
				map[string]any{"name": "pve1", "address": "pve1.example.com", "storage": "local-lvm", "imageStorage": "local", "bridgePorts": []any{"enp0s31f6.4000"}, "sshHostKey": testHostKey},
				map[string]any{"name": "pve2", "address": "pve2.example.com", "storage": "local-lvm", "imageStorage": "local", "bridgePorts": []any{"enp0s31f6.4000"}, "sshHostKey": testHostKey},
			}},
			{"network.mtu", 1400},
		},
		// Proxmox allows upper case in node names; Hetzner's installimage default host names have it.
		"hetzner default node name": {
			{"proxmox.nodes[0].name", "Debian-bookworm-latest-amd64-base"},
		},
		"cpu type for one CPU generation": {
			{"proxmox.cpuType", "x86-64-v3"},
		},
		"calico and containerd pinned explicitly": {
			{"kubernetes.calicoManifestSha256", strings.Repeat("ab", 32)},
			{"kubernetes.calicoCrdsSha256", strings.Repeat("cd", 32)},
			{"kubernetes.containerdVersion", "2.3.3"},
		},
		"calico manifests and images from the box": {
			{"kubernetes.calicoManifestBaseUrl", "http://10.77.0.1:8080/calico"},
			{"kubernetes.imageRepository", "10.77.0.1:5000/k8s"},
		},
		"image pinned by digest": {
			{"apps.api.image", "ghcr.io/infralab/healthcare-api@sha256:" + strings.Repeat("0f", 32)},
		},
	} {
		t.Run(name, func(t *testing.T) {
			src := validLab(t)
			src.apply(t, edits...)
			if _, err := Load(src); err != nil {
				t.Fatalf("want valid, got:\n%v", err)
			}
		})
	}
}
