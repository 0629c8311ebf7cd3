package node

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// apiProxy forwards NodeIP:APIProxyPort to the API server on 127.0.0.1, which pods cannot reach
// from their network namespaces. It forwards bytes only: TLS stays end to end, and the serving
// certificate already names 10.96.0.1, the address pods use.
type apiProxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup
}

func (s *starter) startAPIProxy(ctx context.Context) error {
	u, err := url.Parse(s.n.opts.ControlPlane.ServerURL)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("%s:%d", NodeIP, APIProxyPort))
	if err != nil {
		return fmt.Errorf("API proxy: %w", err)
	}
	p := &apiProxy{ln: ln, target: u.Host}
	s.n.proxy = p
	p.wg.Add(1)
	go p.serve()
	return s.n.ensureKubernetesEndpoints(ctx)
}

func (p *apiProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				return
			}
			defer up.Close()
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
			go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
			<-done
		}()
	}
}

func (p *apiProxy) close() {
	_ = p.ln.Close()
	p.wg.Wait()
}

// ensureKubernetesEndpoints points the `kubernetes` Service at the proxy. The control plane runs
// with --endpoint-reconciler-type=none (its address is loopback), so nothing else writes them.
func (n *Node) ensureKubernetesEndpoints(ctx context.Context) error {
	port := int32(APIProxyPort)
	name, proto := "https", corev1.ProtocolTCP
	ready := true
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default", Labels: map[string]string{
			discoveryv1.LabelServiceName: "kubernetes",
			discoveryv1.LabelManagedBy:   "infralab-node",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{NodeIP}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Port: &port, Protocol: &proto}},
	}
	slices := n.client.DiscoveryV1().EndpointSlices("default")
	if _, err := slices.Create(ctx, slice, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
		old, gerr := slices.Get(ctx, "kubernetes", metav1.GetOptions{})
		if gerr != nil {
			return gerr
		}
		slice.ResourceVersion = old.ResourceVersion
		_, err = slices.Update(ctx, slice, metav1.UpdateOptions{})
		if err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	ep := &corev1.Endpoints{ //nolint:staticcheck // read by older clients; the slice is what kube-proxy uses
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default",
			Labels: map[string]string{discoveryv1.LabelSkipMirror: "true"}},
		Subsets: []corev1.EndpointSubset{{ //nolint:staticcheck
			Addresses: []corev1.EndpointAddress{{IP: NodeIP}},                           //nolint:staticcheck
			Ports:     []corev1.EndpointPort{{Name: name, Port: port, Protocol: proto}}, //nolint:staticcheck
		}},
	}
	eps := n.client.CoreV1().Endpoints("default") //nolint:staticcheck
	if _, err := eps.Create(ctx, ep, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
		old, gerr := eps.Get(ctx, "kubernetes", metav1.GetOptions{})
		if gerr != nil {
			return gerr
		}
		ep.ResourceVersion = old.ResourceVersion
		_, err = eps.Update(ctx, ep, metav1.UpdateOptions{})
		return err
	} else {
		return err
	}
}
