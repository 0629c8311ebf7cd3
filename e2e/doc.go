// Package e2e holds end-to-end tests against real components: the embedded control plane
// (etcd, kube-apiserver, kube-controller-manager on loopback), the embedded node, and the real
// pulumi CLI with the policy pack. It has no code of its own outside its tests.
package e2e
