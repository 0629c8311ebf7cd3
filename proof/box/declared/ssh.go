package declared

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// SSH runs a command's create script the way pulumi-command v1.1.0 does
// (provider/pkg/provider/remote/connection.go Dial, commandOutputs.go run): dial (through the
// proxy if declared) with the declared user, key, dial limit and per-dial timeout; one session;
// the declared environment via Setenv; stdin; stdout with its trailing newline trimmed. Two
// differences, both stricter: every host key is pinned (a connection that declares none is checked
// against HostKeys, the keys the box read from its machines; the lab stack pins no VM key), and
// output is printed only as the declared logging allows, masked.
type SSH struct {
	// HostKeys maps a host address to its authorized_keys-format public key.
	HostKeys map[string]string
	// Names maps a host address to a machine name, for the output prefix.
	Names map[string]string
	// Out receives the streamed output, each line prefixed "[node/phase] ".
	Out io.Writer
	// Mask masks secrets in everything printed and in errors; nil masks each command's own
	// secret inputs only.
	Mask *Masker

	outMu sync.Mutex
}

// Label is the output prefix of a command: its node (or the machine its host is) and phase.
func (s *SSH) Label(c *Command) string {
	node := c.Node
	if node == "" {
		node = s.Names[c.Connection.Host]
	}
	if node == "" {
		node = c.Connection.Host
	}
	phase := c.Phase
	if phase == "" {
		phase = c.Name
	}
	return node + "/" + phase
}

func (s *SSH) masker(c *Command) *Masker {
	m := s.Mask
	if m == nil {
		m = &Masker{}
	}
	m.Add(c.secrets...)
	return m
}

// Printf prints one line under the output lock.
func (s *SSH) Printf(format string, args ...any) {
	if s.Out == nil {
		return
	}
	s.outMu.Lock()
	defer s.outMu.Unlock()
	fmt.Fprintf(s.Out, format, args...)
}

// Run implements Runner. It prints the command's duration when it ends.
func (s *SSH) Run(ctx context.Context, c *Command) (string, error) {
	label := s.Label(c)
	s.Printf("[%s] start\n", label)
	start := time.Now()
	out, err := s.run(ctx, c, label)
	if err != nil {
		s.Printf("[%s] FAILED after %s\n", label, round(time.Since(start)))
	} else {
		s.Printf("[%s] done in %s\n", label, round(time.Since(start)))
	}
	return out, err
}

func (s *SSH) run(ctx context.Context, c *Command, label string) (string, error) {
	mask := s.masker(c)
	client, err := s.dial(ctx, c.Connection)
	if err != nil {
		return "", errors.New(mask.Apply(err.Error()))
	}
	defer client.Close()
	session, err := client.NewSession()
	if err != nil {
		return "", err
	}
	defer session.Close()
	for _, k := range sortedKeys(c.Environment) {
		if err := session.Setenv(k, c.Environment[k]); err != nil {
			// pulumi-command fails the same way: stock sshd accepts no variables (AcceptEnv).
			return "", fmt.Errorf("could not set environment variable %q: %w", k, err)
		}
	}
	if c.Stdin.Value != "" {
		session.Stdin = strings.NewReader(c.Stdin.Value)
	}
	var stdout, stderr bytes.Buffer
	tail := &tailBuffer{max: 40}
	logOut, logErr := loggingOf(c.Logging)
	outW := &lineWriter{s: s, prefix: "[" + label + "] ", mask: mask, on: logOut}
	errW := &lineWriter{s: s, prefix: "[" + label + "] ", mask: mask, on: logErr}
	session.Stdout = io.MultiWriter(&stdout, tail, outW)
	session.Stderr = io.MultiWriter(&stderr, tail, errW)

	done := make(chan error, 1)
	go func() { done <- session.Run(c.Create) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = session.Signal(ssh.SIGTERM)
		client.Close()
		err = ctx.Err()
	}
	outW.flush()
	errW.flush()
	if err != nil {
		msg := fmt.Sprintf("%v", err)
		if !logOut || !logErr {
			// Output the declared logging hides stays hidden in the error too.
			return "", fmt.Errorf("%s (output not shown: logging %q)", msg, c.Logging)
		}
		return "", fmt.Errorf("%s; last output:\n%s", msg, mask.Apply(tail.String()))
	}
	return strings.TrimSuffix(stdout.String(), "\n"), nil
}

// loggingOf is remote.Command's logging input (pulumi-command provider/pkg/provider/remote/
// logging.go): unset means stdoutAndStderr.
func loggingOf(l string) (stdout, stderr bool) {
	switch l {
	case "none":
		return false, false
	case "stdout":
		return true, false
	case "stderr":
		return false, true
	default:
		return true, true
	}
}

func (s *SSH) clientConfig(c Connection) (*ssh.ClientConfig, error) {
	pinned := c.HostKey
	if known := s.HostKeys[c.Host]; known != "" {
		if pinned != "" && !sameKey(pinned, known) {
			return nil, fmt.Errorf("%s: the program pins host key %q, the machine has %q", c.Host, pinned, known)
		}
		pinned = known
	}
	if pinned == "" {
		return nil, fmt.Errorf("%s: no host key pinned (declared none, and the box knows none)", c.Host)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(pinned))
	if err != nil {
		return nil, fmt.Errorf("%s: host key: %w", c.Host, err)
	}
	if c.PrivateKey.Value == "" {
		return nil, fmt.Errorf("%s: the connection declares no private key", c.Host)
	}
	signer, err := ssh.ParsePrivateKey([]byte(c.PrivateKey.Value))
	if err != nil {
		return nil, fmt.Errorf("%s: private key: %w", c.Host, err)
	}
	return &ssh.ClientConfig{
		User:              c.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   ssh.FixedHostKey(pub),
		HostKeyAlgorithms: []string{pub.Type()},
		Timeout:           time.Duration(c.PerDialTimeout) * time.Second,
	}, nil
}

func sameKey(a, b string) bool {
	ka, _, _, _, errA := ssh.ParseAuthorizedKey([]byte(a))
	kb, _, _, _, errB := ssh.ParseAuthorizedKey([]byte(b))
	return errA == nil && errB == nil && bytes.Equal(ka.Marshal(), kb.Marshal())
}

// dial connects like pulumi-command's Connection.Dial: through the proxy when declared, each
// hop retried up to its dial error limit.
func (s *SSH) dial(ctx context.Context, c Connection) (*ssh.Client, error) {
	cfg, err := s.clientConfig(c)
	if err != nil {
		return nil, err
	}
	endpoint := net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
	if c.Proxy == nil {
		return retry(ctx, "dial "+endpoint, c.DialErrorLimit, func() (*ssh.Client, error) {
			return ssh.Dial("tcp", endpoint, cfg)
		})
	}
	pcfg, err := s.clientConfig(*c.Proxy)
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	pendpoint := net.JoinHostPort(c.Proxy.Host, strconv.Itoa(c.Proxy.Port))
	proxy, err := retry(ctx, "dial proxy "+pendpoint, c.Proxy.DialErrorLimit, func() (*ssh.Client, error) {
		return ssh.Dial("tcp", pendpoint, pcfg)
	})
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	client, err := retry(ctx, "dial "+endpoint+" from proxy", c.DialErrorLimit, func() (*ssh.Client, error) {
		conn, err := proxy.Dial("tcp", endpoint)
		if err != nil {
			return nil, err
		}
		cc, chans, reqs, err := ssh.NewClientConn(conn, endpoint, cfg)
		if err != nil {
			conn.Close()
			return nil, err
		}
		return ssh.NewClient(cc, chans, reqs), nil
	})
	if err != nil {
		proxy.Close()
		return nil, fmt.Errorf("proxy: %w", err)
	}
	go func() { _ = client.Wait(); proxy.Close() }()
	return client, nil
}

// retry makes up to limit+1 attempts (limit < 0: unbounded, as pulumi-command's -1), backing off
// from 100 ms by 1.5x up to 5 s, like pulumi's retry.Until.
func retry[T any](ctx context.Context, what string, limit int, f func() (T, error)) (T, error) {
	delay := 100 * time.Millisecond
	for try := 1; ; try++ {
		v, err := f()
		if err == nil {
			return v, nil
		}
		if limit >= 0 && try > limit {
			var zero T
			return zero, fmt.Errorf("%s: after %d failed attempts: %w", what, try, err)
		}
		select {
		case <-ctx.Done():
			var zero T
			return zero, fmt.Errorf("%s: %w (last error: %v)", what, ctx.Err(), err)
		case <-time.After(delay):
		}
		if delay = delay * 3 / 2; delay > 5*time.Second {
			delay = 5 * time.Second
		}
	}
}

// lineWriter prints whole lines with a prefix, masked.
type lineWriter struct {
	s      *SSH
	prefix string
	mask   *Masker
	on     bool
	buf    []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	if !w.on {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.s.Printf("%s%s\n", w.prefix, w.mask.Apply(string(w.buf[:i])))
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

func (w *lineWriter) flush() {
	if w.on && len(w.buf) > 0 {
		w.s.Printf("%s%s\n", w.prefix, w.mask.Apply(string(w.buf)))
		w.buf = nil
	}
}

// tailBuffer keeps the last max lines written, for the error of a failed command.
type tailBuffer struct {
	mu    sync.Mutex // stdout and stderr are copied by two goroutines
	max   int
	lines []string
	part  []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.part = append(t.part, p...)
	for {
		i := bytes.IndexByte(t.part, '\n')
		if i < 0 {
			break
		}
		t.lines = append(t.lines, string(t.part[:i]))
		t.part = t.part[i+1:]
		if len(t.lines) > t.max {
			t.lines = t.lines[1:]
		}
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := t.lines
	if len(t.part) > 0 {
		lines = append(lines, string(t.part))
	}
	return strings.Join(lines, "\n")
}
