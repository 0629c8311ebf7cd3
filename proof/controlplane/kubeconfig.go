package controlplane

import (
	"context"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"
)

// A kubeconfig with its credentials inline, so the file alone is enough to connect.
type kubeconfig struct {
	APIVersion     string         `json:"apiVersion"`
	Kind           string         `json:"kind"`
	Clusters       []namedCluster `json:"clusters"`
	Users          []namedUser    `json:"users"`
	Contexts       []namedContext `json:"contexts"`
	CurrentContext string         `json:"current-context"`
}

type namedCluster struct {
	Name    string `json:"name"`
	Cluster struct {
		Server                   string `json:"server"`
		CertificateAuthorityData []byte `json:"certificate-authority-data"`
	} `json:"cluster"`
}

type namedUser struct {
	Name string `json:"name"`
	User struct {
		ClientCertificateData []byte `json:"client-certificate-data"`
		ClientKeyData         []byte `json:"client-key-data"`
	} `json:"user"`
}

type namedContext struct {
	Name    string `json:"name"`
	Context struct {
		Cluster string `json:"cluster"`
		User    string `json:"user"`
	} `json:"context"`
}

// ContextName is the kubeconfig context (and cluster name) of the embedded control plane.
const ContextName = "infralab-embedded"

// renderKubeconfig builds a kubeconfig for server with the given client certificate files.
func renderKubeconfig(server, caFile, certFile, keyFile, user string) ([]byte, error) {
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	cert, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	key, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	kc := kubeconfig{APIVersion: "v1", Kind: "Config", CurrentContext: ContextName}
	c := namedCluster{Name: ContextName}
	c.Cluster.Server = server
	c.Cluster.CertificateAuthorityData = ca // []byte marshals as base64, as kubeconfig wants
	u := namedUser{Name: user}
	u.User.ClientCertificateData, u.User.ClientKeyData = cert, key
	x := namedContext{Name: ContextName}
	x.Context.Cluster, x.Context.User = ContextName, user
	kc.Clusters, kc.Users, kc.Contexts = []namedCluster{c}, []namedUser{u}, []namedContext{x}
	return yaml.Marshal(kc)
}

func (s *starter) writeKubeconfigs(context.Context) error {
	p := s.cp.pki
	admin, err := renderKubeconfig(s.cp.serverURL, p.CACert, p.AdminCert, p.AdminKey, "infralab-admin")
	if err != nil {
		return err
	}
	kcm, err := renderKubeconfig(s.cp.serverURL, p.CACert, p.KCMCert, p.KCMKey, "system:kube-controller-manager")
	if err != nil {
		return err
	}
	if err := os.WriteFile(s.cp.kubeconfigPath, admin, 0o600); err != nil {
		return err
	}
	s.cp.kubeconfig = admin
	return os.WriteFile(filepath.Join(s.cp.dir, "controller-manager.kubeconfig"), kcm, 0o600)
}
