"""The evaluation protocol: S fixed test contexts × R rollouts each, per task (D3IL's design).

A **context** is one exact initial state (``env.unwrapped.get_state()`` after
``reset(seed=s, options={"context": k mod num_contexts})``: stratified over the task's
discrete start configurations, the seed drawing the perturbation within one), drawn once from an evaluation seed range that no dataset, training-time
evaluation or other split uses, and stored in this package (``eval/contexts/*.json``,
written by ``scripts/make_eval_contexts.py``). Every rollout of a context starts from that
state (``reset_to``), so the R rollouts of a context differ only in the policy's own
randomness: each rollout gets its own ``torch.Generator`` seeded from (split, context,
rollout), independent of the worker count and of which episodes share an inference batch.

Why R is fixed per task: the plug-in conditional entropy depends on R. A policy that picks
each of 4 behaviours uniformly at random scores only about 0.93 (not 1.0) at R = 16,
because 16 draws rarely hit all four equally; comparing numbers across R would compare
sampling error.

Protocols (``PROTOCOLS``), all version ``PROTOCOL_VERSION``:

| task | ``full`` S × R | why |
|---|---|---|
| Push | 30 × 16 | D3IL's Pushing protocol (Jia et al., ICLR 2024) |
| Align | 60 × 8 | D3IL's Aligning protocol |
| Sort4, Stack | 60 × 18 | D3IL's Sorting-4 and Stacking protocol |
| Sort6 | 60 × 18 | as Sorting-4 (D3IL does not state a separate Sorting-6 number) |
| Sort2 | 60 × 8 | two behaviours: as Aligning, the other two-mode task |
| Avoid | 30 × 16 | D3IL's Avoiding starts from one fixed state; polymimic's Avoid has 6
  start contexts, so Push's S × R |

``cpu`` is 8 contexts × 4 rollouts for every task (quick runs on a laptop; its numbers are
not comparable with ``full``). ``selection`` (for choosing hyper-parameters and checkpoints,
where D3IL's combined scores belong) uses the ``full`` R on 20 contexts of its own seed
range, so choices are never made on the test contexts. The leaderboard's test contexts come
from a secret range of its own.

Seed ranges: datasets use 0–9,999, training-time evaluation 10,000–99,999, seed-based final
evaluation from 100,000; protocol contexts ``test`` from 200,000 and ``selection`` from
300,000.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from polymimic.errors import UnknownNameError, UserError
from polymimic.io import atomic_write

# 1: the v0 tasks. 2: the v1 tasks (longer time limits for human-like operators; the
# stored initial states are the same draws, under the new ids).
PROTOCOL_VERSION = 2
SPLIT_SEED_START = {"test": 200_000, "selection": 300_000}
SELECTION_CONTEXTS = 20
#: (S, R) of the full test protocol per task; see the module docstring for the sources.
FULL = {
    "polymimic/Push-v1": (30, 16),
    "polymimic/Align-v1": (60, 8),
    "polymimic/Sort2-v1": (60, 8),
    "polymimic/Sort4-v1": (60, 18),
    "polymimic/Sort6-v1": (60, 18),
    "polymimic/Stack-v1": (60, 18),
    "polymimic/Avoid-v1": (30, 16),
}
CPU = (8, 4)
PROTOCOL_NAMES = ("full", "cpu", "selection")
_CONTEXTS_PACKAGE = "polymimic.eval.contexts"


class ProtocolError(UserError):
    """An unknown protocol, or stored contexts that do not fit the environment."""


@dataclasses.dataclass(frozen=True)
class Protocol:
    """One evaluation protocol of one task.

    Attributes:
        name: ``full``, ``cpu``, ``selection`` or ``custom`` (fewer contexts/rollouts, for tests).
        task_id: the environment id.
        split: ``test`` or ``selection``: which stored context set.
        num_contexts: S.
        rollouts_per_context: R.
        version: ``PROTOCOL_VERSION``; a change of contexts or numbers bumps it.
    """

    name: str
    task_id: str
    split: str
    num_contexts: int
    rollouts_per_context: int
    version: int = PROTOCOL_VERSION

    @property
    def num_episodes(self) -> int:
        return self.num_contexts * self.rollouts_per_context

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "seed_start": SPLIT_SEED_START[self.split]}


def protocol(
    task_id: str, name: str = "full", contexts: int | None = None, rollouts: int | None = None
) -> Protocol:
    """The named protocol of a task; ``contexts``/``rollouts`` make a smaller ``custom`` one.

    Raises:
        UnknownNameError: an unknown task or protocol name.
        ProtocolError: overrides outside ``[1, the named protocol's value]``.
    """
    if task_id not in FULL:
        raise UnknownNameError(f"no evaluation protocol for {task_id!r}; tasks: {sorted(FULL)}")
    if name not in PROTOCOL_NAMES:
        raise UnknownNameError(f"unknown protocol {name!r}; choose from {PROTOCOL_NAMES}")
    s, r = {"full": FULL[task_id], "cpu": CPU}.get(name, (SELECTION_CONTEXTS, FULL[task_id][1]))
    split = "selection" if name == "selection" else "test"
    if contexts is None and rollouts is None:
        return Protocol(name, task_id, split, s, r)
    # `is None`, not `or`: an override of 0 must be refused, not read as "no override".
    s_custom = s if contexts is None else contexts
    r_custom = r if rollouts is None else rollouts
    if not (1 <= s_custom <= s and 1 <= r_custom <= r):
        raise ProtocolError(
            f"--contexts/--rollouts must lie in [1, {s}] and [1, {r}] for the {name} protocol"
        )
    return Protocol("custom", task_id, split, s_custom, r_custom)


def rollout_seed(protocol_: Protocol, context: int, rollout: int) -> int:
    """Seed of one rollout's own random stream (its policy's ``torch.Generator``)."""
    sequence = np.random.SeedSequence([SPLIT_SEED_START[protocol_.split], context, rollout])
    return int(sequence.generate_state(1, dtype=np.uint64)[0] >> 1)


# ------------------------------------------------------------------------ stored contexts


def contexts_file_name(task_id: str, split: str) -> str:
    """``polymimic/Push-v1`` + ``test`` -> ``Push-v1.test.json``."""
    return f"{task_id.split('/')[-1]}.{split}.json"


def make_context_states(env: Any, seed_start: int, count: int) -> list[np.ndarray]:
    """Draw ``count`` initial states, stratified over the task's discrete contexts.

    State ``k`` is ``reset(seed=seed_start + k, options={"context": k mod num_contexts})``
    then ``get_state()``: every discrete context is used equally often (to within one), and
    the seed draws the perturbation within it. Drawing the context from the seed as well
    made Push's first 30 test states a third context 3 (10 of 30 where 3.75 were expected),
    weighting the benchmark towards one start configuration.
    """
    states = []
    num_contexts = int(getattr(env.unwrapped, "num_contexts", 1))
    for k in range(count):
        env.reset(seed=seed_start + k, options={"context": k % num_contexts})
        states.append(np.asarray(env.unwrapped.get_state(), dtype=np.float64).copy())
    return states


def states_digest(states: list[np.ndarray]) -> str:
    """sha256 of the states' float64 bytes, in order."""
    digest = hashlib.sha256()
    for state in states:
        digest.update(np.ascontiguousarray(state, dtype=np.float64).tobytes())
    return digest.hexdigest()


def write_contexts(path: Path, task_id: str, split: str, states: list[np.ndarray]) -> None:
    """Store a context set as JSON (floats written with repr: they read back exactly)."""
    document = {
        "task_id": task_id,
        "split": split,
        "seed_start": SPLIT_SEED_START[split],
        "protocol_version": PROTOCOL_VERSION,
        "sha256": states_digest(states),
        "states": [state.tolist() for state in states],
    }
    text = json.dumps(document, separators=(",", ":"), allow_nan=False) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def load_contexts(protocol_: Protocol, state_size: int) -> tuple[list[np.ndarray], str]:
    """The protocol's first S stored states, and the digest of the stored set.

    Raises:
        ProtocolError: no stored set for this task, too few states, a state size other than
            the environment's (the task changed: regenerate), or a digest mismatch.
    """
    name = contexts_file_name(protocol_.task_id, protocol_.split)
    resource = resources.files(_CONTEXTS_PACKAGE) / name
    fix = "Regenerate them with `python scripts/make_eval_contexts.py` and bump PROTOCOL_VERSION."
    if not resource.is_file():
        raise ProtocolError(f"no stored evaluation contexts {name} for {protocol_.task_id}. {fix}")
    document = json.loads(resource.read_text(encoding="utf-8"))
    states = [np.asarray(s, dtype=np.float64) for s in document["states"]]
    if states_digest(states) != document["sha256"]:
        raise ProtocolError(f"stored contexts {name} do not match their sha256. {fix}")
    if len(states) < protocol_.num_contexts or any(len(s) != state_size for s in states):
        raise ProtocolError(
            f"stored contexts {name} hold {len(states)} states of size "
            f"{len(states[0]) if states else 0}; the protocol needs {protocol_.num_contexts} of "
            f"size {state_size}. {fix}"
        )
    return states[: protocol_.num_contexts], document["sha256"]
