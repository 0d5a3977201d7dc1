"""``submission.json``: what a submitter declares, and the checks it must pass.

The document is parsed with the standard library's ``json`` only. It is never handed to
OmegaConf or Hydra: an ``${oc.env:SECRET}`` written by a submitter is an inert string here,
stored and shown as typed, and can never read the server's environment. ``NaN``/``Infinity``
literals and numbers that overflow to infinity (``1e999``) are refused, duplicate keys are
refused (two values for one field would let the page and the store disagree), and every
field has a type and a bound. Unknown top-level fields are refused too, so a misspelt field
is an error rather than silently missing.

Schema version 1::

    {
      "schema_version": 1,
      "name": "my method",                       # shown on the page (escaped), <= 120 chars
      "task": "polymimic/Push-v1",               # a polymimic task id (the env allowlist)
      "policy_type": "bc_mlp",                   # a registered learner
      "dataset": {"id": "...", "sha256": "<64 hex>"},   # declared; cannot be verified
      "training_config": {...},                  # the run's train_config.json, any JSON object
      "claimed_metrics": {"success_rate": 0.8, "behaviour_entropy": 0.6 | null,
                          "conditional_behaviour_entropy": 0.4 | null},
      "versions": {"polymimic": "0.1.0", ...},   # library versions of the training run
      "links": {"paper": "https://...", "code": "https://..."}   # optional
    }

Training data cannot be verified, so the dataset is "declared"; the fixed-data track
accepts a declared dataset only when its content hash is one of the named datasets'
(``named_dataset_hashes``), since anyone can generate unlimited data with the public experts.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from polymimic.envs.allowlist import EnvRequestError, check_env_id
from polymimic.errors import UserError

SCHEMA_VERSION = 1
MAX_NAME_CHARS = 120
MAX_ID_CHARS = 200
MAX_URL_CHARS = 500
MAX_VERSION_ENTRIES = 64
REQUIRED_FIELDS = ("schema_version", "name", "task", "policy_type", "dataset",
                   "training_config", "claimed_metrics", "versions")
OPTIONAL_FIELDS = ("links",)
CLAIMED_METRICS = ("success_rate", "behaviour_entropy", "conditional_behaviour_entropy")
LINK_KINDS = ("paper", "code")
_SHA256 = re.compile(r"[0-9a-f]{64}")
# http(s) only: a "javascript:" or "data:" link would run script in a visitor's browser.
_URL = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
FIX = "Build bundles with `polymimic leaderboard build RUN_DIR` (the format is described in " \
      "polymimic/leaderboard/schema.py)."


class SubmissionError(UserError):
    """A submission bundle that the leaderboard refuses; the message says what to fix."""


def _problem(what: str) -> SubmissionError:
    return SubmissionError(f"submission.json: {what}. {FIX}")


def parse_json(text: str | bytes, what: str) -> Any:
    """Plain JSON: no NaN/Infinity, no duplicate keys, no number that overflows to inf.

    Raises:
        SubmissionError: naming ``what`` and the parse problem.
    """
    def no_constant(name: str) -> None:
        raise ValueError(f"{name} is not a number JSON allows (claims must be finite)")

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise ValueError(f"duplicate keys {repeated[:3]}")
        return dict(pairs)

    def finite_float(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            raise ValueError(f"{text[:30]} overflows to infinity (claims must be finite)")
        return value

    try:
        return json.loads(text, parse_constant=no_constant, object_pairs_hook=no_duplicates,
                          parse_float=finite_float)
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        raise SubmissionError(f"{what} is not valid JSON: {str(err)[:200]}. {FIX}") from None


def _text(document: Mapping[str, Any], key: str, limit: int) -> str:
    value = document.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise _problem(f"field {key!r} must be a non-empty string of at most {limit} "
                       f"characters, got {str(value)[:60]!r}")
    return value


def _metric(claims: Mapping[str, Any], key: str) -> float | None:
    value = claims.get(key)
    if value is None and key != "success_rate":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not 0.0 <= value <= 1.0:
        raise _problem(f"claimed_metrics.{key} must be a finite number in [0, 1]"
                       f"{'' if key == 'success_rate' else ' or null'}, got {value!r:.40}")
    return float(value)


def _dataset(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping) or set(value) != {"id", "sha256"}:
        raise _problem("field 'dataset' must be an object with exactly 'id' and 'sha256'")
    dataset_id = _text(value, "id", MAX_ID_CHARS)
    sha = value["sha256"]
    if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
        raise _problem("dataset.sha256 must be 64 lowercase hex digits (the dataset's content "
                       "hash, as `polymimic leaderboard build` computes it)")
    return {"id": dataset_id, "sha256": sha}


def _links(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not set(value) <= set(LINK_KINDS):
        raise _problem(f"field 'links' must be an object with keys among {list(LINK_KINDS)}")
    links = {}
    for kind, url in value.items():
        if not isinstance(url, str) or len(url) > MAX_URL_CHARS or not _URL.fullmatch(url):
            raise _problem(f"links.{kind} must be an http:// or https:// URL of at most "
                           f"{MAX_URL_CHARS} characters, got {str(url)[:60]!r}")
        links[kind] = url
    return links


def _versions(value: Any) -> dict[str, str | None]:
    if not isinstance(value, Mapping) or len(value) > MAX_VERSION_ENTRIES or not all(
        isinstance(k, str) and len(k) <= 80 and (v is None or isinstance(v, str) and len(v) <= 200)
        for k, v in value.items()
    ):
        raise _problem(f"field 'versions' must map at most {MAX_VERSION_ENTRIES} package names "
                       "to version strings (or null)")
    return dict(value)


def _policy_type(value: Any) -> str:
    from polymimic.policies import registered_policies  # registers every learner

    known = registered_policies()
    if not isinstance(value, str) or value not in known:
        raise _problem(f"policy_type {str(value)[:60]!r} is not a registered learner; the "
                       f"leaderboard accepts {', '.join(known)}")
    return value


def validate_submission(document: Any) -> dict[str, Any]:
    """Check a parsed ``submission.json``; return it normalised (known fields only).

    Raises:
        SubmissionError: the first problem found, with the field's name and the fix.
    """
    if not isinstance(document, Mapping):
        raise _problem("the document must be a JSON object")
    missing = [k for k in REQUIRED_FIELDS if k not in document]
    if missing:
        raise _problem(f"missing required fields {missing}")
    unknown = sorted(k for k in document if k not in REQUIRED_FIELDS + OPTIONAL_FIELDS)
    if unknown:
        raise _problem(f"unknown fields {unknown[:5]}; allowed: "
                       f"{list(REQUIRED_FIELDS + OPTIONAL_FIELDS)}")
    version = document["schema_version"]
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise _problem(f"schema_version {version!r:.20} is not supported; this server reads "
                       f"version {SCHEMA_VERSION}")
    try:
        task = check_env_id(document["task"])
    except EnvRequestError as err:
        raise _problem(f"field 'task': {err}") from None
    claims = document["claimed_metrics"]
    if not isinstance(claims, Mapping) or not set(claims) <= set(CLAIMED_METRICS):
        raise _problem(f"field 'claimed_metrics' must be an object with keys among "
                       f"{list(CLAIMED_METRICS)}")
    if not isinstance(document["training_config"], Mapping):
        raise _problem("field 'training_config' must be a JSON object (the run's "
                       "train_config.json)")
    return {
        "schema_version": SCHEMA_VERSION,
        "name": _text(document, "name", MAX_NAME_CHARS),
        "task": task,
        "policy_type": _policy_type(document["policy_type"]),
        "dataset": _dataset(document["dataset"]),
        "training_config": dict(document["training_config"]),
        "claimed_metrics": {k: _metric(claims, k) for k in CLAIMED_METRICS},
        "versions": _versions(document["versions"]),
        "links": _links(document.get("links")),
    }


@functools.cache
def named_dataset_hashes() -> dict[str, str]:
    """Content hash -> name of every named dataset with a shipped manifest (the fixed-data
    track): ``combined_digest`` over the manifest's per-demo hashes, which is what
    ``polymimic leaderboard build`` computes from a full-size generated file."""
    from polymimic.datasets.manifest import DemoDigest, combined_digest, load_manifest
    from polymimic.datasets.registry import DATASETS

    hashes = {}
    for name in DATASETS:
        manifest = load_manifest(name)
        if manifest is None:
            continue
        digests = [DemoDigest("", operator, index, sha)
                   for operator, shas in manifest["demos"].items()
                   for index, sha in enumerate(shas)]
        hashes[combined_digest(digests)] = name
    return hashes
