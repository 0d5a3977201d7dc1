"""Submission bundles: a built bundle is accepted, and every hostile one is refused with a
message naming the problem, before anything is stored (issue 16, "Must show")."""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from polymimic.errors import OutputPathError
from polymimic.leaderboard.build import build_bundle
from polymimic.leaderboard.bundle import MEMBERS, BundleLimits, read_bundle, submit
from polymimic.leaderboard.schema import SubmissionError
from polymimic.leaderboard.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'leaderboard.db'}")


def copy_bundle(bundle_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(bundle_dir, tmp_path / "bundle"))


def edit_json(path: Path, change: Callable[[dict[str, Any]], Any]) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def write_zip(path: Path, members: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return path


def members_of(bundle_dir: Path) -> list[tuple[str | zipfile.ZipInfo, bytes]]:
    return [(name, (bundle_dir / name).read_bytes()) for name in MEMBERS]


def refused(store: Store, path: Path, *fragments: str, limits: BundleLimits | None = None) -> str:
    """Submit ``path``; assert it is refused with every fragment in the message and that
    neither a submission row nor a file row was written."""
    with pytest.raises(SubmissionError) as caught:
        submit(store, path, limits)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message
    assert store.count() == 0 and store.file_count() == 0
    return message


# ----------------------------------------------------------------------------- accepted


def test_built_bundle_is_stored_with_submitted_text_inert(
    bundle_dir: Path, store: Store, tmp_path: Path, trained_run: Path
) -> None:
    submission_id = submit(store, bundle_dir)
    row = store.get(submission_id)
    # stdlib json only: the OmegaConf interpolation is a string, the HTML is not interpreted.
    assert row.name == "tiny <b>bc</b> ${oc.env:HOME}"
    assert row.status == "pending" and row.task == "polymimic/Push-v1"
    assert row.policy_type == "bc_mlp" and row.fixed_data is None  # 1 demo/operator: not named
    stored = store.files(submission_id)
    assert stored["model.safetensors"] == (bundle_dir / "model.safetensors").read_bytes()
    claims = json.loads((trained_run / "checkpoints/last/eval/eval_info.json").read_text())
    assert row.claimed_success == claims["aggregated"]["success_rate"]
    # The same files as a zip (with one top-level folder) are accepted too.
    zipped = write_zip(tmp_path / "b.zip",
                       [(f"mine/{name}", data) for name, data in members_of(bundle_dir)])
    assert read_bundle(zipped).checkpoint_sha256 == row.checkpoint_sha256


def test_build_writes_a_zip_and_refuses_an_existing_output(
    trained_run: Path, tmp_path: Path
) -> None:
    out = build_bundle(trained_run, tmp_path / "b.zip", name="zipped")
    assert sorted(zipfile.ZipFile(out).namelist()) == sorted(MEMBERS)
    with pytest.raises(OutputPathError, match="exists"):
        build_bundle(trained_run, out, name="again")


# ------------------------------------------------------------------------------ refused


class _Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("touch pwned_by_pickle",))


@pytest.mark.parametrize("kind", ["torch.save", "pickle"])
def test_pickle_disguised_as_safetensors(
    kind: str, bundle_dir: Path, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = copy_bundle(bundle_dir, tmp_path)
    if kind == "torch.save":
        buffer = io.BytesIO()
        torch.save({"mlp.0.weight": torch.zeros(2, 2), "evil": _Evil()}, buffer)
        (path / "model.safetensors").write_bytes(buffer.getvalue())
    else:
        (path / "model.safetensors").write_bytes(pickle.dumps(_Evil(), protocol=4))
    refused(store, path, "model.safetensors is a", "never unpickles", "safetensors")
    assert not (tmp_path / "pwned_by_pickle").exists()


def test_bundle_over_the_size_limit(bundle_dir: Path, store: Store, tmp_path: Path) -> None:
    path = copy_bundle(bundle_dir, tmp_path)
    with open(path / "model.safetensors", "r+b") as f:
        f.truncate(BundleLimits().max_model_bytes + 1)  # sparse: nothing is really written
    refused(store, path, "model.safetensors is", "the limit is", "smaller model")
    # A zip file larger than the bundle limit is refused before it is opened.
    zipped = write_zip(tmp_path / "big.zip", members_of(bundle_dir))
    small = BundleLimits(max_bundle_bytes=zipped.stat().st_size - 1)
    refused(store, zipped, "big.zip is", "the limit is", limits=small)


def test_zip_that_inflates_past_the_limit(bundle_dir: Path, store: Store, tmp_path: Path) -> None:
    limits = BundleLimits(max_model_bytes=1 << 20, max_bundle_bytes=2 << 20)
    members = [m for m in members_of(bundle_dir) if m[0] != "model.safetensors"]
    bomb = write_zip(tmp_path / "bomb.zip", [*members, ("model.safetensors", bytes(16 << 20))])
    assert bomb.stat().st_size < 100_000  # 16 MiB of zeros deflate to a few KiB
    refused(store, bomb, "declares 16777216 bytes", "limit", limits=limits)
    # A header that lies (declares 100 bytes, holds 16 MiB): reading stops at the declared
    # size and the CRC check refuses the member; nothing past the cap is ever inflated.
    liar = tmp_path / "liar.zip"
    data = bytearray(bomb.read_bytes())
    info = zipfile.ZipFile(bomb).getinfo("model.safetensors")
    size = (16 << 20).to_bytes(4, "little")
    for at in [i for i in range(len(data)) if data[i : i + 4] == size]:
        data[at : at + 4] = (100).to_bytes(4, "little")  # local header and central directory
    liar.write_bytes(bytes(data))
    assert zipfile.ZipFile(liar).getinfo("model.safetensors").file_size == 100 != info.file_size
    refused(store, liar, "zip member model.safetensors is damaged", "Bad CRC-32", limits=limits)


MALFORMED: dict[str, tuple[str, Callable[[Path], None], tuple[str, ...]]] = {
    "not json": ("submission.json", lambda p: p.write_text("{not json"), ("not valid JSON",)),
    "missing task": ("submission.json", lambda p: edit_json(p, lambda d: d.pop("task")),
                     ("missing required fields ['task']",)),
    "unknown field": ("submission.json", lambda p: edit_json(p, lambda d: d.update(nmae="x")),
                      ("unknown fields ['nmae']",)),
    "duplicate key": ("submission.json",
                      lambda p: p.write_text(p.read_text()[:-2] + ', "name": "twice"}'),
                      ("duplicate keys ['name']",)),
    "name not text": ("submission.json", lambda p: edit_json(p, lambda d: d.update(name=[1])),
                      ("field 'name' must be a non-empty string",)),
    "bad hash": ("submission.json",
                 lambda p: edit_json(p, lambda d: d["dataset"].update(sha256="abc")),
                 ("dataset.sha256 must be 64 lowercase hex",)),
    "script link": ("submission.json",
                    lambda p: edit_json(p, lambda d: d.update(links={"code": "javascript:x"})),
                    ("links.code must be an http:// or https:// URL",)),
    "config not json": ("config.json", lambda p: p.write_text("[1, 2"), ("config.json",)),
    "missing bundle file": ("config.json", lambda p: p.unlink(), ("missing config.json",)),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_or_missing_json_fields(
    case: str, bundle_dir: Path, store: Store, tmp_path: Path
) -> None:
    name, damage, fragments = MALFORMED[case]
    path = copy_bundle(bundle_dir, tmp_path)
    damage(path / name)
    refused(store, path, *fragments)


def test_unknown_policy_type(bundle_dir: Path, store: Store, tmp_path: Path) -> None:
    path = copy_bundle(bundle_dir, tmp_path)
    edit_json(path / "submission.json", lambda d: d.update(policy_type="my_own_policy"))
    refused(store, path, "policy_type 'my_own_policy' is not a registered learner", "bc_mlp")
    edit_json(path / "submission.json", lambda d: d.update(policy_type="bc_mlp"))
    edit_json(path / "config.json", lambda d: d.update(policy_type="my_own_policy"))
    refused(store, path, "my_own_policy")


@pytest.mark.parametrize("member, fragment", [
    ("../submission.json", "'..' path component (path traversal)"),
    ("mine/../../config.json", "'..' path component (path traversal)"),
    ("/etc/model.safetensors", "absolute path"),
    ("C:/model.safetensors", "absolute path"),
    ("mine\\..\\config.json", "backslash"),
])
def test_path_traversal_or_absolute_member(
    member: str, fragment: str, bundle_dir: Path, store: Store, tmp_path: Path
) -> None:
    members = members_of(bundle_dir)
    target = Path(member.replace("\\", "/")).name
    zipped = write_zip(tmp_path / "b.zip",
                       [(member if name == target else name, data) for name, data in members])
    refused(store, zipped, fragment)


def test_symlink_member_and_unexpected_files(
    bundle_dir: Path, store: Store, tmp_path: Path
) -> None:
    link = zipfile.ZipInfo("config.json")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    members = [m for m in members_of(bundle_dir) if m[0] != "config.json"]
    refused(store, write_zip(tmp_path / "l.zip", [*members, (link, b"/etc/passwd")]),
            "symbolic link")
    code = write_zip(tmp_path / "c.zip", [*members_of(bundle_dir), ("policy.py", b"import os")])
    refused(store, code, "unexpected file 'policy.py'", "no code")
    path = copy_bundle(bundle_dir, tmp_path)
    (path / "config.json").unlink()
    (path / "config.json").symlink_to(bundle_dir / "config.json")
    refused(store, path, "symbolic link")


def test_config_whose_shapes_do_not_match_the_weights(
    bundle_dir: Path, store: Store, tmp_path: Path
) -> None:
    path = copy_bundle(bundle_dir, tmp_path)
    edit_json(path / "config.json", lambda d: d["config"].update(hidden_dims=[16]))
    message = refused(store, path, "tensors do not match a 'bc_mlp' policy", "different shape")
    assert str(tmp_path) not in message.replace(str(path), "")  # no server temp paths


@pytest.mark.parametrize("claim", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_nan_or_infinite_claims(
    claim: str, bundle_dir: Path, store: Store, tmp_path: Path
) -> None:
    path = copy_bundle(bundle_dir, tmp_path)
    document = json.loads((path / "submission.json").read_text())
    document["claimed_metrics"]["success_rate"] = "CLAIM"
    (path / "submission.json").write_text(json.dumps(document).replace('"CLAIM"', claim))
    refused(store, path, "submission.json is not valid JSON", "claims must be finite")


def test_claims_outside_zero_one(bundle_dir: Path, store: Store, tmp_path: Path) -> None:
    path = copy_bundle(bundle_dir, tmp_path)
    edit_json(path / "submission.json",
              lambda d: d["claimed_metrics"].update(behaviour_entropy=1.5))
    refused(store, path, "claimed_metrics.behaviour_entropy must be a finite number in [0, 1]")


ENV_REQUESTS: dict[str, tuple[Callable[[dict[str, Any]], Any], str]] = {
    "import syntax": (lambda d: d["env_args"].update(env_name="evilmod:Evil-v0"),
                      "the 'module:' form would import code"),
    "other gym id": (lambda d: d["env_args"].update(env_name="CartPole-v1"),
                     "'CartPole-v1' is not a polymimic task"),
    "unknown kwarg": (lambda d: d["env_args"]["env_kwargs"].update(xml_file="/tmp/x.xml"),
                      "env kwargs ['xml_file'] are not allowed"),
    "endless episodes": (lambda d: d["env_args"]["env_kwargs"].update(max_episode_steps=10**9),
                         "max_episode_steps=1000000000 is not allowed"),
    "another task": (lambda d: d["env_args"].update(env_name="polymimic/Align-v1"),
                     "trained in polymimic/Align-v1 but submission.json names task"),
}


@pytest.mark.parametrize("case", sorted(ENV_REQUESTS))
def test_env_id_or_kwargs_outside_the_allowlist(
    case: str, bundle_dir: Path, store: Store, tmp_path: Path
) -> None:
    change, fragment = ENV_REQUESTS[case]
    path = copy_bundle(bundle_dir, tmp_path)
    edit_json(path / "config.json", change)
    refused(store, path, "config.json env_args" if case != "another task" else "", fragment)


def test_submission_task_outside_the_allowlist(
    bundle_dir: Path, store: Store, tmp_path: Path
) -> None:
    path = copy_bundle(bundle_dir, tmp_path)
    edit_json(path / "submission.json", lambda d: d.update(task="evilmod:Evil-v0"))
    refused(store, path, "field 'task'", "would import code")
