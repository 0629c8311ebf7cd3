// Command infralab is the Pulumi program: it reads the stack's configuration and wires the layers.
//
//	config ─► infra (Proxmox VMs) ─► cluster (kubeadm) ─► Kubernetes provider ─► apps
//
// Stack mode "local" skips infra and cluster and builds the provider from a kubeconfig file. The
// layers never import each other; this file and wiring.go are the only place they meet.
package main

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/infralab/infralab/apps"
	"github.com/infralab/infralab/stacks"
)

func main() { pulumi.Run(run) }

func run(ctx *pulumi.Context) error {
	cfg, err := stacks.Load(stacks.FromContext(ctx))
	if err != nil {
		return err // every problem, with field paths; nothing has been declared
	}
	secrets, err := readSecrets(ctx, cfg)
	if err != nil {
		return err
	}

	var kube *cluster
	if cfg.Mode == stacks.ModeLab {
		kube, err = buildLab(ctx, cfg, secrets)
	} else {
		kube, err = useKubeconfig(ctx, cfg)
	}
	if err != nil {
		return err
	}

	platform, err := apps.NewPlatform(ctx, "apps", appsArgs(cfg, secrets), pulumi.Provider(kube.provider))
	if err != nil {
		return err
	}
	if err := declareBenchCopies(ctx, cfg, secrets, kube); err != nil {
		return err
	}
	exportOutputs(ctx, cfg, kube, platform)
	return nil
}
