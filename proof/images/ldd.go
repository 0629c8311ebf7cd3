package images

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// lddDeps returns the absolute paths of the shared libraries (and the program interpreter) that
// ldd resolves for one ELF file. A static file has none; an unresolved library is an error,
// because the image would fail only at run time.
func lddDeps(ctx context.Context, path string) ([]string, error) {
	out, err := exec.CommandContext(ctx, "ldd", path).CombinedOutput()
	text := string(out)
	if err != nil {
		// ldd exits 1 for static files and for files that are not dynamic executables.
		if strings.Contains(text, "not a dynamic executable") || strings.Contains(text, "statically linked") {
			return nil, nil
		}
		return nil, fmt.Errorf("ldd %s: %v: %s", path, err, strings.TrimSpace(text))
	}
	return parseLdd(path, text)
}

func parseLdd(path, text string) ([]string, error) {
	var deps, missing []string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "", strings.Contains(line, "statically linked"):
		case strings.Contains(line, "=> not found"):
			missing = append(missing, strings.Fields(line)[0])
		case strings.Contains(line, "=>"):
			fields := strings.Fields(strings.SplitN(line, "=>", 2)[1])
			if len(fields) > 0 && strings.HasPrefix(fields[0], "/") {
				deps = append(deps, fields[0])
			}
		case strings.HasPrefix(line, "/"):
			deps = append(deps, strings.Fields(line)[0])
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("ldd %s: libraries not found on this machine: %s", path, strings.Join(missing, ", "))
	}
	return deps, nil
}

// addLibraries adds, until nothing changes, every library that ldd lists for every ELF file
// in the set (libraries pull in libraries, and a library is itself an ELF file).
func (f *fileSet) addLibraries(ctx context.Context) error {
	done := map[string]bool{}
	for {
		elfs, err := f.elfFiles()
		if err != nil {
			return err
		}
		added := false
		for _, p := range elfs {
			if done[p] {
				continue
			}
			done[p] = true
			deps, err := lddDeps(ctx, p)
			if err != nil {
				return err
			}
			for _, d := range deps {
				if err := f.addHost(d); err != nil {
					return fmt.Errorf("%s needs %s: %w", p, d, err)
				}
				added = true
			}
		}
		if !added {
			return nil
		}
	}
}
