// Package cluster bootstraps Kubernetes on the lab VMs with kubeadm over SSH.
//
// NewKubeadm declares the component infralab:cluster:Kubeadm: an ordered list of small named
// phases (phases.go), each a pulumi-command remote.Command running an embedded, idempotent script
// (scripts/). The kubeadm configuration is rendered from Go structs (config.go) and carries the
// CIS hardening of package cluster/hardening. This layer takes its own typed KubeadmArgs and
// imports no other layer; main.go maps the stack config onto it.
package cluster
