"""PyTorch greedy decoding of a zoo checkpoint vs whisper.cpp greedy on its exported file.

Run with the training venv (torch + openai-whisper):

    PYTHONPATH=python /work/zoo-work/venv-train/bin/python bench/zoo_parity.py \
        --checkpoint /work/zoo-work/micro-s/best.pt --ggml ggml-micro-s.bin \
        --manifest /work/zoo-work/corpus/heldout/manifest.jsonl --n 100

The PyTorch half decodes the features training used (``zoo.features.log_mel_window``, 10 s
window) with prompt ``[sot, no_timestamps]`` and whisper.cpp's suppression (no timestamps or
special tokens; no blank or end as the first token). The whisper.cpp half runs in a subprocess
of ``--cpp-python`` (a venv with pywhispercpp, default /work/main/.venv) through our backend:
greedy, no timestamps, 1 thread, ``audio_ctx`` of the file. Reports the share of identical
transcripts (target >= 95%) and both WERs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def cpp_half(ggml: Path, audio_paths: list[str], out: Path) -> None:
    from whisper_cascade.modelfile import validate_model
    from whisper_cascade.zoo.ship import transcribe_fn

    fn = transcribe_fn(ggml, validate_model(ggml))
    texts = [fn(Path(p))["text"] for p in audio_paths]
    out.write_text(json.dumps(texts), encoding="utf-8")


def torch_half(checkpoint: Path, audio_paths: list[str], max_tokens: int) -> list[str]:
    import soundfile as sf
    import torch
    from whisper.model import ModelDimensions, Whisper
    from whisper.tokenizer import get_tokenizer

    from whisper_cascade.zoo.features import log_mel_window
    from whisper_cascade.zoo.train import WINDOW_S

    torch.set_num_threads(1)
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    model = Whisper(ModelDimensions(**state["dims"]))
    model.load_state_dict(state["model_state_dict"])
    model.eval()
    print(f"checkpoint step {state.get('step')}", file=sys.stderr)
    tok = get_tokenizer(multilingual=False)
    eot, blank = tok.eot, tok.encode(" ")[0]
    texts = []
    with torch.no_grad():
        for path in audio_paths:
            audio = sf.read(path, dtype="float32")[0]
            mel = torch.from_numpy(log_mel_window(audio, WINDOW_S).astype("float32"))[None]
            xa = model.encoder(mel)
            tokens = [tok.sot, tok.no_timestamps]
            out: list[int] = []
            for step in range(max_tokens):
                logits = model.decoder(torch.tensor([tokens]), xa)[0, -1]
                logits[eot + 1 :] = -float("inf")  # specials and timestamps
                if step == 0:
                    logits[[blank, eot]] = -float("inf")
                nxt = int(logits.argmax())
                if nxt == eot:
                    break
                out.append(nxt)
                tokens.append(nxt)
            texts.append(tok.decode(out).strip())
    return texts


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--ggml", type=Path, required=True)
    p.add_argument("--manifest", type=Path, required=True)
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--cpp-python", default="/work/main/.venv/bin/python")
    p.add_argument("--cpp-only", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--show", type=int, default=5, help="print this many differing pairs")
    args = p.parse_args()
    from whisper_cascade.zoo.corpus import read_manifest

    rows: list[dict[str, Any]] = read_manifest(args.manifest)[: args.n]
    paths = [str(r["audio"]) for r in rows]
    if args.cpp_only:
        cpp_half(args.ggml, paths, args.cpp_only)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "cpp.json"
        env = {**os.environ, "PYTHONPATH": str(REPO / "python")}
        cmd = [args.cpp_python, __file__, *sys.argv[1:], "--cpp-only", str(result)]
        subprocess.run(cmd, check=True, env=env, stderr=subprocess.DEVNULL)
        cpp = json.loads(result.read_text(encoding="utf-8"))
    pt = torch_half(args.checkpoint, paths, args.max_tokens)
    from whisper_cascade.evaluation import normalize_text, word_edits

    refs = [str(r["text"]) for r in rows]
    same = [normalize_text(a) == normalize_text(b) for a, b in zip(pt, cpp, strict=True)]

    def wer(hyps: list[str]) -> float:
        edits = [word_edits(r, h) for r, h in zip(refs, hyps, strict=True)]
        return sum(e for e, _ in edits) / sum(w for _, w in edits)

    print(f"utterances         {len(rows)}")
    print(f"identical          {sum(same)} ({100 * sum(same) / len(rows):.1f}%, target >= 95%)")
    print(f"WER PyTorch        {100 * wer(pt):.1f}%")
    print(f"WER whisper.cpp    {100 * wer(cpp):.1f}%")
    shown = 0
    for ref, a, b, ok in zip(refs, pt, cpp, same, strict=True):
        if not ok and shown < args.show:
            print(f"  ref   {ref}\n  torch {a}\n  cpp   {b}")
            shown += 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
