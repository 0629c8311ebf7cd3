package main

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/infralab/infralab/apps"
	clusterlayer "github.com/infralab/infralab/cluster"
	"github.com/infralab/infralab/infra"
	"github.com/infralab/infralab/stacks"
)

// The functions here translate the validated stack config into each layer's own args, so a layer
// never depends on the config format or on another layer.

func infraArgs(ctx *pulumi.Context, cfg *stacks.Config, secrets secretValues) *infra.NodesArgs {
	a := &infra.NodesArgs{
		Stack: ctx.Stack(),
		Proxmox: infra.ProxmoxArgs{
			Endpoint: cfg.Proxmox.Endpoint,
			APIToken: secrets[stacks.KeyProxmoxAPIToken],
			Insecure: cfg.Proxmox.Insecure != nil && *cfg.Proxmox.Insecure,
			CPUType:  cfg.Proxmox.CPUType,
			HostSSH: infra.HostSSHArgs{
				User:       cfg.Proxmox.HostSSHUser,
				PrivateKey: secrets[stacks.KeyProxmoxSSHPrivateKey],
			},
		},
		Image: infra.ImageArgs{
			URL:               cfg.Image.URL,
			Checksum:          cfg.Image.Checksum,
			ChecksumAlgorithm: cfg.Image.ChecksumAlgorithm,
			FileName:          cfg.Image.FileName,
		},
		Network: infra.NetworkArgs{
			CIDR:         cfg.Network.NodeCIDR,
			Gateway:      cfg.Network.Gateway,
			DNS:          cfg.Network.DNS,
			Bridge:       cfg.Network.Bridge,
			HostUplink:   cfg.Network.Uplink,
			SkipHostNAT:  cfg.Proxmox.SkipHostNAT,
			MTU:          cfg.Network.MTU,
			SearchDomain: cfg.Network.SearchDomain,
		},
		SSH: infra.GuestSSHArgs{User: cfg.SSH.User, PublicKey: cfg.SSH.PublicKey},
	}
	for _, n := range cfg.Proxmox.Nodes {
		a.Proxmox.Nodes = append(a.Proxmox.Nodes, infra.ProxmoxNode{
			Name: n.Name, Address: n.Address, Storage: n.Storage, ImageStorage: n.ImageStorage,
			BridgePorts: n.BridgePorts, SSHHostKey: n.SSHHostKey,
		})
	}
	addVMs := func(role string, r stacks.Role) {
		for _, vm := range r.Nodes {
			a.VMs = append(a.VMs, infra.VMArgs{
				Name: vm.Name, Role: role, VMID: vm.VMID, IP: vm.IP, ProxmoxNode: vm.ProxmoxNode,
				Cores: r.Cores, MemoryMiB: mebibytes(r.Memory), DiskGiB: gibibytes(r.Disk),
			})
		}
	}
	addVMs(infra.RoleControlPlane, cfg.Cluster.ControlPlane)
	addVMs(infra.RoleWorker, cfg.Cluster.Workers)
	return a
}

func kubeadmArgs(cfg *stacks.Config, secrets secretValues, nodes *infra.Nodes) *clusterlayer.KubeadmArgs {
	// Each VM instance's identity goes into every phase's triggers, so a replaced VM runs its
	// phases again and an updated one does not (infra.Node.InstanceID).
	instance := map[string]pulumi.StringInput{}
	for _, n := range nodes.Nodes {
		instance[n.Name] = n.InstanceID
	}
	cp := cfg.Cluster.ControlPlane.Nodes[0]
	a := &clusterlayer.KubeadmArgs{
		ClusterName:          "infralab",
		KubernetesVersion:    cfg.Kubernetes.Version,
		ControlPlane:         clusterlayer.Node{Name: cp.Name, IP: cp.IP, InstanceID: instance[cp.Name]},
		SSHUser:              cfg.SSH.User,
		SSHPrivateKey:        secrets[stacks.KeySSHPrivateKey],
		PodCIDR:              cfg.Network.PodCIDR,
		ServiceCIDR:          cfg.Network.ServiceCIDR,
		EncryptionKey:        secrets[stacks.KeyEncryptionKey],
		CalicoVersion:        cfg.Kubernetes.CalicoVersion,
		CalicoManifestSHA256: cfg.Kubernetes.CalicoManifestSHA256,
		CalicoCRDsSHA256:     cfg.Kubernetes.CalicoCRDsSHA256,
		// A mirror of the manifests; the Calico images follow ImageRepository.
		CalicoManifestBaseURL: cfg.Kubernetes.CalicoManifestBaseURL,
		ContainerdVersion:     cfg.Kubernetes.ContainerdVersion,
		ImageRepository:       cfg.Kubernetes.ImageRepository,
		ImageRepositoryCA:     cfg.Kubernetes.ImageRepositoryCA,
		PackageRepository:     packageRepository(cfg.Kubernetes.PackageRepository),
		PodPIDsLimit:          cfg.Kubernetes.PodPIDsLimit,
		AllowCgroupV1:         cfg.Kubernetes.AllowCgroupV1,
		CertRenewDays:         cfg.Kubernetes.CertRenewDays,
		// The VMs sit behind the host's NAT: SSH reaches them through the first Proxmox host, with
		// the forwarding-only jump login (or, without one, the provider's login), host key pinned.
		Bastion: bastion(cfg, secrets),
		// The VMs must exist (and their guest agents report in) before the first SSH attempt.
		DependsOn: []pulumi.Resource{nodes},
	}
	for _, w := range cfg.Cluster.Workers.Nodes {
		a.Workers = append(a.Workers, clusterlayer.Node{Name: w.Name, IP: w.IP, InstanceID: instance[w.Name]})
	}
	return a
}

func bastion(cfg *stacks.Config, secrets secretValues) *clusterlayer.Bastion {
	b := &clusterlayer.Bastion{
		Host:       cfg.Proxmox.Nodes[0].Address,
		User:       cfg.Proxmox.HostSSHUser,
		PrivateKey: secrets[stacks.KeyProxmoxSSHPrivateKey],
		HostKey:    cfg.Proxmox.Nodes[0].SSHHostKey,
	}
	if cfg.Proxmox.JumpUser != "" {
		b.User, b.PrivateKey = cfg.Proxmox.JumpUser, secrets[stacks.KeyProxmoxJumpPrivateKey]
	}
	return b
}

func appsArgs(cfg *stacks.Config, secrets secretValues) *apps.PlatformArgs {
	ac := cfg.Apps
	a := &apps.PlatformArgs{
		Namespaces: apps.Namespaces{API: ac.Namespaces.API, Database: ac.Namespaces.Database, Monitoring: ac.Namespaces.Monitoring,
			NodeExporter: ac.Namespaces.NodeExporterNamespace()},
		API: apps.APIArgs{
			Image: ac.API.Image, PullPolicy: ac.API.PullPolicy, Replicas: ac.API.Replicas, PoolSize: ac.API.DBPoolSize,
		},
		Postgres: apps.PostgresArgs{
			Image: ac.Postgres.Image, PullPolicy: ac.Postgres.PullPolicy,
			StorageClass: ac.Postgres.StorageClass, StorageSize: ac.Postgres.StorageSize,
		},
		Exporter: apps.ExporterArgs{Image: ac.Postgres.ExporterImage, PullPolicy: ac.Postgres.PullPolicy},
		Monitoring: apps.MonitoringArgs{
			Mode: ac.Monitoring.Mode, ChartVersion: ac.Monitoring.ChartVersion, Retention: ac.Monitoring.Retention,
			StorageClass: ac.Monitoring.StorageClass, StorageSize: ac.Monitoring.StorageSize,
			PrometheusImage:       ac.Monitoring.PrometheusImage,
			PrometheusPullPolicy:  ac.Monitoring.PullPolicy,
			NodeExporter:          ac.Monitoring.NodeExporter,
			NodeExporterImage:     ac.Monitoring.NodeExporterImage,
			KubeStateMetricsImage: ac.Monitoring.KubeStateMetricsImage,
			AlertmanagerImage:     ac.Monitoring.AlertmanagerImage,
			ComponentPullPolicy:   ac.Monitoring.PullPolicy,
			NodeAddresses:         ac.Monitoring.NodeAddresses,
			KubeAPICIDRs:          ac.Monitoring.KubeAPICIDRs,
			KubeAPIPort:           ac.Monitoring.KubeAPIPort,
			AlertWebhookURL:       ac.Monitoring.AlertWebhookURL,
			ScrapeInterval:        ac.Monitoring.ScrapeInterval,
			AlertFor:              ac.Monitoring.AlertFor,
		},
		Secrets: apps.Secrets{
			PostgresPassword:     secrets[stacks.KeyPostgresPassword],
			APIDatabasePassword:  secrets[stacks.KeyAPIDBPassword],
			ExporterPassword:     secrets[stacks.KeyExporterDBPassword],
			GrafanaAdminPassword: secrets[stacks.KeyGrafanaAdminPassword],
		},
		SkipAwait: ac.SkipAwait,
	}
	if lv := ac.Postgres.LocalVolume; lv != nil {
		a.Postgres.Local = &apps.LocalVolume{NodeName: lv.NodeName, Path: lv.Path}
	}
	for _, ns := range ac.API.AllowIngressFrom {
		a.API.AllowIngressFrom = append(a.API.AllowIngressFrom, apps.IngressSource{
			NamespaceLabels: map[string]string{"kubernetes.io/metadata.name": ns},
		})
	}
	if cfg.Mode == stacks.ModeLab && ac.Monitoring.Mode == apps.MonitoringChart {
		// Prometheus scrapes the kubelets and the operator talks to the API server: both live on
		// the node network, which default-deny egress would otherwise block.
		a.Monitoring.NodeCIDRs = []string{cfg.Network.NodeCIDR}
		a.Monitoring.KubeAPICIDRs = []string{cfg.Cluster.ControlPlane.Nodes[0].IP + "/32"}
	}
	if len(ac.PodSecurityExceptions) > 0 {
		a.PSAExceptions = map[string]apps.PSAException{}
		for _, e := range ac.PodSecurityExceptions {
			a.PSAExceptions[e.Namespace] = apps.PSAException{Level: e.Level, Reason: e.Reason}
		}
	}
	return a
}

// Sizes were validated by stacks.Load: binary units, whole MiB (memory) and whole GiB (disk), so
// these conversions are exact (docs/config.md, "VM sizes").
func mebibytes(q string) int { v := resource.MustParse(q); return int(v.Value() >> 20) }
func gibibytes(q string) int { v := resource.MustParse(q); return int(v.Value() >> 30) }

// packageRepository is kubernetes.packageRepository for the cluster layer; unset stays nil
// (upstream pkgs.k8s.io and download.docker.com).
func packageRepository(r *stacks.PackageRepository) *clusterlayer.PackageRepository {
	if r == nil {
		return nil
	}
	return &clusterlayer.PackageRepository{URL: r.URL, KeyFingerprint: r.KeyFingerprint}
}
