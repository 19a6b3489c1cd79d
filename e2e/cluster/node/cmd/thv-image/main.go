// Command thv-image packs a root filesystem directory into a single-layer
// container image archive, with no container engine: the image configuration
// (entrypoint, user, ports, labels) comes from flags, the layer from the
// directory, and go-containerregistry writes the archive. The archive is the
// `docker save` format, which `ctr images import`, `docker load`,
// `kind load image-archive` and `k3d image import` all read.
//
// The output is reproducible: files are owned by root with their modes kept,
// and every timestamp is SOURCE_DATE_EPOCH (0 when unset).
//
//	thv-image --rootfs DIR --tag REPO:TAG --out FILE.tar \
//	  --entrypoint /usr/local/bin/x --user 65532:65532 \
//	  [--expose 8080/tcp]... [--label k=v]... [--env K=V]... [--workdir /]
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "thv-image: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		rootfs, tag, out, user, workdir string
		entrypoint, cmd, exposes, labels, envs multi
	)
	flag.StringVar(&rootfs, "rootfs", "", "directory whose contents become the image's only layer")
	flag.StringVar(&tag, "tag", "", "image reference, e.g. ghcr.io/org/name:1.0.0")
	flag.StringVar(&out, "out", "", "archive to write")
	flag.StringVar(&user, "user", "", "user the image runs as (uid:gid)")
	flag.StringVar(&workdir, "workdir", "/", "working directory")
	flag.Var(&entrypoint, "entrypoint", "entrypoint element (repeat for each)")
	flag.Var(&cmd, "cmd", "default argument (repeat for each)")
	flag.Var(&exposes, "expose", "exposed port, e.g. 8080/tcp (repeatable)")
	flag.Var(&labels, "label", "label key=value (repeatable)")
	flag.Var(&envs, "env", "environment KEY=VALUE (repeatable)")
	flag.Parse()
	if rootfs == "" || tag == "" || out == "" {
		return fmt.Errorf("--rootfs, --tag and --out are required")
	}
	ref, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("--tag %q: %w", tag, err)
	}
	epoch := int64(0)
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if epoch, err = strconv.ParseInt(s, 10, 64); err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", s, err)
		}
	}
	stamp := time.Unix(epoch, 0).UTC()

	layerTar, err := tarDir(rootfs, stamp)
	if err != nil {
		return err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return fmt.Errorf("layer: %w", err)
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: stamp}, CreatedBy: "thv-image --rootfs " + filepath.Base(rootfs)},
	})
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.Created = v1.Time{Time: stamp}
	cf.Config.Entrypoint = entrypoint
	cf.Config.Cmd = cmd
	cf.Config.User = user
	cf.Config.WorkingDir = workdir
	cf.Config.Env = envs
	cf.Config.Labels = map[string]string{}
	for _, l := range labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			return fmt.Errorf("--label %q: want key=value", l)
		}
		cf.Config.Labels[k] = v
	}
	if len(exposes) > 0 {
		cf.Config.ExposedPorts = map[string]struct{}{}
		for _, p := range exposes {
			cf.Config.ExposedPorts[p] = struct{}{}
		}
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	if err := tarball.WriteToFile(out, ref, img); err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	size, err := layer.Size()
	if err != nil {
		return err
	}
	fmt.Printf("%s\t%s\t%.1f MiB compressed\n", ref.String(), digest, float64(size)/(1<<20))
	return nil
}

// tarDir writes every entry under root, sorted, owned by 0:0, with mtime stamp.
func tarDir(root string, stamp time.Time) ([]byte, error) {
	var paths []string
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != root {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading --rootfs: %w", err)
	}
	sort.Strings(paths)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		info, err := os.Lstat(p)
		if err != nil {
			return nil, err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return nil, err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return nil, err
		}
		rel, _ := filepath.Rel(root, p)
		hdr.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		hdr.ModTime, hdr.AccessTime, hdr.ChangeTime = stamp, time.Time{}, time.Time{}
		hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return nil, err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
