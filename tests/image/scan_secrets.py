#!/usr/bin/env python3
"""Search files, directories and (compressed) layer tarballs for secret byte strings.

    scan_secrets.py NEEDLE_DIR [--binary-secret S --binary-public P] PATH...

Every file in NEEDLE_DIR is one needle (its raw bytes; the file name is its label). With
--binary-secret/--binary-public, a 32-byte window of the binary secret-key export that does not
occur in the public export is added as the needle "secret-key-binary" (secret material proper,
not the public part the published keyring legitimately holds).

Each PATH is a file (gzip/zstd layers are searched compressed and decompressed) or a directory
(walked, regular files only, symlinks not followed). Prints one "FOUND <label> in <file>" line per
hit and a summary; exit status 1 when anything was found, 2 on usage errors.
"""
import gzip
import os
import subprocess
import sys


def load_needles(argv):
    if not argv:
        sys.exit(2)
    needle_dir, rest = argv[0], argv[1:]
    needles = {}
    for name in sorted(os.listdir(needle_dir)):
        data = open(os.path.join(needle_dir, name), "rb").read()
        if len(data) < 8:
            print(f"needle {name} is too short to be meaningful", file=sys.stderr)
            sys.exit(2)
        needles[name] = data
    secret = public = None
    paths = []
    i = 0
    while i < len(rest):
        if rest[i] == "--binary-secret":
            secret = open(rest[i + 1], "rb").read()
            i += 2
        elif rest[i] == "--binary-public":
            public = open(rest[i + 1], "rb").read()
            i += 2
        else:
            paths.append(rest[i])
            i += 1
    if secret is not None:
        public = public or b""
        # Windows from the end: the (encrypted) secret key material sits at the end of the
        # secret-key packet; the public part at the start is shared with the public export.
        for off in range(len(secret) - 32, -1, -1):
            w = secret[off:off + 32]
            if w not in public:
                needles["secret-key-binary"] = w
                break
        else:
            print("no secret-only window in the secret export", file=sys.stderr)
            sys.exit(2)
    return needles, paths


def decompressed(data):
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except Exception:
            return None
    if data[:4] == b"\x28\xb5\x2f\xfd":
        try:
            return subprocess.run(["zstd", "-q", "-dc"], input=data, capture_output=True, check=True).stdout
        except Exception:
            return None
    return None


def main():
    needles, paths = load_needles(sys.argv[1:])
    found = 0
    files = 0
    size = 0

    def scan(path):
        nonlocal found, files, size
        try:
            data = open(path, "rb").read()
        except OSError as e:
            print(f"cannot read {path}: {e}", file=sys.stderr)
            return
        files += 1
        size += len(data)
        blobs = [data]
        d = decompressed(data)
        if d is not None:
            blobs.append(d)
            size += len(d)
        for label, n in needles.items():
            if any(n in b for b in blobs):
                found += 1
                print(f"FOUND {label} in {path}")

    for p in paths:
        if os.path.isdir(p) and not os.path.islink(p):
            for root, dirs, names in os.walk(p, followlinks=False):
                for n in names:
                    f = os.path.join(root, n)
                    if os.path.isfile(f) and not os.path.islink(f):
                        scan(f)
        elif os.path.isfile(p):
            scan(p)
    print(f"scanned {files} files, {size // (1024 * 1024)} MiB, for {len(needles)} needles: {found} found")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
