"""What a notebook shows besides plots: an agent's episode as an animation, and a function's source.

::

    env = gym.make("CartPole-v1", render_mode="rgb_array")
    show_episode(env, policy, seed=0)          # the last line of a notebook cell

The animation is an animated GIF embedded in the notebook: it needs no script (so it plays in a
notebook Jupyter does not trust yet), plays offline, in Colab and on GitHub, and needs no ffmpeg.
"""

from __future__ import annotations

import inspect
import io
import textwrap
from pathlib import Path
from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from IPython.display import Image, Markdown
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont

from course_utils.trajectory import action_function, env_action
from course_utils.validation import check_int


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
) -> Image:
    """An animated GIF of ``frames`` for a notebook cell's output, looping forever.

    A GIF needs no script, so it plays in a notebook that was just cloned or downloaded (which
    Jupyter does not trust, and so runs none of its scripts), in Colab, and on GitHub. Frames
    wider than ``max_width`` pixels are scaled down (with their aspect ratio). ``title`` is
    written in a strip above the frames; as it never changes, it costs bytes only once. GIF
    stores frame durations in hundredths of a second and browsers slow down faster frames, so
    fps above 50 does not play faster: for long episodes, keep every k-th frame instead
    (``record_episode(..., every=k)``) and divide fps by k.
    """
    return Image(data=_gif_bytes(frames, fps, max_width, title), format="gif")


def save_gif(
    frames: Sequence[np.ndarray], path: str | Path, fps: int = 30, max_width: int = 320
) -> Path:
    """Write ``frames`` as an animated GIF that loops forever (see ``animate``); return its path."""
    gif = _gif_bytes(frames, fps, max_width, None)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gif)
    return path


def show_episode(
    env: gym.Env,
    policy: Any = None,
    seed: int | None = None,
    max_steps: int = 1000,
    every: int = 1,
    fps: int = 30,
    max_width: int = 320,
) -> Image:
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


def _gif_bytes(frames: Sequence[np.ndarray], fps: int, max_width: int, title: str | None) -> bytes:
    """The frames (with a title strip above them) as an animated GIF's bytes."""
    images = _resized(frames, max_width)
    fps = check_int("fps", fps)
    if title:
        images = _with_title(images, title)
    # One palette for every frame, from up to 16 frames spread over the episode: no colour
    # flicker from frame to frame, and unchanged pixels stay identical, so Pillow stores only
    # each frame's changed rectangle. (Pillow maps pixels to it to within a few levels.)
    sample = np.concatenate(images[:: max(1, len(images) // 16)])
    palette = PILImage.fromarray(sample).quantize(colors=256, method=PILImage.Quantize.MEDIANCUT)
    paletted = [PILImage.fromarray(image).quantize(palette=palette, dither=PILImage.Dither.NONE)
                for image in images]
    # GIF counts time in hundredths of a second, and browsers play anything under 2 as 10.
    frame_ms = 10 * max(2, round(100 / fps))
    buffer = io.BytesIO()
    paletted[0].save(buffer, format="GIF", save_all=True, append_images=paletted[1:],
                     duration=frame_ms, loop=0)  # loop forever
    return buffer.getvalue()


def _with_title(images: list[np.ndarray], title: str) -> list[np.ndarray]:
    """The images below a white strip that holds ``title`` in black."""
    width = images[0].shape[1]
    strip = PILImage.new("RGB", (width, 18), "white")
    ImageDraw.Draw(strip).text((4, 2), title, fill="black", font=ImageFont.load_default(size=12))
    strip_pixels = np.asarray(strip)
    return [np.concatenate([strip_pixels, image]) for image in images]


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
        image = PILImage.fromarray(frame[:, :, :3])
        if image.size != (width, height):
            image = image.resize((width, height), PILImage.BOX)  # each pixel: its area's mean
        resized.append(np.asarray(image))
    return resized
