package images

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// entry is one path of an image's root filesystem.
type entry struct {
	src      string // host file to copy; empty for data, dirs and links
	data     []byte // inline content
	link     string // symlink target
	dir      bool
	mode     fs.FileMode // permission bits only
	uid, gid int
	size     int64
	mtime    time.Time
}

// fileSet is an image root filesystem under construction, keyed by absolute path.
type fileSet struct {
	entries map[string]*entry
}

func newFileSet() *fileSet { return &fileSet{entries: map[string]*entry{}} }

// epoch is the mtime of everything we generate, so identical inputs give identical layers.
var epoch = time.Unix(0, 0).UTC()

func (f *fileSet) addData(p string, mode fs.FileMode, uid, gid int, data []byte) {
	f.entries[p] = &entry{data: data, mode: mode, uid: uid, gid: gid, size: int64(len(data)), mtime: epoch}
}

func (f *fileSet) addDir(p string, mode fs.FileMode, uid, gid int) {
	f.entries[p] = &entry{dir: true, mode: mode, uid: uid, gid: gid, mtime: epoch}
}

func (f *fileSet) addLink(p, target string) {
	f.entries[p] = &entry{link: target, mode: 0o777, mtime: epoch}
}

// addHost copies a host path into the image at the same path. Symlinks met on the way, in
// directories too (/lib -> usr/lib on merged-/usr Debian), are kept as symlinks and their
// targets copied, so the path resolves inside the image exactly as on the host.
func (f *fileSet) addHost(p string) error {
	real, err := f.follow(p, 0)
	if err != nil {
		return err
	}
	st, err := os.Stat(real)
	if err != nil {
		return err
	}
	switch {
	case st.IsDir():
		if _, ok := f.entries[real]; !ok {
			f.entries[real] = &entry{dir: true, mode: st.Mode().Perm(), mtime: st.ModTime()}
		}
	case st.Mode().IsRegular():
		// setuid/setgid bits are dropped: nothing in these images may raise privileges.
		f.entries[real] = &entry{src: real, mode: st.Mode().Perm(), size: st.Size(), mtime: st.ModTime()}
	default:
		return fmt.Errorf("%s: unsupported file type %s", real, st.Mode().Type())
	}
	return nil
}

// follow resolves p component by component, recording each symlink it crosses.
func (f *fileSet) follow(p string, hops int) (string, error) {
	if hops > 40 {
		return "", fmt.Errorf("%s: too many levels of symbolic links", p)
	}
	p = filepath.Clean(p)
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("%s: not an absolute path", p)
	}
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	cur := "/"
	for i, part := range parts {
		next := filepath.Join(cur, part)
		st, err := os.Lstat(next)
		if err != nil {
			return "", err
		}
		if st.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		target, err := os.Readlink(next)
		if err != nil {
			return "", err
		}
		f.addLink(next, target)
		resolved := target
		if !filepath.IsAbs(target) {
			resolved = filepath.Join(cur, target)
		}
		rest := append([]string{resolved}, parts[i+1:]...)
		return f.follow(filepath.Join(rest...), hops+1)
	}
	return cur, nil
}

// addTree copies a host directory tree, skipping paths for which skip returns true.
func (f *fileSet) addTree(root string, skip func(string) bool) error {
	real, err := f.follow(root, 0)
	if err != nil {
		return err
	}
	return filepath.WalkDir(real, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if skip != nil && skip(p) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			f.addLink(p, target)
			if _, err := os.Stat(p); err != nil {
				return nil // dangling on the host too: keep the link, nothing to copy
			}
			return f.addHost(p)
		}
		return f.addHost(p)
	})
}

// elfFiles lists the regular files whose content starts with the ELF magic.
func (f *fileSet) elfFiles() ([]string, error) {
	var out []string
	for p, e := range f.entries {
		if e.src == "" || e.size < 4 {
			continue
		}
		ok, err := isELF(e.src)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out, nil
}

func isELF(p string) (bool, error) {
	fh, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer fh.Close()
	magic := make([]byte, 4)
	if _, err := io.ReadFull(fh, magic); err != nil {
		return false, nil
	}
	return bytes.Equal(magic, []byte("\x7fELF")), nil
}

// paths returns every path to write, with the parent directories of each, sorted so parents
// come first.
func (f *fileSet) paths() []string {
	all := map[string]bool{}
	for p := range f.entries {
		for d := p; d != "/" && d != "."; d = filepath.Dir(d) {
			all[d] = true
		}
	}
	out := make([]string, 0, len(all))
	for p := range all {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

func (f *fileSet) entryFor(p string) *entry {
	if e, ok := f.entries[p]; ok {
		return e
	}
	return &entry{dir: true, mode: 0o755, mtime: epoch}
}

// manifest is a stable text listing of the file set; its hash is part of the cache key, so a
// changed package file, library or source rebuilds the image.
func (f *fileSet) manifest() string {
	var b strings.Builder
	for _, p := range f.paths() {
		e := f.entryFor(p)
		sum := ""
		if e.src == "" && !e.dir && e.link == "" {
			h := sha256.Sum256(e.data)
			sum = hex.EncodeToString(h[:8])
		}
		fmt.Fprintf(&b, "%s %o %d:%d dir=%t link=%q size=%d mtime=%d data=%s\n",
			p, e.mode, e.uid, e.gid, e.dir, e.link, e.size, e.mtime.Unix(), sum)
	}
	return b.String()
}

// writeTar writes the file set as one uncompressed layer tar.
func (f *fileSet) writeTar(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	tw := tar.NewWriter(bw)
	for _, p := range f.paths() {
		e := f.entryFor(p)
		hdr := &tar.Header{
			Name:    strings.TrimPrefix(p, "/"),
			Mode:    int64(e.mode),
			Uid:     e.uid,
			Gid:     e.gid,
			ModTime: e.mtime,
			Format:  tar.FormatPAX,
		}
		switch {
		case e.dir:
			hdr.Typeflag, hdr.Name = tar.TypeDir, hdr.Name+"/"
		case e.link != "":
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.link
		default:
			hdr.Typeflag, hdr.Size = tar.TypeReg, e.size
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		if e.src == "" {
			if _, err := tw.Write(e.data); err != nil {
				return err
			}
			continue
		}
		if err := copyFile(tw, e.src, e.size); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

func copyFile(w io.Writer, src string, size int64) error {
	fh, err := os.Open(src)
	if err != nil {
		return err
	}
	defer fh.Close()
	n, err := io.Copy(w, io.LimitReader(fh, size))
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	if n != size {
		return fmt.Errorf("%s: changed while building the image (read %d of %d bytes)", src, n, size)
	}
	return nil
}
