"""Bandits through Python: learning, reproducibility, state, errors, threads, ArmSelector."""

from __future__ import annotations

import json
import math
import pickle
import random
import threading

import pytest

from whisper_cascade.bandit import POLICIES, ArmSelector, Bandit
from whisper_cascade.errors import InvalidArgumentError, StateError

ARMS = ["tiny", "base", "small"]


def play(bandit: Bandit, env: random.Random, probs: dict[str, float], rounds: int) -> list[str]:
    picks = []
    for _ in range(rounds):
        arm = bandit.select("speech")
        picks.append(arm)
        bandit.update("speech", arm, 1.0 if env.random() < probs[arm] else 0.0)
    return picks


def trace(bandit: Bandit, env: random.Random, rounds: int) -> list[str]:
    """Selections over three contexts with rewards valid for every policy."""
    picks = []
    for k in range(rounds):
        context = ("news", "music", "")[k % 3]
        arm = bandit.select(context)
        picks.append(arm)
        bandit.update(context, arm, env.random() * (bandit.arms.index(arm) + 1) / 3)
    return picks


def test_thompson_concentrates_on_the_best_arm() -> None:
    bandit = Bandit("thompson", ARMS, seed=1)
    picks = play(bandit, random.Random(0), {"tiny": 0.2, "base": 0.5, "small": 0.8}, 2000)
    assert picks.count("small") > 1700
    assert bandit.best_arm("speech") == "small"
    stats = bandit.arm_stats("speech")
    assert stats["small"]["pulls"] == picks.count("small")
    assert stats["small"]["mean"] == pytest.approx(
        stats["small"]["alpha"] / (stats["small"]["alpha"] + stats["small"]["beta"])
    )


def test_discount_follows_a_switch() -> None:
    def tail_share(discount: float) -> float:
        bandit = Bandit("thompson", ["a", "b"], seed=4, discount=discount)
        env = random.Random(2)
        play(bandit, env, {"a": 0.8, "b": 0.2}, 1000)
        play(bandit, env, {"a": 0.2, "b": 0.8}, 50)  # the best arm switched; time to adapt
        return play(bandit, env, {"a": 0.2, "b": 0.8}, 250).count("b") / 250

    discounted, plain = tail_share(0.95), tail_share(1.0)
    assert discounted > 0.85
    assert plain < 0.3  # without discount the old evidence outweighs the new


def test_gaussian_thompson_accepts_any_finite_reward() -> None:
    bandit = Bandit("gaussian_thompson", ["slow", "fast"], seed=3)
    env = random.Random(5)
    for _ in range(600):
        arm = bandit.select()
        bandit.update("", arm, env.gauss(-40.0 if arm == "slow" else -10.0, 3.0))
    assert bandit.best_arm() == "fast"
    fast = bandit.arm_stats()["fast"]
    assert fast["mu"] == pytest.approx(-10.0, abs=1.0)
    assert {"kappa", "alpha", "beta", "weight"} <= set(fast)


def test_ucb1_values_match_a_hand_computation() -> None:
    bandit = Bandit("ucb1", ["a", "b", "c"], ucb_c=2.0)
    assert [bandit.select("k") for _ in range(2)] == ["a", "a"]  # untried first, in order
    for arm, reward in [("a", 0.9), ("b", 0.1), ("c", 0.4), ("a", 0.3)]:
        bandit.update("k", arm, reward)
    n = 4
    want = {
        "a": 0.6 + 2.0 * math.sqrt(2 * math.log(n) / 2),
        "b": 0.1 + 2.0 * math.sqrt(2 * math.log(n) / 1),
        "c": 0.4 + 2.0 * math.sqrt(2 * math.log(n) / 1),
    }
    stats = bandit.arm_stats("k")
    for arm, value in want.items():
        assert stats[arm]["ucb"] == pytest.approx(value, rel=1e-12)
    assert bandit.select("k") == "c"
    assert bandit.best_arm("k") == "a"
    assert bandit.arm_stats("new")["a"]["ucb"] == math.inf


def test_epsilon_decays_as_documented() -> None:
    bandit = Bandit("epsilon_greedy", ["a", "b"], epsilon=0.4, epsilon_decay=0.8, epsilon_min=0.05)
    for t in range(30):
        assert bandit.arm_stats("c")["a"]["epsilon"] == pytest.approx(max(0.05, 0.4 * 0.8**t))
        bandit.update("c", "b", 2.5)
    assert bandit.arm_stats("c")["b"]["mean_reward"] == 2.5
    assert bandit.arm_stats("c")["a"]["mean"] is None


@pytest.mark.parametrize("policy", POLICIES)
def test_same_seed_same_selections(policy: str) -> None:
    runs = [trace(Bandit(policy, ARMS, seed=s), random.Random(9), 300) for s in (7, 7, 8)]
    assert runs[0] == runs[1]
    if policy != "ucb1":  # UCB1 is deterministic whatever the seed
        assert runs[0] != runs[2]


@pytest.mark.parametrize("policy", POLICIES)
def test_restore_mid_run_continues_identically(policy: str) -> None:
    discount = 0.9 if "thompson" in policy else 1.0
    straight = Bandit(policy, ARMS, seed=5, discount=discount)
    full = trace(straight, random.Random(1), 402)

    env = random.Random(1)
    first = Bandit(policy, ARMS, seed=5, discount=discount)
    head = trace(first, env, 201)
    env_state = env.getstate()
    restored = [
        Bandit.from_json(first.to_json()),
        Bandit.from_bytes(first.to_bytes()),
        pickle.loads(pickle.dumps(first)),
    ]
    for bandit in restored:
        env.setstate(env_state)
        assert head + trace(bandit, env, 201) == full
        assert bandit.to_json() == straight.to_json()
        assert bandit.policy == policy and bandit.arms == ARMS


def test_json_is_readable_and_versioned() -> None:
    bandit = Bandit("thompson", ARMS, seed=2, prior_alpha=2.0)
    bandit.update("news", "base", 0.75)
    doc = json.loads(bandit.to_json())
    assert doc["format"] == "whisper-cascade-bandit" and doc["version"] == 1
    assert doc["config"]["prior_alpha"] == 2.0
    assert doc["contexts"]["news"]["arms"][1]["model"] == {"beta": {"alpha": 2.75, "beta": 1.25}}
    assert len(bandit.to_bytes()) < len(bandit.to_json())


def test_corrupt_or_foreign_state_raises_state_error() -> None:
    bandit = Bandit("ucb1", ARMS)
    bandit.update("x", "tiny", 0.5)
    raw = bandit.to_bytes()
    doc = json.loads(bandit.to_json())
    bad_docs = [
        {**doc, "version": 99},
        {**doc, "format": "something-else"},
        {**doc, "arms": ["tiny", "tiny", "small"]},
        {**doc, "rng": {"algorithm": "pcg", "word_pos": "0"}},
        {**doc, "contexts": {"x": {"updates": 5, "arms": doc["contexts"]["x"]["arms"]}}},
    ]
    for bad in bad_docs:
        with pytest.raises(StateError):
            Bandit.from_json(json.dumps(bad))
    for text in ["", "not json", "{}", "[]"]:
        with pytest.raises(StateError):
            Bandit.from_json(text)
    for blob in [b"", raw[:-3], raw[:12] + bytes([raw[12] ^ 1]) + raw[13:], b"x" * 64]:
        with pytest.raises(StateError):
            Bandit.from_bytes(blob)


def test_many_contexts_in_batches() -> None:
    bandit = Bandit("thompson", ARMS, seed=11)
    contexts = [f"class{i % 50}" for i in range(5000)]
    twin = Bandit.from_bytes(bandit.to_bytes())
    picks = bandit.select_many(contexts)
    assert picks == [twin.select(c) for c in contexts]
    assert set(picks) <= set(ARMS)
    rewards = [1.0 if arm == "base" else 0.0 for arm in picks]
    bandit.update_many(contexts, picks, rewards)
    assert bandit.contexts() == sorted(set(contexts))
    assert sum(s["pulls"] for s in bandit.arm_stats("class7").values()) == 100
    assert bandit.select_many([]) == []


def test_invalid_arguments_raise_typed_errors() -> None:
    bad_constructions: list[tuple[str, list[str], dict[str, float]]] = [
        ("thompson", [], {}),
        ("thompson", ["a", "a"], {}),
        ("softmax", ["a"], {}),
        ("thompson", ["a"], {"discount": 0.0}),
        ("ucb1", ["a"], {"discount": 0.5}),
        ("thompson", ["a"], {"prior_alpha": -1.0}),
        ("epsilon_greedy", ["a"], {"epsilon": 2.0}),
        ("ucb1", ["a"], {"ucb_c": math.nan}),
    ]
    for policy, arms, kwargs in bad_constructions:
        with pytest.raises(InvalidArgumentError):
            Bandit(policy, arms, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        Bandit("thompson", ["a"], seed=-1)
    bandit = Bandit("thompson", ["a", "b"])
    for arm, reward in [("zzz", 0.5), ("a", 1.01), ("a", -0.5), ("a", math.nan), ("a", math.inf)]:
        with pytest.raises(InvalidArgumentError):
            bandit.update("c", arm, reward)
    with pytest.raises(InvalidArgumentError):
        Bandit("epsilon_greedy", ["a"]).update("c", "a", 1e300)
    with pytest.raises(InvalidArgumentError):
        bandit.update_many(["c", "c"], ["a", "b"], [0.5])
    with pytest.raises(InvalidArgumentError):
        bandit.update_many(["c", "c"], ["a", "b"], [0.5, 7.0])
    assert bandit.contexts() == []  # the failed batches recorded nothing
    with pytest.raises(TypeError):
        bandit.select_many("abc")  # type: ignore[arg-type]
    assert isinstance(InvalidArgumentError("x"), ValueError)
    assert "thompson" in repr(bandit)


def test_threads_hammering_one_bandit() -> None:
    bandit = Bandit("thompson", ARMS, seed=0, discount=0.99)
    errors: list[BaseException] = []
    per_thread = 300

    def worker(k: int) -> None:
        try:
            env = random.Random(k)
            for i in range(per_thread):
                context = f"c{(k + i) % 4}"
                if i % 10 == 0:
                    picks = bandit.select_many([context] * 20)
                    bandit.update_many([context] * 20, picks, [env.random() for _ in picks])
                else:
                    bandit.update(context, bandit.select(context), env.random())
                if i % 50 == 0:
                    Bandit.from_bytes(bandit.to_bytes())
                    bandit.arm_stats(context)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    total = sum(s["pulls"] for c in bandit.contexts() for s in bandit.arm_stats(c).values())
    assert total == 8 * (per_thread // 10 * 20 + per_thread - per_thread // 10)


def test_arm_selector_with_plain_callables() -> None:
    calls: list[str] = []

    def cheap(text: str) -> str:
        calls.append("cheap")
        return text.lower()

    def costly(text: str) -> str:
        calls.append("costly")
        return text.upper()

    selector = ArmSelector(
        {"cheap": cheap, "costly": costly}, {"cheap": 1.0, "costly": 4.0}, seed=3
    )
    arm, result = selector.run("clip", "Hello")
    assert result == ("hello" if arm == "cheap" else "HELLO") and calls == [arm]
    # Same quality, so the cost decides: cheap earns 0.9 - 0.5 * 0.25, costly 0.9 - 0.5 * 1.
    assert selector.record("clip", "cheap", 0.9, 1.0) == pytest.approx(0.775)
    assert selector.record("clip", "costly", 0.9, 4.0) == pytest.approx(0.4)
    assert selector.record("clip", "costly", 0.1, 4.0, cost_weight=1.0) == 0.0
    assert selector.record("clip", "cheap", 2.0, 0.0) == 1.0
    for _ in range(300):
        chosen = selector.choose("clip")
        selector.record("clip", chosen, 0.9, 1.0 if chosen == "cheap" else 4.0)
    assert selector.bandit.best_arm("clip") == "cheap"
    with pytest.raises(InvalidArgumentError):
        ArmSelector({"a": cheap}, {"b": 1.0})
    with pytest.raises(InvalidArgumentError):
        ArmSelector({"a": cheap}, {"a": -1.0})
    with pytest.raises(InvalidArgumentError):
        selector.record("clip", "cheap", math.nan, 1.0)
    with pytest.raises(InvalidArgumentError):
        selector.record("clip", "nope", 0.5, 1.0)
