// Package aptrepo is the box's offline package source: it builds .deb packages from the pinned
// binaries with the names, versions and file layout of pkgs.k8s.io (kubeadm, kubelet, kubectl,
// cri-tools, kubernetes-cni) and download.docker.com (containerd.io), mirrors the Debian packages
// the lab's cloud-init and prepare-node install, signs the repositories with a key generated per
// box, and serves them over HTTP in the upstream URL layouts. prepare-node.sh installs from it
// unmodified once the stack key kubernetes.packageRepository points at it (docs/box.md).
//
// What is real: dpkg/apt read these packages and verify the signatures exactly as they do
// upstream's. What stands in: the binaries are our builds from the pinned sources (not the
// upstream release builds), and the signing key is the box's, not the Kubernetes or Docker key.
package aptrepo
