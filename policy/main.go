// Command infralab-policy is infralab's CrossGuard policy pack: `pulumi preview --policy-pack policy`
// starts it through the Go language host and it serves the analyzer protocol.
package main

import (
	"fmt"
	"os"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/policyx"

	"github.com/infralab/infralab/policy/pack"
)

func main() {
	if err := policyx.Main(func(*pulumi.Context) (policyx.PolicyPack, error) { return pack.New() }); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
