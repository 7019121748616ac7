"""Model-agnostic learning: a bandit chooses between plain Python callables by value for cost.

The three "LLM clients" are deterministic stand-ins: each answers ``a + b`` questions, is right
on a fixed share of them and has a declared cost per call. ``ArmSelector`` rewards an arm with
``clip(quality - cost_weight * cost / max_cost, 0, 1)``; the bandit state lives in the store, so
running this script again continues where the last run stopped.

    python examples/choose_llm_arms.py --db /tmp/arms.db --rounds 200

prints one JSON object: the pulls and mean reward per arm, the best arm, and the total number
of rounds the saved state has seen.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

from whisper_cascade.bandit import ArmSelector, Bandit
from whisper_cascade.store import open_store

STATE_KEY = "bandit:example:llm-arms"
CONTEXT = "arithmetic"


def fake_llm(right_per_ten: int) -> Callable[[int, int], int]:
    """A client that answers ``a + b`` correctly on ``right_per_ten`` of every ten questions."""

    def answer(a: int, b: int) -> int:
        return a + b if (a * 7 + b) % 10 < right_per_ten else a + b + 1

    return answer


ARMS = {"tiny-llm": fake_llm(6), "mid-llm": fake_llm(9), "big-llm": fake_llm(10)}
COSTS = {"tiny-llm": 1.0, "mid-llm": 3.0, "big-llm": 10.0}
# expected rewards (cost_weight 0.5): tiny 0.6 - 0.05 = 0.55, mid 0.9 - 0.15 = 0.75, big 0.5


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="SQLite path or postgresql:// URL")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with open_store(args.db) as store:
        selector = ArmSelector(ARMS, COSTS, seed=args.seed)
        saved = store.load_bandit_state(STATE_KEY)
        if saved is not None:
            selector.bandit = Bandit.from_bytes(saved)
        start = sum(int(s["pulls"]) for s in selector.bandit.arm_stats(CONTEXT).values())
        for i in range(start, start + args.rounds):
            a, b = i % 97, (i * 31) % 89
            arm, reply = selector.run(CONTEXT, a, b)
            selector.record(CONTEXT, arm, 1.0 if reply == a + b else 0.0, COSTS[arm])
        store.save_bandit_state(STATE_KEY, selector.bandit.to_bytes())
        stats = selector.bandit.arm_stats(CONTEXT)
    report = {
        "pulls": {arm: int(s["pulls"]) for arm, s in stats.items()},
        "mean_reward": {arm: round(float(s["mean_reward"]), 3) for arm, s in stats.items()},
        "best_arm": max(stats, key=lambda arm: float(stats[arm]["mean"])),
        "total_rounds": sum(int(s["pulls"]) for s in stats.values()),
    }
    print(json.dumps(report, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
