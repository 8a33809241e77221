"""Local files that hold backups and bundles: private modes, and I/O errors a person can act on.

Cases:
- the local backup store writes every object 0600 in 0700 directories (root included), whatever
  the umask, and tightens a root that was created 0755;
- the bundle store writes its text and metadata 0600 in 0700 directories;
- a full disk (writes to /dev/full) is a StorageError naming the file and "no space left on
  device", with no chained traceback, and the partial file is gone;
- a directory the process may not write (0500, without CAP_DAC_OVERRIDE when running as root) is a
  StorageAccessDenied naming the directory and what to do, in one line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llm_cost_ops_ops.bundles.model import load_documents
from llm_cost_ops_ops.bundles.store import BundleStore
from llm_cost_ops_ops.storage import local
from llm_cost_ops_ops.storage.errors import StorageError
from llm_cost_ops_ops.storage.local import LocalDirectoryStore

pytestmark = pytest.mark.unit


def _modes(root: Path) -> tuple[set[int], set[int]]:
    files, dirs = set(), {root.stat().st_mode & 0o777}
    for path in root.rglob("*"):
        (dirs if path.is_dir() else files).add(path.stat().st_mode & 0o777)
    return files, dirs


@pytest.fixture
def loose_umask():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_backup_store_files_are_private(tmp_path: Path, loose_umask: None) -> None:
    root = tmp_path / "backups"
    root.mkdir(mode=0o755)
    store = LocalDirectoryStore(root)
    store.check()
    store.put_bytes("prod/2026/11/26/x.manifest.json", b"{}")
    with store.open_upload("prod/2026/11/26/x.dump.zst") as upload:
        upload.write(b"dump")
        upload.commit()
    files, dirs = _modes(root)
    assert files == {0o600} and dirs == {0o700}
    assert len(list(root.rglob("*.*"))) == 2


def test_bundle_store_files_are_private(tmp_path: Path, loose_umask: None, render_overlays) -> None:
    bundle = render_overlays["dev"]
    store = BundleStore(tmp_path / "bundles")
    path = store.put(bundle)
    assert load_documents(path.read_text())
    files, dirs = _modes(tmp_path / "bundles")
    assert files == {0o600} and dirs == {0o700}


def test_full_disk_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # /dev/full answers every write with ENOSPC, as a full filesystem does.
    monkeypatch.setattr(local, "open_private", lambda _path: open("/dev/full", "wb", buffering=0))  # noqa: SIM115
    store = LocalDirectoryStore(tmp_path)
    with pytest.raises(StorageError) as caught:
        store.put_bytes("dev/2026/11/26/b.dump.zst", b"x" * 4096)
    message = str(caught.value)
    assert message.startswith("local backup store: no space left on device writing ")
    assert str(tmp_path / "dev/2026/11/26/b.dump.zst") in message and "\n" not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert list(store.list_objects("")) == [] and store.pending_uploads("") == []


@pytest.mark.skipif(os.geteuid() == 0 and not shutil.which("setpriv"), reason="needs setpriv as root")
def test_permission_denied_names_the_directory(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    script = (
        "import sys\n"
        "from llm_cost_ops_ops.storage.local import LocalDirectoryStore\n"
        "from llm_cost_ops_ops.storage.errors import StorageAccessDenied\n"
        "try:\n"
        f"    LocalDirectoryStore({str(locked)!r}).put_bytes('dev/a.manifest.json', b'{{}}')\n"
        "except StorageAccessDenied as exc:\n"
        "    print(exc)\n"
        "    sys.exit(3)\n"
    )
    # As root, drop the capability that ignores file modes, so the kernel says EACCES as it does
    # to the user Dagster runs as.
    drop = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search", "--"]
    done = subprocess.run(
        [*(drop if os.geteuid() == 0 else []), sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    locked.chmod(0o700)
    assert done.returncode == 3, done.stderr
    line = done.stdout.strip()
    assert line.startswith(f"local backup store: permission denied on {locked} (creating {locked}/dev/")
    assert "point the store at another directory" in line and "Traceback" not in done.stderr
