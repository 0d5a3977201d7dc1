"""Tests for polymimic.datasets.generate and .manifest: resumable, parallel, checked generation.

Generation is real (MuJoCo, scripted operators) but tiny: 1-2 demos per operator.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest

from polymimic.cli.main import main as polymimic_main
from polymimic.datasets import generate
from polymimic.datasets.generate import GenerationError, demo_jobs, generate_dataset, work_dir_for
from polymimic.datasets.hdf5 import _decode_attr, demo_names, get_mask
from polymimic.datasets.manifest import (
    build_manifest,
    check_manifest,
    combined_digest,
    file_digests,
    load_manifest,
)
from polymimic.datasets.registry import DATA_HOME_ENV, dataset_path, dataset_spec
from polymimic.datasets.validate import validate_dataset

NAME = "polymimic/push/multi-operator-v1"
SPEC = dataset_spec(NAME)
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def identities(path: Path) -> list[tuple[str, int, int]]:
    """(operator, demo_index, seed) of every demo, in file order."""
    with h5py.File(path, "r") as f:
        return [
            tuple(_decode_attr(f["data"][n].attrs[k]) for k in ("operator", "demo_index", "seed"))
            for n in demo_names(f)
        ]


def expected_identities(demos_per_operator: int) -> list[tuple[str, int, int]]:
    return [(j.operator_id, j.demo_index, j.seed) for j in demo_jobs(SPEC, demos_per_operator)]


@pytest.fixture(scope="module")
def reference_two(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted, single-process generation with 2 demos per operator."""
    return generate_dataset(SPEC, tmp_path_factory.mktemp("ref") / "ref.hdf5", 2, workers=1)


class Interrupt(Exception):
    """Stands in for a crash after some demos were recorded."""


def interrupt_after(monkeypatch: pytest.MonkeyPatch, recorded: int) -> None:
    """Make in-process generation fail once ``recorded`` demos are on disk."""
    real, calls = generate._record_to_file, []

    def record(*args, **kwargs) -> None:
        if len(calls) == recorded:
            raise Interrupt
        calls.append(1)
        real(*args, **kwargs)

    monkeypatch.setattr(generate, "_record_to_file", record)


# ----------------------------------------------------------------- resumable and deterministic


def test_sigkilled_generation_resumes_to_the_uninterrupted_file(
    tmp_path: Path, reference_two: Path
) -> None:
    out = tmp_path / "killed.hdf5"
    command = [sys.executable, "-m", "polymimic.cli.main", "data", "generate", "--out", str(out),
               "--demos-per-operator", "2", "--workers", "1", "--no-progress"]
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    work, deadline = work_dir_for(out), time.monotonic() + 120
    try:
        while not list(work.glob("demo_*.hdf5")) and time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()
            time.sleep(0.005)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()  # no-op after the SIGKILL; stops a stray process if the wait timed out
        process.communicate()
    recorded = list(work.glob("demo_*.hdf5"))
    assert 0 < len(recorded) < 12 and not out.exists()

    rerun = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"resuming: {len(recorded)} of 12 demos already recorded" in rerun.stderr
    assert not work.exists()
    assert validate_dataset(out).num_demos == 12
    assert demo_names(out) == [f"demo_{i}" for i in range(12)]
    assert identities(out) == expected_identities(2)  # unique, complete, in order
    assert file_digests(out) == file_digests(reference_two)
    assert out.read_bytes() == reference_two.read_bytes()


def test_worker_count_does_not_change_the_file(tmp_path: Path, reference_two: Path) -> None:
    parallel = generate_dataset(SPEC, tmp_path / "parallel.hdf5", 2, workers=2)
    assert combined_digest(file_digests(parallel)) == combined_digest(file_digests(reference_two))
    assert parallel.read_bytes() == reference_two.read_bytes()


def test_fewer_demos_are_the_first_demos_of_each_operator(
    tiny_push_dataset: Path, reference_two: Path
) -> None:
    """Demo seeds do not depend on the count, so a manifest covers smaller generations."""
    first_of_two = [d for d in file_digests(reference_two) if d.demo_index == 0]
    tiny = file_digests(tiny_push_dataset)
    assert [(d.operator, d.sha256) for d in tiny] == [(d.operator, d.sha256) for d in first_of_two]


def test_damaged_demo_and_stale_temporaries_are_redone(
    tmp_path: Path, tiny_push_dataset: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=generate.__name__)
    out = tmp_path / "d.hdf5"
    interrupt_after(monkeypatch, 3)
    with pytest.raises(Interrupt):
        generate_dataset(SPEC, out, 1)
    monkeypatch.undo()
    work = work_dir_for(out)
    files = sorted(work.glob("demo_*.hdf5"))
    assert len(files) == 3 and not out.exists()
    files[1].write_bytes(files[1].read_bytes()[:1000])  # a damaged demo
    (work / ".demo_op5_0.hdf5.abc123.tmp.hdf5").write_bytes(b"half")  # killed mid-write
    (tmp_path / ".d.hdf5.xyz.tmp.hdf5").write_bytes(b"half")  # killed mid-assembly

    generate_dataset(SPEC, out, 1)
    assert f"re-recording {files[1].name}" in caplog.text
    assert "resuming: 2 of 6 demos" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.hdf5"]
    assert file_digests(out) == file_digests(tiny_push_dataset)


def test_work_dir_of_other_parameters_is_refused_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "d.hdf5"
    interrupt_after(monkeypatch, 1)
    with pytest.raises(Interrupt):
        generate_dataset(SPEC, out, 1)
    monkeypatch.undo()
    with pytest.raises(GenerationError, match=r"demos_per_operator: 1 there, 2 now.*delete") as info:
        generate_dataset(SPEC, out, 2)
    assert str(work_dir_for(out)) in str(info.value)
    assert len(list(work_dir_for(out).glob("demo_*.hdf5"))) == 1
    # An edited operator script or task under the same version is another generation too.
    monkeypatch.setattr("polymimic.datasets.generate.code_digest", lambda: "edited")
    with pytest.raises(GenerationError, match=r"code: .* there, 'edited' now"):
        generate_dataset(SPEC, out, 1)


def test_finished_output_is_reused_or_replaced_only_on_request(
    tmp_path: Path, tiny_push_dataset: Path
) -> None:
    out = tmp_path / "d.hdf5"
    shutil.copy(tiny_push_dataset, out)
    before = (out.read_bytes(), out.stat().st_mtime_ns)
    assert generate_dataset(SPEC, out, 1, if_exists="reuse") == out
    assert (out.read_bytes(), out.stat().st_mtime_ns) == before
    assert not work_dir_for(out).exists()
    with pytest.raises(GenerationError, match="with 1 demos per operator, not .* with 2.*overwrite"):
        generate_dataset(SPEC, out, 2, if_exists="reuse")
    # Same name and count, but one operator's skill recalibrated: the file is stale.
    first = SPEC.operators[0]
    motor = dataclasses.replace(
        first.skill.motor, endpoint_noise=first.skill.motor.endpoint_noise + 0.001
    )
    recalibrated = dataclasses.replace(
        SPEC, operators=(dataclasses.replace(first, skill=dataclasses.replace(
            first.skill, motor=motor)), *SPEC.operators[1:]),
    )
    with pytest.raises(GenerationError, match="other parameters.*operator_definitions.*overwrite"):
        generate_dataset(recalibrated, out, 1, if_exists="reuse")
    generate_dataset(SPEC, out, 1, if_exists="overwrite")  # regenerates identically
    assert out.read_bytes() == before[0] and out.stat().st_mtime_ns != before[1]

    notes = tmp_path / "notes.hdf5"
    notes.write_text("a user's file")
    with pytest.raises(GenerationError, match="not a valid dataset.*overwrite"):
        generate_dataset(SPEC, notes, 1, if_exists="reuse")
    assert notes.read_text() == "a user's file"


# ----------------------------------------------------------------- masks, data home


def test_failed_mask_holds_exactly_the_failed_demos(tmp_path: Path) -> None:
    # A fast, skilled operator and a slow, unskilled one under a time limit between their
    # usual episode lengths (~215 and ~410 steps), so the file holds both outcomes.
    spec = dataclasses.replace(
        SPEC, name="test/push/time-limited-v0", operators=(SPEC.operators[0], SPEC.operators[5]),
        env_kwargs={"max_episode_steps": 300},
    )
    path = generate_dataset(spec, tmp_path / "limited.hdf5", 2, valid_fraction=0.5)
    with h5py.File(path, "r") as f:
        success = {n: bool(f["data"][n].attrs["success"]) for n in demo_names(f)}
        for name, ok in success.items():
            assert bool(f["data"][name]["truncations"][-1]) != ok
    failed = [n for n, ok in success.items() if not ok]
    assert failed and len(failed) < len(success), "the test needs both outcomes"
    assert get_mask(path, "failed") == failed
    assert sorted(get_mask(path, "train") + get_mask(path, "valid")) == sorted(
        n for n, ok in success.items() if ok
    )
    with h5py.File(path, "r") as f:
        assert all(isinstance(x, bytes) for x in f["mask/failed"][()])


def test_data_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(DATA_HOME_ENV, str(tmp_path / "home"))
    expected = tmp_path / "home" / "polymimic" / "push" / "multi-operator-v1" / "data" / "demos.hdf5"
    assert dataset_path(NAME) == expected
    assert dataset_path(NAME, home=tmp_path / "x") == tmp_path / "x" / NAME / "data" / "demos.hdf5"
    monkeypatch.delenv(DATA_HOME_ENV)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert dataset_path(NAME) == tmp_path / "user" / ".polymimic" / "datasets" / NAME / "data" / "demos.hdf5"
    for bad in ("", "a//b", "../escape", "a/./b", "a\\b"):
        with pytest.raises(ValueError, match="cannot be a path"):
            dataset_path(bad)

    monkeypatch.setenv(DATA_HOME_ENV, str(tmp_path / "home"))
    assert polymimic_main(["data", "generate", "--demos-per-operator", "1", "--no-progress"]) == 0
    assert validate_dataset(expected).num_demos == 6
    assert sorted(p.name for p in expected.parent.iterdir()) == ["demos.hdf5"]


# ----------------------------------------------------------------- manifests


def test_manifest_check_names_a_tampered_demo(tmp_path: Path, tiny_push_dataset: Path) -> None:
    manifest = build_manifest(tiny_push_dataset, NAME)
    assert manifest["demos_per_operator"] == 1 and len(manifest["demos"]) == 6
    clean = check_manifest(tiny_push_dataset, manifest)
    assert clean.matches and clean.checked == 6
    assert clean.describe().endswith("matches manifest (6 demos)")

    tampered = tmp_path / "tampered.hdf5"
    shutil.copy(tiny_push_dataset, tampered)
    with h5py.File(tampered, "r+") as f:
        f["data/demo_3/obs/tip_pos"][5, 0] += 1e-6
    check = check_manifest(tampered, manifest)
    assert not check.matches and [d.demo for d in check.differing] == ["demo_3"]
    report = check.describe()
    assert "1 of 6 demos differ" in report and "demo_3 (op4 #0)" in report
    assert "differs from the reference" in report and "equal the manifest's" in report

    old = {**manifest, "versions": {**manifest["versions"], "mujoco": "0.0.1"}}
    assert "mujoco: 0.0.1 -> " in check_manifest(tampered, old).describe()
    shorter = {**manifest, "demos": {**manifest["demos"], "op2": []}}
    partial = check_manifest(tiny_push_dataset, shorter)
    assert not partial.matches and [d.demo for d in partial.unreferenced] == ["demo_1"]


def test_cli_reports_manifest_and_strict_fails_on_mismatch(
    tmp_path: Path, tiny_push_dataset: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "d.hdf5"
    shutil.copy(tiny_push_dataset, out)  # the CLI reuses it, so only the check runs
    args = ["data", "generate", "--out", str(out), "--demos-per-operator", "1", "--no-progress"]
    manifest = build_manifest(out, NAME)
    monkeypatch.setattr("polymimic.cli.data.load_manifest", lambda name: manifest)
    assert polymimic_main([*args, "--strict"]) == 0
    assert "matches manifest (6 demos)" in capsys.readouterr().out

    manifest["demos"]["op1"] = ["0" * 64]
    assert polymimic_main(args) == 0  # warns, keeps the file
    assert "demo_0 (op1 #0)" in capsys.readouterr().err and out.exists()
    assert polymimic_main([*args, "--strict"]) == 1

    monkeypatch.setattr("polymimic.cli.data.load_manifest", lambda name: None)
    assert polymimic_main(args) == 0
    assert f"no manifest for {NAME}" in capsys.readouterr().out


def test_tiny_generation_matches_committed_manifest(tiny_push_dataset: Path) -> None:
    """THE ONE TEST THAT DEPENDS ON THE COMMITTED MANIFEST.

    It fails whenever tasks or operators change the data: then regenerate the manifests
    with ``python scripts/update_manifests.py --workers 2`` and commit them with the change.
    """
    manifest = load_manifest(NAME)
    assert manifest is not None, "no committed manifest; run scripts/update_manifests.py"
    assert manifest["demos_per_operator"] == SPEC.demos_per_operator
    check = check_manifest(tiny_push_dataset, manifest)
    assert check.matches, check.describe()
