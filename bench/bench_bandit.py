"""Selections per second of the native bandits against a numpy/Python discounted Thompson.

Run:  .venv/bin/python bench/bench_bandit.py [--arms 3] [--contexts 10000] [--repeat 3]

Prints a markdown table. Every context is warmed up with a few updates first so selections
read real per-context state; single-call rows cycle through the same contexts.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

import numpy as np

from whisper_cascade.bandit import POLICIES, Bandit


class NumpyThompson:
    """The straightforward numpy version: per-context Beta parameter arrays in a dict."""

    def __init__(self, arms: Sequence[str], discount: float, seed: int = 0) -> None:
        self.arms = list(arms)
        self.index = {a: i for i, a in enumerate(arms)}
        self.discount = discount
        self.rng = np.random.default_rng(seed)
        self.state: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.prior = (np.ones(len(arms)), np.ones(len(arms)))

    def select(self, context: str) -> str:
        alpha, beta = self.state.get(context, self.prior)
        return self.arms[int(np.argmax(self.rng.beta(alpha, beta)))]

    def select_many(self, contexts: Sequence[str]) -> list[str]:
        return [self.select(c) for c in contexts]

    def select_many_vectorised(self, contexts: Sequence[str]) -> list[str]:
        pairs = [self.state.get(c, self.prior) for c in contexts]
        alpha = np.stack([p[0] for p in pairs])
        beta = np.stack([p[1] for p in pairs])
        picks = self.rng.beta(alpha, beta).argmax(axis=1)
        return [self.arms[i] for i in picks]

    def update(self, context: str, arm: str, reward: float) -> None:
        alpha, beta = self.state.setdefault(context, (self.prior[0].copy(), self.prior[1].copy()))
        alpha[:] = 1.0 + self.discount * (alpha - 1.0)
        beta[:] = 1.0 + self.discount * (beta - 1.0)
        i = self.index[arm]
        alpha[i] += reward
        beta[i] += 1.0 - reward


def best_rate(run: Callable[[], object], count: int, repeat: int) -> float:
    """Best operations per second over `repeat` runs of `run` doing `count` operations."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return count / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arms", type=int, default=3)
    parser.add_argument("--contexts", type=int, default=10_000, help="batch size")
    parser.add_argument("--classes", type=int, default=100, help="distinct contexts")
    parser.add_argument("--single", type=int, default=20_000, help="single select() calls")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    arms = [f"model{i}" for i in range(args.arms)]
    batch = [f"class{i % args.classes}" for i in range(args.contexts)]
    singles = [f"class{i % args.classes}" for i in range(args.single)]
    warm_arms = [arms[i % len(arms)] for i in range(len(batch))]
    warm_rewards = [((i * 7919) % 100) / 100 for i in range(len(batch))]

    def loop(select: Callable[[str], str]) -> Callable[[], None]:
        def run() -> None:
            for c in singles:
                select(c)

        return run

    rows: list[tuple[str, str, str, float]] = []
    for policy in POLICIES:
        discount = 0.99 if "thompson" in policy else 1.0
        bandit = Bandit(policy, arms, seed=1, discount=discount)
        bandit.update_many(batch, warm_arms, warm_rewards)
        rows.append(
            (
                "native",
                policy,
                "select() loop",
                best_rate(loop(bandit.select), len(singles), args.repeat),
            )
        )
        rows.append(
            (
                "native",
                policy,
                f"select_many({len(batch):,})",
                best_rate(lambda b=bandit: b.select_many(batch), len(batch), args.repeat),
            )
        )
        if policy == "thompson":

            def update_loop(b: Bandit = bandit) -> None:
                for c, a, r in zip(batch, warm_arms, warm_rewards, strict=True):
                    b.update(c, a, r)

            n = f"{len(batch):,}"
            rows.append(
                ("native", policy, f"update() x {n}", best_rate(update_loop, len(batch), 3))
            )
            rows.append(
                (
                    "native",
                    policy,
                    f"update_many({len(batch):,})",
                    best_rate(
                        lambda b=bandit: b.update_many(batch, warm_arms, warm_rewards),
                        len(batch),
                        args.repeat,
                    ),
                )
            )

    ref = NumpyThompson(arms, discount=0.99, seed=1)
    for c, a, r in zip(batch, warm_arms, warm_rewards, strict=True):
        ref.update(c, a, r)
    rows.append(
        ("numpy", "thompson", "select() loop", best_rate(loop(ref.select), len(singles), 3))
    )
    n = f"{len(batch):,}"
    rows.append(
        (
            "numpy",
            "thompson",
            f"select_many({n}), loop",
            best_rate(lambda: ref.select_many(batch), len(batch), args.repeat),
        )
    )
    rows.append(
        (
            "numpy",
            "thompson",
            f"select_many({n}), vectorised",
            best_rate(lambda: ref.select_many_vectorised(batch), len(batch), args.repeat),
        )
    )

    def update_ref() -> None:
        for c, a, r in zip(batch, warm_arms, warm_rewards, strict=True):
            ref.update(c, a, r)

    rows.append(
        ("numpy", "thompson", f"update() x {n}", best_rate(update_ref, len(batch), args.repeat))
    )

    print(
        f"{args.arms} arms, {args.classes} distinct contexts, discount 0.99 for Thompson "
        f"policies, best of {args.repeat}\n"
    )
    print("| implementation | policy | operation | ops/s | µs/op |")
    print("|---|---|---|---:|---:|")
    for impl, policy, op, rate in rows:
        print(f"| {impl} | {policy} | {op} | {rate:,.0f} | {1e6 / rate:.2f} |")


if __name__ == "__main__":
    main()
