package apps

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// annotationCredentials carries a digest of the credentials a pod template reads through
// secretKeyRef. Env from a Secret is read only when a container starts, so without it a rotated
// password would reach the database (the roles Job) but not the running pods: the changed digest
// rolls them.
const annotationCredentials = "infralab.dev/credentials-sha256"

// credentialsDigest is a sha256 over the values, kept a Pulumi secret so state never holds even a
// hash of a password in plain text.
func credentialsDigest(values ...pulumi.StringInput) pulumi.StringOutput {
	in := make([]any, len(values))
	for i, v := range values {
		in[i] = v
	}
	return pulumi.ToSecret(pulumi.All(in...).ApplyT(func(v []any) string {
		h := sha256.New()
		for _, s := range v {
			fmt.Fprintf(h, "%d:%s;", len(s.(string)), s)
		}
		return hex.EncodeToString(h.Sum(nil))
	})).(pulumi.StringOutput)
}
