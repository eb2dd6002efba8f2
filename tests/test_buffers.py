"""Tests of course_utils.buffers: ReplayBuffer adding, wrap-around, sampling, errors, save/load."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from course_utils.buffers import ReplayBatch, ReplayBuffer

FIELDS = ("observations", "actions", "rewards", "next_observations", "terminated", "truncated")


def make_buffer(capacity=4, seed=0, obs_dim=2, fast=True):
    buffer = ReplayBuffer(capacity, (obs_dim,), device="cpu", seed=seed)
    if not fast:
        buffer._arrays = None  # the path `add` takes when the storage is on an accelerator
    return buffer


def transition(i, obs_dim=2):
    """Transition number i: every field derived from i, so its contents identify it."""
    return (np.full(obs_dim, i, dtype=np.float32), i, float(10 * i),
            np.full(obs_dim, i + 0.5, dtype=np.float32), i % 3 == 0, i % 2 == 1)


def transitions(ids, obs_dim=2):
    """The transitions `ids` as batched arrays, the arguments of `extend`."""
    columns = list(zip(*(transition(i, obs_dim) for i in ids)))
    dtypes = (np.float32, np.int64, np.float64, np.float32, bool, bool)
    return [np.array(column, dtype=dtype) for column, dtype in zip(columns, dtypes)]


def stored(buffer):
    """Everything stored, in storage order, as NumPy arrays."""
    batch = buffer.at(torch.arange(len(buffer)))
    return {name: getattr(batch, name).numpy() for name in FIELDS}


def expected(ids, obs_dim=2):
    return dict(zip(FIELDS, transitions(ids, obs_dim)))


def assert_contents(buffer, ids):
    contents, wanted = stored(buffer), expected(ids)
    for name in FIELDS:
        np.testing.assert_array_equal(contents[name], wanted[name], err_msg=name)


# ------------------------------------------------------------------------------- layout


def test_for_env_cartpole():
    env = gym.make("CartPole-v1")
    buffer = ReplayBuffer.for_env(env, capacity=7, device="cpu")
    batch = buffer.at(torch.arange(7))
    assert batch.observations.shape == (7, 4) and batch.observations.dtype == torch.float32
    assert batch.next_observations.shape == (7, 4)
    assert batch.next_observations.dtype == torch.float32
    assert batch.actions.shape == (7,) and batch.actions.dtype == torch.int64
    assert batch.rewards.shape == (7,) and batch.rewards.dtype == torch.float32
    assert batch.terminated.dtype == torch.bool and batch.truncated.dtype == torch.bool
    assert batch.terminated.shape == (7,) and batch.truncated.shape == (7,)
    assert len(buffer) == 0 and buffer.capacity == 7 and buffer.device == torch.device("cpu")


def test_for_env_box_actions_pendulum():
    env = gym.make("Pendulum-v1")
    buffer = ReplayBuffer.for_env(env, capacity=3, device="cpu")
    batch = buffer.at(torch.arange(3))
    assert batch.observations.shape == (3, 3) and batch.observations.dtype == torch.float32
    assert batch.actions.shape == (3, 1) and batch.actions.dtype == torch.float32
    observation, _ = env.reset(seed=0)
    action = env.action_space.sample()
    next_observation, reward, terminated, truncated, _ = env.step(action)
    buffer.add(observation, action, reward, next_observation, terminated, truncated)
    batch = buffer.at(torch.tensor([0]))
    np.testing.assert_array_equal(batch.actions.numpy()[0], action)
    np.testing.assert_array_equal(batch.next_observations.numpy()[0], next_observation)
    assert batch.rewards.item() == pytest.approx(float(reward), rel=1e-6)


def test_for_env_discrete_observations_frozen_lake():
    env = gym.make("FrozenLake-v1")
    buffer = ReplayBuffer.for_env(env, capacity=5, device="cpu")
    batch = buffer.at(torch.arange(5))
    assert batch.observations.shape == (5,) and batch.observations.dtype == torch.int64
    assert batch.actions.shape == (5,) and batch.actions.dtype == torch.int64
    observation, _ = env.reset(seed=0)
    next_observation, reward, terminated, truncated, _ = env.step(1)
    buffer.add(observation, 1, reward, next_observation, terminated, truncated)
    batch = buffer.at(torch.tensor([0]))
    assert batch.observations.tolist() == [observation]
    assert batch.next_observations.tolist() == [next_observation]


def test_for_env_refuses_dict_observations():
    env = gym.make("Blackjack-v1")  # a Tuple observation space
    with pytest.raises(TypeError, match="observation space"):
        ReplayBuffer.for_env(env, capacity=5, device="cpu")


def test_uint8_observations_are_stored_as_uint8():
    buffer = ReplayBuffer(3, (2, 2), observation_dtype=torch.uint8, device="cpu")
    frame = np.array([[0, 255], [7, 8]], dtype=np.uint8)
    buffer.add(frame, 1, 0.0, frame, False, False)
    batch = buffer.at(torch.tensor([0]))
    assert batch.observations.dtype == torch.uint8
    np.testing.assert_array_equal(batch.observations.numpy()[0], frame)


def test_default_device_is_get_device(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert ReplayBuffer(2, (1,)).device == torch.device("cpu")


def test_repr_names_size_and_shapes():
    buffer = make_buffer(capacity=4)
    buffer.add(*transition(1))
    text = repr(buffer)
    assert "1/4 transitions" in text and "(2,)" in text and "torch.int64" in text


# ------------------------------------------------------------------------------- adding


def test_add_stores_exactly_what_was_given():
    buffer = make_buffer(capacity=5)
    for i in range(3):
        buffer.add(*transition(i))
    assert len(buffer) == 3
    assert_contents(buffer, [0, 1, 2])


def test_add_accepts_python_numbers_lists_and_numpy_scalars():
    buffer = make_buffer()
    buffer.add([1, 2], np.int64(1), np.float32(0.5), (3.0, 4.0), np.bool_(True), False)
    batch = buffer.at(torch.tensor([0]))
    assert batch.observations.tolist() == [[1.0, 2.0]]
    assert batch.next_observations.tolist() == [[3.0, 4.0]]
    assert batch.actions.tolist() == [1] and batch.rewards.tolist() == [0.5]
    assert batch.terminated.tolist() == [True] and batch.truncated.tolist() == [False]


def test_terminated_and_truncated_are_stored_separately():
    buffer = make_buffer()
    flags = [(False, False), (True, False), (False, True), (True, True)]
    for i, (terminated, truncated) in enumerate(flags):
        observation, action, reward, next_observation, _, _ = transition(i)
        buffer.add(observation, action, reward, next_observation, terminated, truncated)
    batch = buffer.at(torch.arange(4))
    assert batch.terminated.tolist() == [False, True, False, True]
    assert batch.truncated.tolist() == [False, False, True, True]


@pytest.mark.parametrize("fast", [True, False], ids=["numpy-path", "torch-path"])
def test_circular_overwrite_order(fast):
    buffer = make_buffer(capacity=4, fast=fast)
    for i in range(6):
        buffer.add(*transition(i))
    assert len(buffer) == 4
    # 4 and 5 overwrote the two oldest, 0 and 1, in place: storage order is [4, 5, 2, 3].
    assert_contents(buffer, [4, 5, 2, 3])
    for i in range(6, 9):
        buffer.add(*transition(i))
    assert len(buffer) == 4
    assert_contents(buffer, [8, 5, 6, 7])


def test_extend_matches_repeated_add():
    a, b = make_buffer(capacity=5), make_buffer(capacity=5)
    a.extend(*transitions([0, 1, 2]))
    a.extend(*transitions([3, 4, 5, 6]))  # wraps around
    for i in range(7):
        b.add(*transition(i))
    assert len(a) == len(b) == 5
    assert_contents(a, [5, 6, 2, 3, 4])
    assert_contents(b, [5, 6, 2, 3, 4])
    assert a.state_dict()["position"] == b.state_dict()["position"] == 2


def test_extend_more_than_capacity_keeps_the_last_capacity():
    buffer = make_buffer(capacity=3)
    buffer.add(*transition(100))
    buffer.extend(*transitions(range(8)))
    assert len(buffer) == 3
    # As 9 calls of add would leave it: 100, 0, 1, …, 7 went to slots 0, 1, 2, 0, 1, …
    assert_contents(buffer, [5, 6, 7])
    reference = make_buffer(capacity=3)
    for i in [100, *range(8)]:
        reference.add(*transition(i))
    assert_contents(reference, [5, 6, 7])
    buffer.add(*transition(8))  # the position came round to slot 0, the oldest (5)
    reference.add(*transition(8))
    assert_contents(buffer, [8, 6, 7])
    assert_contents(reference, [8, 6, 7])


def test_extend_accepts_tensors_and_counts_transitions():
    buffer = make_buffer(capacity=4)
    buffer.extend(torch.ones(2, 2), torch.tensor([0, 1]), torch.tensor([1.0, 2.0]),
                  torch.zeros(2, 2), torch.tensor([False, True]), torch.tensor([True, False]))
    assert len(buffer) == 2
    batch = buffer.at(torch.arange(2))
    assert batch.actions.tolist() == [0, 1] and batch.rewards.tolist() == [1.0, 2.0]
    assert batch.terminated.tolist() == [False, True]
    assert batch.truncated.tolist() == [True, False]


def test_extend_needs_the_same_number_of_transitions_per_field():
    buffer = make_buffer()
    args = transitions([0, 1, 2])
    args[2] = args[2][:2]
    with pytest.raises(ValueError, match="same number of transitions"):
        buffer.extend(*args)
    assert len(buffer) == 0


# ------------------------------------------------------------------------------- errors


def add_with(field, value):
    """`add` arguments of transition 1 with `field` replaced by `value`."""
    args = list(transition(1))
    args[FIELDS.index(field)] = value
    return args


def extend_with(field, value):
    """`extend` arguments of transitions 1 and 2 with `field` replaced by `value`."""
    args = transitions([1, 2])
    args[FIELDS.index(field)] = value
    return args


BAD_ADD = [  # (field, value, error, words in the message)
    ("actions", 1.5, TypeError, "discrete action must be an integer"),
    ("actions", np.float32(1.0), TypeError, "discrete action must be an integer"),
    ("actions", "left", TypeError, "discrete action must be an integer"),
    ("actions", [0, 1], ValueError, "expected shape ()"),
    ("observations", [1.0, 2.0, 3.0], ValueError, "expected shape (2,)"),
    ("observations", "ab", ValueError, "expected shape (2,)"),
    ("observations", np.array(["a", "b"]), TypeError, "convert it to a number"),
    ("next_observations", [1.0], ValueError, "expected shape (2,)"),
    ("rewards", "1.0", TypeError, "convert it to a number"),
    ("rewards", [1.0, 2.0], ValueError, "expected shape ()"),
    ("rewards", None, TypeError, "rewards"),
    ("terminated", 1, TypeError, "torch.bool"),
    ("truncated", 0.0, TypeError, "torch.bool"),
]


@pytest.mark.parametrize("fast", [True, False], ids=["numpy-path", "torch-path"])
@pytest.mark.parametrize("field, value, error, words", BAD_ADD)
def test_add_errors_name_the_field(field, value, error, words, fast):
    buffer = make_buffer(capacity=2, fast=fast)
    with pytest.raises(error, match=rf"^{field}: ") as info:
        buffer.add(*add_with(field, value))
    assert words in str(info.value)
    assert len(buffer) == 0


@pytest.mark.parametrize("fast", [True, False], ids=["numpy-path", "torch-path"])
@pytest.mark.parametrize("field, value, error, words", BAD_ADD)
def test_add_error_leaves_a_full_buffer_unchanged(field, value, error, words, fast):
    buffer = make_buffer(capacity=2, fast=fast)
    buffer.add(*transition(0))
    buffer.add(*transition(2))
    with pytest.raises(error):
        buffer.add(*add_with(field, value))
    assert len(buffer) == 2
    assert_contents(buffer, [0, 2])  # the oldest transition, the next to go, is intact


BAD_EXTEND = [
    ("actions", np.array([0.5, 1.0]), TypeError, "discrete action must be an integer"),
    ("actions", np.array(["a", "b"]), TypeError, "discrete action must be an integer"),
    ("actions", np.zeros((2, 1), dtype=np.int64), ValueError, "expected shape ()"),
    ("observations", np.zeros((2, 3), dtype=np.float32), ValueError, "expected shape (2,)"),
    ("observations", np.float32(1.0), ValueError, "expected shape (2,)"),
    ("next_observations", np.zeros(2, dtype=np.float32), ValueError, "expected shape (2,)"),
    ("rewards", np.array(["1", "2"]), TypeError, "convert it to a number"),
    ("terminated", np.array([0, 1]), TypeError, "torch.bool"),
    ("truncated", torch.tensor([0.0, 1.0]), TypeError, "torch.bool"),
]


@pytest.mark.parametrize("field, value, error, words", BAD_EXTEND)
def test_extend_errors_name_the_field(field, value, error, words):
    buffer = make_buffer(capacity=3)
    buffer.add(*transition(0))
    with pytest.raises(error, match=rf"^{field}: ") as info:
        buffer.extend(*extend_with(field, value))
    assert words in str(info.value)
    assert len(buffer) == 1
    assert_contents(buffer, [0])


@pytest.mark.parametrize("capacity", [0, -1, 2.0, "10", None, True])
def test_bad_capacity(capacity):
    with pytest.raises(ValueError, match="capacity must be an int >= 1"):
        ReplayBuffer(capacity, (2,), device="cpu")


@pytest.mark.parametrize("batch_size", [0, -3, 1.5, None])
def test_bad_batch_size(batch_size):
    buffer = make_buffer()
    buffer.add(*transition(0))
    with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
        buffer.sample(batch_size)


def test_sample_from_an_empty_buffer():
    with pytest.raises(ValueError, match="the buffer is empty"):
        make_buffer().sample(2)


# ------------------------------------------------------------------------------- sampling


def test_sample_shapes_dtypes_device():
    buffer = make_buffer(capacity=10)
    buffer.extend(*transitions(range(6)))
    batch = buffer.sample(32)
    assert isinstance(batch, ReplayBatch) and len(batch) == 32
    shapes = {"observations": (32, 2), "actions": (32,), "rewards": (32,),
              "next_observations": (32, 2), "terminated": (32,), "truncated": (32,)}
    dtypes = {"observations": torch.float32, "actions": torch.int64, "rewards": torch.float32,
              "next_observations": torch.float32, "terminated": torch.bool,
              "truncated": torch.bool}
    for name in FIELDS:
        tensor = getattr(batch, name)
        assert tuple(tensor.shape) == shapes[name], name
        assert tensor.dtype == dtypes[name], name
        assert tensor.device == torch.device("cpu"), name


def test_sample_keeps_transitions_whole_and_only_from_the_filled_part():
    buffer = make_buffer(capacity=100)
    buffer.extend(*transitions(range(1, 6)))  # ids 1 … 5 in slots 0 … 4, the rest zeros
    batch = buffer.sample(500)
    ids = batch.actions.numpy()
    assert set(ids.tolist()) == {1, 2, 3, 4, 5}  # uniform: 500 draws see all five
    wanted = expected(ids.tolist())
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(batch, name).numpy(), wanted[name], err_msg=name)


def test_sample_is_reproducible_with_seed_and_differs_across_seeds():
    def draws(seed):
        buffer = make_buffer(capacity=50, seed=seed)
        buffer.extend(*transitions(range(50)))
        return [buffer.sample(16).actions.tolist() for _ in range(3)]

    assert draws(3) == draws(3)
    assert draws(3) != draws(4)
    first, second, third = draws(3)
    assert first != second != third  # the generator moves on between calls


def test_sample_does_not_touch_the_global_generator():
    buffer = make_buffer(capacity=10)
    buffer.extend(*transitions(range(10)))
    torch.manual_seed(0)
    expected_next = torch.rand(3)
    torch.manual_seed(0)
    buffer.sample(8)
    torch.testing.assert_close(torch.rand(3), expected_next, rtol=0, atol=0)


def test_at_returns_the_given_indices_in_storage_order():
    buffer = make_buffer(capacity=4)
    for i in range(6):
        buffer.add(*transition(i))  # storage order [4, 5, 2, 3]
    batch = buffer.at(torch.tensor([3, 0, 0, 1]))
    wanted = expected([3, 4, 4, 5])
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(batch, name).numpy(), wanted[name], err_msg=name)


# ------------------------------------------------------------------------------- save/load


def test_state_dict_round_trip_after_wrap_around_continues_identically():
    buffer = make_buffer(capacity=5, seed=1)
    for i in range(7):
        buffer.add(*transition(i))
    buffer.sample(4)  # move the generator away from its seed
    state = buffer.state_dict()
    copy = make_buffer(capacity=5, seed=99)
    copy.load_state_dict(state)
    assert len(copy) == 5
    assert_contents(copy, [5, 6, 2, 3, 4])
    for name in FIELDS:  # the next sample is the same transitions
        torch.testing.assert_close(getattr(copy.sample(8), name), getattr(buffer.sample(8), name),
                                   rtol=0, atol=0)
    # The position came back too: the next add overwrites the oldest, transition 2.
    copy.add(*transition(7))
    buffer.add(*transition(7))
    assert_contents(copy, [5, 6, 7, 3, 4])
    assert_contents(buffer, [5, 6, 7, 3, 4])


def test_state_dict_is_a_snapshot():
    buffer = make_buffer(capacity=3)
    buffer.add(*transition(1))
    state = buffer.state_dict()
    buffer.add(*transition(2))
    buffer.add(*transition(3))
    buffer.add(*transition(4))  # overwrites slot 0
    assert state["size"] == 1 and state["position"] == 1
    assert state["storage"]["actions"].tolist() == [1]


def test_load_into_a_smaller_capacity_raises():
    buffer = make_buffer(capacity=4)
    buffer.add(*transition(0))
    with pytest.raises(ValueError, match="saved capacity 4 differs from this buffer's 3"):
        make_buffer(capacity=3).load_state_dict(buffer.state_dict())


def test_load_with_other_shapes_or_dtypes_raises():
    buffer = make_buffer(capacity=4)
    buffer.add(*transition(0))
    state = buffer.state_dict()
    other_shape = ReplayBuffer(4, (3,), device="cpu")
    with pytest.raises(ValueError, match=r"saved observations are \(2,\) torch.float32, this "
                                         r"buffer stores \(3,\) torch.float32"):
        other_shape.load_state_dict(state)
    other_dtype = ReplayBuffer(4, (2,), action_shape=(), action_dtype=torch.float32, device="cpu")
    with pytest.raises(ValueError, match="saved actions are"):
        other_dtype.load_state_dict(state)
    assert len(other_shape) == 0 and len(other_dtype) == 0
