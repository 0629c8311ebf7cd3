package cluster

import (
	"fmt"

	"github.com/pulumi/pulumi-command/sdk/go/command/remote"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/infralab/infralab/cluster/sealed"
)

// sealLib holds the node side of package sealed; the secret phases run with it after lib.sh.
const sealLib = "seal.sh"

// sealKeys is the key line the secret phases read on stdin (secret). The keys are derived from
// the cluster's Secret encryption key, which the stack already holds as a secret and which never
// changes on a running cluster (kubeadm-init refuses that), so the stdin is the same every run
// and needs no key of its own in the stack config. Changing encryptionKey (on a new cluster)
// changes the keys: both secret phases then run again and mint a new sealed value.
func (b *bootstrap) sealKeys() pulumi.StringOutput {
	return pulumi.ToSecret(b.args.EncryptionKey.ToStringOutput().ApplyT(func(k string) string {
		return sealed.Derive(k).Stdin()
	})).(pulumi.StringOutput)
}

// opened is the value a secret phase printed sealed, opened (a secret output). The error names
// the command to replace, never the text it could not open.
func (b *bootstrap) opened(phase string, c *remote.Command) pulumi.StringOutput {
	return pulumi.ToSecret(pulumi.All(b.sealKeys(), c.Stdout).ApplyT(func(v []any) (string, error) {
		keys, err := sealed.ParseStdin(v[0].(string))
		if err != nil {
			return "", err
		}
		out, err := sealed.Open(keys, v[1].(string))
		if err != nil {
			return "", fmt.Errorf("phase %s: its output does not open with this stack's keys (cluster.encryptionKey changed, or the stored output is from an older infralab): run it again with pulumi up --replace <URN of %s> (pulumi stack --show-urns | grep ::%s)",
				phase, b.resName(phase, nil), b.resName(phase, nil))
		}
		return string(out), nil
	})).(pulumi.StringOutput)
}
