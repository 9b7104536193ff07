"""Registrations of overtone-skills. Imports only overtone: listing stays fast and torch-free."""

from overtone import Component, Param, hookimpl


@hookimpl
def overtone_engines():
    return [
        Component(
            "engine", "skill-models", "overtone_skills.engine:SkillModelsEngine",
            "toy models of skill learning: Geometry, Resource, Domino (arXiv 2501.12391)",
        )
    ]


@hookimpl
def overtone_tasks():
    return [
        Component(
            "task", "multitask-sparse-parity", "overtone_skills.sparse_parity:MultitaskSparseParity",
            "parity skills behind one-hot task bits, task k drawn with p_k ~ k^-alpha "
            "(needs torch); per-skill eval losses",
            params={
                "n_tasks": Param(10, type=int, min=1, help="number of parity tasks (skills)"),
                "n_bits": Param(32, type=int, min=1, help="data bits per example"),
                "k_bits": Param(3, type=int, min=1, help="data bits each task's parity reads (at most n_bits)"),
                "alpha": Param(2.0, help="task frequencies p_k ~ k^-alpha"),
                "eval_per_task": Param(256, type=int, min=1, help="evaluation examples of each task"),
            },
        )
    ]


@hookimpl
def overtone_models():
    return [
        Component(
            "model", "modular-mlp", "overtone_skills.modular_mlp:ModularMLP",
            "one MLP per task, gated by the task bits (the modular network of arXiv 2501.12391; "
            "needs torch)",
            params={
                "modules": Param(2, type=int, min=1, help="modules; the first `modules` inputs "
                                 "gate them (multitask-sparse-parity: set to n_tasks)"),
                "width": Param(64, type=int, min=1, help="hidden units per module "
                               "(features: modules x width)"),
                "depth": Param(2, type=int, min=1, help="hidden layers per module"),
                "activation": Param("relu", choices=("relu", "gelu", "silu", "tanh"),
                                    help="hidden-layer nonlinearity"),
                "init_scale": Param(1.0, help="weights ~ N(0, init_scale^2 / fan_in)"),
            },
        )
    ]


@hookimpl
def overtone_losses():
    return [
        Component(
            "loss", "loss-weighted-cross-entropy",
            "overtone_skills.reweighted_loss:LossWeightedCrossEntropy",
            "cross-entropy with each example weighted by l^gamma / mean l^gamma (stop-gradient): "
            "the loss re-weighting of arXiv 2501.12391's reference code; plain in eval mode",
            params={
                "gamma": Param(1.0, min=0.0, help="weight exponent (0: plain cross-entropy)"),
                "bias": Param(True, help="a bias in the linear head"),
            },
        )
    ]


@hookimpl
def overtone_analyzers():
    return [
        Component(
            "analyzer", "skill-onsets", "overtone_skills.onsets:SkillOnsets",
            "per skill, the steps its loss starts and finishes falling; overlap of consecutive "
            "skills (the Domino signature)",
            params={
                "variable": Param("skill_loss", help="(step, skill) losses to analyze"),
                "start": Param(0.1, min=0.0, max=1.0,
                               help="onset: first step with this fraction of the loss drop (below end)"),
                "end": Param(0.9, min=0.0, max=1.0,
                             help="finish: first step with this fraction of the loss drop"),
                "min_drop": Param(1e-6, help="a skill whose loss falls less is 'not learned'"),
                "window": Param(None, type=int, min=1, help="steps after a finish over which the next "
                                "skill's rate is measured (default: 2% of the steps)"),
            },
        )
    ]
