#!/usr/bin/env bash
# image-rootfs.sh BINARY DEST: lay out the root filesystem of one product image in DEST.
# Shared by `make images` (scripts/images.sh) and the Dockerfile, so both build the same
# files: the binary in /usr/local/bin (debug info stripped), the C runtime it links
# (each library ldd resolves, and the ELF loader: what distroless/cc ships), CA
# certificates, /etc/passwd and /etc/group with the nonroot user 65532, its home and
# /tmp. No shell, no package manager.
set -euo pipefail
bin="$1" root="$2"
name="$(basename "$bin")"
die() { printf 'image-rootfs: ERROR: %s\n' "$*" >&2; exit 1; }
[[ -x "$bin" ]] || die "$bin is not an executable"
install -d -m 0755 "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/home/nonroot"
install -d -m 1777 "$root/tmp"
objcopy --strip-debug "$bin" "$root/usr/local/bin/$name"
chmod 0755 "$root/usr/local/bin/$name"
while read -r lib; do
  [[ -n "$lib" ]] || continue
  install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
done < <(ldd "$bin" | awk '/=> \//{print $3} /^\t\/.*ld-linux/{print $1}')
[[ -e "$root/lib64/ld-linux-x86-64.so.2" ]] || die "$bin: ldd found no ELF loader (/lib64/ld-linux-x86-64.so.2)"
[[ -f /etc/ssl/certs/ca-certificates.crt ]] || die "CA certificates missing: apt-get install ca-certificates"
install -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"
chmod 0644 "$root/etc/passwd" "$root/etc/group"
