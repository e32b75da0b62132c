#!/bin/sh
# Copy into /slim only what the action runs, for the Dockerfile's final `FROM scratch` stage: the Python
# interpreter with its standard library and the installed packages, the shared libraries those load (found
# with ldd), /bin/sh and env (the credential helper's script), /etc, CA certificates and the Debian copyright
# files. Everything else of the base stays behind: apt, dpkg, Perl, bash, coreutils, locales, iconv modules,
# pip. The same script serves python:3.12-slim (/usr/local) and the tests' Debian Python (/usr/lib/python3*).
set -eu
out=/slim
py=$(command -v python)
# The interpreter's files, less what the action never imports (GUIs, tests, packaging, the pip it ships; the
# databases and terminal modules, whose libraries alone are some 4 MB; dulwich's command line, porcelain and
# servers: the action only reads one commit).
python - "$out" <<'PY'
import os, shutil, sys, sysconfig
out = sys.argv[1]
drop = {"ensurepip", "idlelib", "tkinter", "turtledemo", "lib2to3", "pydoc_data", "test", "tests", "idle_test",
        "pip", "setuptools", "wheel", "_distutils_hack", "pkg_resources", "__pycache__", "sqlite3", "dbm", "curses"}
unused = ("_tkinter", "_test", "xxlimited", "_ctypes_test", "_sqlite3", "_dbm", "_gdbm", "_curses", "readline",
          "_diff_tree")
unused_dulwich = {"cli.py", "web.py", "server.py", "client.py", "porcelain", "contrib"}
roots = {sysconfig.get_path(name) for name in ("stdlib", "platstdlib", "purelib", "platlib")}
roots |= {p for p in sys.path if p.startswith(("/usr/local/lib", "/usr/lib")) and os.path.isdir(p)}
for root in sorted(roots):
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in drop and not d.startswith(("pip-", "setuptools-", "wheel-"))
                   and not d.startswith("config-") and not (folder.endswith("/dulwich") and d in unused_dulwich)]
        if folder == root and root.endswith("-packages"):
            files = [f for f in files if f != "distutils-precedence.pth"]
        target = out + folder
        os.makedirs(target, exist_ok=True)
        for name in files:
            if name.startswith(unused) or name.endswith((".a", ".exe")):
                continue
            if folder.endswith("/dulwich") and name in unused_dulwich:
                continue
            shutil.copy2(os.path.join(folder, name), os.path.join(target, name), follow_symlinks=False)
PY
# merged /usr: /bin, /lib, /lib64 and /sbin are symlinks into /usr on trixie; made first, so that the copies
# below land under /usr as in the base.
for link in /bin /lib /lib64 /sbin; do
    if [ -L "$link" ]; then
        cp -a "$link" "$out$link"
        mkdir -p "$out$(readlink -f "$link")"
    fi
done
# The interpreter and its names, /bin/sh and env; then every shared library any of them, or a Python
# extension module, loads (ldd resolves the whole closure), and glibc's NSS modules (loaded by name, not linked).
for tool in "$py" "$(readlink -f "$py")" "$(command -v python3)" /bin/sh /usr/bin/dash /usr/bin/env; do
    [ -e "$tool" ] && cp -a --parents "$tool" "$out"
done
{
    for tool in "$(readlink -f "$py")" /usr/bin/dash /usr/bin/env; do ldd "$tool"; done
    find "$out" -name '*.so*' -type f -exec ldd {} \; 2>/dev/null
} | awk '/=>/ { print $3 } /^\t\/[^ ]+ \(/ { print $1 }' | grep '^/' | grep -v "^$out/" | sort -u >/tmp/libs
ls /usr/lib/*/libnss_files.so.* /usr/lib/*/libnss_dns.so.* >>/tmp/libs 2>/dev/null || true
while read -r lib; do
    cp -a --parents "$lib" "$out"
    real=$(readlink -f "$lib")
    [ "$real" = "$lib" ] || cp -a --parents "$real" "$out"
done </tmp/libs
cp -a /etc "$out/etc"
mkdir -p "$out/usr/share/doc" "$out/tmp" "$out/root" "$out/var/tmp"
chmod 1777 "$out/tmp" "$out/var/tmp"
[ -d /usr/share/ca-certificates ] && cp -a --parents /usr/share/ca-certificates "$out"
[ -d /usr/lib/ssl ] && cp -a --parents /usr/lib/ssl "$out"
for copyright in /usr/share/doc/*/copyright; do cp -a --parents "$copyright" "$out"; done
cp -a --parents /opt/image-tagger "$out"
# Byte-code for exactly what the entry points import, on every path (python:3.12-slim ships none, and the
# image runs with PYTHONDONTWRITEBYTECODE): each job would otherwise compile them again before its build.
chroot "$out" python -c "import sys; sys.path[:0] = ['/opt/image-tagger/src']; \
import image_tagger.entry.action, image_tagger.pullrequest.action, image_tagger.edges.credrelay, \
image_tagger.edges.notify, image_tagger.edges.registry.session, image_tagger.edges.manifests, \
image_tagger.fluxrules.automation, image_tagger.fluxrules.policy, docker, github, requests, \
dulwich.repo, dulwich.objectspec, image_tagger.edges.signer, nacl.secret, \
cryptography.hazmat.primitives.asymmetric.ec, cryptography.hazmat.primitives.serialization"
