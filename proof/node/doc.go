// Package node runs one real Kubernetes node next to the embedded control plane (package
// proof/controlplane): containerd and runc from Debian, the kubelet, kube-scheduler and
// kube-proxy (iptables) that `make tools` builds, the CNI bridge plugin on a bridge of our own,
// CoreDNS as a Deployment in kube-system from a local image, and kube-router's iptables
// NetworkPolicy controller. Images come from proof/images' docker archives; nothing is pulled.
//
// Everything stays on this machine: the node's address is the host side of its own bridge
// (infralab0, 10.244.0.1/24), the pods live in network namespaces containerd creates, and every
// listener binds loopback or that bridge address. Start records every side effect it is about to
// make in Dir/node-state.json before making it, so Teardown (from the same process or from a
// later `infralab-env down`) undoes exactly those: processes, pod sandboxes and their network
// namespaces, iptables chains and ipsets, the bridge, mounts under the kubelet's root, CNI
// result files, and the sysctls, restored to their previous values.
package node
