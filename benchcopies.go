package main

import (
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/infralab/infralab/apps"
	"github.com/infralab/infralab/stacks"
)

// declareBenchCopies declares copies 2..benchCopies of the apps layer for `make bench`'s large
// case (stack key infralab:benchCopies, local only, validated by stacks.Load): the same objects
// in namespaces suffixed -N, so a run measures ~N times the objects with no other change. The
// cluster-scoped Postgres StorageClass and volume stay with the first copy; the copies' claims
// use that class and stay Pending, which the local stack's skipAwait allows. node-exporter runs
// only in the first copy.
func declareBenchCopies(ctx *pulumi.Context, cfg *stacks.Config, secrets secretValues, k *cluster) error {
	for i := 2; i <= cfg.BenchCopies; i++ {
		a := appsArgs(cfg, secrets)
		suffix := fmt.Sprintf("-%d", i)
		ns := &a.Namespaces
		ns.API, ns.Database, ns.Monitoring, ns.NodeExporter = ns.API+suffix, ns.Database+suffix, ns.Monitoring+suffix, ns.NodeExporter+suffix
		a.Postgres.Local = nil
		// node-exporter binds the node's own address (hostNetwork): one per node, the first
		// copy's. Without it the copies need no Pod Security exception.
		a.Monitoring.NodeExporter, a.Monitoring.NodeExporterImage = false, ""
		a.PSAExceptions = nil
		if _, err := apps.NewPlatform(ctx, "apps"+suffix, a, pulumi.Provider(k.provider)); err != nil {
			return fmt.Errorf("benchCopies: copy %d: %w", i, err)
		}
	}
	return nil
}
