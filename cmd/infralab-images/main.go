// Command infralab-images builds the embedded node's container images from the Debian packages
// installed on this machine, as docker-archive tars for `ctr -n k8s.io images import`.
//
//	infralab-images build --out DIR [names...]   build (or reuse) images, print their refs
//	infralab-images list                         the images it knows
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/infralab/infralab/proof/images"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "infralab-images:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  infralab-images build --out DIR [--repo DIR] [names...]
  infralab-images list
images: `

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage + strings.Join(images.Names(), ", "))
	}
	switch args[0] {
	case "list":
		for _, n := range images.Names() {
			fmt.Fprintln(stdout, n)
		}
		return nil
	case "build":
		return build(ctx, args[1:], stdout, stderr)
	default:
		return fmt.Errorf("unknown command %q\n%s%s", args[0], usage, strings.Join(images.Names(), ", "))
	}
}

func build(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "output and cache folder for the image tars (required)")
	repo := fs.String("repo", "", "repository root (default: found from the current folder)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("build: --out is required, e.g. --out ~/.cache/infralab/images")
	}
	root := *repo
	if root == "" {
		var err error
		if root, err = findRepo(); err != nil {
			return err
		}
	}
	b := &images.Builder{OutDir: *out, RepoDir: root, Log: stderr}
	results, err := b.Build(ctx, fs.Args())
	if err != nil {
		return err
	}
	for _, r := range results {
		fmt.Fprintf(stdout, "%s\t%s\n", r.Ref, r.Path)
	}
	fmt.Fprintf(stderr, "\nindex: %s\nload into the node's containerd with:\n  ctr -n k8s.io images import <tar>\n",
		filepath.Join(*out, "images.json"))
	return nil
}

// findRepo walks up from the working directory to the folder whose go.mod is this module.
func findRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(data), "module github.com/infralab/infralab\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the infralab repository; pass --repo DIR")
		}
		dir = parent
	}
}
