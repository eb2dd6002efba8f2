"""Make, reset, step and render every environment the notebooks use: run in a Colab-like venv
(see colab_check), it proves that the notebooks' install cell installs all they need."""

import gymnasium as gym
import numpy as np

import course_utils.envs  # noqa: F401  (registers the course's environments)
from course_utils.envs.vector import make_vector_env

GYMNASIUM = ["CartPole-v1", "LunarLander-v3", "Pendulum-v1", "Blackjack-v1", "CliffWalking-v1",
             "FrozenLake-v1", "FrozenLake8x8-v1"]
COURSE = ["course_utils/Testbed-v0", "course_utils/GridWorld-v0", "course_utils/Gambler-v0",
          "course_utils/RandomWalk-v0", "course_utils/MaxBias-v0", "course_utils/BitFlip-v0",
          "course_utils/PushT-v0", "course_utils/GoalPushT-v0"]


def main() -> None:
    made = []
    for env_id in GYMNASIUM + COURSE:
        if env_id == "course_utils/Testbed-v0":  # a vector-only environment
            env = gym.make_vec(env_id, num_envs=2)
            env.reset(seed=0)
            env.step(env.action_space.sample())
            env.close()
            made.append(env_id)
            continue
        drawn = "rgb_array" in gym.make(env_id).metadata.get("render_modes", [])
        env = gym.make(env_id, render_mode="rgb_array") if drawn else gym.make(env_id)
        env.reset(seed=0)
        space = env.action_space
        env.step(space.start if isinstance(space, gym.spaces.Discrete) else space.sample())
        if drawn:  # pygame (or Box2D's drawing) is there
            frame = env.render()
            assert isinstance(frame, np.ndarray) and frame.ndim == 3, env_id
        env.close()
        made.append(env_id)
    continuous = gym.make("LunarLander-v3", continuous=True)
    continuous.reset(seed=0)
    continuous.step(continuous.action_space.sample())
    vector = make_vector_env("LunarLander-v3", 2)
    vector.reset(seed=0)
    vector.step(vector.action_space.sample())
    print(f"made every environment the notebooks use: {', '.join(made)}, "
          "LunarLander-v3 (continuous), and a vector LunarLander")


if __name__ == "__main__":
    main()
