"""Headless rendering: pick a MuJoCo GL backend, and fail clearly when none works.

MuJoCo reads ``MUJOCO_GL`` when ``mujoco`` is first imported, so the default must be set
before that import. A value the user set is always respected (GPU users want EGL on their
NVIDIA driver, desktop users may want glfw).
"""

from __future__ import annotations

import os
import sys

_DEFAULT_BACKEND = "egl"
_FIX_HINT = (
    "Install the Mesa GL libraries (Debian/Ubuntu: `apt-get install libegl1 libgl1 "
    "libegl-mesa0 libgl1-mesa-dri libosmesa6`), or choose another backend with "
    "MUJOCO_GL=egl|osmesa|glfw before starting Python."
)


def configure_gl_backend() -> str:
    """Set ``MUJOCO_GL`` (and PyOpenGL's platform) to a headless default if unset.

    Returns:
        The backend in effect.
    """
    backend = os.environ.get("MUJOCO_GL")
    if not backend:
        if "mujoco" in sys.modules:
            # Too late: mujoco chose its backend at import. Setting the variable now would
            # only make later error messages blame a backend that is not in use.
            return "(chosen by mujoco at import)"
        backend = _DEFAULT_BACKEND
        os.environ["MUJOCO_GL"] = backend
    if backend in ("egl", "osmesa"):
        os.environ.setdefault("PYOPENGL_PLATFORM", backend)
    return backend


class RenderingUnavailableError(RuntimeError):
    """No working OpenGL backend for offscreen MuJoCo rendering."""


def make_renderer(model, height: int, width: int):
    """Create a ``mujoco.Renderer`` with shadows and reflections off.

    Shadows and reflections cost ~20x in software rendering and add nothing a policy
    needs, so camera observations and videos are rendered without them.

    Raises:
        RenderingUnavailableError: naming the backend and how to fix it.
    """
    import mujoco

    backend = os.environ.get("MUJOCO_GL", "(unset)")
    hint = _FIX_HINT
    if backend == "(unset)":
        hint = (
            "MUJOCO_GL was unset when mujoco was imported (before polymimic), so mujoco "
            "chose a windowed backend. Set MUJOCO_GL=egl (or osmesa) before starting "
            "Python, or import polymimic before mujoco."
        )
    try:
        renderer = mujoco.Renderer(model, height=height, width=width)
    except Exception as exc:  # MuJoCo raises several types depending on the backend
        raise RenderingUnavailableError(
            f"MuJoCo could not create an offscreen OpenGL context with MUJOCO_GL={backend!r}: "
            f"{exc}. {hint}"
        ) from exc
    renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
    renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
    return renderer


def import_mujoco():
    """Import mujoco, turning a GL backend that fails at import into one clear error.

    With e.g. ``MUJOCO_GL=osmesa`` and no libOSMesa, ``import mujoco`` itself fails deep
    inside PyOpenGL; users who never render would otherwise see an unrelated traceback.
    """
    try:
        import mujoco
    except (ImportError, AttributeError, RuntimeError, OSError) as exc:
        backend = os.environ.get("MUJOCO_GL", "(unset)")
        raise RenderingUnavailableError(
            f"importing mujoco failed with MUJOCO_GL={backend!r}: {exc}. {_FIX_HINT}"
        ) from exc
    return mujoco
