"""Log scalar metrics during training, plot them, compare seeds, save them as CSV.

A ``Tracker`` keeps one row per ``log`` call: the step (a training iteration or an
environment-step count) and the metrics logged at that step::

    tracker = Tracker("PPO CartPole")
    for iteration in range(100):
        ...
        tracker.log(iteration, avg_return=avg_return, loss=loss)
        tracker.live_plot()             # one figure in the notebook, redrawn in place
    tracker.finish_live_plot()
    tracker.plot_all()                  # the final plots
    tracker.save("ppo_seed0.csv")

``Tracker.plot_mean_std([tracker_seed0, tracker_seed1, ...], "avg_return")`` shows the mean and
the spread over seeds: a single run says little about an RL algorithm.
"""

from __future__ import annotations

import copy
import csv
import json
import math
import numbers
import operator
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence, TypeVar

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from tqdm import tqdm

from course_utils.validation import check_int

T = TypeVar("T")


def moving_average(values: Sequence[float], window: int) -> np.ndarray:
    """Trailing moving average: entry ``i`` is the mean of ``values[i - window + 1 : i + 1]``.

    The first ``window - 1`` entries average the values seen so far, so the result has the same
    length as ``values`` and stays aligned with their steps. Non-finite values (NaN, ±inf) are
    left out of the averages; a window without any finite value gives NaN.
    """
    window = check_int("window", window)
    x = np.asarray(values, dtype=float)
    finite = np.isfinite(x)
    # Cumulative sums turn each window's sum into one subtraction: O(n) whatever the window.
    sums = np.concatenate([[0.0], np.cumsum(np.where(finite, x, 0.0))])
    counts = np.concatenate([[0], np.cumsum(finite)])
    end = np.arange(1, len(x) + 1)
    start = np.maximum(end - window, 0)
    n_finite = counts[end] - counts[start]
    means = (sums[end] - sums[start]) / np.maximum(n_finite, 1)
    return np.where(n_finite > 0, means, np.nan)


class Tracker:
    """Scalar metrics logged during training, with plots, seed aggregation and CSV files.

    ``name`` labels the plots (legend entry, figure title); ``x_label`` names the x axis, that is
    what the ``step`` of ``log`` counts ("iteration", "environment steps", ...).
    """

    def __init__(self, name: str = "", x_label: str = "iteration") -> None:
        self.name = name
        self.x_label = x_label
        # One entry per `log` call (what `save` writes), plus per-metric lists for fast access.
        self._rows: list[tuple[int, dict[str, float]]] = []
        self._values: dict[str, list[float]] = {}
        self._steps: dict[str, list[int]] = {}
        # The notebook output that `live_plot` redraws, and the figure drawn into it.
        self._live_handle: Any = None
        self._live_figure: Figure | None = None

    # ----------------------------------------------------------------------------- logging

    def log(self, step: int, **metrics: float) -> None:
        """Record ``metrics`` (name=value) at ``step``, e.g. ``tracker.log(it, loss=l, ret=r)``.

        Values may be Python numbers, NumPy scalars or one-element tensors; NaN and ±inf are
        stored as they are. Different calls may log different metrics.
        """
        if not metrics:
            raise ValueError(
                "log() needs at least one metric besides the step, e.g. tracker.log(step, loss=0.3)"
            )
        step = _as_step(step)
        # Convert everything before storing anything, so a bad value leaves the tracker unchanged.
        row = {name: _as_float(name, value) for name, value in metrics.items()}
        self._append(step, row)

    def _append(self, step: int, row: dict[str, float]) -> None:
        self._rows.append((step, row))
        for key, value in row.items():
            self._values.setdefault(key, []).append(value)
            self._steps.setdefault(key, []).append(step)

    # ----------------------------------------------------------------------------- reading

    @property
    def history(self) -> dict[str, list[float]]:
        """Every metric's values in logging order, ``{name: [value, ...]}`` (a copy)."""
        return {key: list(values) for key, values in self._values.items()}

    @property
    def keys(self) -> list[str]:
        """The metric names, in the order they were first logged."""
        return list(self._values)

    def steps(self, key: str) -> list[int]:
        """The steps at which ``key`` was logged (one per value in ``history[key]``)."""
        return list(self._steps[self._check_key(key)])

    def last(self, key: str) -> float:
        """The most recent value of ``key``."""
        return self._values[self._check_key(key)][-1]

    def mean_last(self, key: str, n: int) -> float:
        """The mean of the last ``n`` values of ``key`` (of all of them if fewer were logged)."""
        n = check_int("n", n)
        return float(np.mean(self._values[self._check_key(key)][-n:]))

    def __len__(self) -> int:
        """The number of ``log`` calls."""
        return len(self._rows)

    def __repr__(self) -> str:
        return f"Tracker(name={self.name!r}, rows={len(self)}, keys={self.keys})"

    def __getstate__(self) -> dict[str, Any]:
        # Copies and pickles (checkpoints) keep the history, not the notebook output.
        state = self.__dict__.copy()
        state["_live_handle"] = None
        state["_live_figure"] = None
        return state

    def _check_key(self, key: str) -> str:
        if key not in self._values:
            raise KeyError(
                f"no metric {key!r} in tracker {self.name!r}; logged metrics: {self.keys}"
            )
        return key

    # ----------------------------------------------------------------------------- plots

    def plot(
        self,
        key: str,
        ax: Axes | None = None,
        smooth: int = 1,
        label: str | None = None,
        **plot_kwargs: Any,
    ) -> Axes:
        """Plot ``key`` against the step on ``ax`` (a new figure when None) and return the axes.

        ``smooth > 1`` draws the moving average over ``smooth`` values (see ``moving_average``)
        on top of the raw values, drawn faint. ``label`` defaults to the tracker's name; pass
        ``label=""`` for no legend entry. Other keyword arguments go to ``Axes.plot`` (colour,
        line style, ...), so several trackers can share one axes.
        """
        steps = self.steps(key)
        values = self._values[key]
        smooth = check_int("smooth", smooth)
        if ax is None:
            _, ax = plt.subplots()
        label = self.name if label is None else label
        if len(steps) == 1:
            plot_kwargs.setdefault("marker", "o")  # a single point draws no line
        if smooth > 1:
            (line,) = ax.plot(steps, moving_average(values, smooth), label=label, **plot_kwargs)
            # The raw values, faint, behind and in the same colour: the noise the average hides.
            ax.plot(steps, values, color=line.get_color(), alpha=0.25,
                    zorder=line.get_zorder() - 0.1)
        else:
            ax.plot(steps, values, label=label, **plot_kwargs)
        ax.set_xlabel(self.x_label)
        ax.set_ylabel(key)
        if label:
            ax.legend()
        return ax

    def plot_all(
        self, keys: Sequence[str] | None = None, ncols: int = 3, smooth: int = 1
    ) -> Figure:
        """One subplot per metric (all of them by default), titled with the tracker's name.

        In a notebook, end the line with ``;`` or assign the figure: a figure that is a cell's
        last value is shown twice (once as the value, once by the inline backend).
        """
        keys = self._keys_to_plot(keys)
        fig = plt.figure()
        self._draw_all(fig, keys, ncols, smooth)
        return fig

    def _keys_to_plot(self, keys: Sequence[str] | str | None) -> list[str]:
        if keys is None:
            keys = self.keys
        elif isinstance(keys, str):
            keys = [keys]  # plot_all("loss") means plot_all(["loss"])
        if not keys:
            raise ValueError("nothing to plot: no metric has been logged yet")
        return [self._check_key(key) for key in keys]

    def _draw_all(self, fig: Figure, keys: list[str], ncols: int, smooth: int) -> None:
        ncols = min(check_int("ncols", ncols), len(keys))
        nrows = math.ceil(len(keys) / ncols)
        fig.set_size_inches(4 * ncols, 3 * nrows)
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for ax, key in zip(axes, keys):
            self.plot(key, ax=ax, smooth=smooth, label="")  # the title names the run
        for ax in axes[len(keys):]:
            ax.set_visible(False)  # the unused cells of the last row
        if self.name:
            fig.suptitle(self.name)
        fig.tight_layout()

    def live_plot(self, keys: Sequence[str] | None = None, smooth: int = 1) -> None:
        """Show the metrics in a Jupyter notebook, redrawn in place: call it in the training loop.

        The first call displays a figure; later calls redraw that same output, so the notebook
        shows one figure that refreshes rather than one per call. Call ``finish_live_plot()``
        before a new training run to start a new figure. Keys not logged yet are skipped (they
        appear once logged). Outside a Jupyter kernel (a script, a plain terminal, pytest) it
        does nothing. Drawing takes a fraction of a second: call it every few iterations, not
        every environment step.
        """
        if not _in_jupyter():
            return
        from IPython.display import display

        wanted = self.keys if keys is None else ([keys] if isinstance(keys, str) else list(keys))
        keys = [key for key in wanted if key in self._values]
        if not keys:
            return
        if self._live_figure is None:
            self._live_figure = plt.figure()
            self._draw_all(self._live_figure, keys, 3, smooth)
            self._live_handle = display(self._live_figure, display_id=True)
            # Without this the inline backend would also draw the figure when the cell ends.
            plt.close(self._live_figure)
        else:
            self._live_figure.clear()
            self._draw_all(self._live_figure, keys, 3, smooth)
            self._live_handle.update(self._live_figure)

    def finish_live_plot(self) -> None:
        """Forget the live figure: the next ``live_plot`` call starts a new one."""
        self._live_handle = None
        self._live_figure = None

    # ----------------------------------------------------------------------------- seeds

    @staticmethod
    def mean_std(
        trackers: Sequence[Tracker], key: str, smooth: int = 1
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(steps, mean, std)`` of ``key`` across runs (one tracker per seed), step by step.

        Only the steps at which every run logged ``key`` are kept, so runs of different lengths
        are truncated to the shortest. Each run is smoothed (``smooth``) before averaging. ``std``
        is the population standard deviation (NumPy's default, ``ddof=0``).
        """
        steps, runs = Tracker._align(trackers, key, smooth)
        return steps, runs.mean(axis=0), runs.std(axis=0)

    @staticmethod
    def plot_mean_std(
        trackers: Sequence[Tracker],
        key: str,
        ax: Axes | None = None,
        label: str | None = None,
        color: Any = None,
        show_runs: bool = False,
        smooth: int = 1,
    ) -> Axes:
        """Plot the mean of ``key`` across runs with a band of ± one standard deviation.

        Runs are aligned on their steps as in ``mean_std`` (runs of different lengths are
        truncated to the shortest). ``show_runs`` adds each run as a faint line. ``label``
        defaults to the runs' common name (or ``key``) with the number of runs.
        """
        trackers = list(trackers)
        steps, runs = Tracker._align(trackers, key, smooth)
        mean, std = runs.mean(axis=0), runs.std(axis=0)
        if ax is None:
            _, ax = plt.subplots()
        if label is None:
            names = {tracker.name for tracker in trackers}
            base = names.pop() if len(names) == 1 and "" not in names else key
            label = f"{base} (mean ± std, {len(trackers)} runs)"
        (line,) = ax.plot(steps, mean, color=color, label=label)
        color = line.get_color()  # the band and the runs share the mean's colour
        ax.fill_between(steps, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)
        if show_runs:
            for run in runs:
                ax.plot(steps, run, color=color, alpha=0.3, linewidth=0.8)
        ax.set_xlabel(trackers[0].x_label)
        ax.set_ylabel(key)
        if label:
            ax.legend()
        return ax

    @staticmethod
    def _align(trackers: Sequence[Tracker], key: str, smooth: int) -> tuple[np.ndarray, np.ndarray]:
        """The steps common to all runs and a ``(n_runs, n_steps)`` array of their values."""
        trackers = list(trackers)
        if not trackers:
            raise ValueError("trackers is empty: pass one Tracker per run (e.g. per seed)")
        for tracker in trackers:
            if not isinstance(tracker, Tracker):
                raise TypeError(f"trackers must hold Tracker objects, got {type(tracker).__name__}")
        # step -> value for each run (if a step was logged twice, its last value counts).
        runs = [
            dict(zip(t.steps(key), moving_average(t._values[key], smooth))) for t in trackers
        ]
        common = sorted(set.intersection(*(set(run) for run in runs)))
        if not common:
            raise ValueError(
                f"the runs share no step at which {key!r} was logged; "
                "log every run at the same steps"
            )
        values = np.array([[run[step] for step in common] for run in runs])
        return np.array(common), values

    def state_dict(self) -> dict[str, Any]:
        """The history as plain Python data (for checkpoints): name, x_label and every row."""
        return {"name": self.name, "x_label": self.x_label,
                "rows": [(step, dict(row)) for step, row in self._rows]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Replace this tracker's name, x_label and history by those of a ``state_dict``."""
        self.name, self.x_label = state["name"], state["x_label"]
        self._rows, self._values, self._steps = [], {}, {}
        for step, row in state["rows"]:
            self._append(int(step), {key: float(value) for key, value in row.items()})

    # ----------------------------------------------------------------------------- files

    def save(self, path: str | Path) -> None:
        """Write the history as CSV: columns ``step`` and every metric, one row per ``log`` call.

        A metric not logged in a row leaves its cell empty. Two comment lines come first,
        ``# name: "..."`` and ``# x_label: "..."`` (JSON strings), so ``load`` restores them;
        other programs can skip them (pandas: ``read_csv(path, comment="#")``).
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        keys = self.keys
        with path.open("w", newline="", encoding="utf-8") as f:
            f.write(f"# name: {json.dumps(self.name, ensure_ascii=False)}\n")
            f.write(f"# x_label: {json.dumps(self.x_label, ensure_ascii=False)}\n")
            writer = csv.writer(f)
            writer.writerow(["step", *keys])
            for step, row in self._rows:
                # repr() of a float is the shortest text that reads back as exactly that float.
                writer.writerow([step, *(repr(row[key]) if key in row else "" for key in keys)])

    @classmethod
    def load(cls, path: str | Path) -> Tracker:
        """Read a CSV written by ``save``; history, steps, name and x_label come back exactly.

        Without the ``# name:`` comment line the name is the file's stem.
        """
        path = Path(path)
        meta = {"name": path.stem, "x_label": "iteration"}
        with path.open(newline="", encoding="utf-8") as f:
            lines = f.readlines()
        n_comments = 0
        while n_comments < len(lines) and lines[n_comments].startswith("#"):
            field, _, value = lines[n_comments][1:].partition(":")
            try:
                meta[field.strip()] = json.loads(value)
            except ValueError:
                meta[field.strip()] = value.strip()  # written by hand, not JSON
            n_comments += 1
        reader = csv.reader(lines[n_comments:])
        header = next(reader, None)
        if not header or header[0] != "step":
            raise ValueError(f"{path} is not a Tracker CSV: its first column must be 'step'")
        tracker = cls(name=str(meta["name"]), x_label=str(meta["x_label"]))
        for row in reader:
            if not row:
                continue  # a blank line
            metrics = {key: float(cell) for key, cell in zip(header[1:], row[1:]) if cell != ""}
            tracker._append(int(row[0]), metrics)
        return tracker


# --------------------------------------------------------------------------------- helpers


def _as_step(step: Any) -> int:
    if isinstance(step, torch.Tensor) and step.numel() == 1:
        step = step.item()
    try:
        return operator.index(step)  # ints and NumPy ints; floats are refused
    except TypeError:
        raise TypeError(f"step must be an int, got {step!r}") from None


def _as_float(name: str, value: Any) -> float:
    """A metric value as a Python float, or a TypeError that names the metric."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        size = value.numel() if isinstance(value, torch.Tensor) else value.size
        if size != 1:
            raise TypeError(
                f"metric {name!r} must be a single number, "
                f"got an array of shape {tuple(value.shape)}"
            )
        value = value.item()  # for a GPU tensor this waits for the GPU
    if not isinstance(value, (numbers.Real, np.bool_)):
        raise TypeError(
            f"metric {name!r} must be a number (int, float, NumPy scalar or one-element tensor), "
            f"got {type(value).__name__} {value!r}"
        )
    return float(value)


def _in_jupyter() -> bool:
    """True inside a Jupyter kernel (Jupyter, JupyterLab, VS Code, Colab), False elsewhere."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    # Colab's shell subclasses ZMQInteractiveShell, so look along the class hierarchy.
    return shell is not None and any(
        cls.__name__ == "ZMQInteractiveShell" for cls in type(shell).__mro__
    )


# ------------------------------------------------------------------- the shared training run


@dataclass
class TrainConfig:
    """What every algorithm's ``train`` shares: its budget, its seed, and how it reports.

    Each algorithm's config dataclass (``DQNConfig``, ``PPOConfig``, ...) extends this one with
    its own hyperparameters.
    """

    total_steps: int = 100_000  # environment steps, all environments together
    seed: int = 0
    eval_every: int = 0  # evaluate every this many environment steps (0: never)
    eval_episodes: int = 10  # greedy episodes per evaluation, seeds seed + 1_000_000 + i
    solved_at: Optional[float] = None  # stop at the first evaluation whose score reaches this
    keep_best: bool = False  # at the end, restore the agent of the best evaluation
    log_every: int = 1_000  # log the averaged update metrics every this many steps
    live_plot_every: int = 0  # redraw a live plot every this many steps (0: none)
    progress: bool = True  # show a progress bar


class TrainingRun:
    """The bookkeeping every training loop shares, so that the loop itself shows only the algorithm.

    It counts environment steps, shows one progress bar (on stdout; in a notebook, one line that
    updates in place), logs episodes and averaged update metrics to a ``Tracker``, evaluates
    every ``config.eval_every`` steps with the training clock paused, keeps the best agent,
    redraws a live plot, and turns an interruption (Kernel → Interrupt, Ctrl-C) into a clean
    stop that keeps the agent and the history. Use it as a context manager::

        with TrainingRun(config, agent, evaluate, tracker) as run:
            while not run.finished:
                ...                                  # act in the environment
                run.advance(n_envs)                  # n environment steps were taken
                run.episode(episode_return, length)  # for each episode that ended
                run.update(metrics)                  # after each gradient step

    Args:
        config: the budget and reporting settings (``TrainConfig`` or an extension of it).
        agent: what ``keep_best`` saves and restores (anything with ``state_dict`` and
            ``load_state_dict``, e.g. an ``nn.Module``).
        evaluate: ``() -> {metric: value}``, called every ``config.eval_every`` steps; its
            ``score_key`` entry decides ``solved_at`` and ``keep_best``.
        tracker: where metrics go; the tracker of an earlier (or interrupted) run continues it,
            from its last ``env_steps``.
        score_key: the evaluation metric that ``solved_at`` and ``keep_best`` use.
        plot_keys: the metrics of the live plot.
        unit: what one step of the budget is, as the progress bar says it; a loop whose steps
            are not environment steps ("epoch": BC) shows no episode return.
    """

    def __init__(self, config: TrainConfig, agent: Any = None,
                 evaluate: Optional[Callable[[], dict[str, float]]] = None,
                 tracker: Optional[Tracker] = None, score_key: str = "eval_return",
                 plot_keys: Sequence[str] = ("return", "eval_return"), unit: str = "step") -> None:
        self.total_steps = check_int("total_steps", config.total_steps, minimum=0)
        for name in ("eval_every", "log_every", "live_plot_every"):
            check_int(name, getattr(config, name), minimum=0)
        check_int("eval_episodes", config.eval_episodes)
        if config.eval_every and evaluate is None:
            raise ValueError("eval_every > 0 needs an evaluate function")
        if (config.solved_at is not None or config.keep_best) and not config.eval_every:
            raise ValueError("solved_at and keep_best need evaluations: set eval_every > 0")
        self.config, self.agent, self.evaluate = config, agent, evaluate
        self.score_key, self.plot_keys = score_key, tuple(plot_keys)
        self.tracker = tracker if tracker is not None else Tracker(x_label="environment steps")
        resumed = "env_steps" in self.tracker.keys
        self.step = int(self.tracker.last("env_steps")) if resumed else 0
        self._seconds = self.tracker.last("train_seconds") if resumed else 0.0
        self.solved = False
        self.interrupted = False
        self._started: Optional[float] = None
        self._updates: list[dict[str, Any]] = []
        self._recent: deque[float] = deque(self.tracker.history.get("return", [])[-20:], maxlen=20)
        self._best_score, self._best_step, self._best_state = -math.inf, 0, None
        self._unit = unit
        self._bar = _ProgressLine(self.total_steps, self.step, config.progress, unit=unit)

    # ------------------------------------------------------------------------- the loop's calls

    @property
    def finished(self) -> bool:
        """Whether the loop should stop: the budget is spent or the task is solved."""
        return self.solved or self.step >= self.total_steps

    @property
    def train_seconds(self) -> float:
        """Wall-clock seconds of training so far, evaluations excluded."""
        running = time.perf_counter() - self._started if self._started is not None else 0.0
        return self._seconds + running

    def advance(self, n_steps: int = 1) -> None:
        """Count ``n_steps`` environment steps; log, evaluate and plot when their period is due."""
        before, self.step = self.step, self.step + n_steps
        config = self.config
        if _crossed(before, self.step, config.log_every):
            self._log_updates()
        if config.eval_every and _crossed(before, self.step, config.eval_every):
            self._evaluate()
        if config.live_plot_every and _crossed(before, self.step, config.live_plot_every):
            self.tracker.live_plot([k for k in self.plot_keys if k in self.tracker.keys])
        self._bar.show(self.step, self._postfix)

    def episode(self, episode_return: float, length: int, **metrics: float) -> None:
        """Log one finished training episode (its undiscounted return and its length)."""
        self.tracker.log(self.step, **{"return": float(episode_return), "episode_length": length},
                         **metrics)
        self._recent.append(float(episode_return))

    def update(self, metrics: dict[str, Any]) -> None:
        """Keep one update's metrics (tensors are fine: they are averaged and converted only
        when logged, so the GPU is not synchronised after every update)."""
        self._updates.append(metrics)

    # ------------------------------------------------------------------------- context manager

    def __enter__(self) -> "TrainingRun":
        self._started = time.perf_counter()
        return self

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> bool:
        self._pause()
        self.interrupted = exc_type is KeyboardInterrupt
        if exc_type is not None and not self.interrupted:
            self._bar.close()
            return False  # a real error propagates
        if self._updates or not ("env_steps" in self.tracker.keys
                                 and self.tracker.last("env_steps") == self.step):
            self._log_updates()  # the last row: where a continued run starts
        self._bar.show(self.step, self._postfix, final=True)
        self._bar.close()
        if self.interrupted:
            print(f"Interrupted at step {self.step:,} of {self.total_steps:,}: the agent and the "
                  "tracker keep everything so far (call again with them to continue).")
        elif self.config.keep_best and self._best_state is not None:
            self.agent.load_state_dict(self._best_state)
            print(f"Restored the agent of step {self._best_step:,}, the best evaluation "
                  f"({self.score_key} {self._best_score:.3g}).")
        if self.config.live_plot_every:
            self.tracker.live_plot([k for k in self.plot_keys if k in self.tracker.keys])
            self.tracker.finish_live_plot()
        return self.interrupted  # an interruption ends the loop quietly

    # ------------------------------------------------------------------------- internals

    def _pause(self) -> None:
        if self._started is not None:
            self._seconds += time.perf_counter() - self._started
            self._started = None

    def _log_updates(self) -> None:
        """Log the mean of each update metric since the last log, the step count and the speed."""
        means = {}
        # Every metric any update reported (TD3's actor_loss comes only every other update),
        # each averaged over the updates that reported it.
        names = dict.fromkeys(name for metrics in self._updates for name in metrics)
        for name in names:
            # One conversion per metric per log, not one `.item()` (a GPU sync) per update.
            value = float(torch.stack([torch.as_tensor(m[name]).float().detach().cpu()
                                       for m in self._updates if name in m]).mean())
            if not math.isfinite(value):
                raise FloatingPointError(f"the agent's {name!r} became {value} at step "
                                         f"{self.step:,}; lower the learning rate or check the "
                                         "targets")
            means[name] = value
        self._updates = []
        seconds = self.train_seconds
        self.tracker.log(self.step, env_steps=self.step, train_seconds=seconds,
                         steps_per_second=self.step / max(seconds, 1e-9), **means)

    def _evaluate(self) -> None:
        self._pause()
        results = self.evaluate()
        self.tracker.log(self.step, train_seconds=self._seconds, **results)
        score = float(results[self.score_key])
        if self.config.keep_best and score > self._best_score:
            self._best_score, self._best_step = score, self.step
            self._best_state = copy.deepcopy(self.agent.state_dict())
        if self.config.solved_at is not None and score >= self.config.solved_at:
            self.solved = True
        self._started = time.perf_counter()

    def _postfix(self) -> str:
        parts = []
        if self._recent or self._unit == "step":
            parts.append(f"return={np.mean(self._recent):.1f}" if self._recent else "return=-")
        if self.score_key in self.tracker.keys:  # the latest evaluation, as on the live plot
            parts.append(f"{self.score_key.removeprefix('eval_')}(eval)="
                         f"{self.tracker.last(self.score_key):.3g}")
        return ", ".join(parts)


def _crossed(before: int, after: int, every: int) -> bool:
    """Whether a multiple of ``every`` (> 0) lies in ``(before, after]``."""
    return every > 0 and after // every > before // every


class _ProgressLine:
    """A progress bar that stays one line: tqdm on stdout in a terminal; in a notebook, one output
    updated in place (so the saved notebook holds one line, not one output per refresh)."""

    def __init__(self, total: int, initial: int, enabled: bool, desc: str = "training",
                 unit: str = "step") -> None:
        self.enabled, self.total, self.initial = enabled, total, initial
        self.desc, self.unit = desc, unit
        self._start, self._last_shown = time.perf_counter(), -math.inf
        self._handle: Any = None
        self._bar: Optional[tqdm] = None
        if enabled and not _in_jupyter():
            self._bar = tqdm(total=total, initial=initial, file=sys.stdout, mininterval=1.0,
                             unit=unit, desc=desc)

    def show(self, step: int, postfix: Callable[[], str], final: bool = False) -> None:
        """Show ``step`` with ``postfix()``, at most once a second (and always when ``final``):
        the postfix is computed only then, so a per-step loop pays almost nothing."""
        if not self.enabled:
            return
        now = time.perf_counter()
        if not final and now - self._last_shown < 1.0:
            return
        self._last_shown = now
        total = max(self.total, step)  # a last rollout may overshoot the budget
        if self._bar is not None:
            self._bar.total = total
            self._bar.set_postfix_str(postfix(), refresh=False)
            self._bar.update(step - self._bar.n)
            return
        line = tqdm.format_meter(step - self.initial, total - self.initial,
                                 now - self._start, prefix=self.desc, unit=self.unit,
                                 postfix=postfix() or None, ncols=100)
        line = line.replace(f"{step - self.initial}/{total - self.initial}",
                            f"{step:,}/{total:,}", 1)
        from IPython.display import display
        if self._handle is None:
            self._handle = display({"text/plain": line}, raw=True, display_id=True)
        else:
            self._handle.update({"text/plain": line}, raw=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def progress(iterable: Iterable[T], desc: str = "", total: Optional[int] = None) -> Iterator[T]:
    """Iterate over ``iterable`` behind one progress line, like ``tqdm(iterable, desc=desc)``: on
    stdout in a terminal, and in a notebook one output updated in place, so the saved notebook
    holds one line (tqdm writes a new output to stderr at every refresh). ``total`` defaults to
    ``len(iterable)``."""
    total = len(iterable) if total is None else total  # type: ignore[arg-type]
    line = _ProgressLine(total, 0, True, desc=desc, unit="it")
    done = 0
    try:
        for item in iterable:
            yield item
            done += 1
            line.show(done, str)
    finally:
        line.show(done, str, final=True)
        line.close()
