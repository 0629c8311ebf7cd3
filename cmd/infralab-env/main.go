// Command infralab-env runs the embedded Kubernetes control plane (package
// proof/controlplane) in the background for `make demo` and for trying the `local` stack:
//
//	infralab-env up     [--dir .infralab/cluster] [--node --images DIR/images.json]
//	                                                start, wait until ready, print the kubeconfig path
//	infralab-env status [--dir .infralab/cluster]   exit 0 only when it runs and is ready
//	infralab-env down   [--dir .infralab/cluster]   stop what `up` started
//
// `up` starts a detached supervisor (this binary's hidden `serve` command) that owns etcd,
// kube-apiserver and kube-controller-manager and records them in DIR/state.json; `down` stops
// that supervisor, and only the processes named in the state file if it does not answer.
// With --node the supervisor also runs a real node (package proof/node: containerd, kubelet,
// kube-scheduler, kube-proxy, kube-router, CoreDNS; root only), whose side effects `down` undoes
// even when the supervisor died.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/infralab/infralab/internal/testenv"
)

const usage = `usage: infralab-env <up|down|status> [flags]

  up      start the embedded control plane (and with --node a real node) in the background and
          wait until it is ready
  down    stop it (only the processes it started)
  status  show whether it runs; exit status 0 only when it is ready

flags:
`

type flags struct {
	dir       string
	binDir    string
	timeout   time.Duration
	hardening bool
	node      bool
	images    string
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmd := os.Args[1]
	fs := flag.NewFlagSet("infralab-env "+cmd, flag.ExitOnError)
	var f flags
	fs.StringVar(&f.dir, "dir", filepath.Join(".infralab", "cluster"), "folder for the control plane's data, logs, kubeconfig and state")
	fs.StringVar(&f.binDir, "bin-dir", "", "folder with kube-apiserver and kube-controller-manager (default: .tools/bin of this repo)")
	fs.DurationVar(&f.timeout, "timeout", 3*time.Minute, "how long `up` waits for readiness")
	fs.BoolVar(&f.hardening, "hardening", true, "use the lab cluster's encryption, audit, admission and authentication config")
	fs.BoolVar(&f.node, "node", false, "also run a real node that runs pods (root; containerd, kubelet, ... see docs/node.md)")
	fs.StringVar(&f.images, "images", "", "with --node: images.json of `infralab-images build --out DIR` (default ~/.cache/infralab/images/images.json)")
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage); fs.PrintDefaults() }
	_ = fs.Parse(os.Args[2:])

	var err error
	switch cmd {
	case "up":
		err = up(f)
	case "down":
		err = down(f)
	case "status":
		err = status(f)
	case "serve":
		err = serve(f)
	case "-h", "--help", "help":
		fs.Usage()
		return
	default:
		err = fmt.Errorf("unknown command %q (want up, down or status)", cmd)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "infralab-env %s: %v\n", cmd, err)
		var nr notRunning
		if errors.As(err, &nr) {
			os.Exit(3)
		}
		os.Exit(1)
	}
}

type notRunning struct{ dir string }

func (e notRunning) Error() string {
	return "no control plane runs from " + e.dir + "; start one with `infralab-env up --dir " + e.dir + "` (or `make cluster-up`)"
}

// resolveBinDir prefers an explicit flag, then INFRALAB_TOOLS_BIN, then .tools/bin in the current
// folder or a parent (the repo root when run from make), then this source tree's .tools/bin.
func resolveBinDir(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if d := os.Getenv("INFRALAB_TOOLS_BIN"); d != "" {
		return d
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			if st, err := os.Stat(filepath.Join(d, ".tools", "bin")); err == nil && st.IsDir() {
				return filepath.Join(d, ".tools", "bin")
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return testenv.BinDir()
}
