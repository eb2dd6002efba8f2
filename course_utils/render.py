"""What a notebook shows besides plots: an agent's episode as an animation, and a function's source.

::

    env = gym.make("CartPole-v1", render_mode="rgb_array")
    show_episode(env, policy, seed=0)          # the last line of a notebook cell

The animation is HTML with JavaScript controls (matplotlib's ``to_jshtml``), with the frames
embedded as PNG images: it plays offline and in Colab, and needs no ffmpeg.
"""

from __future__ import annotations

import inspect
import textwrap
from html import escape
from pathlib import Path
from typing import Any, Sequence

import gymnasium as gym
import matplotlib
import numpy as np
from IPython.display import HTML, Markdown
from matplotlib.animation import FuncAnimation
from matplotlib.figure import Figure
from PIL import Image

from course_utils.trajectory import action_function, env_action
from course_utils.validation import check_int

# The figure is sized so that one image pixel is one figure pixel: (pixels / _DPI) inches.
# A power of two, so that pixels / _DPI * _DPI gives the pixels back exactly in floating point
# (with 100, a 230-pixel-high image would make a 229-pixel-high figure).
_DPI = 64


def record_episode(
    env: gym.Env,
    policy: Any = None,
    seed: int | None = None,
    max_steps: int = 1000,
    every: int = 1,
) -> tuple[list[np.ndarray], float]:
    """Run one episode and return its frames, ``(H, W, 3)`` uint8 arrays, and its return.

    ``env`` must be made with ``render_mode="rgb_array"``. ``policy`` is None (random actions),
    a function ``obs -> action``, or an object with a ``get_action(obs)`` method. The episode
    stops at termination, truncation or after ``max_steps`` steps. Only every ``every``-th frame
    is kept (less memory for long episodes), always with the first and the last. ``seed`` seeds
    ``env.reset`` and the action space, so that even a random episode can be replayed.
    """
    if isinstance(env, gym.vector.VectorEnv):
        raise ValueError("record_episode needs a single environment, not a vector environment")
    if env.render_mode != "rgb_array":
        env_id = env.spec.id if env.spec is not None else "ENV_ID"
        raise ValueError(
            f"record_episode needs frames, but env was made with render_mode={env.render_mode!r}; "
            f'create it with gym.make("{env_id}", render_mode="rgb_array")'
        )
    max_steps = check_int("max_steps", max_steps)
    every = check_int("every", every)
    if policy is None:
        act = lambda obs: env.action_space.sample()  # noqa: E731
    else:
        act = action_function(policy)
    if seed is not None:
        env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    frames = [_frame(env.render())]
    total_reward = 0.0
    for t in range(1, max_steps + 1):
        obs, reward, terminated, truncated, _ = env.step(env_action(act(obs), env.action_space))
        total_reward += float(reward)
        done = terminated or truncated or t == max_steps
        # Render only the frames we keep: rendering costs more than stepping.
        if t % every == 0 or done:
            frames.append(_frame(env.render()))
        if done:
            break
    return frames, total_reward


def animate(
    frames: Sequence[np.ndarray],
    fps: int = 30,
    max_width: int = 320,
    title: str | None = None,
) -> HTML:
    """An inline animation of ``frames`` with play/pause controls, for a notebook cell's output.

    Frames wider than ``max_width`` pixels are scaled down (with their aspect ratio) and embedded
    as PNG images: a 500-frame CartPole episode makes about 1.1 MB of HTML. ``title`` is shown
    above the player. The buttons' icons come from a CDN (Font Awesome): offline the buttons
    show no icons but still work (hover for their names).
    """
    images = _resized(frames, max_width)
    fps = check_int("fps", fps)
    height, width = images[0].shape[:2]
    # A figure of exactly the image's size in pixels showing the image pixel for pixel with
    # figimage: no resampling, no axes, no margins. The Figure is made without pyplot, so the
    # notebook never also draws it as a static image.
    fig = Figure(figsize=(width / _DPI, height / _DPI), dpi=_DPI)
    shown = fig.figimage(images[0], origin="upper")

    def draw_frame(i: int) -> list:
        shown.set_data(images[i])
        return [shown]

    animation = FuncAnimation(fig, draw_frame, frames=len(images), interval=1000 / fps)
    settings = {
        # PNG: these flat-coloured renders compress better losslessly than as JPEG.
        "animation.frame_format": "png",
        "animation.embed_limit": 1000.0,  # MB; the default (20) silently drops long episodes
        "savefig.dpi": "figure",
        "savefig.bbox": "standard",  # a user's 'tight' would crop the frames
    }
    with matplotlib.rc_context(settings):
        html = animation.to_jshtml(fps=fps)
    if title:
        # The title goes in the HTML, above the player: drawn into every frame, its
        # anti-aliased text would cost more bytes than the frame itself.
        html = f'<div style="font-family: sans-serif; margin: 4px 0">{escape(title)}</div>' + html
    return HTML(html)


def save_gif(
    frames: Sequence[np.ndarray], path: str | Path, fps: int = 30, max_width: int = 320
) -> Path:
    """Write ``frames`` as an animated GIF that loops forever, with Pillow; return its path.

    GIF stores frame durations in hundredths of a second and browsers slow down faster frames,
    so fps above 50 does not play faster. Pillow merges identical consecutive frames into one.
    """
    images = [Image.fromarray(image) for image in _resized(frames, max_width)]
    fps = check_int("fps", fps)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(
        path,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=round(1000 / fps),  # milliseconds per frame
        loop=0,  # repeat forever
    )
    return path


def show_episode(
    env: gym.Env,
    policy: Any = None,
    seed: int | None = None,
    max_steps: int = 1000,
    every: int = 1,
    fps: int = 30,
    max_width: int = 320,
) -> HTML:
    """Record one episode (see ``record_episode``) and return it as an animation titled with
    its return. With ``every=k``, ``fps=30 // k`` plays it at about the real speed."""
    frames, total_reward = record_episode(env, policy, seed=seed, max_steps=max_steps, every=every)
    env_id = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
    title = f"{env_id}: return {total_reward:.1f}"
    return animate(frames, fps=fps, max_width=max_width, title=title)


def show_source(obj: Any, first: str | None = None, last: str | None = None) -> Markdown:
    """The source of a function, method or class, as a syntax-highlighted code block for a
    notebook cell's output: all of it, or its lines from the first one containing ``first`` to
    the first one after it containing ``last``. Lets a notebook show the parts of an algorithm's
    file that the student does not write, without copying them."""
    lines = inspect.getsource(obj).splitlines()
    start = _line_containing(lines, first, 0, "first") if first is not None else 0
    end = _line_containing(lines, last, start, "last") if last is not None else len(lines) - 1
    shown = textwrap.dedent("\n".join(lines[start:end + 1]))
    return Markdown(f"```python\n{shown}\n```")


# --------------------------------------------------------------------------------- helpers


def _line_containing(lines: list[str], text: str, start: int, name: str) -> int:
    for i in range(start, len(lines)):
        if text in lines[i]:
            return i
    raise ValueError(f"{name}={text!r} is in no line of the source (from line {start + 1})")



def _frame(frame: Any) -> np.ndarray:
    frame = np.array(frame, copy=True)  # some renderers reuse one buffer for every frame
    if frame.ndim != 3 or frame.shape[2] not in (3, 4) or frame.dtype != np.uint8:
        raise ValueError(
            f"env.render() returned {frame.dtype} of shape {frame.shape}; expected (H, W, 3) uint8"
        )
    return frame[:, :, :3]


def _resized(frames: Sequence[np.ndarray], max_width: int) -> list[np.ndarray]:
    """The frames as (H, W, 3) uint8 arrays, scaled to the first one's size, width <= max_width."""
    if len(frames) == 0:
        raise ValueError("frames is empty: there is nothing to show")
    max_width = check_int("max_width", max_width)
    height, width = np.asarray(frames[0]).shape[:2]
    if width > max_width:
        height, width = max(1, round(height * max_width / width)), max_width
    resized = []
    for i, frame in enumerate(frames):
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] not in (3, 4) or frame.dtype != np.uint8:
            raise ValueError(
                f"frames[{i}] is {frame.dtype} of shape {frame.shape}; "
                "expected an (H, W, 3) uint8 image, as env.render() returns"
            )
        image = Image.fromarray(frame[:, :, :3])
        if image.size != (width, height):
            image = image.resize((width, height), Image.BOX)  # each pixel: its area's mean
        resized.append(np.asarray(image))
    return resized
