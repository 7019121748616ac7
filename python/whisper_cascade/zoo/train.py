"""Train the micro zoo: small Whisper-architecture models of the closed domain, on CPU.

    python -m whisper_cascade.zoo.train --size s --work /work/zoo-work   # resumes
    python -m whisper_cascade.zoo.train --all --work /work/zoo-work      # xs, s, then m

Needs the ``train`` extra (torch + openai-whisper). See docs/zoo.md for the recipe.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch  # type: ignore[import-not-found, unused-ignore]
import torch.nn.functional as F  # type: ignore[import-not-found, unused-ignore]
from whisper.model import ModelDimensions, Whisper  # type: ignore[import-not-found, unused-ignore]

from whisper_cascade.zoo import features as feat
from whisper_cascade.zoo import grow
from whisper_cascade.zoo.corpus import read_manifest
from whisper_cascade.zoo.export import load_npz, save_npz
from whisper_cascade.zoo.grammar import load_grammar

WINDOW_S = 10.0
N_TEXT_CTX = 128
N_VOCAB = 51864


@dataclass(frozen=True)
class Recipe:
    """Architecture and schedule of one zoo size."""

    d_model: int
    heads: int
    enc_layers: int
    dec_layers: int
    steps: int
    lr: float
    batch: int = 24
    warmup: int = 400
    # First step that mixes in the --extra-train corpus (the slot-swapped sentences).
    extra_from: int = 0
    # Start from this size's shipped checkpoint (WORK/micro-<size>/best.npz), widened to
    # d_model (zoo.grow.widen) instead of from random weights.
    grow_from: str = ""


MIN_RAMP_STEPS = 2_400
# The models were trained in legs, each resume a warm restart of the cosine: xs 5 000 then
# 10 000 (a third leg with slot-swapped sentences, to 12 000, never beat its step-9 500 best);
# s 8 000, 12 000, 15 000 with swapped sentences from step 12 000, then 18 000 with those and a
# corpus of 42 more voices (shipped: its last checkpoint, --promote-last). A from-scratch m
# (d 256, 4 + 3 layers, 13 550 steps) never beat s; since session 10 m is s's shipped
# checkpoint widened 2x (zoo.grow, same outputs) and trained 2 400 steps on all the corpora
# at a low rate (3e-4 disturbed the grown model: training loss 0.96 -> 1.09 in 250 steps);
# session 13 grew it again from the session-12 micro-s (shipped: its last step, 2 400).
# s trained from scratch in the same way never pulled ahead of xs; since session 14 it is xs's
# shipped checkpoint widened 2x and trained 2 000 steps at 2e-4 (the way m grows from s).
# The budgets are the totals of the last leg.
SIZES: dict[str, Recipe] = {
    "xs": Recipe(64, 1, 3, 3, steps=10_000, lr=1.5e-3),
    "s": Recipe(128, 2, 3, 3, steps=2_000, lr=2.0e-4, warmup=200, grow_from="xs"),
    "m": Recipe(256, 4, 3, 3, steps=2_400, lr=1.2e-4, warmup=200, grow_from="s"),
    "l": Recipe(384, 6, 4, 4, steps=5_000, lr=8e-4),
}


# What --all trains, in order (m grows from s's checkpoint); l is trained only when asked for.
SHIPPED = ("xs", "s", "m")


def dims_for(recipe: Recipe) -> Any:
    """The openai-whisper ``ModelDimensions`` of a recipe (10 s window, English-only vocab)."""
    return ModelDimensions(
        n_mels=feat.N_MELS,
        n_audio_ctx=int(WINDOW_S * 100) // 2,
        n_audio_state=recipe.d_model,
        n_audio_head=recipe.heads,
        n_audio_layer=recipe.enc_layers,
        n_vocab=N_VOCAB,
        n_text_ctx=N_TEXT_CTX,
        n_text_state=recipe.d_model,
        n_text_head=recipe.heads,
        n_text_layer=recipe.dec_layers,
    )


class DomainModel(torch.nn.Module):  # type: ignore[misc]
    """A Whisper model whose token embedding is trained only on the domain's rows.

    The other rows stay exactly zero, so their logits are 0: the loss adds one logit of
    value ``log(n_unused)`` that stands for all of them, which equals the full-vocabulary
    softmax of the exported model."""

    def __init__(self, dims: Any, used: Sequence[int]) -> None:
        super().__init__()
        self.whisper = Whisper(dims)
        self.whisper.decoder.token_embedding.weight.requires_grad_(False)
        used_t = torch.tensor(list(used), dtype=torch.long)
        local = torch.full((dims.n_vocab,), -1, dtype=torch.long)
        local[used_t] = torch.arange(len(used_t))
        self.register_buffer("used", used_t, persistent=False)
        self.register_buffer("local", local, persistent=False)
        with torch.no_grad():  # Whisper leaves these at N(0, 1) / uninitialised
            self.whisper.decoder.positional_embedding.normal_(0.0, 0.01)
        self.emb = torch.nn.Parameter(torch.randn(len(used_t), dims.n_text_state) * 0.02)
        self.null_logit = math.log(dims.n_vocab - len(used_t))
        self.ctc_head = torch.nn.Linear(dims.n_audio_state, len(used_t) + 1)
        self.sync_embedding()

    def sync_embedding(self) -> None:
        """Write the trained rows into the Whisper embedding; zero every other row."""
        with torch.no_grad():
            weight = self.whisper.decoder.token_embedding.weight
            weight.zero_()
            weight[self.used] = self.emb

    def hidden(self, tokens: Any, audio_features: Any) -> Any:
        dec = self.whisper.decoder
        x = F.embedding(self.local[tokens], self.emb)
        x = x + dec.positional_embedding[: tokens.shape[-1]]
        for block in dec.blocks:
            x = block(x, audio_features, mask=dec.mask)
        return dec.ln(x)

    def forward(self, mel: Any, tokens: Any) -> Any:
        """Logits over the used tokens plus the last column standing for all unused ones."""
        return self.forward_with_ctc(mel, tokens)[0]

    def forward_with_ctc(self, mel: Any, tokens: Any) -> tuple[Any, Any]:
        """Decoder logits and the CTC log-probabilities ``[frames, batch, used + blank]`` of
        the training-only CTC head on the encoder (it teaches the encoder to align quickly
        and is not part of the exported model)."""
        xa = self.whisper.encoder(mel)
        h = self.hidden(tokens, xa)
        with torch.autocast("cpu", enabled=False):  # logits in float32 even under bf16
            logits = h.float() @ self.emb.t()
            ctc = F.log_softmax(self.ctc_head(xa.float()), dim=-1).transpose(0, 1)
        null = torch.full((*logits.shape[:-1], 1), self.null_logit, dtype=logits.dtype)
        return torch.cat([logits, null], dim=-1), ctc

    @torch.no_grad()  # type: ignore[untyped-decorator, unused-ignore]
    def greedy(
        self, mel: Any, prompt: Sequence[int], eot: int, max_len: int = 48
    ) -> list[list[int]]:
        """Greedy decoding as whisper.cpp would (unused tokens have logit 0); -1 marks an
        unused token winning."""
        xa = self.whisper.encoder(mel)
        tokens = torch.tensor([list(prompt)] * mel.shape[0], dtype=torch.long)
        done = torch.zeros(mel.shape[0], dtype=torch.bool)
        for _ in range(max_len):
            logits = self.hidden(tokens, xa)[:, -1] @ self.emb.t()
            best = logits.argmax(-1)
            unused = torch.full_like(best, -1)
            nxt = torch.where(logits.max(-1).values > 0, self.used[best], unused)
            nxt = torch.where(done, torch.full_like(nxt, eot), nxt)
            tokens = torch.cat([tokens, nxt[:, None]], dim=1)
            done |= (nxt == eot) | (nxt == -1)
            if bool(done.all()):
                break
        out = []
        for row in tokens[:, len(prompt) :].tolist():
            out.append(row[: row.index(eot)] if eot in row else row)
        return out


def spec_augment(mel: Any, rng: random.Random) -> Any:
    """Two frequency masks (<= 12 bins) and two time masks (<= 50 frames), in place."""
    floor = mel.amin(dim=(1, 2))
    for i in range(mel.shape[0]):
        for _ in range(2):
            w = rng.randint(0, 12)
            f0 = rng.randint(0, mel.shape[1] - w)
            mel[i, f0 : f0 + w] = floor[i]
            w = rng.randint(0, 50)
            t0 = rng.randint(0, mel.shape[2] - w)
            mel[i, :, t0 : t0 + w] = floor[i]
    return mel


@dataclass
class _Pool:
    """Training features with their token sequences and curriculum difficulties."""

    features: feat.FeatureSet
    seqs: list[list[int]]
    ts_seqs: list[list[int]]
    diff: Any


def extra_name(manifest: Path) -> str:
    """The feature-set name of an extra training corpus: its folder's name."""
    return manifest.resolve().parent.name


class Trainer:
    """One zoo size: data, model, optimiser, schedule, evaluation and checkpoints."""

    def __init__(self, size: str, work: Path, args: argparse.Namespace) -> None:
        self.size, self.work, self.args = size, work, args
        recipe = SIZES[size]
        lr, warmup = getattr(args, "lr", None), getattr(args, "warmup", None)
        self.recipe = replace(
            recipe,
            lr=recipe.lr if lr is None else lr,
            warmup=recipe.warmup if warmup is None else warmup,
        )
        self.steps = args.steps or self.recipe.steps
        self.dir = work / f"micro-{size}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tok = feat.tokenizer()
        grammar = load_grammar()
        self.used = feat.domain_token_ids(grammar, self.tok, WINDOW_S)
        self.train_set = feat.load_features(work / "features" / "train")
        self.eval_set = feat.load_features(work / "features" / "heldout")
        self.pools = [self._pool(self.train_set)]
        for extra in getattr(args, "extra_train", None) or []:
            self.pools.append(self._pool(feat.load_features(work / "features" / extra_name(extra))))
        self.dims = dims_for(self.recipe)
        torch.manual_seed(args.seed)
        self.model = DomainModel(self.dims, self.used)
        decay: list[Any] = []
        no_decay: list[Any] = []
        for name, p in self.model.named_parameters():
            if not p.requires_grad:
                continue
            plain = p.ndim < 2 or name == "emb" or "positional" in name
            (no_decay if plain else decay).append(p)
        self.opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
            lr=self.recipe.lr,
            betas=(0.9, 0.98),
            eps=1e-8,
        )
        self.step, self.best_wer = 0, float("inf")
        # Started from trained weights (grown or --init): no curriculum, no CTC head.
        self.warm = False
        self.rng = random.Random(args.seed)
        if not self._resume():
            self._warm_start()

    def _pool(self, fs: feat.FeatureSet) -> _Pool:
        return _Pool(
            fs,
            [self._tokens(r, None) for r in fs.rows],
            [self._tokens(r, r.get("speech_end")) for r in fs.rows],
            np.array([feat.difficulty(r) for r in fs.rows]),
        )

    def _tokens(self, row: dict[str, Any], end_s: float | None) -> list[int]:
        if end_s is not None:
            end_s = min(float(end_s), WINDOW_S)
        seq = feat.token_sequence(self.tok, row["text"], end_s)
        local = set(self.used)
        if any(t not in local for t in seq):
            raise ValueError(f"token outside the domain vocabulary in {row['text']!r}")
        return seq

    def lr_at(self, step: int) -> float:
        """Linear warmup, then cosine decay to 5% of the peak."""
        if step < self.recipe.warmup:
            return self.recipe.lr * (step + 1) / self.recipe.warmup
        p = min(1.0, (step - self.recipe.warmup) / max(1, self.steps - self.recipe.warmup))
        return self.recipe.lr * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * p)))

    def max_difficulty(self, step: int) -> float:
        """Curriculum: clean and mild conditions first, everything after 30% of the steps
        but never before :data:`MIN_RAMP_STEPS` (a short budget must not rush the model into
        0 dB babble before it aligns text with audio: micro-m's 3 000-step run did). A warm
        start sees everything from the first step."""
        if self.warm:
            return 1.0
        return min(1.0, 0.15 + 0.85 * step / max(0.3 * self.steps, MIN_RAMP_STEPS))

    def batch(self, step: int) -> tuple[Any, Any, Any, list[list[int]]]:
        """A training batch; with extra pools, from the recipe's ``extra_from`` step on, each
        item comes from one of them (chosen uniformly) with probability ``--extra-fraction``."""
        limit = self.max_difficulty(step) + 1e-9
        counts = [0] * len(self.pools)
        mix = len(self.pools) > 1 and (self.warm or step >= self.recipe.extra_from)
        for _ in range(self.recipe.batch):
            extra = mix and self.rng.random() < self.args.extra_fraction
            counts[1 + self.rng.randrange(len(self.pools) - 1) if extra else 0] += 1
        mels: list[Any] = []
        seqs: list[list[int]] = []
        for pool, count in zip(self.pools, counts, strict=True):
            if not count:
                continue
            allowed = np.flatnonzero(pool.diff <= limit).tolist()
            idx = sorted(self.rng.choice(allowed) for _ in range(count))
            mels.append(np.asarray(pool.features.mels[idx], dtype=np.float32))
            for i in idx:
                timestamps = self.rng.random() < self.args.ts_fraction
                seqs.append(pool.ts_seqs[i] if timestamps else pool.seqs[i])
        mel = torch.from_numpy(np.concatenate(mels))
        augment = self.warm or step >= 0.15 * self.steps
        if augment and self.rng.random() < self.args.specaug:
            mel = spec_augment(mel, self.rng)
        width = max(len(s) for s in seqs) - 1
        inp = torch.full((len(seqs), width), self.tok.eot, dtype=torch.long)
        tgt = torch.full((len(seqs), width), -100, dtype=torch.long)
        for b, s in enumerate(seqs):
            inp[b, : len(s) - 1] = torch.tensor(s[:-1])
            labels = [int(self.model.local[t]) for t in s[1:]]
            if s[1] == self.tok.no_timestamps:
                labels[0] = -100  # part of the prompt, never predicted
            tgt[b, : len(s) - 1] = torch.tensor(labels)
        text = [[int(self.model.local[t]) for t in s if t < self.tok.eot] for s in seqs]
        return mel, inp, tgt, text

    def transcribe(self, fs: feat.FeatureSet, limit: int) -> list[str]:
        """Greedy transcripts (no timestamps) of the first ``limit`` rows of ``fs``."""
        self.model.eval()
        hyps = []
        prompt = [self.tok.sot, self.tok.no_timestamps]
        for lo in range(0, min(limit, len(fs)), 50):
            hi = min(limit, len(fs), lo + 50)
            mel = torch.from_numpy(np.asarray(fs.mels[lo:hi], dtype=np.float32))
            for out in self.model.greedy(mel, prompt, self.tok.eot):
                text = " ".join(self.tok.decode([t for t in out if 0 <= t < self.tok.eot]).split())
                hyps.append((text + (" <unk>" if -1 in out else "")).strip())
        self.model.train()
        return hyps

    def evaluate(self, limit: int, fs: feat.FeatureSet | None = None) -> float:
        """WER of greedy decoding on the first ``limit`` held-out utterances."""
        fs = fs or self.eval_set
        hyps = self.transcribe(fs, limit)
        return wer([r["text"] for r in fs.rows[: len(hyps)]], hyps)

    def load_best(self, name: str = "best") -> None:
        """Load ``best.pt`` (or ``<name>.pt``, e.g. ``last``) into the model."""
        state = torch.load(self.dir / f"{name}.pt", map_location="cpu", weights_only=False)
        self.model.whisper.load_state_dict(state["model_state_dict"])
        with torch.no_grad():
            self.model.emb.copy_(state["emb"])

    def checkpoint(self, name: str) -> None:
        self.model.sync_embedding()
        state = {
            "dims": asdict(self.dims),
            "model_state_dict": self.model.whisper.state_dict(),
            "emb": self.model.emb.detach().clone(),
            "ctc_head": self.model.ctc_head.state_dict(),
            "optimizer": self.opt.state_dict() if name == "last" else None,
            "step": self.step,
            "best_wer": self.best_wer,
            "rng": self.rng.getstate(),
            "torch_rng": torch.get_rng_state(),
            "warm": self.warm,
        }
        tmp = self.dir / f"{name}.pt.tmp"
        torch.save(state, tmp)
        os.replace(tmp, self.dir / f"{name}.pt")
        if name == "best":
            (self.dir / "best.json").unlink(missing_ok=True)  # a promoted step no longer holds
            numpy_state = {k: v.numpy() for k, v in state["model_state_dict"].items()}
            save_npz(self.dir / "best.npz", state["dims"], numpy_state)

    def load_state(self, dims: dict[str, int], state: dict[str, Any]) -> None:
        """Load an openai-whisper state dict (numpy arrays) of this size's dimensions; the
        trained embedding rows are the domain's rows of its token embedding."""
        if dims != asdict(self.dims):
            raise ValueError(f"micro-{self.size} has dims {asdict(self.dims)}, got {dims}")
        tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}
        self.model.whisper.load_state_dict(tensors)
        with torch.no_grad():
            self.model.emb.copy_(tensors["decoder.token_embedding.weight"][self.model.used])
        self.model.sync_embedding()

    def _warm_start(self) -> None:
        """Start from ``--init`` (a zoo .npz or an f16 model file, at ``--init-step``) or from
        the recipe's ``grow_from`` size widened; without either, from random weights."""
        init = getattr(self.args, "init", None)
        if init is None and not self.recipe.grow_from:
            return
        if init is not None:
            dims, state = grow.load_any(init)
            self.step = int(getattr(self.args, "init_step", 0))
            source = str(init)
        else:
            path = self.work / f"micro-{self.recipe.grow_from}" / "best.npz"
            dims, state = load_npz(path)
            factor = self.recipe.d_model // dims["n_audio_state"]
            dims, state = grow.widen(dims, state, factor, seed=self.args.seed)
            source = f"{path} widened {factor}x"
        self.load_state(dims, state)
        self.warm = True
        print(f"micro-{self.size}: warm start at step {self.step} from {source}", flush=True)

    def _resume(self) -> bool:
        path = self.dir / "last.pt"
        if not path.exists():
            return False
        state = torch.load(path, map_location="cpu", weights_only=False)
        self.model.whisper.load_state_dict(state["model_state_dict"])
        with torch.no_grad():
            self.model.emb.copy_(state["emb"])
        self.model.ctc_head.load_state_dict(state["ctc_head"])
        self.opt.load_state_dict(state["optimizer"])
        self.step, self.best_wer = int(state["step"]), float(state["best_wer"])
        self.rng.setstate(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        self.warm = bool(state.get("warm", False))
        print(f"micro-{self.size}: resumed at step {self.step} (best WER {self.best_wer:.3f})")
        return True

    def log(self, row: dict[str, Any]) -> None:
        path = self.work / f"train-{self.size}.csv"
        fields = ["step", "elapsed_s", "lr", "loss", "max_difficulty", "wer", "wall"]
        new = not path.exists()
        with path.open("a", newline="") as fh:
            writer = csv.DictWriter(fh, fields)
            if new:
                writer.writeheader()
            writer.writerow({k: row.get(k, "") for k in fields})

    def run(self) -> None:
        args = self.args
        params = sum(p.numel() for p in self.model.whisper.parameters())
        print(
            f"micro-{self.size}: {params / 1e6:.1f} M params, {len(self.train_set)} train rows, "
            f"steps {self.step}->{self.steps}",
            flush=True,
        )
        self.model.train()
        start, last_save, losses = time.time(), time.time(), []
        # The CTC head is not exported, so a warm start has an untrained one: leave it out.
        ctc_weight = 0.0 if self.warm else args.ctc_weight
        if self.warm and self.best_wer == float("inf"):
            self.best_wer = round(self.evaluate(args.eval_n), 4)
            self.checkpoint("best")
            print({"step": self.step, "wer": self.best_wer, "start": True}, flush=True)
            self.log({"step": self.step, "wer": self.best_wer, "wall": time.strftime("%H:%M:%S")})
        while self.step < self.steps:
            lr = self.lr_at(self.step)
            for group in self.opt.param_groups:
                group["lr"] = lr
            mel, inp, tgt, text = self.batch(self.step)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
                logits, ctc_lp = self.model.forward_with_ctc(mel, inp)
            loss = F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]),
                tgt.reshape(-1),
                ignore_index=-100,
                label_smoothing=args.label_smoothing,
            )
            if ctc_weight > 0:
                ctc = F.ctc_loss(
                    ctc_lp,
                    torch.tensor([t for seq in text for t in seq], dtype=torch.long),
                    torch.full((len(text),), ctc_lp.shape[0], dtype=torch.long),
                    torch.tensor([len(seq) for seq in text], dtype=torch.long),
                    blank=ctc_lp.shape[-1] - 1,
                    zero_infinity=True,
                )
                loss = (1 - ctc_weight) * loss + ctc_weight * ctc
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            self.opt.step()
            self.step += 1
            losses.append(loss.item())
            if self.step % args.log_every == 0:
                row = {
                    "step": self.step,
                    "elapsed_s": round(time.time() - start, 1),
                    "lr": f"{lr:.2e}",
                    "loss": round(sum(losses) / len(losses), 4),
                    "max_difficulty": round(self.max_difficulty(self.step), 3),
                    "wall": time.strftime("%H:%M:%S"),
                }
                losses = []
                if self.step % args.eval_every == 0 or self.step == self.steps:
                    row["wer"] = round(self.evaluate(args.eval_n), 4)
                    if row["wer"] < self.best_wer:
                        self.best_wer = row["wer"]
                        self.checkpoint("best")
                print(row, flush=True)
                self.log(row)
            if time.time() - last_save > args.save_every_s or self.step == self.steps:
                self.checkpoint("last")
                last_save = time.time()


def wer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Word error rate (jiwer) of hypotheses against references."""
    import jiwer  # type: ignore[import-not-found, unused-ignore]

    return float(jiwer.wer(list(refs), [h or "<empty>" for h in hyps]))


def evaluate_manifest(
    trainer: Trainer, manifest: Path, show: int = 0, checkpoint: str = "best"
) -> dict[str, float]:
    """WER of a size's best checkpoint on any corpus manifest, overall and per condition kind
    (printing the first ``show`` reference / hypothesis pairs)."""
    import soundfile as sf

    trainer.load_best(checkpoint)
    rows = read_manifest(manifest)
    mels = np.stack(
        [feat.log_mel_window(sf.read(r["audio"], dtype="float32")[0], WINDOW_S) for r in rows]
    )
    hyps = trainer.transcribe(feat.FeatureSet(mels, rows), len(rows))
    for row, hyp in list(zip(rows, hyps, strict=True))[:show]:
        print(f"{row['condition']:>9} | {row['text']}\n{'':>9} | {hyp}")
    result = {"all": wer([r["text"] for r in rows], hyps)}
    for kind in sorted({r.get("kind", "?") for r in rows}):
        pick = [i for i, r in enumerate(rows) if r.get("kind", "?") == kind]
        result[kind] = wer([rows[i]["text"] for i in pick], [hyps[i] for i in pick])
    return result


def promote_last(trainer: Trainer) -> None:
    """Ship the resumed (last) checkpoint instead of the one with the best held-out WER: for a
    leg whose aim (e.g. new voices) the held-out set does not measure."""
    trainer.checkpoint("best")
    note = {"step": trainer.step, "chosen": "last checkpoint (--promote-last)"}
    (trainer.dir / "best.json").write_text(json.dumps(note) + "\n", encoding="utf-8")


def prepare(
    work: Path, train_manifest: Path, eval_manifest: Path, extra_train: Sequence[Path] = ()
) -> None:
    """Compute the feature memmaps once (skipped when present)."""
    out = work / "features"
    out.mkdir(parents=True, exist_ok=True)
    feat.build_features(eval_manifest, out / "heldout", WINDOW_S)
    feat.build_features(train_manifest, out / "train", WINDOW_S)
    names = [extra_name(m) for m in extra_train]
    if len(set(names)) < len(names) or {"train", "heldout"} & set(names):
        raise ValueError(f"{list(extra_train)}: each extra corpus needs its own folder name")
    for manifest, name in zip(extra_train, names, strict=True):
        feat.build_features(manifest, out / name, WINDOW_S)


def native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether the CPU computes bfloat16 natively (AVX512-BF16 or AMX). Without it PyTorch
    emulates bfloat16, and a bf16-autocast training step of micro-s took 17 s instead of
    1.7 s in float32 (AMD EPYC with AVX2 only, session 14)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
    flags = set(cpuinfo.split())
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    p = argparse.ArgumentParser(
        prog="python -m whisper_cascade.zoo.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--size", choices=sorted(SIZES), default="s")
    p.add_argument("--all", action="store_true", help="train the shipped sizes in order (resuming)")
    p.add_argument("--work", type=Path, default=Path("/work/zoo-work"))
    p.add_argument("--train-manifest", type=Path, help="default WORK/corpus/train/manifest.jsonl")
    p.add_argument("--eval-manifest", type=Path, help="default WORK/corpus/heldout/manifest.jsonl")
    p.add_argument(
        "--evaluate",
        type=Path,
        metavar="MANIFEST",
        help="only print the WER of the size's best checkpoint on this corpus",
    )
    p.add_argument("--show", type=int, default=0, help="with --evaluate: print N transcripts")
    p.add_argument(
        "--checkpoint",
        choices=("best", "last"),
        default="best",
        help="with --evaluate: the checkpoint to evaluate",
    )
    p.add_argument(
        "--extra-train",
        type=Path,
        action="append",
        metavar="MANIFEST",
        help="another training corpus (repeatable; e.g. slot-swapped sentences, more voices), "
        "features in WORK/features/<its folder name>",
    )
    p.add_argument(
        "--extra-fraction", type=float, default=0.25, help="share of batch items from them"
    )
    p.add_argument(
        "--promote-last",
        action="store_true",
        help="make the size's last checkpoint the one to ship (best.pt, best.npz; step in "
        "best.json)",
    )
    p.add_argument("--steps", type=int, default=0, help="override the recipe's step budget")
    p.add_argument(
        "--init",
        type=Path,
        metavar="MODEL",
        help="without a last.pt, start from these weights (a zoo .npz or an f16 model file, "
        "e.g. the shipped one) instead of random ones: no curriculum, no CTC loss",
    )
    p.add_argument("--init-step", type=int, default=0, help="the step --init stands at")
    p.add_argument("--lr", type=float, default=None, help="override the recipe's peak rate")
    p.add_argument("--warmup", type=int, default=None, help="override the recipe's warm-up")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="bfloat16 autocast for training steps (1.8x faster on AVX512-BF16, 10x slower "
        "where the CPU lacks it; weights, logits and evaluation stay float32); default: on "
        "where the CPU has native bfloat16",
    )
    p.add_argument("--specaug", type=float, default=0.8, help="fraction of augmented batches")
    p.add_argument("--ts-fraction", type=float, default=0.3, help="targets with timestamps")
    p.add_argument("--label-smoothing", type=float, default=0.05)
    p.add_argument("--ctc-weight", type=float, default=0.3, help="auxiliary encoder CTC loss")
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--eval-n", type=int, default=300)
    p.add_argument("--save-every-s", type=float, default=300.0)
    args = p.parse_args(argv)
    if args.bf16 is None:
        args.bf16 = native_bf16()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    work = args.work
    prepare(
        work,
        args.train_manifest or work / "corpus" / "train" / "manifest.jsonl",
        args.eval_manifest or work / "corpus" / "heldout" / "manifest.jsonl",
        args.extra_train or [],
    )
    if args.evaluate:
        print(
            json.dumps(
                evaluate_manifest(
                    Trainer(args.size, work, args), args.evaluate, args.show, args.checkpoint
                )
            )
        )
        return 0
    if args.promote_last:
        promote_last(Trainer(args.size, work, args))
        return 0
    for size in SHIPPED if args.all else (args.size,):
        Trainer(size, work, args).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
