"""Unit tests of course_utils.render: recording episodes, animations and GIFs."""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame renders without a display

import io  # noqa: E402

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from IPython.display import Image  # noqa: E402
from PIL import Image as PILImage  # noqa: E402

from course_utils.render import animate, record_episode, save_gif, show_episode  # noqa: E402


@pytest.fixture(scope="module")
def env():
    env = gym.make("CartPole-v1", render_mode="rgb_array")
    yield env
    env.close()


def balance(obs) -> int:
    """Push the cart towards the side the pole falls to: keeps CartPole up for 500 steps."""
    return int(obs[2] + 0.5 * obs[3] > 0)


class CountingPolicy:
    """A course-style Policy object: get_action(obs) -> int, counting its calls."""

    def __init__(self, action: int = 0):
        self.action = action
        self.calls = 0

    def get_action(self, obs: np.ndarray) -> int:
        assert isinstance(obs, np.ndarray) and obs.shape == (4,)
        self.calls += 1
        return self.action


def gif_frames(animation: Image, fps: int = 30) -> list[np.ndarray]:
    """The frames of an animation (an IPython Image holding a GIF), decoded as RGB arrays. Pillow
    stores identical consecutive frames once, for their summed duration: they are repeated here."""
    with PILImage.open(io.BytesIO(animation.data)) as gif:
        assert gif.format == "GIF"
        frame_ms = 10 * max(2, round(100 / fps))  # as animate stores it
        frames = []
        for i in range(gif.n_frames):
            gif.seek(i)
            repeats, rest = divmod(gif.info["duration"], frame_ms)
            assert rest == 0
            frames += [np.asarray(gif.convert("RGB"))] * repeats
    return frames


# ------------------------------------------------------------------------------- record_episode


def test_record_episode_frames_and_return(env):
    policy = CountingPolicy(action=0)  # always push left: the pole falls within a few steps
    frames, total = record_episode(env, policy, seed=0)
    n_steps = policy.calls
    assert 5 < n_steps < 50
    assert total == float(n_steps)  # CartPole pays +1 per step
    assert len(frames) == n_steps + 1  # the first frame, then one per step
    for frame in frames:
        assert frame.shape == (400, 600, 3) and frame.dtype == np.uint8
    assert not np.array_equal(frames[0], frames[-1])


def test_every_keeps_first_and_last_frame(env):
    all_frames, total = record_episode(env, balance, seed=1, max_steps=22)
    assert total == 22.0 and len(all_frames) == 23
    frames, total_every = record_episode(env, balance, seed=1, max_steps=22, every=5)
    assert total_every == total
    expected = [all_frames[i] for i in (0, 5, 10, 15, 20, 22)]
    assert len(frames) == len(expected)
    for got, want in zip(frames, expected):
        np.testing.assert_array_equal(got, want)
    frames, _ = record_episode(env, balance, seed=1, max_steps=20, every=5)
    assert len(frames) == 5  # the last frame (20) is also a 5th one: not added twice


def test_callable_and_get_action_policies_agree(env):
    obj = CountingPolicy(action=1)
    frames_obj, total_obj = record_episode(env, obj, seed=3)
    frames_fn, total_fn = record_episode(env, lambda obs: 1, seed=3)
    frames_tensor, total_tensor = record_episode(env, lambda obs: torch.tensor(1), seed=3)
    frames_np, total_np = record_episode(env, lambda obs: np.array(1), seed=3)
    assert total_obj == total_fn == total_tensor == total_np == obj.calls
    for other in (frames_fn, frames_tensor, frames_np):
        np.testing.assert_array_equal(frames_obj[-1], other[-1])


def test_random_policy_is_reproducible_with_a_seed(env):
    frames_a, total_a = record_episode(env, seed=7)
    frames_b, total_b = record_episode(env, None, seed=7)
    assert total_a == total_b and len(frames_a) == len(frames_b)
    np.testing.assert_array_equal(frames_a[-1], frames_b[-1])


def test_max_steps_stops_the_episode(env):
    frames, total = record_episode(env, balance, seed=0, max_steps=10)
    assert total == 10.0 and len(frames) == 11


def test_wrong_render_mode_says_how_to_make_the_env():
    env = gym.make("CartPole-v1")
    with pytest.raises(ValueError) as info:
        record_episode(env)
    message = str(info.value)
    assert 'gym.make("CartPole-v1", render_mode="rgb_array")' in message
    assert "render_mode=None" in message
    env.close()


def test_bad_arguments(env):
    with pytest.raises(TypeError, match="policy"):
        record_episode(env, policy=42)
    with pytest.raises(ValueError, match="every"):
        record_episode(env, every=0)
    with pytest.raises(ValueError, match="max_steps"):
        record_episode(env, max_steps=0)


# ------------------------------------------------------------------------------- animate


def test_animate_is_a_gif_of_every_frame_pixel_for_pixel():
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    frames = [np.full((230, 300, 3), colour, dtype=np.uint8) for colour in colours]
    frames[2][100:120, 50:60] = 0  # a small change, stored as its own rectangle
    animation = animate(frames, fps=10)
    assert isinstance(animation, Image) and animation.format == "gif"
    assert "image/gif" in animation._repr_mimebundle_()[0]  # shows with no script
    shown = gif_frames(animation, fps=10)
    assert len(shown) == 4
    for got, want in zip(shown, frames):  # no resampling, no margin; colours to a few levels
        np.testing.assert_allclose(got, want, atol=4)
    with PILImage.open(io.BytesIO(animation.data)) as gif:
        assert gif.info["duration"] == 100 and gif.info["loop"] == 0


def test_animate_writes_the_title_above_the_frames():
    frames = [np.full((40, 100, 3), 255, dtype=np.uint8) for _ in range(2)]
    untitled, titled = gif_frames(animate(frames)), gif_frames(animate(frames, title="return 9"))
    assert untitled[0].shape == (40, 100, 3) and titled[0].shape == (58, 100, 3)
    assert (titled[0][:18] < 128).any()  # dark text in the strip
    np.testing.assert_allclose(titled[1][18:], frames[1], atol=4)


def test_animate_scales_frames_down_to_max_width():
    frames = [np.full((400, 600, 3), value, dtype=np.uint8) for value in (0, 128, 255)]
    shown = gif_frames(animate(frames, max_width=150))
    assert [frame.shape[:2] for frame in shown] == [(100, 150)] * 3
    np.testing.assert_allclose(shown[1], 128, atol=4)


def test_animate_errors():
    with pytest.raises(ValueError, match="frames"):
        animate([])
    with pytest.raises(ValueError, match="frames"):
        animate([np.zeros((10, 10, 3), dtype=np.float32)])
    with pytest.raises(ValueError, match="fps"):
        animate([np.zeros((10, 10, 3), dtype=np.uint8)], fps=0)


def test_long_cartpole_episode_stays_small(env):
    # Every other frame of a 500-step episode at 240 pixels: what the notebooks show.
    frames, total = record_episode(env, balance, seed=0, max_steps=499, every=2)
    assert len(frames) == 251 and total == 499.0
    animation = animate(frames, fps=15, max_width=240, title=f"return {total}")
    size_kb = len(animation.data) / 1e3
    assert size_kb < 200, f"{size_kb:.0f} KB of GIF for 251 CartPole frames"
    assert len(gif_frames(animation, fps=15)) == 251  # none dropped


def test_show_episode_titles_the_return(env):
    animation = show_episode(env, CountingPolicy(0), seed=0)
    frames, total = record_episode(env, CountingPolicy(0), seed=0)
    shown = gif_frames(animation)
    assert len(shown) == len(frames)
    assert shown[0].shape[0] == frames[0].shape[0] * 320 // frames[0].shape[1] + 18  # the title
    # The title's text is drawn from the return: another return draws other pixels.
    other = gif_frames(animate(frames, title=f"CartPole-v1: return {total + 1:.1f}"))
    titled = gif_frames(animate(frames, title=f"CartPole-v1: return {total:.1f}"))
    np.testing.assert_array_equal(shown[0], titled[0])
    assert not np.array_equal(shown[0][:18], other[0][:18])


# ------------------------------------------------------------------------------- save_gif


def test_save_gif_writes_every_frame(tmp_path):
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 0, 0), (255, 255, 255)]
    frames = [np.full((50, 100, 3), colour, dtype=np.uint8) for colour in colours]
    path = save_gif(frames, tmp_path / "out" / "episode.gif", fps=20)
    assert path == tmp_path / "out" / "episode.gif"
    with PILImage.open(path) as gif:
        assert gif.format == "GIF" and gif.size == (100, 50) and gif.n_frames == len(frames)
        assert gif.info["duration"] == 50 and gif.info["loop"] == 0
        for i, colour in enumerate(colours):
            gif.seek(i)
            assert gif.convert("RGB").getpixel((10, 10)) == colour


def test_save_gif_scales_down(tmp_path):
    frames = [np.full((400, 600, 3), value, dtype=np.uint8) for value in (0, 255)]
    with PILImage.open(save_gif(frames, str(tmp_path / "small.gif"), max_width=60)) as gif:
        assert gif.size == (60, 40) and gif.n_frames == 2
    with pytest.raises(ValueError, match="frames"):
        save_gif([], tmp_path / "empty.gif")


def _shown_example(x: int) -> int:
    doubled = 2 * x
    tripled = 3 * x
    return doubled + tripled


def test_show_source_shows_the_whole_function_or_a_range_of_its_lines():
    from course_utils.render import show_source

    whole = show_source(_shown_example).data
    assert whole.startswith("```python\ndef _shown_example") and whole.endswith("```")
    part = show_source(_shown_example, "tripled", "return").data
    assert part == "```python\ntripled = 3 * x\nreturn doubled + tripled\n```"


def test_show_source_names_a_line_it_cannot_find():
    from course_utils.render import show_source

    with pytest.raises(ValueError, match="last='nowhere'"):
        show_source(_shown_example, "doubled", "nowhere")
