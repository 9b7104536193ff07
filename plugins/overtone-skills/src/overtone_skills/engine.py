"""The ``skill-models`` engine: runs a toy model of skill learning and writes a run directory.

Config::

    [run]
    engine = "skill-models"
    [model]
    name = "geometry"        # geometry | resource | domino
    modules = 1              # domino, geometry: independent modules (1: non-modular)
    [task]
    n_skills = 10
    alpha = 2.0              # task frequencies p_k ~ k^-alpha
    [train]
    steps = 1000
    lr = 3e-4

``metrics.nc`` holds ``train_loss (step)``, ``skill_loss (step, skill)`` and
``skill_level (step, skill)``, with the coordinate ``task_frequency (skill)``: the layout of the
torch engine's metrics plus a ``skill`` dim, so ``overtone analyze RUN --input metrics`` and the
``skill-onsets`` analyzer apply. The models run in well under a second, so ``--resume`` simply
recomputes the deterministic trajectory.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from overtone import ConfigError, Param
from overtone.config import check_sections
from overtone.params import resolve_params

from overtone_skills import toy_models

MODEL = {
    "name": Param("geometry", choices=("geometry", "resource", "domino"),
                  help="which toy model of skill learning"),
    "loss": Param("mse", choices=("mse", "ce"), help="skill loss: (1 - s)^2 or -log s"),
    "n_params": Param(1000, type=int, min=1, help="N: dimension of theta (geometry) or its size in "
                      "eta_eff = 2 lr sqrt(N) (resource, domino)"),
    "orthogonal": Param(True, help="geometry: orthonormal task vectors (else random unit vectors)"),
    "optimizer": Param("sign", choices=("sign", "sgd"),
                       help="geometry: Adam with betas (0, 0), i.e. sign descent, or plain GD"),
    "eps": Param(1e-8, help="geometry: epsilon of the sign-descent denominator |g| + eps"),
    "noise": Param(0.0, help="geometry: scale of Gaussian noise added to each gradient component"),
    "wasted": Param(0.003, min=0.0, exclusive_min=True, help="resource: N0, the resource wasted on no skill"),
    "schedule": Param("domino", choices=("domino", "parallel"),
                      help="domino: sequential ramps, or the parallel contrast 1 - exp(-t/(tau i))"),
    "t0": Param(None, type=float, min=0.0, exclusive_min=True,
                help="domino: steps per skill (default 1 / eta_eff)"),
    "tau": Param(30.0, min=0.0, exclusive_min=True, help="domino, parallel schedule: time constant per skill index"),
    "modules": Param(1, type=int, min=1, help="domino, geometry: independent modules of N / modules "
                     "parameters, skill i in module (i - 1) mod modules (1: non-modular)"),
}
TASK = {
    "n_skills": Param(10, type=int, min=1, help="number of skills (tasks)"),
    "alpha": Param(2.0, help="task frequencies p_k ~ k^-alpha (Zipf exponent)"),
}
TRAIN = {
    "steps": Param(1000, type=int, min=1, help="updates to simulate"),
    "lr": Param(3e-4, min=0.0, exclusive_min=True, help="learning rate"),
    "batch_size": Param(0, type=int, min=0, help="geometry: tasks sampled per step (0: use p exactly)"),
}


class SkillModelsEngine:
    """Runs the Geometry, Resource or Domino model (arXiv 2501.12391) as an overtone run."""

    def resolve(self, config: Mapping[str, Any], *, source: str, registry: Any) -> dict[str, Any]:
        """Validate ``[model] [task] [train]`` (types and bounds are the ``Param``s') and fill in every default."""
        check_sections(config, {"run": "run", "model": "model", "task": "task",
                                "train": "training"}, source)
        resolved = {
            "model": resolve_params(config.get("model", {}), MODEL, f"{source} [model]"),
            "task": resolve_params(config.get("task", {}), TASK, f"{source} [task]"),
            "train": resolve_params(config.get("train", {}), TRAIN, f"{source} [train]"),
        }
        model, n = resolved["model"], resolved["task"]["n_skills"]
        if model["name"] == "geometry" and model["orthogonal"] and model["n_params"] < n:
            raise ConfigError(f"{source} [model]: {n} orthogonal task vectors need n_params >= {n}; "
                              f"raise n_params or set orthogonal = false")
        if model["modules"] > n:
            raise ConfigError(f"{source} [model]: modules = {model['modules']} exceeds n_skills = {n}; "
                              f"use at most one module per skill")
        if model["modules"] > 1 and model["name"] == "resource":
            raise ConfigError(f"{source} [model]: modules applies to the domino and geometry models; "
                              f"remove it for the resource model")
        per_module = -(-n // model["modules"])
        if (model["name"] == "geometry" and model["orthogonal"]
                and model["n_params"] // model["modules"] < per_module):
            raise ConfigError(f"{source} [model]: {per_module} orthogonal task vectors per module need "
                              f"n_params >= {per_module * model['modules']}; raise n_params or lower "
                              f"modules")
        return resolved

    def demo_config(self) -> dict[str, Any]:
        """The Geometry model's Domino effect with the paper's notebook settings."""
        return {"run": {"engine": "skill-models", "name": "skills-demo"},
                "model": {"name": "geometry"}}

    def run(self, config: Mapping[str, Any], run_dir: Path, *, resume: bool = False) -> None:
        """Simulate the configured model and write ``metrics.nc`` and ``skills.png``."""
        from overtone.io import write_dataset

        trajectory = simulate(config)
        metrics = metrics_dataset(trajectory, config)
        write_dataset(metrics, Path(run_dir) / "metrics.nc")
        figure = plot_skills(metrics)
        figure.savefig(Path(run_dir) / "skills.png", dpi=110)
        print(f"skill-models: {config['model']['name']} with {config['task']['n_skills']} skills, "
              f"{config['train']['steps']} steps -> {run_dir}")


def simulate(config: Mapping[str, Any]) -> toy_models.Trajectory:
    """Run the toy model a resolved config names and return its trajectory."""
    model, task, train = config["model"], config["task"], config["train"]
    p = toy_models.task_frequencies(task["n_skills"], task["alpha"])
    eta_eff = 2.0 * train["lr"] * np.sqrt(model["n_params"])
    if model["name"] == "geometry":
        rng = np.random.default_rng(config["run"]["seed"])
        vectors = toy_models.modular_task_vectors(task["n_skills"], model["n_params"],
                                                  model["modules"], rng,
                                                  orthogonal=model["orthogonal"])
        return toy_models.geometry(p=p, vectors=vectors, steps=train["steps"], lr=train["lr"],
                                   loss=model["loss"], optimizer=model["optimizer"],
                                   eps=model["eps"], batch_size=train["batch_size"], rng=rng,
                                   noise=model["noise"])
    if model["name"] == "resource":
        return toy_models.resource(p=p, steps=train["steps"], lr=train["lr"],
                                   n_params=model["n_params"], wasted=model["wasted"],
                                   loss=model["loss"])
    t0 = model["t0"] if model["t0"] is not None else 1.0 / eta_eff
    return toy_models.domino(n_skills=task["n_skills"], steps=train["steps"], t0=t0,
                             schedule=model["schedule"], tau=model["tau"], p=p,
                             modules=model["modules"])


def metrics_dataset(trajectory: toy_models.Trajectory, config: Mapping[str, Any]):
    """The run's ``metrics.nc``: losses and skill levels over ``step`` (and ``skill``)."""
    import xarray as xr

    steps, n = trajectory.skill_level.shape
    p = toy_models.task_frequencies(n, config["task"]["alpha"])
    loss_name = "squared residual (1 - s)^2" if config["model"]["loss"] == "mse" else "-log s"
    return xr.Dataset(
        {
            "train_loss": ("step", trajectory.loss,
                           {"long_name": "training loss (frequency-weighted over skills)"}),
            "skill_loss": (("step", "skill"), trajectory.skill_loss,
                           {"long_name": f"loss of each skill: {loss_name}"}),
            "skill_level": (("step", "skill"), trajectory.skill_level,
                            {"long_name": "skill level s_k", "units": "1"}),
        },
        coords={"step": np.arange(steps), "skill": np.arange(1, n + 1),
                "task_frequency": ("skill", p, {"long_name": "task frequency p_k"})},
        attrs={"engine": "skill-models", "model": config["model"]["name"],
               "loss": config["model"]["loss"], "alpha": config["task"]["alpha"],
               "lr": config["train"]["lr"], "n_params": config["model"]["n_params"],
               "modules": config["model"].get("modules", 1),
               "reference": "Liu et al., Physics of skill learning, arXiv 2501.12391"},
    )


def plot_skills(metrics):
    """Skill levels over steps, one line per skill coloured by frequency rank, and the loss."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    n = metrics.sizes["skill"]
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    for i in range(n):
        left.plot(metrics["step"], metrics["skill_level"].isel(skill=i),
                  color=cmap(i / max(n - 1, 1)), label=f"skill {i + 1}" if n <= 10 else None)
    left.set_xlabel("step")
    left.set_ylabel("skill level")
    left.set_title(f"{metrics.attrs.get('model', '')} model: skills by frequency rank")
    if n <= 10:
        left.legend(fontsize=7, ncols=2)
    right.plot(metrics["step"], metrics["train_loss"])
    right.set_yscale("log")
    right.set_xlabel("step")
    right.set_ylabel("training loss")
    return fig
