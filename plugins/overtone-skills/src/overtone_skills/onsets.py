"""The ``skill-onsets`` analyzer: when each skill starts and finishes being learned.

For skill k with loss L_k(t), progress is ``q_k(t) = (L_k(0) - L_k(t)) / (L_k(0) - min_t L_k)``.
Its **onset** is the first step with ``q_k >= start`` and its **finish** the first step with
``q_k >= end`` (defaults 0.1 and 0.9). For consecutive skills (in the order of the ``skill``
dim, the frequency rank) the **overlap** is ``finish_k - onset_{k+1}`` in steps and the
**overlap fraction** divides it by skill k's duration ``finish_k - onset_k``. The Domino
signature of arXiv 2501.12391 is an overlap fraction near or below 0 (each skill starts as the
previous one finishes); skills learned in parallel give fractions near 1.

Two more pair measures say whether the next skill *waits* for the previous one:
``head_start = q_{k+1}(finish_k)`` (0 for a pure Domino) and ``acceleration``, the mean rate
``dq_{k+1}/dt`` over ``window`` steps after ``finish_k`` divided by its mean rate from step 0
to ``finish_k`` (above 1: skill k+1 speeds up once skill k is done; below 1 for independent
skills that slow down as they saturate; ``inf`` when it had not moved at all before).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr
from overtone import ConfigError, DatasetError

STEP, SKILL = "step", "skill"


class SkillOnsets:
    """Onset and finish step of each skill and the overlap of consecutive skills."""

    def __init__(self, variable: str = "skill_loss", start: float = 0.1, end: float = 0.9,
                 min_drop: float = 1e-6, window: int | None = None) -> None:
        if window is not None and window < 1:
            raise ConfigError(f"skill-onsets: window = {window} must be >= 1 step")
        if not 0.0 <= start < end <= 1.0:
            raise ConfigError(f"skill-onsets: need 0 <= start < end <= 1, got start = {start}, "
                              f"end = {end}")
        self.variable, self.start, self.end, self.min_drop = variable, start, end, min_drop
        self.window = window

    def __call__(self, ds: xr.Dataset) -> xr.Dataset:
        if self.variable not in ds:
            raise DatasetError(f"skill-onsets: no variable {self.variable!r} in the data "
                               f"(have: {', '.join(map(str, ds.data_vars)) or 'none'}); "
                               f"set variable = NAME")
        da = ds[self.variable]
        if set(da.dims) != {STEP, SKILL}:
            raise DatasetError(f"skill-onsets: {self.variable!r} has dims {da.dims}; expected "
                               f"('step', 'skill'), as the skill-models engine writes")
        da = da.transpose(STEP, SKILL)
        values = np.asarray(da.values, dtype=np.float64)
        if not np.isfinite(values).all():
            raise DatasetError(f"skill-onsets: {self.variable!r} holds NaN or inf; drop those "
                               f"steps first")
        steps = da[STEP].values if STEP in da.coords else np.arange(da.sizes[STEP])
        onset, finish, learned = skill_onsets(values, steps, self.start, self.end, self.min_drop)
        window = self.window or max(1, len(steps) // 50)
        head_start, acceleration = pair_dynamics(values, steps, finish, window)
        duration = finish - onset
        overlap = finish[:-1] - onset[1:]
        with np.errstate(invalid="ignore", divide="ignore"):
            fraction = overlap / duration[:-1]
        skills = da[SKILL].values if SKILL in da.coords else np.arange(1, da.sizes[SKILL] + 1)
        result = xr.Dataset(
            {
                "onset": (SKILL, onset, {"long_name": f"first step with progress >= {self.start}",
                                         "units": "step"}),
                "finish": (SKILL, finish, {"long_name": f"first step with progress >= {self.end}",
                                           "units": "step"}),
                "learned": (SKILL, learned, {"long_name": "the loss fell by at least min_drop"}),
                "overlap": ("pair", overlap, {"long_name": "finish of skill k - onset of skill k+1",
                                              "units": "step"}),
                "overlap_fraction": ("pair", fraction,
                                     {"long_name": "overlap / duration of skill k"}),
                "head_start": ("pair", head_start,
                               {"long_name": "progress of skill k+1 when skill k finishes"}),
                "acceleration": ("pair", acceleration,
                                 {"long_name": "rate of skill k+1 just after skill k finishes / "
                                               "its mean rate before"}),
                "median_overlap_fraction": ((), float(np.nanmedian(fraction))
                                            if np.isfinite(fraction).any() else np.nan,
                                            {"long_name": "median overlap fraction (Domino: <= 0)"}),
            },
            coords={SKILL: skills, "pair": np.arange(len(overlap)),
                    "first_skill": ("pair", skills[:-1]), "second_skill": ("pair", skills[1:])},
        )
        result.attrs.update({"analyzer": "skill-onsets", "input_variable": self.variable,
                             "params": repr({"variable": self.variable, "start": self.start,
                                             "end": self.end, "min_drop": self.min_drop,
                                             "window": window})})
        return result

    def plot(self, result: xr.Dataset) -> Any:
        """Onset-to-finish bars per skill: a staircase is the Domino effect."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6, 3.6), layout="constrained")
        ax = fig.subplots()
        skills = result[SKILL].values
        ax.barh(np.arange(len(skills)), result["finish"] - result["onset"],
                left=result["onset"], color="tab:blue")
        ax.set_yticks(np.arange(len(skills)), [str(s) for s in skills])
        ax.invert_yaxis()
        ax.set_xlabel("step")
        ax.set_ylabel("skill (frequency rank)")
        ax.set_title(f"learning windows ({self.start:g}-{self.end:g} of each loss drop); "
                     f"median overlap {float(result['median_overlap_fraction']):.2f}")
        return fig


def skill_onsets(losses: np.ndarray, steps: np.ndarray, start: float, end: float,
                 min_drop: float = 1e-6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Onset and finish steps of each column of ``losses`` (steps, skills); NaN if not learned.

    Progress ``q(t) = (L(0) - L(t)) / (L(0) - min L)``; onset/finish are the first ``steps``
    where ``q >= start`` / ``q >= end``. A skill whose loss never falls by ``min_drop`` has
    ``learned = False``.
    """
    learned = losses[0] - losses.min(axis=0) > min_drop
    q = progress(losses, min_drop)
    onset, finish = np.full(losses.shape[1], np.nan), np.full(losses.shape[1], np.nan)
    for k in np.flatnonzero(learned):
        onset[k] = steps[np.argmax(q[:, k] >= start - 1e-12)]
        finish[k] = steps[np.argmax(q[:, k] >= end - 1e-12)]
    return onset, finish, learned


def progress(losses: np.ndarray, min_drop: float = 1e-6) -> np.ndarray:
    """``q(t) = (L(0) - L(t)) / (L(0) - min L)`` per column; NaN for a column that never falls."""
    drop = losses[0] - losses.min(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (losses[0] - losses) / np.where(drop > min_drop, drop, np.nan)


def pair_dynamics(losses: np.ndarray, steps: np.ndarray, finish: np.ndarray,
                  window: int) -> tuple[np.ndarray, np.ndarray]:
    """``head_start`` and ``acceleration`` of skill k+1 at skill k's finish (module docstring)."""
    q = progress(losses)
    n_pairs = losses.shape[1] - 1
    head, accel = np.full(n_pairs, np.nan), np.full(n_pairs, np.nan)
    for k in range(n_pairs):
        if not np.isfinite(finish[k]) or not np.isfinite(q[0, k + 1]):
            continue
        i = int(np.searchsorted(steps, finish[k]))
        j = min(i + window, len(steps) - 1)
        head[k] = q[i, k + 1]
        before = q[i, k + 1] / max(steps[i] - steps[0], 1)
        after = (q[j, k + 1] - q[i, k + 1]) / max(steps[j] - steps[i], 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            accel[k] = after / before if before > 0 else (np.inf if after > 0 else np.nan)
    return head, accel
