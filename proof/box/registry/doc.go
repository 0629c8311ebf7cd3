// Package registry runs the box's OCI registry: the real distribution registry
// (github.com/distribution/distribution/v3, built by `hack/tools.sh box-registry`) on the box
// bridge address over TLS, with filesystem storage in the box state dir. The TLS server
// certificate is signed by a CA generated once per box (ca.go); the machines trust that CA for
// the registry's host in containerd's hosts.toml, so pulls are verified, not "insecure".
//
// It also pushes the control-plane images proof/images builds (push.go) under a repository
// prefix, with the tags kubeadm pulls, so `kubeadm init` with imageRepository set to
// <address>/<prefix> needs no other registry. Calico's images and the tigera operator's go under
// the same prefix, and the two pinned Calico manifests are written under the box's HTTP root
// (calico.go), so the cluster layer's calico phase needs nothing from quay.io or GitHub either.
package registry
