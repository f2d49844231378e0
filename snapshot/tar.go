package snapshot

import (
	"archive/tar"
	"compress/gzip"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// TarName reports whether file names an archive Tar writes: .tar, .tar.gz
// or .tgz.
func TarName(file string) bool {
	for _, ext := range []string{".tar", ".tar.gz", ".tgz"} {
		if strings.HasSuffix(file, ext) && len(file) > len(ext) {
			return true
		}
	}
	return false
}

// Tar writes the tree at dir into an archive at file (gzip-compressed
// when the name ends in .gz or .tgz), with paths relative to the tree.
func Tar(dir, file string) (err error) {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(file)
		}
	}()
	var w io.Writer = f
	if strings.HasSuffix(file, ".gz") || strings.HasSuffix(file, ".tgz") {
		zw := gzip.NewWriter(f)
		defer func() {
			if cerr := zw.Close(); err == nil {
				err = cerr
			}
		}()
		w = zw
	}
	tw := tar.NewWriter(w)
	defer func() {
		if cerr := tw.Close(); err == nil {
			err = cerr
		}
	}()
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		hdr.Name = filepath.ToSlash(rel)
		if d.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "root", "root"
		if caps, err := getxattr(p, "security.capability"); err == nil && len(caps) > 0 {
			hdr.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": string(caps)}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(tw, src)
		return err
	})
}
