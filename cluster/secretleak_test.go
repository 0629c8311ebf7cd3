package cluster

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/infralab/infralab/cluster/sealed"
)

// providerError is the error pulumi-command v1.1.0 returns when a remote command fails
// (provider/pkg/provider/remote/commandOutputs.go, CommandOutputs.run):
//
//	return fmt.Errorf("%w: running %q:\n%s", err, cmd, stdouterrbuf.String())
//
// cmd is the whole `create` (or `delete`) string and stdouterrbuf holds stdout and stderr as
// they were written, whatever `logging` says (logging only decides what is streamed to the
// engine's log). The engine prints this error in the terminal and the CI log.
func providerError(runErr error, cmd, combined string) string {
	return fmt.Errorf("%w: running %q:\n%s", runErr, cmd, combined).Error()
}

// errExitMissing is what golang.org/x/crypto/ssh's Session.Wait returns when the connection
// drops after the command ran but before its exit status arrived (ssh/session.go,
// ExitMissingError): the provider then fails the command with everything it printed.
var errExitMissing = errors.New("wait: remote command exited without exit status or exit signal")

// A CA certificate for join-token's public key hash (openssl reads it for real).
const writeCA = `mkdir -p /etc/kubernetes/pki
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=kubernetes -days 30 \
	-keyout /etc/kubernetes/pki/ca.key -out /etc/kubernetes/pki/ca.crt 2>/dev/null
`

// The admin kubeconfig on the control plane holds the admin client key.
const writeAdminConf = `mkdir -p /etc/kubernetes/infralab
printf 'apiVersion: v1\nkind: Config\nusers:\n- name: kubernetes-admin\n  user:\n    client-key-data: %s\n' "` + fakeClientKey + `" >/etc/kubernetes/admin.conf
touch /etc/kubernetes/infralab/init-done
`

// The secret phases run as registered (command line and stdin from the mock engine) against
// stubbed kubeadm/kubectl; then the SSH session is cut before the exit status arrives, and the
// provider's error text must hold neither the admin key nor the join token, nor anything else
// secret (the command line is part of that text too).
func TestSecretPhaseErrorTextHoldsNoSecret(t *testing.T) {
	r := run(t, testArgs(), Scripts())
	registered := func(name string) (create, stdin string) {
		c := r.m.get(t, name)
		create = c.args.Inputs["create"].StringValue()
		if s, ok := c.args.Inputs["stdin"]; ok {
			require.True(t, s.IsSecret(), "%s stdin must be secret", name)
			stdin = s.SecretValue().Element.StringValue()
		}
		return create, stdin
	}
	for _, tc := range []struct {
		name, resource, setup string
		// fails: the script itself fails (after the secret existed on the node).
		fails bool
		// opened: what the sealed stdout holds; failure: what the failing script says.
		opened, failure string
	}{
		{name: "fetch-kubeconfig: connection lost", resource: "lab-fetch-kubeconfig", setup: writeAdminConf, opened: "client-key-data: " + fakeClientKey},
		{name: "join-token: connection lost", resource: "lab-join-token", setup: writeCA, opened: `{"token":"` + fakeToken + `","caCertHash":"sha256:`},
		{name: "join-token: no CA after the token was made", resource: "lab-join-token", fails: true, failure: "cannot read the cluster CA"},
		// join-worker reads the token on stdin and shows kubeadm's log when the join fails.
		{name: "join-worker: kubeadm join fails quoting the token", resource: "lab-join-worker-worker-1", fails: true, failure: "bad token <bootstrap token>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newFakeNode(t)
			n.set("token", fakeToken)
			n.set("join", "leak")
			create, stdin := registered(tc.resource)
			stdout, stderr, combined, err := n.runCommandLine(create, stdin, tc.setup)
			runErr := errExitMissing
			if tc.fails {
				require.Error(t, err, stderr)
				require.Contains(t, stderr, tc.failure)
				runErr = errors.New("Process exited with status 1")
			} else {
				require.NoError(t, err, stderr)
				keys, err := sealed.ParseStdin(stdin)
				require.NoError(t, err)
				value, err := sealed.Open(keys, stdout)
				require.NoError(t, err, "the phase prints its value sealed to the keys on its stdin, and only that")
				assert.Contains(t, string(value), tc.opened)
			}
			text := providerError(runErr, create, combined)
			for _, s := range append(fakeSecrets, secretsOf(stdin)...) {
				if i := strings.Index(text, s); i >= 0 {
					t.Errorf("the provider's error text holds the secret %q: ...%s...", s, text[max(0, i-120):min(len(text), i+len(s)+40)])
				}
			}
		})
	}
}

// secretsOf lists the parts of a stdin that are secret values on their own (the long words: keys,
// not the short version tag in front of them), so the test also catches a script echoing what it
// was sent.
func secretsOf(stdin string) []string {
	var out []string
	for _, w := range strings.Fields(stdin) {
		if len(w) >= 32 {
			out = append(out, w)
		}
	}
	return out
}
