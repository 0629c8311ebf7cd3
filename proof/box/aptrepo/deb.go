package aptrepo

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"
)

// Deb is one binary package: its control fields and its files. Build writes it in the format
// dpkg-deb writes (deb(5): an ar archive of debian-binary, control.tar.gz, data.tar.gz).
type Deb struct {
	Name, Version, Arch string
	// Fields are the control fields after Package/Version/Architecture, in order (Depends,
	// Section, ...); Installed-Size is computed.
	Fields [][2]string
	Files  []File
	// Scripts are maintainer scripts by name (postinst, prerm, postrm).
	Scripts map[string]string
}

// File is one entry of the package's data: a directory (Dir), the bytes Data, or the file at
// Source on this machine. Conffile marks a configuration file dpkg keeps when the admin changed it.
type File struct {
	Path     string // absolute, e.g. /usr/bin/kubeadm
	Mode     int64
	Dir      bool
	Data     []byte
	Source   string
	Conffile bool
}

// epoch is every entry's mtime, so the same inputs build the same bytes (a stable repository
// index, and a cache key that means something).
var epoch = time.Unix(1700000000, 0).UTC()

// FileName is the pool file name Debian uses: name_version_arch.deb.
func (d *Deb) FileName() string {
	return fmt.Sprintf("%s_%s_%s.deb", d.Name, d.Version, d.Arch)
}

// Build writes the .deb to w.
func (d *Deb) Build(w io.Writer) error {
	data, sums, size, err := d.dataTar()
	if err != nil {
		return err
	}
	control, err := d.controlTar(sums, size)
	if err != nil {
		return err
	}
	aw := &arWriter{w: w}
	aw.header()
	aw.member("debian-binary", []byte("2.0\n"))
	aw.member("control.tar.gz", control)
	aw.member("data.tar.gz", data)
	return aw.err
}

// dataTar returns data.tar.gz, the md5sums file and the installed size in KiB. Parent
// directories are added as dpkg expects them (./, ./usr/, ./usr/bin/ ...).
func (d *Deb) dataTar() ([]byte, []byte, int64, error) {
	dirs := map[string]bool{}
	var entries []File
	for _, f := range d.Files {
		if !path.IsAbs(f.Path) {
			return nil, nil, 0, fmt.Errorf("%s: file path %q is not absolute", d.Name, f.Path)
		}
		for p := path.Dir(f.Path); p != "/"; p = path.Dir(p) {
			dirs[p] = true
		}
		if f.Dir {
			dirs[f.Path] = true
			continue
		}
		entries = append(entries, f)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	var dirList []string
	for p := range dirs {
		dirList = append(dirList, p)
	}
	sort.Strings(dirList)

	var buf bytes.Buffer
	// BestSpeed: the kube binaries are ~200 MB; the default level triples the build time for a
	// few per cent of size, and the packages only travel over the box's bridge.
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	tw := tar.NewWriter(gz)
	hdr := func(name string, mode int64, typ byte, size int64) error {
		return tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Typeflag: typ, Size: size, ModTime: epoch,
			Uname: "root", Gname: "root", Format: tar.FormatGNU})
	}
	if err := hdr("./", 0o755, tar.TypeDir, 0); err != nil {
		return nil, nil, 0, err
	}
	var total int64
	for _, p := range dirList {
		mode := int64(0o755)
		for _, f := range d.Files {
			if f.Dir && f.Path == p && f.Mode != 0 {
				mode = f.Mode
			}
		}
		if err := hdr("."+p+"/", mode, tar.TypeDir, 0); err != nil {
			return nil, nil, 0, err
		}
		total += 1024
	}
	var sums strings.Builder
	for _, f := range entries {
		body := f.Data
		if f.Source != "" {
			b, err := os.ReadFile(f.Source)
			if err != nil {
				return nil, nil, 0, fmt.Errorf("%s: %w", d.Name, err)
			}
			body = b
		}
		if err := hdr("."+f.Path, f.Mode, tar.TypeReg, int64(len(body))); err != nil {
			return nil, nil, 0, err
		}
		if _, err := tw.Write(body); err != nil {
			return nil, nil, 0, err
		}
		s := md5.Sum(body)
		fmt.Fprintf(&sums, "%s  %s\n", hex.EncodeToString(s[:]), strings.TrimPrefix(f.Path, "/"))
		total += int64(len(body))
	}
	if err := tw.Close(); err != nil {
		return nil, nil, 0, err
	}
	if err := gz.Close(); err != nil {
		return nil, nil, 0, err
	}
	return buf.Bytes(), []byte(sums.String()), (total + 1023) / 1024, nil
}

// Control is the control file: Package, Version, Architecture, the Fields, Installed-Size.
func (d *Deb) Control(installedKiB int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Package: %s\nVersion: %s\nArchitecture: %s\n", d.Name, d.Version, d.Arch)
	for _, f := range d.Fields {
		if f[0] == "Description" {
			continue
		}
		fmt.Fprintf(&b, "%s: %s\n", f[0], f[1])
	}
	fmt.Fprintf(&b, "Installed-Size: %d\n", installedKiB)
	for _, f := range d.Fields {
		if f[0] == "Description" {
			fmt.Fprintf(&b, "Description: %s\n", f[1])
		}
	}
	return b.String()
}

func (d *Deb) controlTar(md5sums []byte, installedKiB int64) ([]byte, error) {
	members := map[string][]byte{"control": []byte(d.Control(installedKiB)), "md5sums": md5sums}
	var conf strings.Builder
	for _, f := range d.Files {
		if f.Conffile {
			conf.WriteString(f.Path + "\n")
		}
	}
	if conf.Len() > 0 {
		members["conffiles"] = []byte(conf.String())
	}
	for name, s := range d.Scripts {
		members[name] = []byte(s)
	}
	names := make([]string, 0, len(members))
	for n := range members {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	if err := tw.WriteHeader(&tar.Header{Name: "./", Mode: 0o755, Typeflag: tar.TypeDir, ModTime: epoch, Format: tar.FormatGNU}); err != nil {
		return nil, err
	}
	for _, n := range names {
		mode := int64(0o644)
		if _, script := d.Scripts[n]; script {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Name: "./" + n, Mode: mode, Typeflag: tar.TypeReg, Size: int64(len(members[n])),
			ModTime: epoch, Uname: "root", Gname: "root", Format: tar.FormatGNU}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(members[n]); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// arWriter writes the common ar format dpkg reads (deb(5)).
type arWriter struct {
	w   io.Writer
	err error
}

func (a *arWriter) write(p []byte) {
	if a.err == nil {
		_, a.err = a.w.Write(p)
	}
}

func (a *arWriter) header() { a.write([]byte("!<arch>\n")) }

func (a *arWriter) member(name string, body []byte) {
	a.write([]byte(fmt.Sprintf("%-16s%-12d%-6d%-6d%-8s%-10d`\n", name, epoch.Unix(), 0, 0, "100644", len(body))))
	a.write(body)
	if len(body)%2 == 1 {
		a.write([]byte("\n"))
	}
}
