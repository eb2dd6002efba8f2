"""PushT: push a T-shaped block onto a target pose with a round pusher (gym-pusht 0.1.8 on pymunk 7).

The task of Diffusion Policy (Chi et al. 2023), with the dynamics of Hugging Face's gym-pusht 0.1.8,
rewritten for pymunk 7 (gym-pusht needs pymunk 6 and pygame; this needs pymunk 7 and pygame-ce).

**World.** A 512 × 512 workspace (y points *down*, as on screen) closed by four walls, segments
from (5, 5) to (506, 506) of radius 2; no gravity. The *agent* is a kinematic circle of radius 15.
The *block* is a T of mass 1: a 120 × 30 crossbar ``[-60, 60] × [0, 30]`` and a 30 × 90 stem
``[-15, 15] × [30, 120]`` in the block's own frame, area 6300. The block's origin (local (0, 0))
is the middle of the crossbar's outer edge.

**Action.** ``Box(0, 512, (2,))``: the position the agent should move to. Each environment step
runs 10 physics steps of ``dt = 0.01`` s (100 Hz physics, 10 Hz control); before each, a PD
controller sets the agent's velocity, ``v += (k_p (action − x) − k_v v) dt`` with ``k_p = 100``,
``k_v = 20`` (critically damped: the agent reaches a still target in about half a second).
Actions outside the box are clipped to it; a wrong shape or a NaN raises ValueError.

**Observations** (``obs_type``):

- ``"state"`` (default): ``[agent_x, agent_y, block_x, block_y, block_angle]``, shape ``(5,)``;
  ``block_x, block_y`` is the block's origin (not its centre of mass), the angle is in [0, 2π).
- ``"keypoints"``: the 8 corners of the T (see :func:`t_keypoints`) then the agent's position,
  ``[x0, y0, …, x7, y7, agent_x, agent_y]``, shape ``(18,)``. A corner can lie outside the
  workspace (a T drawn at reset near a wall sticks out of it in about 2 % of resets), so the
  corners' bounds reach ``KEYPOINT_REACH`` (121 px, a corner's largest distance from the origin)
  beyond it.
- ``"pixels"``: ``{"pixels": (96, 96, 3) uint8, "agent_pos": (2,)}``, the scene as drawn by
  :meth:`PushTEnv.render` at 96 × 96 (``observation_width``/``observation_height``).

**Reward and success.** ``coverage = area(block ∩ goal T) / area(goal T)`` (see :func:`coverage`),
reward ``clip(coverage / 0.95, 0, 1)``; the episode terminates with success when
``coverage > 0.95``. ``info["coverage"]`` and ``info["is_success"]`` are in every ``info``, reset's
included. The goal pose is ``(256, 256, π/4)``. Registered with a 300-step time limit.

``reward="shaped"`` replaces the reward (only the reward: success and termination stay
``coverage > 0.95``) by ManiSkill3 PushT-v1's dense reward (its ``compute_dense_reward``), whose
authors found that the coverage reward traps PPO at 50-75 % coverage (see :func:`shaped_reward`)::

    r = ((cos Δθ + 1) / 2)² / 2  +  (1 − tanh(d / 120))² / 2  +  √(1 − tanh(d_pusher / 120)) / 20,
    r = 3 on success,

Δθ the block's angle minus the goal's, d the distance from the block's centre of gravity to the
goal's, d_pusher from the pusher to the block's centre of gravity, in px. ManiSkill writes
``tanh(5 d)`` with d in metres and a crossbar 0.2 m long; PushT's is 120 px, so 1 m is 600 px
and ``5 d`` becomes ``d / 120``.

**Reset.** Agent position: integers uniform in [50, 450); block origin: integers uniform in
[100, 400); block angle uniform in (−π, π); both at rest (gym-pusht's distribution, drawn from the
environment's own generator, so ``reset(seed=s)`` is reproducible).
``reset(options={"reset_to_state": s})`` puts the environment exactly in state ``s``: the
returned observation equals ``s`` (angle taken modulo 2π). gym-pusht sets the block's position
before its angle and then runs one physics step; pymunk rotates a body about its centre of
gravity, so the block landed elsewhere than asked. Here the angle is set first and no physics
step runs, so the block is where it was asked to be (an agent overlapping the block pushes it
out on the first step).

**The reference's quirks, and what this version does with them.** All three are kept, because
identical dynamics are what let demonstrations, policies and published numbers move between
gym-pusht and this environment:

- *Friction.* gym-pusht writes ``friction = 1`` on the *bodies*, an attribute pymunk ignores (only
  shapes have friction); its shapes keep pymunk's default friction 0. All contacts are therefore
  frictionless: the agent can only push along a contact normal. This version sets no friction
  at all, which is the same physics, said honestly.
- *Moment of inertia.* gym-pusht adds the crossbar's moment twice (instead of crossbar + stem),
  each taken about the origin: 2 × 1500 = 3000. Kept as ``BLOCK_MOMENT = 3000``.
- *Centre of gravity.* gym-pusht puts it at the mean of the two rectangles' centroids, (0, 45),
  not at the area-weighted centroid (0, 40.7). Kept as ``BLOCK_COG = (0, 45)``.

The space's damping is 0, pymunk's "lose all velocity each second": the block stops as soon as
it is no longer pushed (quasi-static pushing).

**Agreement with gym-pusht.** The physics is the same, walls included. Started from the same
state in a fresh space (no contact in progress) and given the same actions, this environment
(pymunk 7.0.1 and 7.3.1) and gym-pusht 0.1.8 (pymunk 6.6, 6.7 and 6.11.1) produce the same
states bit for bit, on x86-64 Linux: in all 100 episodes of 300 random actions (its action
space's samples) from the states gym-pusht's seeds 0-99 reset to, 83 of which put the block
against a wall (16 379 steps with a block-wall contact), and in 16 more that drive the block into
a wall or a corner. So the coverage is the same too (to 1e-9: it is computed without shapely).
tests/test_pusht.py replays three episodes recorded with gym-pusht
(tests/data/gym_pusht_replays.npz: free pushing, the block pressed against a wall for 39 steps,
the block in a corner) and requires equality.

An observation is not all that pymunk carries from one step to the next: a contact in progress
keeps its accumulated impulses, which warm-start the next step's solver, and stays cached for a
few steps. gym-pusht's reset runs one physics step (see *Reset* above); when the pusher or a wall
touches the block at that moment (13 of its seeds 0-99), the contact stays cached in its space.
``reset(options={"reset_to_state": observation})`` starts a fresh space, so it does not continue
such an episode exactly: the block is up to 0.8 px off after the first step, and later pushes
amplify the difference, pressing the block against a wall most abruptly. From gym-pusht's
``reset(seed=50)`` (the pusher overlaps the block) the block is 0.43 px off after 1 step, 1.1 px
at step 3, where it meets a wall, and 22 px at step 11; over seeds 0-99 with 300 random actions,
12 episodes differ, 7 by more than a pixel (3 of them from the step the block meets a wall), 45 px
at most. The other 88 differ by at most 2e-11 px, which is rounding: the observation
gives the angle modulo 2π and the origin, not pymunk's own angle and centre of gravity. Doing what
gym-pusht's reset does to the state it drew (``reset(seed=s)`` here draws the same), the block's
position set before its angle and then one ``env.space.step(0.01)``, continues its episodes bit
for bit again; tests/test_pusht.py does it for seed 50 and checks the divergence above.

**Other differences from gym-pusht**, none of which changes the dynamics of actions in the box:
actions outside the box are clipped (gym-pusht lets the pusher leave the workspace, so there an
episode with such actions, targets past a wall say, is another episode); ``"keypoints"`` is one
flat vector, its corners bounded ``KEYPOINT_REACH`` beyond the workspace (gym-pusht's [0, 512]
does not contain the corners of a T that sticks out of the workspace, as about 2 % of its resets
draw), and ``"pixels"`` includes the agent's position (gym-pusht's
``environment_state_agent_pos`` and ``pixels_agent_pos`` are Dicts); ``info["n_contacts"]`` is
the number of contact points per physics step of the last environment step, rounded up
(gym-pusht divides by 1000, not 10); the ``"human"`` window runs in real time, 10 frames per
second; ``render_mode`` defaults to None.

**Goal-conditioned PushT.** :class:`GoalPushTEnv` (``course_utils/GoalPushT-v0``) samples the goal
pose per episode and has gymnasium-robotics' goal-environment interface; see its docstring.

::

    import gymnasium as gym
    import course_utils.envs  # registers both ids
    env = gym.make("course_utils/PushT-v0", render_mode="rgb_array")
    obs, info = env.reset(seed=0)
"""

from __future__ import annotations

import math
import os
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # no banner on import
import pygame  # noqa: E402  (pygame-ce)
import pymunk  # noqa: E402

__all__ = ["AGENT_RADIUS", "BLOCK_COG", "BLOCK_MOMENT", "GOAL_POSE", "KEYPOINT_REACH", "MAX_EPISODE_STEPS",
           "SUCCESS_THRESHOLD", "T_AREA", "T_RECTANGLES", "GoalPushTEnv", "PushTEnv", "coverage",
           "coverage_reward", "mirror_positions", "shaped_reward", "mirror_states", "polygon_intersection_area",
           "t_keypoints", "t_polygons"]

WORKSPACE = 512
AGENT_RADIUS = 15.0
K_P, K_V = 100.0, 20.0
DT = 0.01
N_SUBSTEPS = 10  # physics steps per environment step: 100 Hz physics, 10 Hz control
BLOCK_MASS = 1.0
BLOCK_MOMENT = 3000.0  # gym-pusht's value (see the module's docstring)
BLOCK_COG = (0.0, 45.0)  # gym-pusht's value (see the module's docstring)
GOAL_POSE = np.array([256.0, 256.0, np.pi / 4])
SUCCESS_THRESHOLD = 0.95
MAX_EPISODE_STEPS = 300

# The T in the block's own frame: crossbar then stem, each a (4, 2) rectangle whose corners run
# counter-clockwise in the (x, y) coordinates (positive shoelace area), in pymunk's vertex order.
# Together they are the 8 keypoints of gym-pusht:
#     0───────────1
#     │           │
#     3───4───5───2
#         │   │
#         7───6
# (with y pointing down, the crossbar is on top).
T_RECTANGLES = np.array([
    [[-60.0, 0.0], [60.0, 0.0], [60.0, 30.0], [-60.0, 30.0]],
    [[-15.0, 30.0], [15.0, 30.0], [15.0, 120.0], [-15.0, 120.0]],
])
T_AREA = 6300.0
KEYPOINT_REACH = float(np.ceil(np.hypot(T_RECTANGLES[..., 0], T_RECTANGLES[..., 1]).max()))  # 121 px

# Colours of gym-pusht's drawing.
_WHITE = (255, 255, 255)
_GOAL_COLOUR = pygame.Color("LightGreen")
_WALL_COLOUR = pygame.Color("LightGray")
_BLOCK_COLOUR = pygame.Color("LightSlateGray")
_AGENT_COLOUR = pygame.Color("RoyalBlue")


def _lighter(colour: pygame.Color) -> tuple[int, int, int]:
    return tuple(min(255, int(1.2 * c)) for c in colour[:3])


# ----------------------------------------------------------------------------------- geometry
def t_polygons(pose: np.ndarray) -> np.ndarray:
    """The world corners of the T's two rectangles at ``pose = (x, y, angle)`` of its origin.

    ``pose`` has shape ``(..., 3)``; the result ``(..., 2, 4, 2)``: rectangle (crossbar, stem),
    corner, (x, y). A body's angle rotates its frame as pymunk does, ``world = p + R(angle) local``.
    """
    pose = np.asarray(pose, dtype=np.float64)[..., None, None, :]  # (..., 1, 1, 3)
    cos, sin = np.cos(pose[..., 2]), np.sin(pose[..., 2])
    x, y = T_RECTANGLES[..., 0], T_RECTANGLES[..., 1]
    return np.stack([pose[..., 0] + cos * x - sin * y, pose[..., 1] + sin * x + cos * y], axis=-1)


def t_keypoints(pose: np.ndarray) -> np.ndarray:
    """gym-pusht's 8 keypoints of the T (see the diagram above ``T_RECTANGLES``): ``(..., 8, 2)``."""
    polygons = t_polygons(pose)
    return polygons.reshape(*polygons.shape[:-3], 8, 2)


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The 2-D cross product ``u_x v_y − u_y v_x`` over the last axis."""
    return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]


def _inside(points: np.ndarray, polygon: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Whether each of ``points`` ``(N, M, 2)`` lies in the convex CCW ``polygon`` ``(N, 4, 2)``
    (boundary included, up to rounding): left of, or on, every edge. Returns ``(N, M)``."""
    relative = points[:, :, None, :] - polygon[:, None, :, :]  # (N, M, 4, 2)
    return np.all(_cross(edges[:, None], relative) >= -_TOLERANCE, axis=2)


_TOLERANCE = 1e-7  # in px² for the side tests, and as a fraction of an edge for crossings
_NEXT = np.array([1, 2, 3, 0])  # the next corner of a quadrilateral, cyclically
_NEXT_OF_24 = np.roll(np.arange(24), -1)


def polygon_intersection_area(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Areas of the intersections of convex quadrilaterals, ``(N, 4, 2)`` and ``(N, 4, 2)`` → ``(N,)``.

    Both must list their corners counter-clockwise (positive shoelace area). The corners of
    ``P ∩ Q`` are the corners of P inside Q, the corners of Q inside P and the points where an
    edge of P crosses an edge of Q: 4 + 4 + 16 candidates, a fixed shape, so the whole batch is a
    few array operations. The valid candidates, sorted by their angle around their mean (a point
    inside the convex intersection), are its boundary in order; the shoelace formula, relative
    to that mean, gives the area. Duplicate points (a corner of P on an edge of Q) add nothing.
    """
    p_edges = p[:, _NEXT] - p  # edge k runs from corner k to corner k + 1
    q_edges = q[:, _NEXT] - q
    # Edge k of P, p_k + t e_k, meets edge l of Q, q_l + u f_l, where t, u solve a 2 × 2 system.
    e, f = p_edges[:, :, None, :], q_edges[:, None, :, :]  # (N, 4, 1, 2), (N, 1, 4, 2)
    offset = q[:, None, :, :] - p[:, :, None, :]  # q_l − p_k, (N, 4, 4, 2)
    denominator = _cross(e, f)
    parallel = np.abs(denominator) < 1e-12
    denominator = np.where(parallel, 1.0, denominator)
    t, u = _cross(offset, f) / denominator, _cross(offset, e) / denominator
    crossings = p[:, :, None, :] + t[..., None] * e  # (N, 4, 4, 2)
    on_both = (t >= -_TOLERANCE) & (t <= 1 + _TOLERANCE) & (u >= -_TOLERANCE) & (u <= 1 + _TOLERANCE)
    crosses = ~parallel & on_both

    n = len(p)
    points = np.concatenate([p, q, crossings.reshape(n, 16, 2)], axis=1)  # (N, 24, 2)
    valid = np.concatenate([_inside(p, q, q_edges), _inside(q, p, p_edges), crosses.reshape(n, 16)], axis=1)
    count = valid.sum(axis=1)
    centre = (points * valid[..., None]).sum(axis=1) / np.maximum(count, 1)[:, None]
    relative = points - centre[:, None, :]
    angle = np.where(valid, np.arctan2(relative[..., 1], relative[..., 0]), np.inf)
    order = np.argsort(angle, axis=1)  # valid points first, by angle
    relative = np.take_along_axis(relative, order[..., None], axis=1)
    # Invalid slots (now at the end) repeat the first point: the pair (last valid, first) closes
    # the polygon and the pairs (first, first) add 0.
    relative = np.where((np.arange(24) < count[:, None])[..., None], relative, relative[:, :1])
    return 0.5 * _cross(relative, relative[:, _NEXT_OF_24]).sum(axis=1)


def coverage(pose: np.ndarray, goal_pose: np.ndarray) -> np.ndarray:
    """The fraction of the goal T covered by the T at ``pose``: area(T ∩ goal T) / 6300.

    ``pose`` and ``goal_pose`` are ``(x, y, angle)`` of the T's origin, shape ``(..., 3)`` each
    (broadcast together); the result has the broadcast shape without the last axis. A T is a
    disjoint union of two rectangles, so the intersection of two Ts is the sum of the four
    rectangle-rectangle intersections, each a convex-polygon intersection. No shapely needed.
    """
    pose, goal_pose = np.broadcast_arrays(np.asarray(pose, dtype=np.float64),
                                          np.asarray(goal_pose, dtype=np.float64))
    if pose.shape[-1:] != (3,):
        raise ValueError(f"pose and goal_pose must have shape (..., 3), got {pose.shape}")
    batch_shape = pose.shape[:-1]
    mine = t_polygons(pose.reshape(-1, 3))  # (B, 2, 4, 2)
    goal = t_polygons(goal_pose.reshape(-1, 3))
    # All four pairs (my rectangle r, goal rectangle s) at once: (B, 2, 2, 4, 2) → (4B, 4, 2).
    subject = np.broadcast_to(mine[:, :, None], (len(mine), 2, 2, 4, 2)).reshape(-1, 4, 2)
    clip = np.broadcast_to(goal[:, None, :], (len(goal), 2, 2, 4, 2)).reshape(-1, 4, 2)
    # Only pairs whose bounding boxes overlap can intersect; skipping the others makes the
    # common case (the block far from the goal) nearly free.
    overlap = np.all((subject.min(axis=1) <= clip.max(axis=1)) & (clip.min(axis=1) <= subject.max(axis=1)),
                     axis=1)
    areas = np.zeros(len(subject))
    if overlap.any():
        areas[overlap] = polygon_intersection_area(subject[overlap], clip[overlap])
    return (areas.reshape(-1, 4).sum(axis=1) / T_AREA).reshape(batch_shape)


def coverage_reward(coverage_value: np.ndarray) -> np.ndarray:
    """PushT's reward, ``clip(coverage / 0.95, 0, 1)``: 1 from the success threshold on."""
    return np.clip(np.asarray(coverage_value) / SUCCESS_THRESHOLD, 0.0, 1.0)


SHAPED_LENGTH_SCALE = 120.0  # px: ManiSkill's tanh(5 d), d in metres, with its 0.2 m crossbar = 120 px
SHAPED_SUCCESS_REWARD = 3.0


def shaped_reward(pose: np.ndarray, goal_pose: np.ndarray, agent_position: np.ndarray,
                  coverage_value: np.ndarray) -> dict[str, np.ndarray]:
    """ManiSkill3 PushT-v1's dense reward in PushT's units, with its terms: ``{"rotation",
    "position", "reaching", "reward"}``, each of the broadcast batch shape.

    ``pose``, ``goal_pose``: ``(..., 3)`` block and goal poses ``(x, y, angle)`` of the T's origin;
    ``agent_position``: ``(..., 2)``; ``coverage_value``: ``(...)`` (success is coverage > 0.95).

    - ``rotation = ((cos Δθ + 1) / 2)²``: 1 at the goal's angle, 0 upside down;
    - ``position = (1 − tanh(d / 120))²``, d the distance (px) between the centres of gravity
      of the block and of the goal T: 1 at the goal, 0.58 at 30 px, 0.06 at 240 px;
    - ``reaching = √(1 − tanh(d_pusher / 120))``, d_pusher from the pusher to the block's centre
      of gravity: a small pull towards the block, so that pushing starts;
    - ``reward = rotation / 2 + position / 2 + reaching / 20`` (at most 1.05), or 3 on success.
    """
    pose, goal_pose = np.asarray(pose, dtype=np.float64), np.asarray(goal_pose, dtype=np.float64)
    agent_position = np.asarray(agent_position, dtype=np.float64)

    def centre_of_gravity(p: np.ndarray) -> np.ndarray:
        cos, sin = np.cos(p[..., 2]), np.sin(p[..., 2])
        cx, cy = BLOCK_COG
        return np.stack([p[..., 0] + cos * cx - sin * cy, p[..., 1] + sin * cx + cos * cy], axis=-1)

    block = centre_of_gravity(pose)
    rotation = ((np.cos(pose[..., 2] - goal_pose[..., 2]) + 1.0) / 2.0) ** 2
    distance = np.linalg.norm(block - centre_of_gravity(goal_pose), axis=-1)
    position = (1.0 - np.tanh(distance / SHAPED_LENGTH_SCALE)) ** 2
    reaching = np.sqrt(1.0 - np.tanh(np.linalg.norm(agent_position - block, axis=-1) / SHAPED_LENGTH_SCALE))
    reward = rotation / 2 + position / 2 + reaching / 20
    reward = np.where(np.asarray(coverage_value) > SUCCESS_THRESHOLD, SHAPED_SUCCESS_REWARD, reward)
    return {"rotation": rotation, "position": position, "reaching": reaching, "reward": reward}


def mirror_positions(points: np.ndarray) -> np.ndarray:
    """Reflect workspace points ``(..., 2)`` in the goal T's axis, the line ``x + y = 512``:
    ``(x, y) → (512 − y, 512 − x)``. Use it for the pusher's position and for actions.

    PushT is symmetric under this reflection: the T is symmetric about its stem, the goal T's stem
    lies on that line, the centre of gravity (0, 45) is on the stem and the contacts have no
    friction, so a reflected episode is again an episode (with the reflected actions), and its
    coverage of the goal is the same at every step. Only the walls break the symmetry, by a pixel
    (they are at 5 and 506, which reflect to 507 and 6), which matters only when something
    touches one.
    """
    points = np.asarray(points, dtype=np.float64)
    return np.stack([WORKSPACE - points[..., 1], WORKSPACE - points[..., 0]], axis=-1)


def mirror_states(states: np.ndarray) -> np.ndarray:
    """Reflect PushT ``state`` observations ``(..., 5)`` as :func:`mirror_positions` does.

    The pusher and the block's origin (which is on the T's axis) are reflected as points; the
    block's angle ``θ`` becomes ``π/2 − θ`` (modulo 2π): the stem's direction ``(−sin θ, cos θ)``
    reflects to ``(−cos θ, sin θ)``. The goal pose ``(256, 256, π/4)`` is its own reflection.
    """
    states = np.asarray(states, dtype=np.float64)
    angle = np.mod(np.pi / 2 - states[..., 4:5], 2 * np.pi)
    return np.concatenate([mirror_positions(states[..., 0:2]), mirror_positions(states[..., 2:4]), angle],
                          axis=-1)


def _check_vector(name: str, value: Any, size: int) -> np.ndarray:
    """``value`` as a float64 array of shape ``(size,)`` with finite entries, else ValueError."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an array of {size} numbers, got {value!r}") from None
    if array.shape != (size,):
        raise ValueError(f"{name} must have shape ({size},), got shape {array.shape}: {value!r}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return array


# -------------------------------------------------------------------------------- environment
class PushTEnv(gym.Env):
    """Push the T onto its goal pose (see the module's docstring for the full specification).

    Args:
        obs_type: ``"state"`` ``(5,)``, ``"keypoints"`` ``(18,)`` or ``"pixels"`` (a Dict of a
            ``(observation_height, observation_width, 3)`` image and the agent's position).
        render_mode: None, ``"rgb_array"`` (``render()`` returns a ``(render_size, render_size, 3)``
            uint8 frame; works headless) or ``"human"`` (a pygame window, drawn at every step).
        observation_width, observation_height: the size of the ``pixels`` observation.
        render_size: the side of the frames of ``render()`` (gym-pusht's default 680).
        reward: ``"coverage"`` (default: ``clip(coverage / 0.95, 0, 1)``) or ``"shaped"``
            (ManiSkill3's terms, :func:`shaped_reward`); success is coverage > 0.95 either way.
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 10}

    def __init__(self, obs_type: str = "state", render_mode: str | None = None,
                 observation_width: int = 96, observation_height: int = 96, render_size: int = 680,
                 reward: str = "coverage"):
        if reward not in ("coverage", "shaped"):
            raise ValueError(f"reward must be 'coverage' or 'shaped', got {reward!r}")
        self.reward_kind = reward
        if obs_type not in ("state", "keypoints", "pixels"):
            raise ValueError(f"obs_type must be 'state', 'keypoints' or 'pixels', got {obs_type!r}")
        if render_mode not in (None, "human", "rgb_array"):
            raise ValueError(f"render_mode must be None, 'human' or 'rgb_array', got {render_mode!r}")
        for name, value in (("observation_width", observation_width),
                            ("observation_height", observation_height), ("render_size", render_size)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        self.obs_type, self.render_mode = obs_type, render_mode
        self.observation_size = (int(observation_height), int(observation_width))
        self.render_size = int(render_size)
        self.action_space = spaces.Box(0.0, WORKSPACE, shape=(2,), dtype=np.float32)
        self.observation_space = self._make_observation_space()
        self.goal_pose = GOAL_POSE.copy()
        self.window = self.clock = None
        self._last_action: np.ndarray | None = None
        self.space: pymunk.Space | None = None

    def _make_observation_space(self) -> spaces.Space:
        if self.obs_type == "state":
            return spaces.Box(np.zeros(5), np.array([WORKSPACE] * 4 + [2 * np.pi]), dtype=np.float64)
        if self.obs_type == "keypoints":
            # A T drawn at reset near a wall sticks out of the workspace (seed 56: a corner at −16).
            corners_low, corners_high = np.full(16, -KEYPOINT_REACH), np.full(16, WORKSPACE + KEYPOINT_REACH)
            return spaces.Box(np.concatenate([corners_low, np.zeros(2)]),
                              np.concatenate([corners_high, np.full(2, WORKSPACE)]), dtype=np.float64)
        return spaces.Dict({
            "pixels": spaces.Box(0, 255, shape=(*self.observation_size, 3), dtype=np.uint8),
            "agent_pos": spaces.Box(0.0, WORKSPACE, shape=(2,), dtype=np.float64),
        })

    # ----------------------------------------------------------------------------- physics
    def _build_space(self) -> None:
        """A fresh pymunk space (no cached contacts from a previous episode: resets are reproducible)."""
        self.space = pymunk.Space()
        self.space.gravity = (0.0, 0.0)
        self.space.damping = 0.0  # bodies keep no velocity of their own: quasi-static pushing
        corners = [(5, 506), (5, 5), (506, 5), (506, 506)]
        walls = [pymunk.Segment(self.space.static_body, corners[k], corners[(k + 1) % 4], 2)
                 for k in range(4)]
        self.agent = pymunk.Body(body_type=pymunk.Body.KINEMATIC)
        agent_shape = pymunk.Circle(self.agent, AGENT_RADIUS)
        self.block = pymunk.Body(BLOCK_MASS, BLOCK_MOMENT)
        block_shapes = [pymunk.Poly(self.block, rectangle.tolist()) for rectangle in T_RECTANGLES]
        self.block.center_of_gravity = BLOCK_COG
        self.space.add(*walls, self.agent, agent_shape, self.block, *block_shapes)
        self._contact_points = 0
        self.space.on_collision(post_solve=self._count_contacts)

    def _count_contacts(self, arbiter: pymunk.Arbiter, space: pymunk.Space, data: Any) -> None:
        self._contact_points += len(arbiter.contact_point_set.points)

    def _set_state(self, state: np.ndarray) -> None:
        self.agent.position = (state[0], state[1])
        self.agent.velocity = (0.0, 0.0)
        # pymunk rotates about the centre of gravity: set the angle first, then place the origin.
        self.block.angle = state[4]
        self.block.position = (state[2], state[3])
        self.block.velocity, self.block.angular_velocity = (0.0, 0.0), 0.0

    @property
    def block_pose(self) -> np.ndarray:
        """``(x, y, angle)`` of the block's origin, angle in [0, 2π): shape ``(3,)``."""
        x, y = self.block.position
        return np.array([x, y, self.block.angle % (2 * np.pi)])

    @property
    def state(self) -> np.ndarray:
        """``[agent_x, agent_y, block_x, block_y, block_angle]``, shape ``(5,)``, angle in [0, 2π)."""
        return np.concatenate([np.asarray(self.agent.position), self.block_pose])

    # ---------------------------------------------------------------------------- gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._build_space()
        options = options or {}
        if options.get("reset_to_state") is not None:
            state = _check_vector('options["reset_to_state"]', options["reset_to_state"], 5)
        else:
            rng = self.np_random
            state = np.array([rng.integers(50, 450), rng.integers(50, 450), rng.integers(100, 400),
                              rng.integers(100, 400), rng.uniform(-np.pi, np.pi)], dtype=np.float64)
        self._set_state(state)
        self._last_action = None
        self._coverage = float(coverage(self.block_pose, self.goal_pose))
        if self.render_mode == "human":
            self.render()
        return self._observation(), self._info()

    def step(self, action):
        if self.space is None:
            raise RuntimeError("step() called before reset(); call reset() first")
        target = np.clip(_check_vector("action", action, 2), 0.0, WORKSPACE)
        self._last_action = target
        self._contact_points = 0
        tx, ty = float(target[0]), float(target[1])
        for _ in range(N_SUBSTEPS):
            # PD control of the agent's velocity towards the target (plain floats: fast).
            (x, y), (vx, vy) = self.agent.position, self.agent.velocity
            self.agent.velocity = (vx + (K_P * (tx - x) - K_V * vx) * DT,
                                   vy + (K_P * (ty - y) - K_V * vy) * DT)
            self.space.step(DT)
        self._coverage = float(coverage(self.block_pose, self.goal_pose))
        if self.reward_kind == "shaped":
            reward = float(shaped_reward(self.block_pose, self.goal_pose, np.asarray(self.agent.position),
                                         self._coverage)["reward"])
        else:
            reward = float(coverage_reward(self._coverage))
        terminated = self._coverage > SUCCESS_THRESHOLD
        if self.render_mode == "human":
            self.render()
        return self._observation(), reward, terminated, False, self._info()

    def _observation(self):
        if self.obs_type == "state":
            return self.state
        if self.obs_type == "keypoints":
            return np.concatenate([t_keypoints(self.block_pose).ravel(), np.asarray(self.agent.position)])
        height, width = self.observation_size
        return {"pixels": self._draw(width, height), "agent_pos": np.asarray(self.agent.position)}

    def _info(self) -> dict[str, Any]:
        return {
            "coverage": self._coverage,
            "is_success": self._coverage > SUCCESS_THRESHOLD,
            "pos_agent": np.asarray(self.agent.position),
            "vel_agent": np.asarray(self.agent.velocity),
            "block_pose": self.block_pose,
            "goal_pose": self.goal_pose.copy(),
            # Contact points per physics step of the last environment step, rounded up.
            "n_contacts": math.ceil(self._contact_points / N_SUBSTEPS),
        }

    # -------------------------------------------------------------------------- rendering
    def _draw(self, width: int, height: int, mark_action: bool = False) -> np.ndarray:
        """The scene as gym-pusht draws it, at 512 × 512 then scaled: ``(height, width, 3)`` uint8."""
        surface = pygame.Surface((WORKSPACE, WORKSPACE))
        surface.fill(_WHITE)
        for rectangle in t_polygons(self.goal_pose):
            pygame.draw.polygon(surface, _GOAL_COLOUR, rectangle.tolist())
        corners = [(5, 506), (5, 5), (506, 5), (506, 506)]
        pygame.draw.lines(surface, _WALL_COLOUR, True, corners, 4)
        for rectangle in t_polygons(self.block_pose):
            pygame.draw.polygon(surface, _lighter(_BLOCK_COLOUR), rectangle.tolist())
            pygame.draw.polygon(surface, _BLOCK_COLOUR, rectangle.tolist(), 4)
        agent = tuple(self.agent.position)
        pygame.draw.circle(surface, _AGENT_COLOUR, agent, AGENT_RADIUS)
        pygame.draw.circle(surface, _lighter(_AGENT_COLOUR), agent, AGENT_RADIUS - 4)
        if mark_action and self._last_action is not None:  # a red cross on the target
            x, y = self._last_action
            pygame.draw.line(surface, (255, 0, 0), (x - 8, y), (x + 8, y), 3)
            pygame.draw.line(surface, (255, 0, 0), (x, y - 8), (x, y + 8), 3)
        if (width, height) != (WORKSPACE, WORKSPACE):
            surface = pygame.transform.smoothscale(surface, (width, height))
        return pygame.surfarray.array3d(surface).transpose(1, 0, 2)  # (W, H, 3) → (H, W, 3)

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; make the env with "
                            'render_mode="rgb_array" or "human"')
            return None
        frame = self._draw(self.render_size, self.render_size, mark_action=True)
        if self.render_mode == "rgb_array":
            return frame
        if self.window is None:
            pygame.display.init()
            pygame.display.set_caption("PushT")
            self.window = pygame.display.set_mode((self.render_size, self.render_size))
            self.clock = pygame.time.Clock()
        pygame.surfarray.blit_array(self.window, frame.transpose(1, 0, 2))
        pygame.event.pump()
        pygame.display.flip()
        self.clock.tick(self.metadata["render_fps"])
        return None

    def close(self) -> None:
        if self.window is not None:
            pygame.display.quit()
            self.window = self.clock = None


# ------------------------------------------------------------------------ goal-conditioned PushT
class GoalPushTEnv(PushTEnv):
    """PushT with a goal pose sampled per episode, as a gymnasium-robotics goal environment.

    Observations are a Dict: ``observation`` the state ``(5,)`` of :class:`PushTEnv`,
    ``achieved_goal`` the block's pose ``(x, y, angle)`` ``(3,)`` and ``desired_goal`` the goal
    pose ``(3,)`` (angles in [0, 2π)). Goals are drawn at reset: origin uniform in [100, 412)²,
    angle uniform in (−π, π), redrawn until all 8 keypoints lie at least ``goal_margin`` inside the
    workspace (a goal the block can reach without being pressed into a wall).
    ``reset(options={"goal": (x, y, angle)})`` sets it instead; ``"reset_to_state"`` works as in PushT.

    The reward is a function of the goals alone, so transitions can be relabelled with another
    goal (Hindsight Experience Replay): ``compute_reward(achieved_goal, desired_goal, info)``
    takes batches ``(B, 3)`` → ``(B,)`` (or single goals ``(3,)`` → a scalar) and equals the
    reward ``step`` returned. ``reward_type="sparse"`` (default): −1 until the coverage exceeds
    0.95, then 0; ``"dense"``: PushT's ``clip(coverage / 0.95, 0, 1)``.
    ``compute_terminated`` (coverage > 0.95: the episode ends on success, as in PushT) and
    ``compute_truncated`` (always False: the time limit is the TimeLimit wrapper's) take the same
    arguments.
    """

    def __init__(self, reward_type: str = "sparse", goal_margin: float = 40.0,
                 render_mode: str | None = None, render_size: int = 680):
        if reward_type not in ("sparse", "dense"):
            raise ValueError(f"reward_type must be 'sparse' or 'dense', got {reward_type!r}")
        if isinstance(goal_margin, bool) or not isinstance(goal_margin, (int, float)) \
                or not 0 <= goal_margin <= 100:
            raise ValueError(f"goal_margin must be a number in [0, 100], got {goal_margin!r}")
        super().__init__(obs_type="state", render_mode=render_mode, render_size=render_size)
        self.reward_type, self.goal_margin = reward_type, float(goal_margin)
        pose_space = spaces.Box(np.zeros(3), np.array([WORKSPACE, WORKSPACE, 2 * np.pi]), dtype=np.float64)
        self.observation_space = spaces.Dict({
            "observation": self.observation_space, "achieved_goal": pose_space,
            "desired_goal": pose_space})

    def _sample_goal(self) -> np.ndarray:
        while True:
            goal = np.array([*self.np_random.uniform(100, 412, size=2),
                             self.np_random.uniform(-np.pi, np.pi)])
            corners = t_keypoints(goal)
            if np.all((corners >= self.goal_margin) & (corners <= WORKSPACE - self.goal_margin)):
                return np.array([goal[0], goal[1], goal[2] % (2 * np.pi)])

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        # Seed first, so that the goal and the start state come from the same seeded generator.
        gym.Env.reset(self, seed=seed)
        options = options or {}
        if options.get("goal") is not None:
            goal = _check_vector('options["goal"]', options["goal"], 3)
            self.goal_pose = np.array([goal[0], goal[1], goal[2] % (2 * np.pi)])
        else:
            self.goal_pose = self._sample_goal()
        return super().reset(options=options)

    def _observation(self) -> dict[str, np.ndarray]:
        return {"observation": self.state, "achieved_goal": self.block_pose,
                "desired_goal": self.goal_pose.copy()}

    def step(self, action):
        observation, _, terminated, truncated, info = super().step(action)
        reward = float(self.compute_reward(observation["achieved_goal"], observation["desired_goal"], info))
        return observation, reward, terminated, truncated, info

    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray,
                       info: Any) -> np.ndarray:
        """Rewards for (batches of) goals: ``(B, 3)``, ``(B, 3)`` → ``(B,)``; ``info`` is unused."""
        covered = coverage(achieved_goal, desired_goal)
        if self.reward_type == "dense":
            return coverage_reward(covered)
        return np.where(covered > SUCCESS_THRESHOLD, 0.0, -1.0)

    def compute_terminated(self, achieved_goal: np.ndarray, desired_goal: np.ndarray,
                           info: Any) -> np.ndarray:
        """Whether the block covers the goal (coverage > 0.95): ``(B, 3)``, ``(B, 3)`` → ``(B,)`` bool."""
        return coverage(achieved_goal, desired_goal) > SUCCESS_THRESHOLD

    def compute_truncated(self, achieved_goal: np.ndarray, desired_goal: np.ndarray,
                          info: Any) -> np.ndarray:
        """Always False (``(B,)``): episodes are cut by the TimeLimit wrapper, not by the goals."""
        return np.zeros(np.shape(achieved_goal)[:-1], dtype=bool)
