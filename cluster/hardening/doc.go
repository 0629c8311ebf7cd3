// Package hardening renders the control-plane hardening files a CIS Kubernetes Benchmark review
// expects: the Secret EncryptionConfiguration, the audit policy, the Pod Security admission
// configuration and the structured authentication configuration.
//
// The functions are pure (no Pulumi, no I/O) so that two consumers load exactly the same bytes:
// the kubeadm bootstrap in package cluster writes them to the node paths below, and the embedded
// control plane loads them into a real kube-apiserver on loopback. APIServerArgs gives the flags
// that point kube-apiserver at the files, so both consumers also agree on how they are used.
package hardening
