package images

import (
	"fmt"
	"os"
	"strings"
)

// account is the user an image runs as. Kubernetes' runAsNonRoot needs a numeric USER.
type account struct {
	name     string
	uid, gid int
	home     string
}

func (a account) user() string { return fmt.Sprintf("%d:%d", a.uid, a.gid) }

// addBase writes the files every image needs: passwd and group (PostgreSQL and Python look the
// user up), mountpoints the runtime fills, and, for images with Debian files, the merged-/usr
// links so paths like /lib64/ld-linux-x86-64.so.2 resolve as on the host.
func addBase(f *fileSet, user account, mergedUsr bool) error {
	passwd := []string{"root:x:0:0:root:/root:/usr/sbin/nologin"}
	group := []string{"root:x:0:"}
	if user.uid != 0 && user.uid != 65534 {
		passwd = append(passwd, fmt.Sprintf("%s:x:%d:%d:%s:%s:/usr/sbin/nologin", user.name, user.uid, user.gid, user.name, user.home))
		group = append(group, fmt.Sprintf("%s:x:%d:", user.name, user.gid))
	}
	passwd = append(passwd, "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin")
	group = append(group, "nogroup:x:65534:")
	f.addData("/etc/passwd", 0o644, 0, 0, []byte(strings.Join(passwd, "\n")+"\n"))
	f.addData("/etc/group", 0o644, 0, 0, []byte(strings.Join(group, "\n")+"\n"))
	f.addData("/etc/nsswitch.conf", 0o644, 0, 0, []byte("passwd: files\ngroup: files\nhosts: files dns\n"))
	// The kubelet bind-mounts these; on a read-only root they must already exist.
	f.addData("/etc/hosts", 0o644, 0, 0, []byte("127.0.0.1 localhost\n::1 localhost\n"))
	f.addData("/etc/resolv.conf", 0o644, 0, 0, nil)
	f.addData("/etc/hostname", 0o644, 0, 0, nil)
	for _, d := range []string{"/dev", "/proc", "/sys", "/run"} {
		f.addDir(d, 0o755, 0, 0)
	}
	f.addDir("/tmp", 0o1777, 0, 0)
	if !mergedUsr {
		return nil
	}
	for _, l := range []string{"/bin", "/lib", "/lib64", "/sbin"} {
		if target, err := os.Readlink(l); err == nil {
			f.addLink(l, target)
		}
	}
	return nil
}

// addCACerts adds the machine's CA bundle so TLS to a database or scrape target can verify.
func addCACerts(f *fileSet) error {
	const bundle = "/etc/ssl/certs/ca-certificates.crt"
	if _, err := os.Stat(bundle); err != nil {
		return nil // optional: ca-certificates not installed
	}
	return f.addHost(bundle)
}

func hasAnyPrefix(p string, prefixes ...string) bool {
	for _, pre := range prefixes {
		if p == pre || strings.HasPrefix(p, pre+"/") {
			return true
		}
	}
	return false
}
