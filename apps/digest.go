package apps

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// annotationCredentials carries a digest of the credentials a pod template reads through
// secretKeyRef. Env from a Secret is read only when a container starts, so without it a rotated
// password would reach the database (the roles Job) but not the running pods: the changed digest
// rolls them.
const annotationCredentials = "infralab.dev/credentials-hmac"

// credentialsDigest is an HMAC-SHA256 of the values under key. The annotation sits in the pod
// template, readable by anyone who may get Deployments: a plain hash of a password there could be
// guessed offline, an HMAC under another secret (the PostgreSQL superuser password) cannot. It
// also stays a Pulumi secret in state.
func credentialsDigest(key pulumi.StringInput, values ...pulumi.StringInput) pulumi.StringOutput {
	in := []any{key}
	for _, v := range values {
		in = append(in, v)
	}
	return pulumi.ToSecret(pulumi.All(in...).ApplyT(func(v []any) string {
		h := hmac.New(sha256.New, []byte(v[0].(string)))
		for _, s := range v[1:] {
			fmt.Fprintf(h, "%d:%s;", len(s.(string)), s)
		}
		return hex.EncodeToString(h.Sum(nil))
	})).(pulumi.StringOutput)
}
