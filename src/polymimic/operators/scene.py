"""How much a population's behaviour choice depends on the scene: I(B; s0), exact and sampled.

For a population of K operators giving equal shares of the demos, the choice of behaviour
in initial state ``s`` is the mixture of the operators' documented choice probabilities
(``Strategy.probabilities`` with the task's ``scene_utilities``)::

    p(b | s) = (1 / K) sum_k p_k(b | s)
    H(B)     = H( E_s[p(. | s)] ),   H(B | s0) = E_s[ H(p(. | s)) ],   I(B; s0) = H(B) - H(B | s0)

in bits, with ``E_s`` the mean over the initial states given (the first observation of
each demo of a dataset: exact in the choice, Monte Carlo in the states). The sample
estimate beside it, :func:`plugin_information`, uses only what a dataset records: the
original intention of each demo and a discrete context id.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from polymimic.operators.base import Operator


def entropy_bits(p: np.ndarray) -> float:
    """``-sum p log2 p`` over the positive entries."""
    p = np.asarray(p, dtype=np.float64)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def choice_information(
    operators: Sequence[Operator],
    labels: Sequence[str],
    utilities: Callable[[Mapping[str, np.ndarray]], Mapping[str, float]] | None,
    initial_obs: Sequence[Mapping[str, np.ndarray]],
) -> dict[str, float]:
    """``H(B)``, ``H(B | s0)`` and ``I(B; s0)`` (bits) of the population's first choice."""
    index = {label: i for i, label in enumerate(labels)}
    conditionals = []
    for obs in initial_obs:
        scene = utilities(obs) if utilities is not None else None
        mixture = np.zeros(len(labels))
        for operator in operators:
            for label, p in operator.strategy.probabilities(scene).items():
                mixture[index[label]] += p / len(operators)
        conditionals.append(mixture)
    conditionals_array = np.array(conditionals)
    h_b = entropy_bits(conditionals_array.mean(axis=0))
    h_b_given_s = float(np.mean([entropy_bits(p) for p in conditionals_array]))
    return {"H(B)": h_b, "H(B|s0)": h_b_given_s, "I(B;s0)": h_b - h_b_given_s}


def plugin_information(behaviours: Sequence[str], contexts: Sequence[int]) -> float:
    """Plug-in estimate of ``I(B; C)`` (bits) from paired samples of behaviour and context.

    ``sum_{b,c} n_bc / n log2(n n_bc / (n_b n_c))``. Biased upwards by about
    ``(|B| - 1)(|C| - 1) / (2 n ln 2)`` (Miller, 1955); that term is subtracted.
    """
    b_values, b_index = np.unique(np.asarray(behaviours), return_inverse=True)
    c_values, c_index = np.unique(np.asarray(contexts), return_inverse=True)
    counts = np.zeros((len(b_values), len(c_values)))
    np.add.at(counts, (b_index, c_index), 1.0)
    n = counts.sum()
    joint = counts / n
    expected = joint.sum(axis=1, keepdims=True) * joint.sum(axis=0, keepdims=True)
    positive = joint > 0
    information = float((joint[positive] * np.log2(joint[positive] / expected[positive])).sum())
    bias = (len(b_values) - 1) * (len(c_values) - 1) / (2 * n * np.log(2))
    return information - bias
