package machine

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// mountOverlay mounts disk/root = overlayfs(lower=lower, upper=disk/upper, work=disk/work): the
// shared tree stays untouched, everything a machine writes lands in its own upper dir.
func mountOverlay(lower, disk string) error {
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, filepath.Join(disk, "upper"), filepath.Join(disk, "work"))
	if err := syscall.Mount("overlay", filepath.Join(disk, "root"), "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay on %s: %w", filepath.Join(disk, "root"), err)
	}
	return nil
}

// ensureMounted mounts the overlay again if it is not (after a host reboot, or a Stop followed by
// an unmount).
func ensureMounted(lower, disk string) error {
	ok, err := isMountPoint(filepath.Join(disk, "root"))
	if err != nil || ok {
		return err
	}
	return mountOverlay(lower, disk)
}

// unmount unmounts dir if it is a mount point; a busy mount is retried briefly, then detached.
func unmount(dir string) error {
	for i := 0; ; i++ {
		ok, err := isMountPoint(dir)
		if err != nil || !ok {
			return err
		}
		err = syscall.Unmount(dir, 0)
		if err == nil || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOENT) {
			continue
		}
		if i >= 20 {
			if derr := syscall.Unmount(dir, syscall.MNT_DETACH); derr != nil {
				return fmt.Errorf("unmount %s: %w", dir, err)
			}
			continue
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// isMountPoint reports whether dir is a mount point in this mount namespace (/proc/self/mountinfo).
func isMountPoint(dir string) (bool, error) {
	mounts, err := Mounts()
	if err != nil {
		return false, err
	}
	for _, m := range mounts {
		if m == dir {
			return true, nil
		}
	}
	return false, nil
}

// Mounts lists the mount points of this mount namespace (tests compare them before and after).
func Mounts() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 {
			out = append(out, unescapeMount(fields[4]))
		}
	}
	return out, sc.Err()
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
