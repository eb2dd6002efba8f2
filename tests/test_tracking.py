"""Unit tests of course_utils.tracking: logging, moving averages, plots, seeds and CSV files."""

from __future__ import annotations

import copy
import math
import pickle

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course_utils.tracking import (Tracker, TrainConfig, TrainingRun, moving_average,  # noqa: E402
                                   progress)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def make_tracker() -> Tracker:
    tracker = Tracker("ppo")
    tracker.log(0, loss=1.0, ret=np.float32(2.5))
    tracker.log(1, loss=torch.tensor(0.5))
    tracker.log(2, ret=3, loss=np.float64(0.25))
    return tracker


# ------------------------------------------------------------------------------- logging


def test_log_history_steps_keys():
    tracker = make_tracker()
    assert tracker.history == {"loss": [1.0, 0.5, 0.25], "ret": [2.5, 3.0]}
    assert all(type(v) is float for values in tracker.history.values() for v in values)
    assert tracker.steps("loss") == [0, 1, 2]
    assert tracker.steps("ret") == [0, 2]
    assert tracker.keys == ["loss", "ret"]
    assert len(tracker) == 3
    assert tracker.last("ret") == 3.0
    assert tracker.last("loss") == 0.25
    assert tracker.mean_last("loss", 2) == pytest.approx(0.375)
    assert tracker.mean_last("loss", 100) == pytest.approx(1.75 / 3)


def test_history_is_a_copy():
    tracker = make_tracker()
    tracker.history["loss"].append(99.0)
    tracker.steps("loss").append(99)
    assert tracker.history["loss"] == [1.0, 0.5, 0.25]
    assert tracker.steps("loss") == [0, 1, 2]


def test_log_accepts_tensors_numpy_and_non_finite_values():
    tracker = Tracker()
    tracker.log(np.int64(3), a=torch.tensor([2.0], requires_grad=True), b=np.array(1.5))
    tracker.log(torch.tensor(4), a=float("nan"), b=float("inf"))
    assert tracker.steps("a") == [3, 4]
    assert tracker.history["b"] == [1.5, math.inf]
    assert tracker.history["a"][0] == 2.0 and math.isnan(tracker.history["a"][1])


def test_log_errors_name_the_problem_and_leave_the_tracker_unchanged():
    tracker = Tracker()
    with pytest.raises(ValueError, match="at least one metric"):
        tracker.log(0)
    with pytest.raises(TypeError, match="'ret'"):
        tracker.log(0, loss=1.0, ret="high")
    with pytest.raises(TypeError, match="'loss'"):
        tracker.log(0, loss=torch.ones(3))
    with pytest.raises(TypeError, match="'loss'"):
        tracker.log(0, loss=None)
    with pytest.raises(TypeError, match="step"):
        tracker.log(1.5, loss=1.0)
    assert len(tracker) == 0 and tracker.keys == [] and tracker.history == {}


def test_unknown_key_raises_key_error_listing_the_keys():
    tracker = make_tracker()
    for read in (tracker.last, tracker.steps, lambda k: tracker.mean_last(k, 3), tracker.plot):
        with pytest.raises(KeyError) as info:
            read("retrun")
        message = str(info.value)
        assert "'retrun'" in message and "'loss'" in message and "'ret'" in message


def test_mean_last_needs_a_positive_n():
    with pytest.raises(ValueError, match="n must be"):
        make_tracker().mean_last("loss", 0)


def test_pickle_and_deepcopy_keep_the_history():
    tracker = make_tracker()
    tracker._live_handle = object()  # as if live_plot had run in a notebook
    for clone in (pickle.loads(pickle.dumps(tracker)), copy.deepcopy(tracker)):
        assert clone.history == tracker.history and clone.name == "ppo"
        assert clone._live_handle is None


# ------------------------------------------------------------------------------- moving average


def test_moving_average_known_values():
    np.testing.assert_allclose(moving_average([1, 2, 3, 4, 5], 1), [1, 2, 3, 4, 5])
    np.testing.assert_allclose(moving_average([1, 2, 3, 4, 5], 2), [1, 1.5, 2.5, 3.5, 4.5])
    np.testing.assert_allclose(moving_average([1, 2, 3, 4, 5], 3), [1, 1.5, 2, 3, 4])
    np.testing.assert_allclose(moving_average([1, 2, 3], 10), [1, 1.5, 2])
    assert moving_average([], 3).shape == (0,)


def test_moving_average_matches_a_direct_loop():
    x = np.random.default_rng(0).normal(size=200) * 100
    window = 7
    expected = [x[max(0, i - window + 1) : i + 1].mean() for i in range(len(x))]
    np.testing.assert_allclose(moving_average(x, window), expected, rtol=1e-10, atol=1e-10)


def test_moving_average_skips_non_finite_values():
    np.testing.assert_allclose(moving_average([1, np.nan, 3, np.inf], 2), [1, 1, 3, 3])
    assert np.isnan(moving_average([np.nan, np.nan, 1], 2)).tolist() == [True, True, False]


def test_moving_average_needs_a_positive_window():
    with pytest.raises(ValueError, match="window"):
        moving_average([1, 2], 0)


# ------------------------------------------------------------------------------- plots


def test_plot_draws_value_against_step():
    tracker = make_tracker()
    ax = tracker.plot("ret")
    (line,) = ax.lines
    assert list(line.get_xdata()) == [0, 2]
    assert list(line.get_ydata()) == [2.5, 3.0]
    assert ax.get_xlabel() == "iteration" and ax.get_ylabel() == "ret"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["ppo"]


def test_plot_smooth_draws_the_average_over_the_faint_raw_values():
    tracker = Tracker("dqn", x_label="environment steps")
    for step, value in enumerate([1.0, 3.0, 5.0, 7.0]):
        tracker.log(10 * step, ret=value)
    ax = tracker.plot("ret", smooth=2, color="red")
    smoothed, raw = ax.lines
    np.testing.assert_allclose(smoothed.get_ydata(), [1, 2, 4, 6])
    np.testing.assert_allclose(raw.get_ydata(), [1, 3, 5, 7])
    assert list(smoothed.get_xdata()) == list(raw.get_xdata()) == [0, 10, 20, 30]
    assert raw.get_alpha() < 0.5 and raw.get_zorder() < smoothed.get_zorder()
    assert raw.get_color() == smoothed.get_color() == "red"
    assert ax.get_xlabel() == "environment steps"


def test_plot_on_a_given_axes_and_with_no_label():
    tracker = make_tracker()
    fig, ax = plt.subplots()
    assert tracker.plot("loss", ax=ax, label="") is ax
    assert ax.get_legend() is None
    with pytest.raises(ValueError, match="smooth"):
        tracker.plot("loss", ax=ax, smooth=0)


def test_plot_all_one_subplot_per_metric():
    tracker = make_tracker()
    tracker.log(3, entropy=0.1)
    fig = tracker.plot_all(ncols=2)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_ylabel() for ax in visible] == ["loss", "ret", "entropy"]
    assert len(fig.axes) == 4  # a 2 x 2 grid, the last cell hidden
    assert fig._suptitle.get_text() == "ppo"
    fig = tracker.plot_all(["ret"], smooth=2)
    assert [ax.get_ylabel() for ax in fig.axes] == ["ret"]


def test_plot_all_errors():
    with pytest.raises(ValueError, match="no metric"):
        Tracker().plot_all()
    with pytest.raises(KeyError, match="nope"):
        make_tracker().plot_all(["loss", "nope"])


# ------------------------------------------------------------------------------- live plot


def test_live_plot_does_nothing_outside_jupyter():
    tracker = make_tracker()
    before = plt.get_fignums()
    tracker.live_plot()
    tracker.live_plot(["loss"], smooth=2)
    assert plt.get_fignums() == before
    assert tracker._live_handle is None and tracker._live_figure is None


class ZMQInteractiveShell:  # the name is what identifies a Jupyter kernel's shell
    pass


class FakeHandle:
    def __init__(self):
        self.updates = []

    def update(self, obj):
        self.updates.append(obj)


def test_live_plot_in_jupyter_displays_once_then_updates(monkeypatch):
    import IPython
    import IPython.display

    displayed = []

    def fake_display(obj, display_id=None):
        displayed.append((obj, display_id))
        return FakeHandle()

    class ColabShell(ZMQInteractiveShell):  # a subclass, as in Colab
        pass

    monkeypatch.setattr(IPython, "get_ipython", lambda: ColabShell())
    monkeypatch.setattr(IPython.display, "display", fake_display)
    tracker = make_tracker()
    tracker.live_plot()
    tracker.log(3, loss=0.1)
    tracker.live_plot()
    tracker.live_plot(["loss", "not_yet_logged"])
    assert len(displayed) == 1
    fig, display_id = displayed[0]
    assert display_id is True
    handle = tracker._live_handle
    assert handle.updates == [fig, fig]
    assert fig.number not in plt.get_fignums()  # closed: the inline backend won't draw it again
    assert [ax.get_ylabel() for ax in fig.axes if ax.get_visible()] == ["loss"]
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), [1.0, 0.5, 0.25, 0.1])

    tracker.finish_live_plot()
    tracker.live_plot()
    assert len(displayed) == 2 and displayed[1][0] is not fig


# ------------------------------------------------------------------------------- seeds


def make_runs() -> list[Tracker]:
    runs = []
    for offset, n_steps in [(0, 3), (2, 3), (4, 4)]:
        tracker = Tracker("a2c")
        for step in range(n_steps):
            tracker.log(step, ret=offset + step)
        runs.append(tracker)
    return runs


def test_mean_std_known_values_truncated_to_the_shortest_run():
    steps, mean, std = Tracker.mean_std(make_runs(), "ret")
    assert steps.tolist() == [0, 1, 2]
    np.testing.assert_allclose(mean, [2, 3, 4])
    np.testing.assert_allclose(std, [np.std([0, 2, 4])] * 3)  # sqrt(8/3)
    steps, mean, std = Tracker.mean_std(make_runs(), "ret", smooth=2)
    np.testing.assert_allclose(mean, [2, 2.5, 3.5])


def test_mean_std_uses_the_steps_common_to_all_runs():
    a, b = Tracker(), Tracker()
    for step in [0, 10, 20, 30]:
        a.log(step, ret=1.0)
    for step in [10, 30, 50]:
        b.log(step, ret=3.0)
    steps, mean, std = Tracker.mean_std([a, b], "ret")
    assert steps.tolist() == [10, 30]
    np.testing.assert_allclose(mean, [2, 2])
    np.testing.assert_allclose(std, [1, 1])


def test_plot_mean_std_draws_mean_and_band():
    runs = make_runs()
    ax = Tracker.plot_mean_std(runs, "ret", show_runs=True)
    mean_line, *run_lines = ax.lines
    np.testing.assert_allclose(mean_line.get_ydata(), [2, 3, 4])
    assert len(run_lines) == 3
    np.testing.assert_allclose(run_lines[2].get_ydata(), [4, 5, 6])
    assert all(line.get_color() == mean_line.get_color() for line in run_lines)
    (band,) = ax.collections
    vertices = {tuple(np.round(v, 6)) for v in band.get_paths()[0].vertices}
    sd = round(math.sqrt(8 / 3), 6)
    for step, mean in [(0, 2), (1, 3), (2, 4)]:
        assert (step, round(mean - sd, 6)) in vertices and (step, round(mean + sd, 6)) in vertices
    assert ax.get_legend().get_texts()[0].get_text() == "a2c (mean ± std, 3 runs)"
    assert ax.get_ylabel() == "ret" and ax.get_xlabel() == "iteration"


def test_plot_mean_std_label_color_and_axes():
    fig, ax = plt.subplots()
    out = Tracker.plot_mean_std(make_runs(), "ret", ax=ax, label="seeds", color="green")
    assert out is ax and len(ax.lines) == 1
    assert ax.lines[0].get_color() == "green" and ax.lines[0].get_label() == "seeds"


def test_plot_mean_std_errors():
    with pytest.raises(ValueError, match="trackers"):
        Tracker.plot_mean_std([], "ret")
    with pytest.raises(KeyError, match="loss"):
        Tracker.plot_mean_std(make_runs(), "loss")
    with pytest.raises(TypeError, match="Tracker"):
        Tracker.mean_std([make_runs()[0], {"ret": [1.0]}], "ret")
    a, b = Tracker(), Tracker()
    a.log(0, ret=1.0)
    b.log(1, ret=1.0)
    with pytest.raises(ValueError, match="no step"):
        Tracker.mean_std([a, b], "ret")


# ------------------------------------------------------------------------------- files


def test_save_load_round_trip(tmp_path):
    tracker = Tracker('PPO, "seed" 0 — ünïcode', x_label="environment steps")
    tracker.log(0, loss=0.1 + 0.2, ret=-0.0)
    tracker.log(5, ret=1e-300)
    tracker.log(10, loss=float("nan"), entropy=np.float32(0.1))
    tracker.log(10**12, loss=float("-inf"), ret=123456789.123456789)
    path = tmp_path / "sub" / "run.csv"  # save creates the missing folder
    tracker.save(path)
    loaded = Tracker.load(path)
    assert loaded.name == tracker.name and loaded.x_label == "environment steps"
    assert loaded.keys == tracker.keys == ["loss", "ret", "entropy"]
    assert len(loaded) == len(tracker) == 4
    for key in tracker.keys:
        assert loaded.steps(key) == tracker.steps(key)
        # assert_array_equal treats NaN as equal to NaN; values must match to the last bit.
        np.testing.assert_array_equal(loaded.history[key], tracker.history[key])
    assert math.copysign(1.0, loaded.history["ret"][0]) == -1.0  # -0.0 survives
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[2] == "step,loss,ret,entropy"
    assert lines[4] == "5,,1e-300,"  # an empty cell where a metric is absent


def test_load_without_comments_takes_the_name_from_the_file(tmp_path):
    path = tmp_path / "sac_seed3.csv"
    path.write_text("step,ret\n0,1.5\n1,\n2,2.5\n", encoding="utf-8")
    tracker = Tracker.load(path)
    assert tracker.name == "sac_seed3" and tracker.x_label == "iteration"
    assert tracker.history == {"ret": [1.5, 2.5]} and tracker.steps("ret") == [0, 2]
    assert len(tracker) == 3


def test_load_rejects_other_csv_files(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("time,ret\n0,1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="step"):
        Tracker.load(path)


def test_save_empty_tracker(tmp_path):
    Tracker("empty").save(tmp_path / "empty.csv")
    loaded = Tracker.load(tmp_path / "empty.csv")
    assert loaded.name == "empty" and len(loaded) == 0 and loaded.keys == []


# ------------------------------------------------------------------------------- state_dict


def assert_same_history(loaded, tracker):
    assert loaded.name == tracker.name and loaded.x_label == tracker.x_label
    assert len(loaded) == len(tracker)
    assert loaded.keys == tracker.keys
    for key in tracker.keys:
        assert loaded.steps(key) == tracker.steps(key)
        np.testing.assert_array_equal(loaded.history[key], tracker.history[key])


def test_state_dict_round_trip():
    tracker = make_tracker()
    tracker.x_label = "environment steps"
    tracker.log(7, loss=float("nan"), entropy=float("-inf"), ret=-0.0)
    state = tracker.state_dict()
    assert state["name"] == "ppo" and state["x_label"] == "environment steps"
    assert state["rows"][0] == (0, {"loss": 1.0, "ret": 2.5})
    loaded = Tracker()
    loaded.load_state_dict(state)
    assert_same_history(loaded, tracker)
    assert math.copysign(1.0, loaded.last("ret")) == -1.0
    assert loaded.steps("entropy") == [7]
    # The loaded tracker goes on logging like the original.
    loaded.log(8, loss=0.125)
    assert loaded.history["loss"][-1] == 0.125 and loaded.steps("loss")[-2:] == [7, 8]


def test_state_dict_is_a_snapshot_and_load_replaces():
    tracker = make_tracker()
    state = tracker.state_dict()
    tracker.log(3, loss=9.0)
    assert len(state["rows"]) == 3
    state["rows"][0][1]["loss"] = 100.0  # editing the state does not edit the tracker
    assert tracker.history["loss"][0] == 1.0
    other = Tracker("other", x_label="episodes")
    other.log(50, reward=1.0)
    other.load_state_dict(make_tracker().state_dict())
    assert_same_history(other, make_tracker())
    assert "reward" not in other.keys


def test_state_dict_survives_torch_save_weights_only(tmp_path):
    tracker = make_tracker()
    path = tmp_path / "tracker.pt"
    torch.save(tracker.state_dict(), path)
    loaded = Tracker()
    loaded.load_state_dict(torch.load(path, weights_only=True))  # plain Python data only
    assert_same_history(loaded, tracker)


def test_state_dict_of_an_empty_tracker():
    loaded = Tracker("x")
    loaded.log(0, a=1.0)
    loaded.load_state_dict(Tracker("empty").state_dict())
    assert len(loaded) == 0 and loaded.keys == [] and loaded.name == "empty"


# ------------------------------------------------------------------------------- TrainingRun


class Scalar(torch.nn.Module):
    """A one-parameter 'agent' whose evaluation score is its parameter."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))


def run_loop(config, agent=None, scores=None, tracker=None, interrupt_at=None, n_envs=1):
    """A stand-in training loop: each step raises the agent's parameter by one, ends an episode
    every 10 steps and reports an update; evaluations return the next of ``scores``."""
    agent = agent if agent is not None else Scalar()
    scores = iter(scores) if scores is not None else None
    evaluate = (lambda: {"eval_return": next(scores)}) if scores is not None else None
    with TrainingRun(config, agent, evaluate, tracker) as run:
        while not run.finished:
            with torch.no_grad():
                agent.w += 1
            run.update({"loss": torch.tensor(float(run.step))})
            run.advance(n_envs)
            if run.step % 10 == 0:
                run.episode(float(run.step), 10)
            if interrupt_at is not None and run.step >= interrupt_at:
                raise KeyboardInterrupt
    return run, agent


def test_training_run_counts_steps_and_logs_updates_and_episodes():
    config = TrainConfig(total_steps=30, log_every=10, progress=False)
    run, agent = run_loop(config)
    history = run.tracker.history
    assert run.step == 30 and not run.solved and not run.interrupted and float(agent.w.detach()) == 30
    assert run.tracker.steps("env_steps") == [10, 20, 30]
    assert history["loss"] == [4.5, 14.5, 24.5]  # the mean of the updates since the last log
    assert history["return"] == [10.0, 20.0, 30.0] and history["episode_length"] == [10] * 3
    assert all(s >= 0 for s in history["steps_per_second"])


def test_training_run_evaluates_on_schedule_and_stops_when_solved():
    config = TrainConfig(total_steps=100, eval_every=20, solved_at=5.0, progress=False)
    run, _ = run_loop(config, scores=[1.0, 7.0, 2.0])
    assert run.solved and run.step == 40  # stopped at the second evaluation
    assert run.tracker.steps("eval_return") == [20, 40]
    assert run.tracker.history["eval_return"] == [1.0, 7.0]


def test_training_run_keep_best_restores_the_best_evaluated_agent(capsys):
    config = TrainConfig(total_steps=30, eval_every=10, keep_best=True, progress=False)
    run, agent = run_loop(config, scores=[1.0, 9.0, 3.0])
    assert float(agent.w.detach()) == 20  # the agent as it was at the step-20 evaluation
    assert "step 20" in capsys.readouterr().out


def test_training_run_an_interruption_keeps_everything_and_a_second_call_resumes(capsys):
    config = TrainConfig(total_steps=50, log_every=10, progress=False)
    run, agent = run_loop(config, interrupt_at=23)
    assert run.interrupted and run.step == 23 and "Interrupted at step 23" in capsys.readouterr().out
    assert run.tracker.last("env_steps") == 23  # the last row says where to continue
    run, agent = run_loop(config, agent=agent, tracker=run.tracker)
    assert run.step == 50 and float(agent.w.detach()) == 50
    assert run.tracker.steps("env_steps") == [10, 20, 23, 30, 40, 50]


def test_training_run_counts_vector_steps_and_logs_each_crossed_period():
    config = TrainConfig(total_steps=24, log_every=10, progress=False)
    run, _ = run_loop(config, n_envs=8)  # 8, 16, 24: crosses 10 and 20
    assert run.tracker.steps("env_steps") == [16, 24]


def test_training_run_a_real_error_propagates():
    config = TrainConfig(total_steps=10, progress=False)
    with pytest.raises(RuntimeError, match="boom"):
        with TrainingRun(config, Scalar()):
            raise RuntimeError("boom")


def test_training_run_a_non_finite_update_metric_names_itself():
    config = TrainConfig(total_steps=10, log_every=5, progress=False)
    with pytest.raises(FloatingPointError, match="'loss' became nan at step 5"):
        with TrainingRun(config, Scalar()) as run:
            for _ in range(5):
                run.update({"loss": torch.tensor(float("nan"))})
                run.advance()


def test_training_run_evaluation_time_is_not_training_time():
    import time

    def slow_evaluation():
        time.sleep(0.3)
        return {"eval_return": 0.0}

    config = TrainConfig(total_steps=2, eval_every=1, progress=False)
    with TrainingRun(config, Scalar(), slow_evaluation) as run:
        while not run.finished:
            run.advance()
    assert run.train_seconds < 0.3 and run.tracker.last("train_seconds") < 0.3


@pytest.mark.parametrize("settings, message", [
    (dict(total_steps=-1), "total_steps"),
    (dict(eval_every=10), "evaluate function"),
    (dict(solved_at=1.0), "eval_every > 0"),
    (dict(keep_best=True), "eval_every > 0"),
    (dict(log_every=-5), "log_every"),
])
def test_training_run_bad_settings_name_the_setting(settings, message):
    with pytest.raises(ValueError, match=message):
        TrainingRun(TrainConfig(**settings, progress=False), Scalar())


def test_training_run_progress_line_outside_jupyter_is_one_tqdm_bar_on_stdout(capsys):
    config = TrainConfig(total_steps=20, log_every=10)
    run_loop(config)
    captured = capsys.readouterr()
    assert "training" in captured.out and "20/20" in captured.out and captured.err == ""


def test_training_run_progress_line_in_jupyter_is_one_display_updated_in_place(monkeypatch):
    import course_utils.tracking as tracking

    shown: list[tuple[str, str]] = []

    class Handle:
        def update(self, data, raw):
            shown.append(("update", data["text/plain"]))

    def fake_display(data, raw, display_id):
        shown.append(("display", data["text/plain"]))
        return Handle()

    monkeypatch.setattr(tracking, "_in_jupyter", lambda: True)
    monkeypatch.setattr("IPython.display.display", fake_display)
    run_loop(TrainConfig(total_steps=500, eval_every=250, progress=True), scores=[3.0, 4.0])
    assert [kind for kind, _ in shown].count("display") == 1
    assert len(shown) < 10  # at most once a second, plus the final line
    final = shown[-1][1]
    assert "500/500" in final and "return(eval)=4" in final  # current with the last evaluation


def test_progress_yields_every_item_behind_one_line_on_stdout(capsys):
    assert list(progress(range(5), desc="runs")) == [0, 1, 2, 3, 4]
    captured = capsys.readouterr()
    assert "runs" in captured.out and "5/5" in captured.out and captured.err == ""


def test_progress_in_jupyter_is_one_display_and_ends_with_the_count_reached(monkeypatch):
    import course_utils.tracking as tracking

    shown: list[str] = []

    class Handle:
        def update(self, data, raw):
            shown.append(data["text/plain"])

    def fake_display(data, raw, display_id):
        shown.append(data["text/plain"])
        return Handle()

    monkeypatch.setattr(tracking, "_in_jupyter", lambda: True)
    monkeypatch.setattr("IPython.display.display", fake_display)
    for i in progress(iter(range(10)), desc="seeds", total=10):
        if i == 3:
            break
    # Three items were finished when the loop broke: the line says so, and stays one line.
    assert shown[0].startswith("seeds") and "3/10" in shown[-1] and len(shown) <= 3


def test_training_run_a_last_rollout_past_the_budget_shows_the_steps_taken(capsys):
    config = TrainConfig(total_steps=20, log_every=10)
    run_loop(config, n_envs=8)  # 8, 16, 24: the last advance passes the budget
    out = capsys.readouterr().out
    assert "24/24" in out and "100%" in out


def test_training_run_logs_a_metric_that_only_some_updates_report():
    config = TrainConfig(total_steps=4, log_every=4, progress=False)
    with TrainingRun(config, Scalar()) as run:
        for step in range(4):
            metrics = {"critic_loss": torch.tensor(1.0)}
            if step % 2 == 1:  # a delayed actor, as TD3's
                metrics["actor_loss"] = torch.tensor(float(step))
            run.update(metrics)
            run.advance()
    assert run.tracker.history["actor_loss"] == [2.0]  # the mean of steps 1 and 3
    assert run.tracker.history["critic_loss"] == [1.0]
