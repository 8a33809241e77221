"""Local files that may hold data or secrets (backups, manifests, stored bundles): written 0600 in
0700 directories, and an OSError told as one line naming the path and what to do.

Modes are set explicitly (not left to the umask), so another user of the machine can read neither
a dump with the platform's rows nor a bundle with an overlay's Secret values.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import IO

FILE_MODE = 0o600
DIRECTORY_MODE = 0o700


def private_directory(path: Path, root: Path | None = None) -> None:
    """Create `path` 0700, with its missing parents up to `root` (which must hold it); directories
    from `root` down to `path` that already exist lose their group and other bits (the owner's are
    never added: a directory its owner made read-only stays so). Raises OSError."""
    chain = [path]
    if root is not None and root != path:
        chain += [root / parent for parent in path.relative_to(root).parents]
    for directory in reversed(chain):
        try:
            directory.mkdir(mode=DIRECTORY_MODE)
            directory.chmod(DIRECTORY_MODE)  # mkdir's mode is cut by the umask
        except FileExistsError:
            mode = directory.stat().st_mode & 0o777
            if mode & 0o077:
                directory.chmod(mode & DIRECTORY_MODE)


def open_private(path: Path) -> IO[bytes]:
    """A new file opened for writing, 0600 whatever the umask. Raises OSError."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return os.fdopen(fd, "wb")


def describe_os_error(exc: OSError, path: Path, doing: str) -> str:
    """One line: what failed on which path, and what to do about it."""
    code = exc.errno
    if code == errno.ENOSPC or code == errno.EDQUOT:
        return (
            f"no space left on device {doing} {path}: free space on the filesystem holding "
            f"{path.parent}, or point the store at another directory"
        )
    if code in (errno.EACCES, errno.EPERM):
        where = Path(exc.filename) if exc.filename else path
        where = where if where.exists() else where.parent  # creating it: its directory refused
        return (
            f"permission denied on {where} ({doing} {path}): let user id {os.geteuid()} write there "
            "(owner or mode), or point the store at another directory"
        )
    if code == errno.EROFS:
        return f"read-only file system {doing} {path}: point the store at a writable directory"
    return f"{doing} {path} failed: {exc.strerror or exc}"
