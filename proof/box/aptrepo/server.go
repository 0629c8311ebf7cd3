package aptrepo

import (
	"context"
	"net"
	"net/http"
	"time"
)

// Server serves a repository root over plain HTTP (apt checks the signatures, not the transport,
// exactly as for deb.debian.org) on one address: the box's 10.77.0.1:8080, tests' 127.0.0.1:0.
type Server struct {
	Addr string // the bound address, e.g. 127.0.0.1:41234
	srv  *http.Server
}

// Serve starts serving root on addr until Close.
func Serve(addr, root string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{Addr: ln.Addr().String(),
		srv: &http.Server{Handler: http.FileServer(http.Dir(root)), ReadHeaderTimeout: 10 * time.Second}}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Close stops the server.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}
