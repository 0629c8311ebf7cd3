// Package infra declares the Proxmox VE virtual machines a cluster runs on.
//
// One ComponentResource, infralab:infra:Nodes, holds everything: an explicit proxmoxve provider,
// the cloud image downloaded onto every Proxmox node (checksum verified by Proxmox), the private
// bridge the VMs sit on, the host's NAT for that bridge (a Hetzner host drops frames from unknown
// MACs, so VMs cannot sit on the public bridge), a cloud-init user-data snippet per VM and the VMs.
//
// The package depends on no other infralab layer: main.go maps the validated stack config onto
// NodesArgs and hands the Nodes outputs (IPs, SSH user) to the cluster layer.
package infra
