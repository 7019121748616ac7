"""Helpers for the ggml tests: a record-level editor of model files and an isolated
whisper.cpp smoke run (only ever used on files that passed validation)."""

from __future__ import annotations

import struct
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

_LOAD_SCRIPT = """
import sys, numpy as np, _pywhispercpp as pw
ctx = pw.whisper_init_from_file_with_params(sys.argv[1], pw.whisper_context_default_params())
if ctx is None:
    sys.exit(3)
p = pw.whisper_full_default_params(pw.whisper_sampling_strategy.WHISPER_SAMPLING_GREEDY)
p.n_threads = 1
p.no_timestamps = True
p.max_tokens = 8
p.audio_ctx = 64
p.print_progress = False
p.print_realtime = False
x = (np.random.default_rng(0).standard_normal(16000) * 0.1).astype(np.float32)
rc = pw.whisper_full(ctx, p, x, x.size)
n = pw.whisper_full_n_segments(ctx)
pw.whisper_free(ctx)
print(f"RESULT {rc} {n}")
"""


def run_in_whispercpp(path: Path) -> tuple[int, int]:
    """Load ``path`` in real whisper.cpp (in a child process) and decode 1 s of noise;
    returns (whisper_full return code, number of segments)."""
    proc = subprocess.run(
        [sys.executable, "-c", _LOAD_SCRIPT, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")][-1]
    _, rc, n = line.split()
    return int(rc), int(n)


@dataclass
class Record:
    n_dims: int
    name: bytes
    ttype: int
    ne: list[int]
    data: bytes

    def encode(self) -> bytes:
        head = struct.pack("<3i", self.n_dims, len(self.name), self.ttype)
        return head + struct.pack(f"<{len(self.ne)}i", *self.ne) + self.name + self.data


@dataclass
class Parts:
    magic: int
    hparams: list[int]
    filters_head: list[int]
    filters: bytes
    vocab_count: int
    vocab: list[bytes]
    records: list[Record] = field(default_factory=list)
    tail: bytes = b""

    def encode(self) -> bytes:
        out = [struct.pack("<I11i", self.magic, *self.hparams)]
        out.append(struct.pack("<2i", *self.filters_head) + self.filters)
        out.append(struct.pack("<i", self.vocab_count))
        out += [struct.pack("<i", len(t)) + t for t in self.vocab]
        out += [r.encode() for r in self.records]
        out.append(self.tail)
        return b"".join(out)

    def rec(self, name: str) -> Record:
        return next(r for r in self.records if r.name == name.encode())


_TYPE_BYTES = {
    0: (1, 4),
    1: (1, 2),
    2: (32, 18),
    3: (32, 20),
    6: (32, 22),
    7: (32, 24),
    8: (32, 34),
}


def parse(raw: bytes) -> Parts:
    """Split a VALID model file into editable parts."""
    magic, *hp = struct.unpack_from("<I11i", raw, 0)
    pos = 48
    n_mel, n_fft = struct.unpack_from("<2i", raw, pos)
    pos += 8
    filters = raw[pos : pos + 4 * n_mel * n_fft]
    pos += len(filters)
    (count,) = struct.unpack_from("<i", raw, pos)
    pos += 4
    vocab = []
    for _ in range(count):
        (n,) = struct.unpack_from("<i", raw, pos)
        vocab.append(raw[pos + 4 : pos + 4 + n])
        pos += 4 + n
    parts = Parts(magic, hp, [n_mel, n_fft], filters, count, vocab)
    while pos < len(raw):
        n_dims, name_len, ttype = struct.unpack_from("<3i", raw, pos)
        pos += 12
        ne = list(struct.unpack_from(f"<{n_dims}i", raw, pos))
        pos += 4 * n_dims
        name = raw[pos : pos + name_len]
        pos += name_len
        blck, size = _TYPE_BYTES[ttype]
        n = 1
        for d in ne:
            n *= d
        nbytes = n // blck * size
        parts.records.append(Record(n_dims, name, ttype, ne, raw[pos : pos + nbytes]))
        pos += nbytes
    return parts
