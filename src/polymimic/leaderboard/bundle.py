"""Reading a submission bundle from a stranger: bounded, no code, one loader.

A bundle is a directory or a zip holding exactly ``submission.json``, ``config.json`` and
``model.safetensors`` (a zip may wrap them in one top-level folder). Nothing else is
accepted: no pickles, no code, no extra files. Reading follows the order that keeps a
hostile file cheap to refuse:

1. **Sizes before bytes.** The bundle (the zip file, or the directory's files together) is
   at most ``max_bundle_bytes``; each JSON file ``max_json_bytes``; the model
   ``max_model_bytes``. For a zip the declared sizes are checked first (a zip bomb declares
   its real size, or lies), and members are then streamed with a counter that stops at the
   cap whatever the header said (``_read_capped``), so a lying header cannot inflate past it.
2. **Names before content.** Absolute paths, ``..`` components, backslashes, drive letters
   and symlink members are refused by name; extracted files are written under the fixed
   names above into a private temporary directory, never under a name from the archive.
3. **Plain JSON.** ``submission.json`` goes through ``schema.parse_json`` and
   ``schema.validate_submission`` (stdlib ``json``; an ``${oc.env:...}`` stays a string).
4. **The one checkpoint loader.** ``config.json`` + ``model.safetensors`` load through
   ``polymimic.policies.checkpoint.load_checkpoint`` exactly as ``polymimic eval`` loads
   them: registered policy type, config types and bounds, the weight header against the
   shapes the config describes, finite weights; safetensors never unpickles. A pickle
   renamed to ``model.safetensors`` is recognised by its first bytes and named as such.
5. **The one env allowlist.** ``config.json``'s ``env_args`` pass
   ``polymimic.envs.allowlist.check_env_args`` and must name the submission's task; the
   policy's observation and action widths must fit that task's env.

Every refusal is a :class:`schema.SubmissionError` naming the problem and the fix; the
caller stores nothing unless :func:`read_bundle` returns.
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

from polymimic.envs.allowlist import EnvRequestError, check_env_args, make_env
from polymimic.errors import UserError
from polymimic.leaderboard.schema import (
    SubmissionError,
    named_dataset_hashes,
    parse_json,
    validate_submission,
)
from polymimic.policies.checkpoint import (
    CONFIG_FILE,
    MODEL_FILE,
    checkpoint_digest,
    load_checkpoint,
    read_checkpoint_config,
)

SUBMISSION_FILE = "submission.json"
MEMBERS = (SUBMISSION_FILE, CONFIG_FILE, MODEL_FILE)
BUILD_FIX = "Make bundles with `polymimic leaderboard build RUN_DIR`."
_CHUNK = 1 << 16
_DRIVE = re.compile(r"[A-Za-z]:")


@dataclasses.dataclass(frozen=True)
class BundleLimits:
    """Bounds on what a bundle may make the server read, allocate or run.

    ``max_inference_steps`` is the leaderboard's fixed evaluation-time bound on a diffusion
    policy's denoising steps per action (its own default is 10, the paper's DDPM 100): the
    compute a submission asks for per action is the server's to fix, not the submitter's.
    """

    max_bundle_bytes: int = 64 << 20
    max_json_bytes: int = 1 << 20
    max_model_bytes: int = 64 << 20
    max_zip_entries: int = 8
    max_inference_steps: int = 100

    def member_cap(self, name: str) -> int:
        return self.max_model_bytes if name == MODEL_FILE else self.max_json_bytes


@dataclasses.dataclass(frozen=True)
class Bundle:
    """A checked submission.

    Attributes:
        submission: the normalised ``submission.json`` (``schema.validate_submission``).
        checkpoint_config: ``config.json`` as plain JSON.
        env_id, env_kwargs: the environment, checked by the allowlist.
        files: the three members' bytes, under their fixed names.
        checkpoint_sha256: ``checkpoint_digest`` of config + weights (what is evaluated).
        fixed_data: the named dataset the declared hash matches (fixed-data track) or None.
    """

    submission: dict[str, Any]
    checkpoint_config: dict[str, Any]
    env_id: str
    env_kwargs: dict[str, Any]
    files: dict[str, bytes]
    checkpoint_sha256: str
    fixed_data: str | None


def _refuse(what: str, fix: str = BUILD_FIX) -> SubmissionError:
    return SubmissionError(f"bundle refused: {what}. {fix}")


def _read_capped(stream: BinaryIO, cap: int, what: str) -> bytes:
    """Read a stream to its end, refusing it as soon as it passes ``cap`` bytes."""
    chunks, total = [], 0
    while chunk := stream.read(_CHUNK):
        total += len(chunk)
        if total > cap:
            raise _refuse(f"{what} inflates past the limit of {cap} bytes (a zip bomb, or a "
                          "file too large for the leaderboard)", "Submit a smaller model.")
        chunks.append(chunk)
    return b"".join(chunks)


# --------------------------------------------------------------------------------- members


def _check_member_name(name: str) -> None:
    """Refuse names that could escape a folder when extracted (even though this reader
    never extracts under archive names: other tools a maintainer uses might)."""
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        raise _refuse(f"zip member {name[:80]!r} has an absolute path")
    if "\\" in name or "\x00" in name:
        raise _refuse(f"zip member {name[:80]!r} has a backslash or NUL in its name")
    if ".." in name.split("/"):
        raise _refuse(f"zip member {name[:80]!r} contains a '..' path component "
                      "(path traversal)")


def _top_folder(names: list[str]) -> str:
    """The one folder every member lies in ('' when the members lie at the top)."""
    firsts = {n.split("/", 1)[0] for n in names}
    nested = all("/" in n for n in names)
    return f"{firsts.pop()}/" if nested and len(firsts) == 1 else ""


def _zip_members(path: Path, limits: BundleLimits) -> dict[str, bytes]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise _refuse(f"{path.name} is not a readable zip file ({err})") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_zip_entries:
            raise _refuse(f"the zip holds {len(infos)} entries; a bundle has {len(MEMBERS)}")
        for info in infos:
            _check_member_name(info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise _refuse(f"zip member {info.filename[:80]!r} is a symbolic link")
        prefix = _top_folder([i.filename for i in infos])
        files: dict[str, bytes] = {}
        declared = 0
        for info in infos:
            if info.is_dir():
                if info.filename != prefix:
                    raise _refuse(f"unexpected folder {info.filename[:80]!r} in the zip")
                continue
            name = info.filename[len(prefix):]
            _check_member(name, files)
            if info.flag_bits & 0x1 or info.compress_type not in (
                zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED
            ):
                raise _refuse(f"zip member {name} is encrypted or uses an unsupported "
                              "compression (stored or deflated only)")
            cap = limits.member_cap(name)
            declared += info.file_size
            if info.file_size > cap or declared > limits.max_bundle_bytes:
                raise _refuse(f"zip member {name} declares {info.file_size} bytes; the limit is "
                              f"{cap} bytes per file and {limits.max_bundle_bytes} in all",
                              "Submit a smaller model.")
            try:
                with archive.open(info) as stream:
                    files[name] = _read_capped(stream, cap, f"zip member {name}")
            except (zipfile.BadZipFile, OSError, EOFError) as err:
                raise _refuse(f"zip member {name} is damaged ({err})") from None
        return files


def _check_member(name: str, seen: Mapping[str, bytes]) -> None:
    if name not in MEMBERS:
        raise _refuse(f"unexpected file {name[:80]!r}: a bundle holds only {', '.join(MEMBERS)} "
                      "(no code, no pickles, nothing else)")
    if name in seen:
        raise _refuse(f"{name} appears twice")


def _directory_members(path: Path, limits: BundleLimits) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    with os.scandir(path) as entries:
        for count, entry in enumerate(entries):
            if count >= limits.max_zip_entries:
                raise _refuse(f"{path} holds more than {limits.max_zip_entries} entries")
            if entry.is_symlink():
                raise _refuse(f"{entry.name[:80]!r} is a symbolic link")
            _check_member(entry.name, files)
            if not entry.is_file(follow_symlinks=False):
                raise _refuse(f"{entry.name} is not a regular file")
            size, cap = entry.stat(follow_symlinks=False).st_size, limits.member_cap(entry.name)
            if size > cap:
                raise _refuse(f"{entry.name} is {size} bytes; the limit is {cap}",
                              "Submit a smaller model.")
            files[entry.name] = b""  # reserve the name; read after the total is known
    total = sum((path / name).stat().st_size for name in files)
    if total > limits.max_bundle_bytes:
        raise _refuse(f"the bundle is {total} bytes; the limit is {limits.max_bundle_bytes}",
                      "Submit a smaller model.")
    for name in files:
        # O_NOFOLLOW: a file swapped for a symlink after the check above is refused too.
        fd = os.open(path / name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as stream:
            files[name] = _read_capped(stream, limits.member_cap(name), name)
    return files


def read_members(path: str | os.PathLike[str], limits: BundleLimits) -> dict[str, bytes]:
    """The bundle's files by name, read within the limits (not yet validated)."""
    path = Path(path)
    if path.is_symlink():
        raise _refuse(f"{path} is a symbolic link")
    if path.is_dir():
        files = _directory_members(path, limits)
    elif path.is_file():
        size = path.stat().st_size
        if size > limits.max_bundle_bytes:
            raise _refuse(f"{path.name} is {size} bytes; the limit is {limits.max_bundle_bytes}",
                          "Submit a smaller model.")
        files = _zip_members(path, limits)
    else:
        raise SubmissionError(f"{path} does not exist; pass a bundle directory or zip. "
                              f"{BUILD_FIX}")
    missing = [name for name in MEMBERS if name not in files]
    if missing:
        raise _refuse(f"missing {', '.join(missing)}")
    return files


# ------------------------------------------------------------------------------ validation


def _refuse_pickle(model: bytes) -> None:
    """Name a pickle for what it is (safetensors would only say it cannot parse it)."""
    if model[:1] == b"\x80" and model[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        kind = "a Python pickle"
    elif model[:4] == b"PK\x03\x04":
        kind = "a torch.save zip (pickled)"
    else:
        return
    raise _refuse(f"{MODEL_FILE} is {kind}, not safetensors; the leaderboard never unpickles",
                  "Save the policy with polymimic's save_checkpoint (safetensors).")


def _load_checked(files: Mapping[str, bytes], directory: Path, limits: BundleLimits) -> Any:
    """Load config + weights through the one checkpoint loader; paths in its messages are
    the server's temporary directory, so they are replaced by 'bundle'."""
    for name in (CONFIG_FILE, MODEL_FILE):
        (directory / name).write_bytes(files[name])
    try:
        read_checkpoint_config(directory)  # plain JSON, size, format version
        policy = load_checkpoint(directory)
    except UserError as err:
        raise _refuse(str(err).replace(str(directory), "bundle")) from None
    steps = getattr(policy.config, "num_inference_steps", None)
    if steps is not None and steps > limits.max_inference_steps:
        raise _refuse(f"config.json asks for {steps} denoising steps per action; the "
                      f"leaderboard evaluates at most {limits.max_inference_steps}",
                      "Lower policy.num_inference_steps (DDIM needs about 10).")
    return policy


def _check_env(checkpoint_config: Mapping[str, Any], task: str, policy: Any) -> tuple[str, dict]:
    from polymimic.eval.rollout import check_policy_fits_env

    try:
        env_id, env_kwargs = check_env_args(checkpoint_config.get("env_args"))
    except EnvRequestError as err:
        raise _refuse(f"config.json env_args: {err}") from None
    if env_id != task:
        raise _refuse(f"config.json was trained in {env_id} but submission.json names task "
                      f"{task}", "Submit it to the task it was trained in.")
    env = make_env(env_id, env_kwargs)
    try:
        check_policy_fits_env(policy, env, env_id)
    except UserError as err:
        raise _refuse(str(err)) from None
    finally:
        env.close()
    return env_id, env_kwargs


def validate_members(files: Mapping[str, bytes], limits: BundleLimits) -> Bundle:
    """Check the three files together; return the :class:`Bundle`.

    Raises:
        SubmissionError: the first problem found.
    """
    submission = validate_submission(parse_json(files[SUBMISSION_FILE], SUBMISSION_FILE))
    _refuse_pickle(files[MODEL_FILE])
    checkpoint_config = parse_json(files[CONFIG_FILE], CONFIG_FILE)
    with tempfile.TemporaryDirectory(prefix="polymimic-bundle-") as tmp:
        policy = _load_checked(files, Path(tmp), limits)
        digest = checkpoint_digest(tmp)
    if policy.name != submission["policy_type"]:
        raise _refuse(f"submission.json says policy_type {submission['policy_type']!r} but "
                      f"config.json holds a {policy.name!r} policy")
    env_id, env_kwargs = _check_env(checkpoint_config, submission["task"], policy)
    return Bundle(
        submission=submission, checkpoint_config=checkpoint_config, env_id=env_id,
        env_kwargs=env_kwargs, files=dict(files), checkpoint_sha256=digest,
        fixed_data=named_dataset_hashes().get(submission["dataset"]["sha256"]),
    )


def read_bundle(path: str | os.PathLike[str], limits: BundleLimits | None = None) -> Bundle:
    """Read and check a bundle directory or zip.

    Raises:
        SubmissionError: the first problem found, naming it and the fix.
    """
    limits = limits or BundleLimits()
    return validate_members(read_members(path, limits), limits)


def submit(store: Any, path: str | os.PathLike[str], limits: BundleLimits | None = None) -> int:
    """Check a bundle and, only if every check passes, store it (pending verification).

    Returns:
        The new submission's id.

    Raises:
        SubmissionError: the bundle is refused; nothing was stored.
    """
    return int(store.add(read_bundle(path, limits)))
