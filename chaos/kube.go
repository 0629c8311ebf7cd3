package main

import (
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// loadKubeconfig resolves --kubeconfig, then KUBECONFIG, then ~/.kube/config, like kubectl.
func loadKubeconfig(path, context string) (*rest.Config, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if path != "" {
		rules.ExplicitPath = path
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: context})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("--kubeconfig: %w (set --kubeconfig, KUBECONFIG or ~/.kube/config)", err)
	}
	raw, err := cc.RawConfig()
	name := context
	if err == nil && name == "" {
		name = raw.CurrentContext
	}
	return cfg, name, nil
}
