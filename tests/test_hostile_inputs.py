"""Hostile inputs: files and options from strangers must fail cleanly, run no code, write nothing.

Every input class is checked twice where it can be:

(a) as a library call, which must raise one specific ``UserError`` subclass
    (``DatasetError``, ``CheckpointError``, ``EnvRequestError``, ``ConfigValueError``,
    ``OptionError``, ``OutputPathError``, ``RunDirectoryError``, ``NonFiniteLossError``,
    ``InvalidActionError``), and
(b) through the ``polymimic`` command in a child process, which must exit with code 1 and
    print exactly one non-empty line on stderr, ``polymimic <cmd>: error: ...``, with no
    traceback, and must neither import code from the working directory nor create its
    outputs.

The command-line cases run in one batch (``cli_results``): a runner process imports
polymimic once and forks one child per case, which runs ``polymimic.cli.main`` as
``python -m`` would (``__main__``, working directory first on ``sys.path``), with its own
stdout/stderr files, and reports which modules it imported. A few cases also run as plain
``python -m polymimic.cli.main`` processes (``test_fresh_processes_...``), which checks
that the batch runner reports what a real process does.

Every child's working directory holds ``evilmod.py``, which appends to ``IMPORTED_MARKER``
when imported: Gymnasium's ``gym.make("evilmod:Evil-v0")`` would import it.

The table of results (input class -> message -> exit code) is written to
``/tmp/hostile_table.json`` (and ``.md``) when the module finishes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

TABLE_PATH = Path("/tmp/hostile_table.json")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
ENV.pop("HYDRA_FULL_ERROR", None)
PUSH = "polymimic/Push-v1"
MARKER = "IMPORTED_MARKER"
EVIL_MODULE = textwrap.dedent(
    '''
    """Written by the hostile-input tests: importing it leaves a marker file."""
    import pathlib
    import sys

    with open(pathlib.Path(__file__).with_name("IMPORTED_MARKER"), "a") as marker:
        marker.write(" ".join(sys.argv) + "\\n")

    import gymnasium


    class Evil(gymnasium.Env):
        pass
    '''
)
#: A command may run this long in the batch (a refused input should fail in about a second).
CASE_TIMEOUT_S = 120
#: Modules that must never be imported by a command given a hostile env id.
FORBIDDEN_MODULES = ("evilmod", "gymnasium.envs.classic_control")

ROWS: list[dict[str, Any]] = []  # the table, filled by the tests, written at module teardown


def _abridge(text: str, limit: int = 220) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _record(**row: Any) -> None:
    ROWS.append(row)


@pytest.fixture(scope="module", autouse=True)
def _write_table() -> Iterator[None]:
    yield
    rows = sorted(ROWS, key=lambda r: (r["via"], r["id"]))
    TABLE_PATH.write_text(json.dumps(rows, indent=1) + "\n")
    lines = [
        "| via | id | input class | exit / error class | ok | message (abridged) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        outcome = r.get("exit_code", r.get("error_class"))
        message = r["message"].replace("|", "\\|")
        lines.append(
            f"| {r['via']} | {r['id']} | {r['input_class']} | {outcome} | "
            f"{'yes' if r['ok'] else 'NO'} | {message} |"
        )
    TABLE_PATH.with_suffix(".md").write_text("\n".join(lines) + "\n")


# ------------------------------------------------------------------------------ file factories


def _hash_tree(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file below ``root`` (directories as '<dir>')."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        out[rel] = "<dir>" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _files_below(root: Path) -> list[str]:
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())


def _set_attr_json(path: Path, key: str, mutate: Callable[[dict], None]) -> None:
    with h5py.File(path, "r+") as f:
        value = json.loads(f["data"].attrs[key])
        mutate(value)
        f["data"].attrs[key] = json.dumps(value)


def _set_array(path: Path, key: str, mutate: Callable[[np.ndarray], np.ndarray]) -> None:
    with h5py.File(path, "r+") as f:
        dataset = f[key]
        dataset[...] = mutate(dataset[()])


def _env_args_mutation(env_name: str | None = None, **kwargs: Any) -> Callable[[Path], None]:
    def mutate(path: Path) -> None:
        def change(env_args: dict) -> None:
            if env_name is not None:
                env_args["env_name"] = env_name
            env_args["env_kwargs"] = {**env_args.get("env_kwargs", {}), **kwargs}

        _set_attr_json(path, "env_args", change)

    return mutate


def _poke(key: str, index: tuple, value: float) -> Callable[[Path], None]:
    def mutate(path: Path) -> None:
        def change(array: np.ndarray) -> np.ndarray:
            array[index] = value
            return array

        _set_array(path, key, change)

    return mutate


def _next_dataset_format() -> int:
    from polymimic.datasets.reader import FORMAT_VERSION

    return FORMAT_VERSION + 1


def _next_checkpoint_format() -> int:
    from polymimic.policies.checkpoint import FORMAT_VERSION

    return FORMAT_VERSION + 1


def _format_version() -> Callable[[Path], None]:
    def mutate(path: Path) -> None:
        with h5py.File(path, "r+") as f:
            f["data"].attrs["polymimic_format_version"] = _next_dataset_format()

    return mutate


def _extreme_actions(path: Path) -> None:
    """Finite float32 actions at the edge of the range: statistics or loss may overflow."""
    top = float(np.finfo(np.float32).max)

    def change(array: np.ndarray) -> np.ndarray:
        signs = np.where(np.arange(array.size).reshape(array.shape) % 2 == 0, 1.0, -1.0)
        return (signs * top).astype(array.dtype)

    with h5py.File(path, "r+") as f:
        for name in f["data"]:
            dataset = f["data"][name]["actions"]
            dataset[...] = change(dataset[()])


def _corrupt_states(path: Path) -> None:
    """Finite but impossible recorded states (context id and target far out of range)."""
    _set_array(path, "data/demo_0/states", lambda a: np.full_like(a, 1e6))


#: name -> (input class, how to damage a copy of the tiny Push dataset)
DATASET_MUTATIONS: dict[str, tuple[str, Callable[[Path], None]]] = {
    "env_module_import": ("env_args.env_name 'evilmod:Evil-v0'", _env_args_mutation("evilmod:Evil-v0")),
    "env_cartpole": ("env_args.env_name 'CartPole-v1' (registered, not polymimic)", _env_args_mutation("CartPole-v1")),
    "env_kw_steps": ("env_kwargs max_episode_steps=10**9", _env_args_mutation(max_episode_steps=10**9)),
    "env_kw_camera": ("env_kwargs camera_height=100000", _env_args_mutation(camera_height=100_000)),
    "env_kw_xml": ("env_kwargs xml_file='/etc/passwd'", _env_args_mutation(xml_file="/etc/passwd")),
    "env_kw_render": ("env_kwargs render_mode='human'", _env_args_mutation(render_mode="human")),
    "nan_action": ("NaN in data/demo_0/actions", _poke("data/demo_0/actions", (3, 0), math.nan)),
    "inf_obs": ("+inf in data/demo_0/obs/tip_pos", _poke("data/demo_0/obs/tip_pos", (5, 1), math.inf)),
    "nan_reward": ("NaN in data/demo_0/rewards", _poke("data/demo_0/rewards", (2,), math.nan)),
    "format_next": ("polymimic_format_version of the next format (2 today)", _format_version()),
    "extreme_actions": ("finite actions of +-3.4e38 (float32 max)", _extreme_actions),
    "bad_states": ("finite but impossible states (1e6) in demo_0", _corrupt_states),
}


def _make_dataset(name: str, source: Path, directory: Path) -> Path:
    """A damaged file of kind ``name`` (a copy of ``source`` where it needs one)."""
    path = directory / f"{name}.hdf5"
    if name in DATASET_MUTATIONS:
        shutil.copyfile(source, path)
        DATASET_MUTATIONS[name][1](path)
    elif name == "truncated":
        data = source.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif name == "empty":
        path.write_bytes(b"")
    elif name == "text":
        path.write_text("this is not an HDF5 file\n" * 20)
    elif name == "directory":
        path.mkdir()
    elif name == "missing":
        pass
    else:
        raise KeyError(name)
    return path


CORRUPT_FILES = {
    "truncated": ("first half of a real file's bytes", ("truncated",)),
    "empty": ("empty file", ("not a readable hdf5",)),
    "text": ("text file named .hdf5", ("not a readable hdf5",)),
    "directory": ("a directory in place of the file", ("is a directory",)),
    "missing": ("missing file", ("does not exist",)),
}


def _checkpoint_state(directory: Path) -> dict:
    from safetensors.torch import load

    # From bytes, not load_file: a memory map of a file that is then overwritten is a SIGBUS.
    return load((directory / "model.safetensors").read_bytes())


def _save_state(directory: Path, state: dict) -> None:
    from safetensors.torch import save_file

    save_file(state, str(directory / "model.safetensors"), metadata={"format": "pt"})


def _edit_config(mutate: Callable[[dict], None]) -> Callable[[Path], None]:
    def edit(directory: Path) -> None:
        document = json.loads((directory / "config.json").read_text())
        mutate(document)
        # allow_nan: a NaN written as the bare token NaN, as a hostile file would hold it.
        (directory / "config.json").write_text(json.dumps(document, allow_nan=True))

    return edit


def _edit_weights(mutate: Callable[[dict], dict]) -> Callable[[Path], None]:
    def edit(directory: Path) -> None:
        _save_state(directory, mutate(_checkpoint_state(directory)))

    return edit


def _first_matrix(state: dict) -> str:
    return next(k for k, v in state.items() if v.ndim == 2 and v.is_floating_point())


def _nan_weight(state: dict) -> dict:
    key = _first_matrix(state)
    state[key] = state[key].clone()
    state[key].view(-1)[0] = float("nan")
    return state


def _cast_weights(dtype_name: str) -> Callable[[dict], dict]:
    def cast(state: dict) -> dict:
        import torch

        dtype = getattr(torch, dtype_name)
        return {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}

    return cast


def _reshape_weight(state: dict) -> dict:
    import torch

    key = _first_matrix(state)
    rows, cols = state[key].shape
    state[key] = torch.zeros(rows + 1, cols)
    return state


def _pickle_weights(directory: Path) -> None:
    import torch

    state = _checkpoint_state(directory)
    torch.save(state, directory / "model.safetensors")  # a pickle under the safetensors name


def _pickle_only(directory: Path) -> None:
    import torch

    torch.save(_checkpoint_state(directory), directory / "model.pt")
    (directory / "model.safetensors").unlink()


def _set_config(**values: Any) -> Callable[[Path], None]:
    return _edit_config(lambda doc: doc["config"].update(values))


def _env_of_checkpoint(env_name: str | None = None, **kwargs: Any) -> Callable[[Path], None]:
    def change(doc: dict) -> None:
        env_args = doc.setdefault("env_args", {"env_name": PUSH, "env_kwargs": {}})
        if env_name is not None:
            env_args["env_name"] = env_name
        env_args["env_kwargs"] = {**env_args.get("env_kwargs", {}), **kwargs}

    return _edit_config(change)


#: name -> (input class, mutation of a copy of a good checkpoint, words its message must hold,
#: whether load_checkpoint itself refuses it (env problems are refused by the env allowlist))
CHECKPOINT_MUTATIONS: dict[str, tuple[str, Callable[[Path], None], tuple[str, ...], bool]] = {
    "ck_env_module_import": ("config.json env_args.env_name 'evilmod:Evil-v0'", _env_of_checkpoint("evilmod:Evil-v0"), ("evilmod", "not a polymimic task"), False),
    "ck_env_cartpole": ("config.json env_args.env_name 'CartPole-v1'", _env_of_checkpoint("CartPole-v1"), ("cartpole", "not a polymimic task"), False),
    "ck_env_kw_steps": ("config.json env_kwargs max_episode_steps=10**9", _env_of_checkpoint(max_episode_steps=10**9), ("max_episode_steps",), False),
    "ck_env_kw_camera": ("config.json env_kwargs camera_height=100000", _env_of_checkpoint(camera_height=100_000), ("camera_height",), False),
    "ck_env_kw_xml": ("config.json env_kwargs xml_file='/etc/passwd'", _env_of_checkpoint(xml_file="/etc/passwd"), ("xml_file",), False),
    "ck_env_kw_render": ("config.json env_kwargs render_mode='human'", _env_of_checkpoint(render_mode="human"), ("render_mode",), False),
    "ck_nan_weight": ("a NaN weight", _edit_weights(_nan_weight), ("nan",), True),
    "ck_float64": ("float64 weights where float32 expected", _edit_weights(_cast_weights("float64")), ("f64|float64",), True),
    "ck_int_weights": ("int64 weights where float32 expected", _edit_weights(_cast_weights("int64")), ("i64|int64",), True),
    "ck_shape": ("a weight of another shape", _edit_weights(_reshape_weight), ("shape",), True),
    "ck_hidden_huge": ("config hidden_dims [10**9, 10**9]", _set_config(hidden_dims=[10**9, 10**9]), ("hidden_dims",), True),
    "ck_hidden_in_bounds_64gib": ("config hidden_dims [16384]*64 (in bounds, ~64 GiB)", _set_config(hidden_dims=[16384] * 64), ("gib",), True),
    "ck_dropout_nan": ("config.json dropout: NaN (bare token)", _set_config(dropout=float("nan")), ("nan",), True),
    "ck_config_2mb": ("config.json of 2 MB", _edit_config(lambda d: d.update(padding="x" * 2_000_000)), ("larger than",), True),
    "ck_pickle_as_safetensors": ("torch.save pickle named model.safetensors", _pickle_weights, ("safetensors",), True),
    "ck_pickle_only": ("only a pickled model.pt", _pickle_only, ("pickle",), True),
    "ck_policy_type_module": ("policy_type 'evilmod:Policy'", _edit_config(lambda d: d.update(policy_type="evilmod:Policy")), ("evilmod",), True),
    "ck_format_next": ("checkpoint format_version of the next format", _edit_config(lambda d: d.update(format_version=_next_checkpoint_format())), ("format_version",), True),
    "ck_unknown_field": ("config field 'eval' not in the config class", _set_config(eval="__import__('os')"), ("eval",), True),
    "ck_not_object": ("config.json holding a JSON list", lambda d: (d / "config.json").write_text("[1, 2]"), ("json object",), True),
}


# ------------------------------------------------------------------------------ the CLI runner

RUNNER = textwrap.dedent(
    r'''
    """Run many ``polymimic`` command lines, each in a forked child, as ``python -m`` would."""
    import json, os, resource, runpy, signal, sys, time, traceback

    cases = json.load(open(sys.argv[1]))
    out_dir = sys.argv[2]
    sys.path[:] = [p for p in sys.path if p not in ("", ".", os.getcwd())]
    # Import what the commands import, once (the children share it).
    import polymimic.cli.data, polymimic.cli.evaluate, polymimic.cli.train  # noqa
    import polymimic.eval.rollout, polymimic.datasets.diagnostics  # noqa
    # The entry module itself runs fresh in each child, as with python -m (runpy warns if
    # it was imported before).
    sys.modules.pop("polymimic.cli.main", None)
    base_rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    results = {"_base_rss_kb": base_rss_kb}
    for case in cases:
        prefix = os.path.join(out_dir, case["id"])
        start = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.chdir(case["cwd"])
                sys.path.insert(0, case["cwd"])  # python -m: the working directory first
                for fd, suffix in ((1, ".out"), (2, ".err")):
                    handle = os.open(prefix + suffix, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                    os.dup2(handle, fd)
                sys.argv = ["polymimic", *case["argv"]]
                before = set(sys.modules)
                try:
                    runpy.run_module("polymimic.cli.main", run_name="__main__", alter_sys=True)
                    code = 0
                except SystemExit as exc:
                    if exc.code is None:
                        code = 0
                    elif isinstance(exc.code, int):
                        code = exc.code
                    else:
                        print(exc.code, file=sys.stderr)
                        code = 1
                except BaseException:
                    traceback.print_exc()  # what the interpreter prints, with its exit code 1
                    code = 1
                with open(prefix + ".mods", "w") as handle:
                    json.dump(sorted(set(sys.modules) - before), handle)
            finally:
                for stream in (sys.stdout, sys.stderr):
                    try:
                        stream.flush()
                    except BaseException:
                        pass
                os._exit(code)
        deadline = start + case["timeout"]
        while True:
            done, status, usage = os.wait4(pid, os.WNOHANG)
            if done:
                break
            if time.perf_counter() > deadline:
                os.kill(pid, signal.SIGKILL)
                done, status, usage = os.wait4(pid, 0)
                break
            time.sleep(0.02)
        results[case["id"]] = {
            "rc": os.waitstatus_to_exitcode(status),
            "wall_s": time.perf_counter() - start,
            "maxrss_kb": usage.ru_maxrss,
        }
    json.dump(results, open(os.path.join(out_dir, "results.json"), "w"))
    '''
)


@dataclasses.dataclass
class CliCase:
    """One command line and what must hold after it ran."""

    id: str
    input_class: str
    argv: list[str]
    command: str  # the stderr line must start with f"{command}: error:" (or a subcommand)
    expect: tuple[str, ...] = ()  # lower-case words the error line must contain
    absent: tuple[Path, ...] = ()  # outputs that must not exist afterwards
    no_files_in: tuple[Path, ...] = ()  # directories that must hold no file afterwards
    unchanged: Path | None = None  # a directory whose every file must stay byte-identical
    exit_codes: tuple[int, ...] = (1,)  # 0 allowed where refusing is not required
    on_success: Callable[[CliResult], None] | None = None  # checks of a successful run


@dataclasses.dataclass
class CliResult:
    case: CliCase
    rc: int
    stdout: str
    stderr: str
    modules: list[str]
    wall_s: float
    maxrss_kb: int
    base_rss_kb: int
    before: dict[str, str] | None = None


def _run_batch(cases: list[CliCase], scratch: Path) -> dict[str, CliResult]:
    scratch.mkdir(parents=True, exist_ok=True)
    runner = scratch / "runner.py"
    runner.write_text(RUNNER)
    specs = [
        {"id": c.id, "argv": c.argv, "cwd": str(scratch.parent / "work"), "timeout": CASE_TIMEOUT_S}
        for c in cases
    ]
    (scratch / "cases.json").write_text(json.dumps(specs))
    done = subprocess.run(
        [sys.executable, str(runner), str(scratch / "cases.json"), str(scratch)],
        capture_output=True, text=True, env=ENV, cwd=scratch, timeout=900,
    )
    assert done.returncode == 0, f"the batch runner failed:\n{done.stderr[-4000:]}"
    raw = json.loads((scratch / "results.json").read_text())
    results = {}
    for case in cases:
        entry = raw[case.id]
        mods = scratch / f"{case.id}.mods"
        results[case.id] = CliResult(
            case=case,
            rc=entry["rc"],
            stdout=(scratch / f"{case.id}.out").read_text(errors="replace"),
            stderr=(scratch / f"{case.id}.err").read_text(errors="replace"),
            modules=json.loads(mods.read_text()) if mods.exists() else [],
            wall_s=entry["wall_s"],
            maxrss_kb=entry["maxrss_kb"],
            base_rss_kb=raw["_base_rss_kb"],
        )
    return results


def _missing_words(message: str, words: tuple[str, ...]) -> list[str]:
    """The words (lower case; ``a|b``: either) that ``message`` does not contain."""
    text = message.lower()
    return [w for w in words if not any(alt in text for alt in w.split("|"))]


def _error_line_problems(stderr: str, command: str) -> list[str]:
    """What is wrong with ``stderr`` as one clear error line of ``command`` (empty: fine)."""
    problems = []
    lines = [line for line in stderr.splitlines() if line.strip()]
    if "Traceback" in stderr:
        problems.append("a traceback on stderr")
    if len(lines) != 1:
        problems.append(f"{len(lines)} non-empty stderr lines instead of 1")
    if lines:
        head, sep, message = lines[0].partition(": error: ")
        if not sep or not message.strip():
            problems.append(f"first line is not '<prog>: error: <message>': {lines[0][:120]!r}")
        elif not (head == command or head.startswith(command + " ")):
            problems.append(f"first line starts with {head!r}, not {command!r}")
    return problems


def _python_m(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "polymimic.cli.main", *args],
        capture_output=True, text=True, env=ENV, cwd=cwd, timeout=300,
    )


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def hostile_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A module directory; ``work/`` (every command's cwd) holds ``evilmod.py``."""
    root = tmp_path_factory.mktemp("hostile")
    (root / "work").mkdir()
    (root / "work" / "evilmod.py").write_text(EVIL_MODULE)
    return root


@pytest.fixture(scope="module")
def make_bad_dataset(tiny_push_dataset: Path, hostile_dir: Path) -> Callable[[str], Path]:
    """``make_bad_dataset(kind)``: a damaged file (see DATASET_MUTATIONS, CORRUPT_FILES)."""
    directory = hostile_dir / "datasets"
    directory.mkdir()
    made: dict[str, Path] = {}

    def make(kind: str) -> Path:
        if kind not in made:
            made[kind] = _make_dataset(kind, tiny_push_dataset, directory)
        return made[kind]

    return make


@pytest.fixture(scope="module")
def good_dataset(tiny_push_dataset: Path, hostile_dir: Path) -> Path:
    path = hostile_dir / "datasets_good" / "push.hdf5"
    path.parent.mkdir()
    shutil.copyfile(tiny_push_dataset, path)
    return path


@pytest.fixture(scope="module")
def trained_run(good_dataset: Path, hostile_dir: Path) -> Path:
    """A run directory trained for two steps by ``polymimic train`` (a real checkpoint)."""
    run_dir = hostile_dir / "trained_run"
    result = _python_m(
        ["train", f"dataset={good_dataset}", f"hydra.run.dir={run_dir}", "train.num_steps=2",
         "train.batch_size=8", "policy.hidden_dims=[8]", "train.progress_bar=false"],
        cwd=hostile_dir / "work",
    )
    assert result.returncode == 0, f"training the fixture checkpoint failed:\n{result.stderr[-3000:]}"
    assert (run_dir / "checkpoints" / "last" / "model.safetensors").is_file()
    return run_dir


@pytest.fixture(scope="module")
def make_bad_checkpoint(trained_run: Path, hostile_dir: Path) -> Callable[[str], Path]:
    """``make_bad_checkpoint(kind)``: a copy of the trained checkpoint, damaged (or 'good')."""
    directory = hostile_dir / "checkpoints"
    directory.mkdir()
    made: dict[str, Path] = {}

    def make(kind: str) -> Path:
        if kind not in made:
            target = directory / kind
            shutil.copytree(trained_run / "checkpoints" / "last", target)
            for extra in target.glob("training_state*"):
                extra.unlink()
            if kind == "ck_no_env_args":
                _edit_config(lambda d: d.pop("env_args", None))(target)
            elif kind == "ck_missing":
                shutil.rmtree(target)
            elif not kind.startswith("good"):  # "good", "good_<name>": undamaged copies
                CHECKPOINT_MUTATIONS[kind][1](target)
            made[kind] = target
        return made[kind]

    return make


def _cli_cases(
    root: Path, bad_dataset: Callable[[str], Path], bad_checkpoint: Callable[[str], Path],
    good_dataset: Path, refused_run: Path, locked_run: Path,
) -> list[CliCase]:
    out = root / "outputs"
    cases: list[CliCase] = []

    def train_case(id_: str, input_class: str, dataset: Path, *overrides: str,
                   expect: tuple[str, ...] = (), run_dir: Path | None = None, **more: Any) -> None:
        run_dir = run_dir or out / f"run_{id_}"
        cases.append(CliCase(
            id_, input_class,
            ["train", f"dataset={dataset}", f"hydra.run.dir={run_dir}", "train.num_steps=2",
             "train.batch_size=8", "policy.hidden_dims=[8]", "train.progress_bar=false",
             *overrides],
            "polymimic train", expect, no_files_in=(run_dir,), **more,
        ))

    # 1. env ids and env kwargs from a dataset's env_args
    env_expect = {
        "env_module_import": ("evilmod:evil-v0", "not a polymimic task"),
        "env_cartpole": ("cartpole-v1", "not a polymimic task"),
        "env_kw_steps": ("max_episode_steps",),
        "env_kw_camera": ("camera_height",),
        "env_kw_xml": ("xml_file",),
        "env_kw_render": ("render_mode",),
    }
    for kind, words in env_expect.items():
        path, input_class = bad_dataset(kind), DATASET_MUTATIONS[kind][0]
        video = out / f"{kind}.mp4"
        cases.append(CliCase(
            f"playback_{kind}", input_class,
            ["data", "playback", str(path), "--out", str(video), "--demos", "1"],
            "polymimic data", words, absent=(video,),
        ))
        train_case(f"train_{kind}", input_class, path, expect=words)
    for kind in ("env_module_import", "env_cartpole"):
        cases.append(CliCase(
            f"info_{kind}", DATASET_MUTATIONS[kind][0] + " (info with diagnostics)",
            ["data", "info", str(bad_dataset(kind))], "polymimic data",
            exit_codes=(0, 1), on_success=_info_reports_no_dt,
        ))

    # 2. non-finite values in a dataset; 3. another format version; 7. damaged files
    value_expect = {
        "nan_action": ("nan or infinite", "actions"),
        "inf_obs": ("nan or infinite", "tip_pos"),
        "nan_reward": ("nan or infinite", "rewards"),
        "format_next": (f"format version {_next_dataset_format()}",),
    }
    value_expect.update({kind: words for kind, (_, words) in CORRUPT_FILES.items()})
    for kind, words in value_expect.items():
        path = bad_dataset(kind)
        input_class = (DATASET_MUTATIONS.get(kind) or CORRUPT_FILES[kind])[0]
        for action in ("validate", "info"):
            cases.append(CliCase(
                f"{action}_{kind}", input_class, ["data", action, str(path)], "polymimic data",
                words,
            ))
        train_case(f"train_{kind}", input_class, path, expect=words)
    train_case(
        "train_extreme_actions", DATASET_MUTATIONS["extreme_actions"][0],
        bad_dataset("extreme_actions"), "train.log_every=1", exit_codes=(0, 1),
        on_success=_checkpoint_is_finite,
    )
    cases.append(CliCase(
        "playback_bad_states", DATASET_MUTATIONS["bad_states"][0],
        ["data", "playback", str(bad_dataset("bad_states")), "--out", str(out / "states.mp4"),
         "--demo", "demo_0"],
        "polymimic data", ("state",), absent=(out / "states.mp4",),
    ))

    # 1./2. checkpoints
    for kind, (input_class, _, words, _) in CHECKPOINT_MUTATIONS.items():
        directory = bad_checkpoint(kind)
        eval_dir = out / f"eval_{kind}"
        cases.append(CliCase(
            f"eval_{kind}", input_class,
            ["eval", "--checkpoint", str(directory), "--contexts", "1", "--rollouts", "1",
             "--video-episodes", "0", "--out-dir", str(eval_dir)],
            "polymimic eval", words, absent=(eval_dir, directory / "eval"),
        ))
    for kind, input_class, words in (
        ("ck_missing", "checkpoint directory that does not exist", ("does not exist",)),
        ("ck_no_env_args", "checkpoint without env_args", ("--env",)),
    ):
        cases.append(CliCase(
            f"eval_{kind}", input_class,
            ["eval", "--checkpoint", str(bad_checkpoint(kind)), "--contexts", "1", "--rollouts",
             "1", "--video-episodes", "0", "--out-dir", str(out / f"eval_{kind}")],
            "polymimic eval", words, absent=(out / f"eval_{kind}",),
        ))

    # 6. options of eval
    a_file = root / "work" / "a_file.txt"
    a_file.write_text("not a directory\n")
    a_dir = root / "work" / "a_directory"
    a_dir.mkdir()
    eval_options = [
        *((f"{option}_{id_}", f"--{option} {value}", [f"--{option}", value], (f"--{option}",))
          for option in ("contexts", "rollouts", "workers")
          for id_, value in (("0", "0"), ("neg", "-3"), ("abc", "abc"))),
        ("contexts_gt_protocol", "--protocol cpu --contexts 9 (cpu has 8)", ["--protocol", "cpu", "--contexts", "9"], ("--contexts", "cpu")),
        ("rollouts_gt_protocol", "--rollouts 17 (Push's full protocol has 16)", ["--rollouts", "17"], ("--rollouts", "full")),
        ("protocol_unknown", "--protocol nope", ["--protocol", "nope"], ("--protocol", "nope")),
        ("video_gt_episodes", "--video-episodes 5 --contexts 1 --rollouts 1", ["--video-episodes", "5"], ("--video-episodes",)),
        ("env_unknown", "--env polymimic/Nope-v0", ["--env", "polymimic/Nope-v0"], ("nope-v0", "not a polymimic task")),
        ("env_module", "--env os:system", ["--env", "os:system"], ("os:system", "not a polymimic task")),
        ("env_cartpole", "--env CartPole-v1", ["--env", "CartPole-v1"], ("cartpole-v1",)),
        ("out_dir_is_file", "--out-dir an existing file", ["--out-dir", str(a_file)], ("is a file",)),
        ("out_dir_proc_new", "--out-dir /proc/<new> (cannot be created)", ["--out-dir", "/proc/polymimic_hostile_eval"], ("/proc/polymimic_hostile_eval",)),
        ("out_dir_proc", "--out-dir /proc (exists, not writable even by root)", ["--out-dir", "/proc"], ("/proc",)),
    ]
    for id_, input_class, args, words in eval_options:
        own = bad_checkpoint(f"good_{id_}")  # its own copy: <checkpoint>/eval is the default
        argv = ["eval", "--checkpoint", str(own), "--contexts", "1", "--rollouts", "1",
                "--video-episodes", "0"]
        cases.append(CliCase(
            f"eval_opt_{id_}", input_class, [*argv, *args], "polymimic eval", words,
            absent=(own / "eval",),
        ))
    own = bad_checkpoint("good_dataset_truncated")
    cases.append(CliCase(
        "eval_opt_dataset_truncated", "eval --dataset <truncated file> (KL reference)",
        ["eval", "--checkpoint", str(own), "--contexts", "1", "--rollouts", "1", "--video-episodes", "0",
         "--dataset", str(bad_dataset("truncated"))],
        "polymimic eval", ("truncated",), absent=(own / "eval",),
    ))
    for action, extra in (("split", []), ("masks", ["--by", "operator"])):
        directory = root / f"modify_{action}"
        directory.mkdir()
        target = directory / "next_format.hdf5"
        shutil.copyfile(bad_dataset("format_next"), target)
        cases.append(CliCase(
            f"data_{action}_format_next", f"data {action} on a file of the next format version",
            ["data", action, str(target), *extra], "polymimic data", ("format version",),
            unchanged=directory,
        ))
    cases.append(CliCase("eval_no_args", "eval without --checkpoint", ["eval"], "polymimic eval",
                         ("--checkpoint",)))

    # 6. options of data
    generated = out / "generated.hdf5"
    data_options = [
        ("generate_out_is_dir", "generate --out an existing directory", ["generate", "--out", str(a_dir), "--demos-per-operator", "1"], ("is a directory",), (a_dir / "demos.hdf5",)),
        ("generate_out_proc_new_dir", "generate --out /proc/<new>/x.hdf5", ["generate", "--out", "/proc/polymimic_hostile/x.hdf5", "--demos-per-operator", "1"], ("/proc/polymimic_hostile",), ()),
        ("generate_out_proc", "generate --out /proc/x.hdf5 (dir exists, not writable)", ["generate", "--out", "/proc/polymimic_hostile.hdf5", "--demos-per-operator", "1", "--no-progress"], ("/proc",), ()),
        ("generate_workers_0", "generate --workers 0", ["generate", "--out", str(generated), "--workers", "0"], ("--workers",), (generated,)),
        ("generate_valid_1_5", "generate --valid-fraction 1.5", ["generate", "--out", str(generated), "--valid-fraction", "1.5"], ("--valid-fraction",), (generated,)),
        ("generate_valid_nan", "generate --valid-fraction nan", ["generate", "--out", str(generated), "--valid-fraction", "nan"], ("--valid-fraction",), (generated,)),
        ("generate_demos_0", "generate --demos-per-operator 0", ["generate", "--out", str(generated), "--demos-per-operator", "0"], ("--demos-per-operator",), (generated,)),
        ("generate_unknown_dataset", "generate --dataset polymimic/nope-v0", ["generate", "--out", str(generated), "--dataset", "polymimic/nope-v0"], ("nope-v0",), (generated,)),
        ("split_valid_nan", "split --valid-fraction nan", ["split", str(good_dataset), "--valid-fraction", "nan"], ("--valid-fraction",), ()),
        ("playback_size", "playback --size 5000x5000", ["playback", str(good_dataset), "--out", str(out / "p1.mp4"), "--size", "5000x5000"], ("--size",), (out / "p1.mp4",)),
        ("playback_size_text", "playback --size big", ["playback", str(good_dataset), "--out", str(out / "p2.mp4"), "--size", "big"], ("--size",), (out / "p2.mp4",)),
        ("playback_camera", "playback --camera nope", ["playback", str(good_dataset), "--out", str(out / "p3.mp4"), "--camera", "nope"], ("--camera",), (out / "p3.mp4",)),
        ("playback_out_dir", "playback --out an existing directory", ["playback", str(good_dataset), "--out", str(a_dir), "--demos", "1"], ("is a directory",), ()),
        ("playback_out_proc", "playback --out /proc/x.mp4 (dir exists, not writable)", ["playback", str(good_dataset), "--out", "/proc/polymimic_hostile.mp4", "--demos", "1"], ("/proc",), ()),
        ("playback_unknown_demo", "playback --demo demo_999", ["playback", str(good_dataset), "--out", str(out / "p4.mp4"), "--demo", "demo_999"], ("demo_999",), (out / "p4.mp4",)),
        ("data_unknown_action", "data nope", ["nope"], ("nope",), ()),
    ]
    for id_, input_class, args, words, absent in data_options:
        cases.append(CliCase(f"data_opt_{id_}", input_class, ["data", *args], "polymimic data",
                             words, absent=absent))
    cases.append(CliCase("unknown_command", "polymimic nope", ["nope"], "polymimic", ("nope",)))

    # 6. train overrides; 4. existing checkpoint, locked run directory
    train_options = [
        ("num_steps_neg", "train.num_steps=-1", ["train.num_steps=-1"], ("num_steps",)),
        ("hidden_zero", "policy.hidden_dims=[0]", ["policy.hidden_dims=[0]"], ("hidden_dims",)),
        ("batch_abc", "train.batch_size=abc", ["train.batch_size=abc"], ("batch_size",)),
        ("policy_unknown", "policy=nope", ["policy=nope"], ("nope",)),
        ("unknown_key", "an unknown key foo=1", ["foo=1"], ("foo",)),
        ("lr_nan", "policy.lr=nan", ["policy.lr=nan"], ("lr",)),
        ("obs_key_unknown", "obs_keys=[nope]", ["obs_keys=[nope]"], ("nope",)),
        ("filter_key_unknown", "filter_key=nope", ["filter_key=nope"], ("nope",)),
        ("device_nope", "train.device=nope", ["device=nope"], ("nope",)),
    ]
    for id_, input_class, overrides, words in train_options:
        train_case(f"train_opt_{id_}", input_class, good_dataset, *overrides, expect=words)
    cases.append(CliCase(
        "train_no_dataset", "train without dataset=",
        ["train", f"hydra.run.dir={out / 'run_no_dataset'}"], "polymimic train", ("dataset",),
        no_files_in=(out / "run_no_dataset",),
    ))
    train_case("train_run_dir_proc", "hydra.run.dir=/proc/<new> (cannot be created)",
               good_dataset, expect=("/proc/polymimic_hostile_run",),
               run_dir=Path("/proc/polymimic_hostile_run"))
    train_case("train_run_dir_is_file", "hydra.run.dir=<an existing file>", good_dataset,
               expect=(str(a_file).lower(),), run_dir=a_file)
    train_case("train_existing_checkpoint", "run dir holding a checkpoint, no train.resume=true",
               good_dataset, expect=("train.resume=true",), run_dir=refused_run,
               unchanged=refused_run)
    cases[-1].no_files_in = ()
    train_case("train_locked_run_dir", "run dir locked by another live run", good_dataset,
               expect=("another training run",), run_dir=locked_run, unchanged=locked_run)
    cases[-1].no_files_in = ()
    return cases


def _info_reports_no_dt(result: CliResult) -> None:
    """``data info`` may describe a file with a foreign env id, without looking the id up."""
    info = json.loads(result.stdout)
    assert info["diagnostics"]["dt"] is None


def _checkpoint_is_finite(result: CliResult) -> None:
    """A run that completes must have written only finite weights (the checkpoint loads)."""
    from polymimic.policies.checkpoint import load_checkpoint

    run_dir = Path(next(a for a in result.case.argv if a.startswith("hydra.run.dir=")).split("=", 1)[1])
    load_checkpoint(run_dir / "checkpoints" / "last")


@pytest.fixture(scope="module")
def cli_results(
    hostile_dir: Path, make_bad_dataset: Callable[[str], Path],
    make_bad_checkpoint: Callable[[str], Path], good_dataset: Path, trained_run: Path,
) -> dict[str, CliResult]:
    """Run every command-line case once (one batch) and return the results by case id."""
    from polymimic.policies.train import run_directory_lock

    refused_run = hostile_dir / "refused_run"
    shutil.copytree(trained_run, refused_run)
    locked_run = hostile_dir / "locked_run"
    locked_run.mkdir()
    (locked_run / "notes.txt").write_text("another run's file\n")
    cases = _cli_cases(hostile_dir, make_bad_dataset, make_bad_checkpoint, good_dataset,
                       refused_run, locked_run)
    before = {c.id: _hash_tree(c.unchanged) for c in cases if c.unchanged is not None}
    pre_existing = {d for c in cases for d in c.no_files_in if d.exists()}
    with run_directory_lock(locked_run, resume=False):  # another live run holds it
        results = _run_batch(cases, hostile_dir / "batch")
    for id_, hashes in before.items():
        results[id_].before = hashes
    for result in results.values():
        case = result.case
        problems = _case_problems(result, hostile_dir)
        _record(
            via="cli", id=case.id, input_class=case.input_class,
            command="polymimic " + " ".join(case.argv[:2]), exit_code=result.rc,
            message=_abridge(_summary_line(result)),
            ok=not problems, problems=problems, wall_s=round(result.wall_s, 2),
            # Not a failure: Hydra makes the run directory before polymimic runs.
            empty_dirs_left=[str(d) for d in case.no_files_in
                             if d.is_dir() and not _files_below(d) and d not in pre_existing],
        )
    return results


def _summary_line(result: CliResult) -> str:
    """The error line; for a traceback its last line (the exception), marked as such."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    if "Traceback" in result.stderr:
        return f"TRACEBACK ({len(lines)} lines) ending: {lines[-1]}"
    if len(lines) == 1:
        return lines[0]
    if not lines:
        return f"(no stderr; stdout: {result.stdout.strip()[-150:]})"
    return f"({len(lines)} lines) " + " / ".join(lines)


def _case_problems(result: CliResult, root: Path) -> list[str]:
    """Every way a command-line result falls short of its case (empty: it conforms)."""
    case, problems = result.case, []
    if result.rc not in case.exit_codes:
        problems.append(f"exit code {result.rc}, expected {case.exit_codes}")
    if result.rc != 0:
        problems += _error_line_problems(result.stderr, case.command)
        missing = _missing_words(result.stderr, case.expect)
        if missing and "Traceback" not in result.stderr:
            problems.append(f"message lacks {missing}")
    elif case.on_success is not None:
        try:
            case.on_success(result)
        except Exception as exc:  # noqa: BLE001  (reported as a problem of this case)
            problems.append(f"successful run is wrong: {type(exc).__name__}: {exc}")
    marker = root / "work" / MARKER
    if marker.exists() and " ".join(case.argv) in marker.read_text():
        problems.append(f"imported evilmod.py from the working directory ({MARKER} written)")
    imported = [m for m in result.modules if m.startswith(FORBIDDEN_MODULES)]
    if imported:
        problems.append(f"imported {imported}")
    created = [str(p) for p in case.absent if p.exists()]
    if created:
        problems.append(f"created {created}")
    for directory in case.no_files_in if result.rc != 0 else ():
        files = _files_below(directory) if directory.is_dir() else []
        if files:
            problems.append(f"wrote {files[:5]} into {directory}")
    if case.unchanged is not None and _hash_tree(case.unchanged) != result.before:
        problems.append(f"changed the files of {case.unchanged}")
    return problems


# ------------------------------------------------------------------------------ CLI tests

CLI_IDS = [  # every case of _cli_cases, by id (kept in step by test_every_cli_case_is_tested)
    *(f"{cmd}_{k}" for k in ("env_module_import", "env_cartpole", "env_kw_steps",
                             "env_kw_camera", "env_kw_xml", "env_kw_render")
      for cmd in ("playback", "train")),
    "info_env_module_import", "info_env_cartpole",
    *(f"{cmd}_{k}" for k in ("nan_action", "inf_obs", "nan_reward", "format_next", *CORRUPT_FILES)
      for cmd in ("validate", "info", "train")),
    "train_extreme_actions", "playback_bad_states",
    *(f"eval_{k}" for k in CHECKPOINT_MUTATIONS), "eval_ck_missing", "eval_ck_no_env_args",
    *(f"eval_opt_{o}_{v}" for o in ("contexts", "rollouts", "workers") for v in ("0", "neg", "abc")),
    *(f"eval_opt_{k}" for k in ("contexts_gt_protocol", "rollouts_gt_protocol", "protocol_unknown",
                                "video_gt_episodes",
                                "env_unknown", "env_module", "env_cartpole", "out_dir_is_file",
                                "out_dir_proc_new", "out_dir_proc")),
    "eval_opt_dataset_truncated", "data_split_format_next", "data_masks_format_next",
    "eval_no_args",
    *(f"data_opt_{k}" for k in (
        "generate_out_is_dir", "generate_out_proc_new_dir", "generate_out_proc",
        "generate_workers_0", "generate_valid_1_5", "generate_valid_nan", "generate_demos_0",
        "generate_unknown_dataset", "split_valid_nan", "playback_size", "playback_size_text",
        "playback_camera", "playback_out_dir", "playback_out_proc", "playback_unknown_demo",
        "data_unknown_action")),
    "unknown_command",
    *(f"train_opt_{k}" for k in ("num_steps_neg", "hidden_zero", "batch_abc", "policy_unknown",
                                 "unknown_key", "lr_nan", "obs_key_unknown",
                                 "filter_key_unknown", "device_nope")),
    "train_no_dataset", "train_run_dir_proc", "train_run_dir_is_file",
    "train_existing_checkpoint", "train_locked_run_dir",
]


def test_every_cli_case_is_tested(cli_results: dict[str, CliResult]) -> None:
    assert sorted(cli_results) == sorted(CLI_IDS)


@pytest.mark.parametrize("case_id", CLI_IDS)
def test_cli_refuses_in_one_line_and_leaves_no_trace(
    cli_results: dict[str, CliResult], hostile_dir: Path, case_id: str
) -> None:
    result = cli_results[case_id]
    problems = _case_problems(result, hostile_dir)
    assert not problems, (
        f"polymimic {' '.join(result.case.argv)}\n  -> exit {result.rc}: {problems}\n"
        f"stderr (last 1500 chars):\n{result.stderr[-1500:]}"
    )


def test_refused_checkpoint_configs_allocate_nothing(cli_results: dict[str, CliResult]) -> None:
    """A config describing a gigantic model is refused in about a second, with no memory."""
    for case_id in ("eval_ck_hidden_huge", "eval_ck_hidden_in_bounds_64gib"):
        result = cli_results[case_id]
        assert result.rc == 1, result.stderr[-2000:]
        assert result.wall_s < 30, f"{case_id} took {result.wall_s:.1f} s"
        grown_mib = (result.maxrss_kb - result.base_rss_kb) / 1024
        assert grown_mib < 512, f"{case_id} grew the process by {grown_mib:.0f} MiB"


def test_no_case_imported_the_working_directory_module(
    cli_results: dict[str, CliResult], hostile_dir: Path
) -> None:
    marker = hostile_dir / "work" / MARKER
    assert not marker.exists(), f"evilmod was imported by: {marker.read_text()}"
    importers = [i for i, r in cli_results.items() if "evilmod" in r.modules]
    assert not importers


def test_the_trap_catches_an_import(tmp_path: Path) -> None:
    """Control: Gymnasium's ``module:Env`` syntax does import evilmod.py from the cwd, so
    the missing marker in the other tests means polymimic never let such an id through."""
    (tmp_path / "evilmod.py").write_text(EVIL_MODULE)
    code = "import gymnasium\ntry:\n    gymnasium.make('evilmod:Evil-v0')\nexcept Exception:\n    pass"
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=ENV, timeout=120, check=True)
    assert (tmp_path / MARKER).exists()


FRESH_CASES = ("eval_ck_env_module_import", "playback_env_module_import",
               "info_env_module_import", "train_env_module_import")


def test_fresh_processes_import_no_code_and_match_the_batch(
    cli_results: dict[str, CliResult], hostile_dir: Path
) -> None:
    """Plain ``python -m polymimic.cli.main`` runs (cwd holding evilmod.py) of the
    code-import cases: no marker, the same exit code and stderr as the batch runner."""
    cwd = hostile_dir / "work"
    with ThreadPoolExecutor(max_workers=2) as pool:
        fresh = dict(zip(FRESH_CASES, pool.map(
            lambda i: _python_m(cli_results[i].case.argv, cwd), FRESH_CASES), strict=True))
    assert not (cwd / MARKER).exists(), (cwd / MARKER).read_text()
    for case_id, done in fresh.items():
        batch = cli_results[case_id]
        _record(via="fresh-process", id=case_id, input_class=batch.case.input_class,
                command="python -m polymimic.cli.main " + " ".join(batch.case.argv[:2]),
                exit_code=done.returncode, message=_abridge(done.stderr[-300:] or "(no stderr)"),
                ok=done.returncode in batch.case.exit_codes and "Traceback" not in done.stderr)
        assert done.returncode == batch.rc, (case_id, done.stderr[-2000:])
        assert done.stderr == batch.stderr, case_id
        assert done.returncode in batch.case.exit_codes, (case_id, done.stderr[-2000:])
        assert not _error_line_problems(done.stderr, batch.case.command) or done.returncode == 0


# ------------------------------------------------------------------------------ library tests


def _expect_error(id_: str, input_class: str, error: type[Exception], call: Callable[[], Any],
                  words: tuple[str, ...] = ()) -> Exception:
    """``call()`` must raise ``error`` (exactly that class or a subclass) naming ``words``."""
    try:
        call()
    except Exception as exc:  # noqa: BLE001  (recorded, then checked)
        message = str(exc)
        ok = isinstance(exc, error) and not _missing_words(message, words)
        _record(via="library", id=id_, input_class=input_class, error_class=type(exc).__name__,
                message=_abridge(message), ok=ok)
        assert isinstance(exc, error), f"{id_}: {type(exc).__name__}: {message}"
        missing = _missing_words(message, words)
        assert not missing, f"{id_}: message lacks {missing}: {message}"
        assert "\n" not in message.strip(), f"{id_}: a multi-line message: {message!r}"
        return exc
    _record(via="library", id=id_, input_class=input_class, error_class="(nothing raised)",
            message="", ok=False)
    pytest.fail(f"{id_}: {input_class} raised nothing, expected {error.__name__}")


ENV_REQUESTS = {
    "module_import": ({"env_name": "evilmod:Evil-v0", "env_kwargs": {}}, ("evilmod",)),
    "cartpole": ({"env_name": "CartPole-v1", "env_kwargs": {}}, ("cartpole",)),
    "kw_steps": ({"env_name": PUSH, "env_kwargs": {"max_episode_steps": 10**9}}, ("max_episode_steps",)),
    "kw_camera": ({"env_name": PUSH, "env_kwargs": {"camera_height": 100_000}}, ("camera_height",)),
    "kw_xml": ({"env_name": PUSH, "env_kwargs": {"xml_file": "/etc/passwd"}}, ("xml_file",)),
    "kw_render": ({"env_name": PUSH, "env_kwargs": {"render_mode": "human"}}, ("render_mode",)),
    "kw_bool_size": ({"env_name": PUSH, "env_kwargs": {"camera_width": True}}, ("camera_width",)),
    "not_object": ("evilmod:Evil-v0", ("env_name",)),
    "id_not_string": ({"env_name": ["polymimic/Push-v1"], "env_kwargs": {}}, ("not a polymimic task",)),
}


@pytest.mark.parametrize("kind", ENV_REQUESTS)
def test_env_requests_are_refused_before_any_import(
    kind: str, hostile_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from polymimic.envs.allowlist import EnvRequestError, check_env_args, make_env

    monkeypatch.syspath_prepend(str(hostile_dir / "work"))  # evilmod is importable
    modules_before = set(sys.modules)
    env_args, words = ENV_REQUESTS[kind]
    _expect_error(f"check_env_args_{kind}", f"env_args {env_args!r:.80}", EnvRequestError,
                  lambda: check_env_args(env_args), words)
    if isinstance(env_args, dict):
        _expect_error(f"make_env_{kind}", f"make_env({env_args!r:.80})", EnvRequestError,
                      lambda: make_env(env_args["env_name"], env_args["env_kwargs"]), words)
    assert not (hostile_dir / "work" / MARKER).exists()
    new = [m for m in set(sys.modules) - modules_before if m.startswith(FORBIDDEN_MODULES)]
    assert not new


DATASET_LIBRARY_CASES = {
    "nan_action": ("nan or infinite", "actions"),
    "inf_obs": ("nan or infinite", "tip_pos"),
    "nan_reward": ("nan or infinite", "rewards"),
    "format_next": ("format version",),
    **{kind: words for kind, (_, words) in CORRUPT_FILES.items()},
}


@pytest.mark.parametrize("kind", DATASET_LIBRARY_CASES)
def test_damaged_datasets_raise_dataset_error(
    kind: str, make_bad_dataset: Callable[[str], Path]
) -> None:
    from polymimic.datasets.reader import DatasetError, open_dataset
    from polymimic.datasets.validate import validate_dataset
    from polymimic.datasets.windows import WindowDataset

    path = make_bad_dataset(kind)
    words = DATASET_LIBRARY_CASES[kind]
    if kind == "format_next":
        words = (f"format version {_next_dataset_format()}",)
    input_class = (DATASET_MUTATIONS.get(kind) or CORRUPT_FILES[kind])[0]
    _expect_error(f"validate_dataset_{kind}", input_class, DatasetError,
                  lambda: validate_dataset(path), words)
    _expect_error(f"WindowDataset_{kind}", input_class, DatasetError,
                  lambda: WindowDataset(path, filter_key=None), words)
    if kind in CORRUPT_FILES or kind == "format_next":
        _expect_error(f"open_dataset_{kind}", input_class, DatasetError,
                      lambda: open_dataset(path).close(), words)


@pytest.mark.parametrize("kind", CHECKPOINT_MUTATIONS)
def test_damaged_checkpoints_raise_checkpoint_or_env_error(
    kind: str, make_bad_checkpoint: Callable[[str], Path], hostile_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from polymimic.envs.allowlist import EnvRequestError, check_env_args
    from polymimic.policies.checkpoint import (
        CheckpointError,
        load_checkpoint,
        read_checkpoint_config,
    )

    monkeypatch.syspath_prepend(str(hostile_dir / "work"))
    directory = make_bad_checkpoint(kind)
    input_class, _, words, refused_by_loader = CHECKPOINT_MUTATIONS[kind]
    if refused_by_loader:
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        _expect_error(f"load_checkpoint_{kind}", input_class, CheckpointError,
                      lambda: load_checkpoint(directory), words)
        assert time.perf_counter() - start < 20
        grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
        assert grown_mib < 512, f"loading {kind} grew the process by {grown_mib:.0f} MiB"
    else:
        _expect_error(f"checkpoint_env_args_{kind}", input_class, EnvRequestError,
                      lambda: check_env_args(read_checkpoint_config(directory)["env_args"]),
                      words)
    assert not (hostile_dir / "work" / MARKER).exists()


def test_config_values_are_checked_by_type_and_bounds() -> None:
    from polymimic.config.values import ConfigValueError, config_from_values
    from polymimic.policies.base import policy_class
    from polymimic.policies.train import TrainConfig

    bc = policy_class("bc_mlp").config_class
    for id_, cls, values, word in (
        ("num_steps_neg", TrainConfig, {"num_steps": -1}, "num_steps"),
        ("batch_size_text", TrainConfig, {"batch_size": "abc"}, "batch_size"),
        ("resume_text", TrainConfig, {"resume": "yes"}, "resume"),
        ("hidden_zero", bc, {"hidden_dims": [0]}, "hidden_dims"),
        ("hidden_huge", bc, {"hidden_dims": [10**9, 10**9]}, "hidden_dims"),
        ("hidden_too_many", bc, {"hidden_dims": [8] * 1000}, "hidden_dims"),
        ("dropout_nan", bc, {"dropout": float("nan")}, "dropout"),
        ("dropout_one", bc, {"dropout": 1.0}, "dropout"),
        ("lr_inf", bc, {"lr": float("inf")}, "lr"),
        ("unknown_field", bc, {"eval": "__import__('os')"}, "eval"),
        ("not_object", bc, ["hidden_dims"], "json object"),
    ):
        _expect_error(f"config_{id_}", f"{cls.__name__} {values!r:.60}", ConfigValueError,
                      lambda c=cls, v=values: config_from_values(c, v), (word,))


OUTPUT_PATHS = {
    # id: (input class, "file" | "dir", path (relative: below tmp_path), word)
    "file_is_dir": ("output file that is a directory", "file", ".", "directory"),
    "dir_is_file": ("output dir that is a file", "dir", "file.txt", "is a file"),
    "dir_under_file": ("output dir below a file", "dir", "file.txt/sub", "file"),
    "dir_proc_new": ("output dir /proc/<new>", "dir", "/proc/polymimic_hostile", "/proc"),
    "file_proc_new_dir": ("output file /proc/<new>/x", "file", "/proc/polymimic_hostile/x.mp4", "/proc"),
    "file_proc": ("output file /proc/x (dir exists, unwritable even by root)", "file", "/proc/polymimic_hostile.mp4", "/proc"),
    "dir_proc": ("output dir /proc (exists, unwritable even by root)", "dir", "/proc", "/proc"),
    "file_sys": ("output file /sys/x (dir exists, read-only)", "file", "/sys/polymimic_hostile.mp4", "/sys"),
}


@pytest.mark.parametrize("kind", OUTPUT_PATHS)
def test_output_paths_are_checked_before_work(kind: str, tmp_path: Path) -> None:
    from polymimic.errors import OutputPathError
    from polymimic.io import check_output_file, prepare_output_dir

    (tmp_path / "file.txt").write_text("x")
    input_class, what, relative, word = OUTPUT_PATHS[kind]
    path = tmp_path / relative  # an absolute `relative` replaces tmp_path
    check = check_output_file if what == "file" else prepare_output_dir
    _expect_error(f"output_{kind}", input_class, OutputPathError, lambda: check(path), (word,))
    if not str(path).startswith(str(tmp_path)):
        assert not path.exists() or path in (Path("/proc"), Path("/sys"))


def test_option_error_for_a_checkpoint_without_env(make_bad_checkpoint: Callable[[str], Path]) -> None:
    from polymimic.cli.evaluate import _env_of
    from polymimic.errors import OptionError
    from polymimic.policies.checkpoint import read_checkpoint_config

    document = read_checkpoint_config(make_bad_checkpoint("ck_no_env_args"))
    _expect_error("eval_env_of_no_env_args", "checkpoint without env_args", OptionError,
                  lambda: _env_of(document, None), ("--env",))


def test_run_directory_refusals_change_nothing(trained_run: Path, tmp_path: Path) -> None:
    from polymimic.policies.train import RunDirectoryError, run_directory_lock

    run_dir = tmp_path / "run"
    shutil.copytree(trained_run, run_dir)
    before = _hash_tree(run_dir)
    _expect_error("run_dir_existing_checkpoint", "run dir holding a checkpoint, resume=False",
                  RunDirectoryError, lambda: run_directory_lock(run_dir, False).__enter__(),
                  ("train.resume=true",))
    assert _hash_tree(run_dir) == before

    busy = tmp_path / "busy"
    with run_directory_lock(busy, resume=False):
        def second() -> None:
            with run_directory_lock(busy, resume=False):
                pass

        _expect_error("run_dir_locked", "a second run into a locked run dir", RunDirectoryError,
                      second, ("another training run",))
    assert _files_below(busy) == []
    with run_directory_lock(busy, resume=False):  # released: a later run may use it
        pass


def test_nonfinite_loss_stops_training_without_saving(
    trained_run: Path, good_dataset: Path, tmp_path: Path
) -> None:
    import torch

    from polymimic.datasets.windows import WindowDataset
    from polymimic.policies.checkpoint import load_checkpoint
    from polymimic.policies.train import NonFiniteLossError, TrainConfig, train

    policy = load_checkpoint(trained_run / "checkpoints" / "last")
    spec = policy.batch_spec() if hasattr(policy, "batch_spec") else None
    dataset = WindowDataset(good_dataset, obs_keys=policy.config.obs_keys, filter_key=None,
                            spec=spec)

    def nan_loss(batch: dict, *args: Any, **kwargs: Any) -> dict:
        total = torch.stack([p.sum() for p in policy.parameters()]).sum()
        return {"loss": total * float("nan")}

    policy.compute_loss = nan_loss  # type: ignore[method-assign]
    cfg = TrainConfig(num_steps=2, batch_size=8, log_every=1, save_every=1, device="cpu",
                      progress_bar=False)
    run_dir = tmp_path / "run"
    _expect_error("train_nonfinite_loss", "a loss that becomes NaN", NonFiniteLossError,
                  lambda: train(policy, dataset, cfg, run_dir), ("nan",))
    saved = [f for f in _files_below(run_dir) if f.startswith("checkpoints")]
    assert saved == []


@pytest.fixture(scope="module")
def push_env() -> Iterator[Any]:
    import gymnasium as gym

    import polymimic  # noqa: F401  (registers the tasks)

    env = gym.make(PUSH)
    yield env
    env.close()


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_action_into_an_env_is_invalid(push_env: Any, bad: float) -> None:
    from polymimic.errors import InvalidActionError

    push_env.reset(seed=0)
    state = push_env.unwrapped.get_state()
    _expect_error(f"env_step_{bad}", f"env.step([{bad}, 0])", InvalidActionError,
                  lambda: push_env.step(np.array([bad, 0.0])), ())
    np.testing.assert_array_equal(push_env.unwrapped.get_state(), state)


def test_reset_to_refuses_impossible_states(push_env: Any) -> None:
    from polymimic.errors import UserError

    push_env.reset(seed=0)
    size = push_env.unwrapped.get_state().size
    for id_, state in (("nan", np.full(size, np.nan)), ("huge", np.full(size, 1e6)),
                       ("short", np.zeros(3))):
        exc = _expect_error(f"reset_to_{id_}", f"reset_to({id_} state)", UserError,
                            lambda s=state: push_env.unwrapped.reset_to(s), ())
        assert type(exc).__name__ == "InvalidStateError"


class NanPolicy:
    """A policy object (no torch) whose every action is NaN."""

    def __init__(self, obs_keys: tuple[str, ...], obs_dim: int, action_dim: int) -> None:
        self.config = type("Config", (), {"obs_keys": obs_keys, "obs_dim": obs_dim,
                                          "action_dim": action_dim})()
        self.calls = 0

    def reset(self, *args: Any, **kwargs: Any) -> None:
        pass

    def predict_action(self, obs: np.ndarray, *args: Any, **kwargs: Any) -> np.ndarray:
        self.calls += 1
        obs = np.asarray(obs)
        shape = (self.config.action_dim,) if obs.ndim == 1 else (len(obs), self.config.action_dim)
        return np.full(shape, np.nan, dtype=np.float32)


def test_evaluate_counts_nan_actions_as_failed_episodes(push_env: Any) -> None:
    from polymimic.eval.rollout import evaluate

    spaces = push_env.observation_space.spaces
    keys = tuple(sorted(spaces))
    policy = NanPolicy(keys, sum(int(np.prod(spaces[k].shape)) for k in keys),
                       int(np.prod(push_env.action_space.shape)))
    info = evaluate(PUSH, {}, policy, seeds=[0, 1], video_path=None)
    episodes = info["per_episode"]
    _record(via="library", id="evaluate_nan_policy", input_class="policy returning NaN actions",
            error_class="(none: episodes fail)",
            message=_abridge(json.dumps([{k: e[k] for k in ("success", "invalid_action", "length")}
                                         for e in episodes])),
            ok=all(not e["success"] and e["invalid_action"] for e in episodes))
    assert len(episodes) == 2 and policy.calls >= 2
    assert all(e["success"] is False and e["invalid_action"] is True for e in episodes)
    assert all(e["length"] == 0 for e in episodes)  # the NaN never reached env.step
    assert info["aggregated"]["num_invalid_action_episodes"] == 2
    assert info["aggregated"]["success_rate"] == 0.0
