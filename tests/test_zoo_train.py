"""Tests of zoo training (features, domain-vocabulary model, resume); need the train extra."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("whisper")
pytest.importorskip("jiwer")
if shutil.which("espeak-ng") is None:
    pytest.skip("needs espeak-ng", allow_module_level=True)

from whisper_cascade.zoo import features as feat  # noqa: E402
from whisper_cascade.zoo import train  # noqa: E402
from whisper_cascade.zoo.corpus import generate_corpus  # noqa: E402
from whisper_cascade.zoo.grammar import load_grammar  # noqa: E402


def _args(**kw: object) -> argparse.Namespace:
    base = dict(
        steps=0,
        seed=0,
        bf16=True,
        ctc_weight=0.3,
        specaug=1.0,
        ts_fraction=0.5,
        label_smoothing=0.05,
        log_every=2,
        eval_every=4,
        eval_n=4,
        save_every_s=1e9,
    )
    base.update(kw)
    return argparse.Namespace(**base)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("zoo")
    tr = generate_corpus(root / "c" / "train", 8, 1, variants=2, voices=["en-us"])
    ev = generate_corpus(root / "c" / "heldout", 4, 2, split="heldout", conditions=["clean"])
    train.prepare(root, tr, ev)
    return root


def test_features_match_whisper_and_domain_tokens(work: Path) -> None:
    fs = feat.load_features(work / "features" / "train")
    assert fs.mels.shape == (8, 80, 1000) and fs.mels.dtype == np.float16
    assert fs.mels.max() <= 2.0 and fs.mels.min() >= -2.0
    tok = feat.tokenizer()
    used = set(feat.domain_token_ids(load_grammar(), tok, train.WINDOW_S))
    seq = feat.token_sequence(tok, fs.rows[0]["text"], 1.5)
    assert seq[1] == tok.timestamp_begin and seq[-2] == tok.timestamp_begin + 75
    assert set(seq) <= used and len(used) < 900
    assert feat.difficulty({"kind": "babble", "snr_db": 0}) == 1.0
    assert feat.difficulty({"kind": "clean"}) == 0.0


def test_training_reduces_loss_keeps_unused_rows_zero_and_resumes(
    work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.set_num_threads(1)
    monkeypatch.setitem(train.SIZES, "t", train.Recipe(32, 1, 1, 1, 8, 3e-3, batch=4, warmup=2))
    trainer = train.Trainer("t", work, _args())
    mel, inp, tgt, _ = trainer.batch(0)
    with torch.no_grad():
        before = float(
            torch.nn.functional.cross_entropy(
                trainer.model(mel, inp).flatten(0, 1), tgt.flatten(), ignore_index=-100
            )
        )
    trainer.run()
    with torch.no_grad():
        after = float(
            torch.nn.functional.cross_entropy(
                trainer.model(mel, inp).flatten(0, 1), tgt.flatten(), ignore_index=-100
            )
        )
    assert after < before
    best = torch.load(work / "micro-t" / "best.pt", weights_only=False)
    emb = best["model_state_dict"]["decoder.token_embedding.weight"]
    nonzero = set(torch.nonzero(emb.abs().sum(1)).flatten().tolist())
    assert nonzero <= set(trainer.used) and len(nonzero) > 100
    import whisper

    model = whisper.model.Whisper(whisper.model.ModelDimensions(**best["dims"]))
    model.load_state_dict(best["model_state_dict"])
    assert (work / "train-t.csv").read_text().startswith("step,")
    again = train.Trainer("t", work, _args(steps=10))
    assert again.step == 8
    again.run()
    assert again.step == 10


def test_best_checkpoint_npz_and_manifest_evaluation(
    work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from whisper_cascade.zoo.export import load_npz

    monkeypatch.setitem(train.SIZES, "e", train.Recipe(32, 1, 1, 1, 4, 3e-3, batch=4, warmup=2))
    trainer = train.Trainer("e", work, _args())
    trainer.run()
    dims, state = load_npz(work / "micro-e" / "best.npz")
    assert dims["n_audio_ctx"] == 500 and dims["n_text_layer"] == 1
    assert state["decoder.token_embedding.weight"].shape == (51864, 32)
    assert set(trainer.model.whisper.state_dict()) == set(state)
    result = train.evaluate_manifest(trainer, work / "c" / "heldout" / "manifest.jsonl", 2)
    assert set(result) == {"all", "clean"} and result["all"] >= 0.0
    last = train.evaluate_manifest(trainer, work / "c" / "heldout" / "manifest.jsonl", 0, "last")
    assert set(last) == {"all", "clean"}
    again = train.Trainer("e", work, _args())
    train.promote_last(again)
    assert json.loads((work / "micro-e" / "best.json").read_text())["step"] == 4
    again.checkpoint("best")
    assert not (work / "micro-e" / "best.json").exists()
    assert train.wer(["a b"], ["a b"]) == 0.0 and train.wer(["a b"], [""]) == 1.0


def test_extra_training_pool_is_mixed_in_by_fraction(
    work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    swap = generate_corpus(work / "c" / "swap", 4, 5, conditions=["clean"], swap_slots=1.0)
    more = generate_corpus(work / "c" / "more", 4, 6, conditions=["clean"], voices=["en+m3"])
    train.prepare(
        work,
        work / "c" / "train" / "manifest.jsonl",
        work / "c" / "heldout" / "manifest.jsonl",
        [swap, more],
    )
    assert (work / "features" / "swap.npy").exists() and (work / "features" / "more.npy").exists()
    monkeypatch.setitem(train.SIZES, "x", train.Recipe(32, 1, 1, 1, 2, 3e-3, batch=6, warmup=1))
    tok = feat.tokenizer()

    def texts(fraction: float, step: int = 10_000, extra: tuple[Path, ...] = (swap,)) -> set[str]:
        trainer = train.Trainer("x", work, _args(extra_train=extra, extra_fraction=fraction))
        local = [seq for _ in range(5) for seq in trainer.batch(step)[3]]
        ids = [[trainer.used[i] for i in seq] for seq in local]
        return {" ".join(tok.decode(seq).split()) for seq in ids}

    swapped = {r["text"] for r in feat.load_features(work / "features" / "swap").rows}
    trained = {r["text"] for r in feat.load_features(work / "features" / "train").rows}
    assert texts(1.0) <= swapped and texts(0.0) <= trained
    others = {r["text"] for r in feat.load_features(work / "features" / "more").rows}
    both = texts(1.0, extra=(swap, more))
    assert both <= swapped | others and both & swapped and both & others
    monkeypatch.setitem(train.SIZES, "x", train.Recipe(32, 1, 1, 1, 2, 3e-3, 6, 1, extra_from=50))
    assert texts(1.0, step=49) <= trained and texts(1.0, step=50) <= swapped
    with pytest.raises(ValueError, match="own folder"):
        train.prepare(work, swap, swap, [work / "c" / "train" / "manifest.jsonl"])
    with pytest.raises(ValueError, match="own folder"):
        train.prepare(work, swap, swap, [swap, swap])


def test_a_grown_size_starts_where_its_source_stopped(
    work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.set_num_threads(1)
    monkeypatch.setitem(train.SIZES, "g1", train.Recipe(32, 1, 1, 1, 4, 3e-3, batch=4, warmup=2))
    grown = train.Recipe(64, 2, 1, 1, 4, 1e-3, batch=4, warmup=1, grow_from="g1")
    monkeypatch.setitem(train.SIZES, "g2", grown)
    small = train.Trainer("g1", work, _args())
    small.run()
    small.load_best()
    big = train.Trainer("g2", work, _args())
    assert big.warm and big.step == 0 and big.max_difficulty(0) == 1.0
    mel, inp, _, _ = small.batch(10_000)
    small.model.eval()
    big.model.eval()
    with torch.no_grad():
        want, got = small.model(mel, inp), big.model(mel, inp)
    assert torch.allclose(want, got, atol=1e-4)  # widened: the same function
    big.run()
    rows = (work / "train-g2.csv").read_text().splitlines()
    assert rows[1].startswith("0,")  # the start is evaluated (and may be the best)
    assert torch.load(work / "micro-g2" / "last.pt", weights_only=False)["warm"] is True
    again = train.Trainer("g2", work, _args(steps=6))
    assert again.warm and again.step == 4

    monkeypatch.setitem(train.SIZES, "g3", train.Recipe(32, 1, 1, 1, 6, 1e-3, batch=4, warmup=1))
    init = work / "micro-g1" / "best.npz"
    seeded = train.Trainer("g3", work, _args(init=init, init_step=5))
    assert seeded.warm and seeded.step == 5
    seeded.model.eval()
    with torch.no_grad():
        assert torch.allclose(seeded.model(mel, inp), want, atol=1e-5)
    monkeypatch.setitem(train.SIZES, "g4", train.Recipe(64, 2, 1, 1, 6, 1e-3, batch=4, warmup=1))
    with pytest.raises(ValueError, match="has dims"):
        train.Trainer("g4", work, _args(init=init))


def test_native_bf16_reads_the_cpu_flags() -> None:
    assert train.native_bf16("flags : fpu avx2 avx512f avx512_bf16 amx_tile")
    assert train.native_bf16("flags : fpu avx2 amx_bf16")
    assert not train.native_bf16("flags : fpu sse4_2 avx2 fma")
    assert not train.native_bf16("")
    assert isinstance(train.native_bf16(), bool)  # this machine's /proc/cpuinfo
