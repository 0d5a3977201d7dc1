"""Compatibility scoring: which demonstrations conflict with what a base policy already does.

Gandhi, Karamcheti, Liao, Sadigh, "Eliciting Compatible Demonstrations for Multi-Human
Imitation Learning", CoRL 2022. When many people demonstrate a task, some demonstrations
conflict with the way a trusted operator does it ("reaching down then across to grasp vs
across then down", the paper's abstract), and filtering them improves the learned policy.

**Definitions (the paper's).**

- Base policy: an ensemble of K = 5 MLP policies (the authors' simulation runs: hidden
  1024, layer norm, dropout 0.5) trained on trusted demonstrations of one operator.
- Per state ``s`` of a candidate demonstration with action ``a``: the likelihood term
  ``lik(s, a) = (1/K) sum_k (1/A) sum_d (clip(pi_k(s)_d) - clip(a_d))^2``, an
  action-mismatch MSE (high = unlikely action); the novelty term ``nov(s)`` = std over
  members of their predicted actions, averaged over action dimensions (high = unfamiliar
  state).
- A pair is incompatible when ``lik > lambda`` and ``nov < eta`` (familiar state, unlikely
  action); novel states count as compatible whatever the action. Clearly good:
  ``lik < lambda / 2`` and ``nov > 1.5 eta``. The per-step score shown to a person is
  ``max(0, 1 - lik / lambda)``.
- A demonstration is rejected when it has more than a set number of incompatible steps (15
  on the real robot, horizons of several hundred steps). Post-hoc filtering drops the
  incompatible ``(s, a)`` pairs or ranks whole demonstrations by their count.

**What polymimic adds.** Thresholds calibrated on held-out base demonstrations
(percentiles of their own likelihood and novelty; ``scores.calibrate_thresholds``); a
continuous per-demo score whose threshold is the paper's rule (``scores.demo_scores``); a
second scorer whose members are mixture models (``bc_gmm``), so a second way of doing the
task is not mistaken for a conflict (``scorers``); and a ground truth to score the filter
against (``groundtruth``): *incompatible* = a behaviour the base contains, from the same
states, in a conflicting style; a behaviour the base lacks is a *new mode*; a noisy demo in
the base's style is *noisy-compatible*.

Modules: ``scores`` (the math, numpy only), ``ensemble`` (members: training, loading,
inputs), ``scorers`` (the ``SCORERS`` registry: ``paper``, ``multimodal``), ``scoring``
(one call from a file and a base to verdicts), ``outputs`` (atomic writing into the file),
``report`` (scatter and tables), ``groundtruth`` (the benchmark dataset and its labels).
The command is ``polymimic compat score`` (``polymimic.cli.compat``). Importing this
package imports none of its modules (so ``datasets.registry`` can parse the benchmark's
names without loading torch).
"""
