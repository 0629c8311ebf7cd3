// Package proof holds the environments where the product is proven on one machine without
// Proxmox: an embedded control plane (controlplane), a real node (node), images built from Debian
// packages and pinned binaries (images), and real machines for the lab stack's cluster layer (box).
// The product's layers never import anything below proof/; imports_test.go enforces it.
package proof
