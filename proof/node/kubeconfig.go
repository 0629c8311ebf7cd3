package node

import (
	"context"
	"crypto/x509/pkix"
	"net"
	"os"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// identities of the node's components: name -> certificate subject. Their permissions come from
// Kubernetes' bootstrap policy (system:node via the Node authorizer, system:kube-proxy,
// system:kube-scheduler) or from ensureRBAC (kube-router).
func (n *Node) identities() map[string]pkix.Name {
	return map[string]pkix.Name{
		"kubelet":        {CommonName: "system:node:" + n.opts.NodeName, Organization: []string{"system:nodes"}},
		"kube-proxy":     {CommonName: "system:kube-proxy"},
		"kube-scheduler": {CommonName: "system:kube-scheduler"},
		"kube-router":    {CommonName: kubeRouterUser},
	}
}

func (n *Node) kubeconfigPath(component string) string { return n.path(component + ".kubeconfig") }

func (s *starter) ensureCertificates(context.Context) error {
	n := s.n
	c, err := loadCA(n.opts.ControlPlane.CACert, n.opts.ControlPlane.CAKey)
	if err != nil {
		return err
	}
	for name, subject := range n.identities() {
		cert, key := n.path("pki", name+".crt"), n.path("pki", name+".key")
		if err := c.issue(cert, key, subject, nil, nil); err != nil {
			return err
		}
		if err := writeKubeconfig(n.kubeconfigPath(name), n.opts.ControlPlane.ServerURL, c.CertPEM, cert, key); err != nil {
			return err
		}
	}
	// The kubelet's serving certificate, for the API server's logs/exec/port-forward calls.
	if err := c.issue(n.path("pki", "kubelet-serving.crt"), n.path("pki", "kubelet-serving.key"),
		pkix.Name{CommonName: n.opts.NodeName}, []net.IP{net.ParseIP(NodeIP)}, []string{n.opts.NodeName}); err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", n.opts.ControlPlane.AdminKubeconfig)
	if err != nil {
		return err
	}
	cfg.WarningHandler = rest.NoWarnings{} // the deprecated v1 Endpoints write is deliberate
	n.client, err = kubernetes.NewForConfig(cfg)
	return err
}

func writeKubeconfig(path, server string, caPEM []byte, certFile, keyFile string) error {
	cert, err := os.ReadFile(certFile)
	if err != nil {
		return err
	}
	key, err := os.ReadFile(keyFile)
	if err != nil {
		return err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["infralab"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos["node"] = &clientcmdapi.AuthInfo{ClientCertificateData: cert, ClientKeyData: key}
	cfg.Contexts["infralab"] = &clientcmdapi.Context{Cluster: "infralab", AuthInfo: "node"}
	cfg.CurrentContext = "infralab"
	return clientcmd.WriteToFile(*cfg, path)
}
