"""Behaviour labels shared by every task: an environment concept, defined once.

Environments label the outcome of each episode with one of their ``behaviours`` or with
:data:`OTHER_BEHAVIOUR`. Evaluation (``polymimic.eval.metrics``) re-exports the constant, but
envs must never import from ``eval/``: this module is the single definition and imports
nothing, so importing it never pulls in a simulator or creates an import cycle.
"""

from __future__ import annotations

OTHER_BEHAVIOUR = "other"
"""Label of outcomes that match none of a task's behaviours (the env contract's ``other``)."""

__all__ = ["OTHER_BEHAVIOUR"]
