package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// prebuild is `pulumi-language-go prebuild [-pkg PKG] [-o FILE] DIR...`: it builds each folder's
// Go program (a Pulumi program or a policy pack, package "." unless -pkg) into the same cache Run
// and RunPlugin use, all at once, before the CLI asks for them. hack/demo.sh runs it while the
// control plane starts, so `pulumi up` finds both built (the build is then off the critical path).
// With -o (one DIR only) the binary is also copied to FILE, for a tool the demo runs itself.
func prebuild(ctx context.Context, b *builder, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("prebuild", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pkg := fs.String("pkg", ".", "the main package to build, relative to each DIR")
	out := fs.String("o", "", "also copy the binary to this file (only with one DIR)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dirs := fs.Args()
	switch {
	case len(dirs) == 0:
		return errors.New("prebuild: name at least one program folder")
	case *out != "" && len(dirs) != 1:
		return fmt.Errorf("prebuild: -o takes one program folder, got %d", len(dirs))
	}
	errs := make([]error, len(dirs))
	var wg sync.WaitGroup
	for i, dir := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			abs, err := filepath.Abs(dir)
			if err != nil {
				errs[i] = err
				return
			}
			errs[i] = b.build(ctx, abs, *pkg, func(bin string) error {
				if *out == "" {
					return nil
				}
				return copyExecutable(bin, *out)
			})
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// copyExecutable writes src to dst through a temp file and a rename, so a running dst is never
// half written.
func copyExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := io.Copy(tmp, in); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o755); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}
