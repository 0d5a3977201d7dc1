"""Verification: the server re-evaluates every submission on test contexts nobody sees.

ManiSkill's leaderboard evaluates submissions itself on held-out configurations; so does
polymimic's. A submitter can tune against the stored public test contexts
(``polymimic.eval.protocol``), so the leaderboard draws its own:

- **Hidden contexts.** ``seed_start = HIDDEN_SEED_BASE + HMAC-SHA256(secret, task) mod 2^30``
  and the task's S initial states are ``make_context_states(env, seed_start, S)``, the same
  stratified draw as the public protocol from a range no dataset, training run or public
  protocol uses (all of those lie below 400,000). Without the secret the states cannot be
  reproduced; with it they are the same on every worker and every re-verification. Each
  rollout's random stream is seeded from (seed_start, context, rollout), so it is secret too.
- **Fixed settings.** S x R is the task's ``full`` protocol (``VerifySettings``; smaller only
  in tests), inference is row by row, and the policy's own evaluation-time settings are
  bounded when the bundle is read (``BundleLimits.max_inference_steps``).
- **The standard machinery.** Episodes run through ``polymimic.eval.rollout.evaluate_episodes``
  (the rollout loop, aggregation and intervals of ``polymimic eval``); an episode whose
  policy emits a NaN or infinite action ends there as a failure (``eval.vector``).
- **A resource-limited subprocess.** ``verify_child`` runs under ``RLIMIT_AS`` (memory) and
  ``RLIMIT_CPU`` set in ``preexec_fn``, a wall-clock timeout, one thread per math library,
  a fresh session (the whole process group is killed on timeout) and an environment without
  the server's secrets. A job over a cap is stopped and recorded ``failed`` with the reason;
  the worker, and the server, carry on.
- **A queue.** Submissions wait as ``pending``; a worker claims one at a time
  (``Store.claim_next``, atomic) and verifies it; several workers may share one database.
  A claim is a lease of the wall-clock cap plus ``LEASE_MARGIN_S``: a job whose worker died
  is taken up by another worker once the lease has passed.

The verified success, behaviour entropy and conditional entropy are stored with their 95 %
intervals beside the claimed numbers; a claim outside its verified interval is flagged.
The stored ``eval_info`` has the seeds removed (they would reveal the hidden range).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from polymimic.errors import UserError
from polymimic.leaderboard.store import Store

HIDDEN_SEED_BASE = 1_000_000_000
HIDDEN_SEED_SPAN = 1 << 30
SECRET_ENV = "POLYMIMIC_LEADERBOARD_SECRET"
MIN_SECRET_BYTES = 16
#: Variables that make numpy/torch/numba use one thread: the CPU cap is per process, and
#: a worker shares its machine with other workers.
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "NUMBA_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
_PASSED_ENV = ("PATH", "LANG", "LC_ALL", "MUJOCO_GL", "PYOPENGL_PLATFORM", "TMPDIR")
# How an exhausted RLIMIT_AS shows: Python, PyTorch ("can't allocate memory"), MuJoCo ("Could
# not allocate memory"), the C library ("Cannot allocate memory") and the dynamic loader.
_MEMORY_SIGNS = ("MemoryError", "allocate memory", "bad_alloc", "failed to map segment",
                 "out of memory")
_TAIL = 4000
#: What a claim's lease adds to the wall-clock cap: copying the bundle out of the database,
#: starting the child and recording the result happen outside the cap.
LEASE_MARGIN_S = 600.0


class VerifyError(UserError):
    """A server misconfiguration (no secret) or a bad verification option."""


@dataclasses.dataclass(frozen=True)
class VerifySettings:
    """Fixed evaluation settings and compute caps of one verification.

    Attributes:
        contexts, rollouts: S and R (None: the task's ``full`` protocol). Smaller values are
            for tests; a deployment keeps the defaults so entries are comparable.
        wall_s: wall-clock cap (the process group is killed after it).
        cpu_s: CPU-time cap (``RLIMIT_CPU``; SIGXCPU, then SIGKILL 5 s later).
        memory_bytes: address-space cap (``RLIMIT_AS``); PyTorch and MuJoCo need ~2 GiB.
    """

    contexts: int | None = None
    rollouts: int | None = None
    wall_s: float = 4 * 3600.0
    cpu_s: int = 4 * 3600
    memory_bytes: int = 8 << 30

    def sizes(self, task_id: str) -> tuple[int, int]:
        from polymimic.eval.protocol import FULL

        full_s, full_r = FULL[task_id]
        return (min(self.contexts or full_s, full_s), min(self.rollouts or full_r, full_r))


def lease_seconds(settings: VerifySettings) -> float:
    """How long a worker holds a claimed job: past it, the worker is taken for dead and
    another may reclaim the job (``Store.claim_next``). The child is killed at the wall cap,
    so a live worker is done well before."""
    return settings.wall_s + LEASE_MARGIN_S


def load_secret(secret: str | bytes | None = None) -> bytes:
    """The server secret: ``secret`` or ``$POLYMIMIC_LEADERBOARD_SECRET``.

    Raises:
        VerifyError: none, or shorter than ``MIN_SECRET_BYTES`` (guessable contexts).
    """
    value = secret if secret is not None else os.environ.get(SECRET_ENV, "")
    value = value.encode() if isinstance(value, str) else bytes(value)
    if len(value) < MIN_SECRET_BYTES:
        raise VerifyError(f"the leaderboard secret must be at least {MIN_SECRET_BYTES} bytes; "
                          f"set {SECRET_ENV} (e.g. to `python -c 'import secrets; "
                          "print(secrets.token_hex(32))'`) and keep it private")
    return value


def hidden_seed_start(secret: bytes, task_id: str) -> int:
    """First seed of a task's hidden context range (``make_context_states`` draws from it)."""
    mac = hmac.new(secret, f"polymimic-leaderboard|{task_id}".encode(), hashlib.sha256)
    return HIDDEN_SEED_BASE + int.from_bytes(mac.digest()[:8], "big") % HIDDEN_SEED_SPAN


def job_document(row: Any, secret: bytes, settings: VerifySettings) -> dict[str, Any]:
    """What the child needs: the task, env kwargs, S x R and the derived seed start (never
    the secret itself)."""
    contexts, rollouts = settings.sizes(row.task)
    return {"task": row.task, "env_kwargs": json.loads(row.env_kwargs),
            "seed_start": hidden_seed_start(secret, row.task), "contexts": contexts,
            "rollouts": rollouts}


def _limit_resources(settings: VerifySettings) -> Any:
    def apply() -> None:  # runs in the child between fork and exec
        resource.setrlimit(resource.RLIMIT_AS, (settings.memory_bytes, settings.memory_bytes))
        resource.setrlimit(resource.RLIMIT_CPU, (settings.cpu_s, settings.cpu_s + 5))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def _child_env(home: Path) -> dict[str, str]:
    env = {k: os.environ[k] for k in _PASSED_ENV if k in os.environ}
    env.update({var: "1" for var in THREAD_VARS})
    env.update(HOME=str(home), PYTHONNOUSERSITE="1", PYTHONDONTWRITEBYTECODE="1")
    return env


def _tail(path: Path) -> str:
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - _TAIL))
        return f.read().decode("utf-8", "replace")


def run_child(job_dir: Path, settings: VerifySettings) -> tuple[dict[str, Any] | None, str]:
    """Run ``verify_child`` on a prepared job directory under the caps.

    Returns:
        ``(eval_info, "")`` on success, ``(None, reason)`` otherwise.
    """
    stderr_path = job_dir / "stderr.txt"
    started = time.monotonic()
    with open(stderr_path, "wb") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-m", "polymimic.leaderboard.verify_child", str(job_dir)],
            stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr, cwd=job_dir,
            env=_child_env(job_dir), preexec_fn=_limit_resources(settings),
            start_new_session=True,  # its own process group: a timeout kills everything
        )  # fmt: skip
        try:
            code = child.wait(timeout=settings.wall_s)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            return None, (f"stopped: exceeded the wall-clock cap of {settings.wall_s:g} s per "
                          "verification")
    elapsed = time.monotonic() - started
    return _outcome(job_dir, code, _tail(stderr_path), settings, elapsed)


def _outcome(
    job_dir: Path, code: int, stderr: str, settings: VerifySettings, elapsed: float
) -> tuple[dict[str, Any] | None, str]:
    result_path = job_dir / "result.json"
    result = json.loads(result_path.read_text()) if result_path.is_file() else {}
    if code == 0 and "eval_info" in result:
        return result["eval_info"], ""
    if code == -signal.SIGXCPU or (code == -signal.SIGKILL and elapsed >= settings.cpu_s):
        # RLIMIT_CPU sends SIGXCPU at the soft cap and SIGKILL at the hard one.
        return None, f"stopped: exceeded the CPU-time cap of {settings.cpu_s} s per verification"
    said = f"{stderr}\n{result.get('message', '')}"
    if result.get("error") == "memory" or any(sign in said for sign in _MEMORY_SIGNS):
        return None, (f"stopped: exceeded the memory cap of {settings.memory_bytes >> 20} MiB "
                      "per verification")
    message = result.get("message") or (stderr.strip().splitlines() or ["no output"])[-1]
    return None, f"verification failed (exit code {code}): {message[:500]}"


def _interval(values: Any) -> tuple[float | None, float | None]:
    return (values[0], values[1]) if isinstance(values, list | tuple) and len(values) == 2 \
        else (None, None)


def verified_values(info: Mapping[str, Any], claims: Mapping[str, float | None]) -> dict:
    """The columns ``Store.record_verified`` writes: verified metrics, their intervals and
    the claim flag (a claim outside its verified 95 % interval)."""
    agg = info["aggregated"]
    success = _interval(agg.get("success_rate_ci95"))
    entropy = _interval(agg.get("behaviour_entropy_ci95"))
    conditional = _interval(agg.get("conditional_behaviour_entropy_ci95"))
    problems = []
    for label, claimed, (low, high) in (
        ("success rate", claims["claimed_success"], success),
        ("behaviour entropy", claims["claimed_entropy"], entropy),
        ("conditional entropy", claims["claimed_conditional_entropy"], conditional),
    ):
        if claimed is not None and low is not None and not low <= claimed <= high:
            problems.append(f"claimed {label} {claimed:.3f} lies outside the verified 95% "
                            f"interval [{low:.3f}, {high:.3f}]")
    return {
        "success_rate": agg["success_rate"], "success_ci_low": success[0],
        "success_ci_high": success[1], "behaviour_entropy": agg.get("behaviour_entropy"),
        "behaviour_entropy_ci_low": entropy[0], "behaviour_entropy_ci_high": entropy[1],
        "conditional_entropy": agg.get("conditional_behaviour_entropy"),
        "conditional_entropy_ci_low": conditional[0],
        "conditional_entropy_ci_high": conditional[1], "d3il_score": agg.get("d3il_score"),
        "num_episodes": agg["num_episodes"], "claim_flagged": bool(problems),
        "flag_reason": "; ".join(problems) or None,
        "eval_info": json.dumps(redact(info), allow_nan=False),
    }  # fmt: skip


def redact(info: Mapping[str, Any]) -> dict[str, Any]:
    """``eval_info`` without anything that reveals the hidden seed range."""
    public = dict(info)
    public.pop("seeds", None)
    public["per_episode"] = [{k: v for k, v in e.items() if k != "seed"}
                             for e in info.get("per_episode", [])]
    if isinstance(info.get("protocol"), Mapping):
        public["protocol"] = {k: v for k, v in info["protocol"].items() if k != "seed_start"}
    return public


def verify_submission(
    store: Store, submission_id: int, secret: bytes, settings: VerifySettings,
    worker: str | None = None,
) -> str:
    """Verify one claimed (``running``) submission and record the outcome.

    Args:
        worker: the claiming worker; the outcome is recorded only while it holds the job.

    Returns:
        ``"verified"``, ``"failed"``, or ``"lost"`` (the lease passed and another worker
        reclaimed the job; nothing was recorded).
    """
    row = store.get(submission_id)
    with tempfile.TemporaryDirectory(prefix="polymimic-verify-") as tmp:
        job_dir = Path(tmp)
        (job_dir / "checkpoint").mkdir()
        for name, content in store.files(submission_id).items():
            (job_dir / "checkpoint" / name).write_bytes(content)
        (job_dir / "job.json").write_text(json.dumps(job_document(row, secret, settings)))
        info, reason = run_child(job_dir, settings)
    if info is None:
        return "failed" if store.record_failed(submission_id, reason, worker) else "lost"
    claims = {"claimed_success": row.claimed_success, "claimed_entropy": row.claimed_entropy,
              "claimed_conditional_entropy": row.claimed_conditional_entropy}
    written = store.record_verified(submission_id, verified_values(info, claims), worker)
    return "verified" if written else "lost"


def work(
    store: Store, secret: bytes, settings: VerifySettings, worker: str | None = None,
    max_jobs: int | None = None,
) -> list[tuple[int, str]]:
    """Process the queue one job at a time until it is empty (or ``max_jobs`` are done).

    Jobs left ``running`` by a dead worker are taken up again once their lease has passed.

    Returns:
        ``(submission id, "verified" | "failed" | "lost")`` per job, in order.
    """
    worker = worker or f"{os.uname().nodename}:{os.getpid()}"
    done: list[tuple[int, str]] = []
    while max_jobs is None or len(done) < max_jobs:
        submission_id = store.claim_next(worker, lease_seconds(settings))
        if submission_id is None:
            break
        try:
            done.append((submission_id, verify_submission(store, submission_id, secret,
                                                          settings, worker)))
        except Exception as err:  # a server-side bug must not stall the queue: record it
            store.record_failed(submission_id, f"verification error: {type(err).__name__}: "
                                               f"{str(err)[:500]}", worker)
            done.append((submission_id, "failed"))
    return done
