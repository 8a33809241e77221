"""A dump program's stdout as a DumpStream (postgres/dump.py ProcessStream), with a small Python
child standing in for pg_dump.

Cases:
- a program writing in small pieces (pg_dump writes 4 KiB at a time to a pipe) is read in full
  chunks of the size asked for, only the last one shorter, byte for byte what it wrote
- a program writing nothing gives b"" at once
- the archive magic is checked across chunk boundaries: a stream that does not start with it fails
  finish(), one that does passes
- a non-zero exit fails finish() with the status and the program's last stderr lines
"""

from __future__ import annotations

import os
import sys

import pytest

from llm_cost_ops_ops.postgres.backup_errors import DumpFailed
from llm_cost_ops_ops.postgres.dump import CUSTOM_FORMAT_MAGIC, ProcessStream

# 3000 pieces of 4 KiB, each flushed on its own: the pipe sees what pg_dump gives it.
WRITER = """
import sys
out = sys.stdout.buffer
out.write(sys.argv[1].encode())
for i in range(3000):
    out.write(bytes([i % 251]) * 4096)
    out.flush()
"""


def expected(head: str) -> bytes:
    return head.encode() + b"".join(bytes([i % 251]) * 4096 for i in range(3000))


def child(script: str, *args: str) -> ProcessStream:
    return ProcessStream([sys.executable, "-c", script, *args], dict(os.environ), "writer",
                         magic=CUSTOM_FORMAT_MAGIC)  # fmt: skip


def read_all(stream: ProcessStream, size: int) -> list[bytes]:
    chunks = []
    while chunk := stream.read(size):
        chunks.append(chunk)
    return chunks


@pytest.mark.parametrize("size", [1 << 20, 100_000, 3])
def test_small_writes_are_read_in_full_chunks(size: int) -> None:
    stream = child(WRITER, "PGDMP")
    chunks = read_all(stream, size)
    stream.finish()
    assert b"".join(chunks) == expected("PGDMP")
    assert all(len(c) == size for c in chunks[:-1]) and 0 < len(chunks[-1]) <= size


def test_empty_output_ends_at_once() -> None:
    stream = ProcessStream([sys.executable, "-c", "pass"], dict(os.environ), "writer")
    assert stream.read(1 << 20) == b""
    stream.finish()


def test_magic_is_checked_across_chunks() -> None:
    good, bad = child(WRITER, "PGDMP"), child(WRITER, "PGDMX")
    assert b"".join(read_all(good, 2)).startswith(b"PGDMP")
    good.finish()
    read_all(bad, 2)
    with pytest.raises(DumpFailed, match="did not write a custom-format archive"):
        bad.finish()


def test_failure_names_status_and_stderr() -> None:
    script = "import sys; sys.stdout.write('PGDMP'); sys.stderr.write('disk full\\n'); sys.exit(2)"
    stream = child(script)
    read_all(stream, 1 << 20)
    with pytest.raises(DumpFailed, match="writer exited with status 2: disk full"):
        stream.finish()
