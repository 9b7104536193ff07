"""KAN and MLP fit fourier-regression in a plain torch loop (the engine has no regression loss yet)."""

import torch
from torch import nn


def fit(model, task, steps, lr, head=None, on_step=None):
    """Full-batch Adam on the mean squared error; returns the evaluation MSE before and after."""
    params = list(model.parameters()) + (list(head.parameters()) if head else [])
    optimizer = torch.optim.Adam(params, lr=lr)
    predict = (lambda x: head(model(x)).squeeze(-1)) if head else (lambda x: model(x).squeeze(-1))
    x, y = task.x["train"], task.y["train"]

    def eval_mse():
        with torch.no_grad():
            return ((predict(task.x["eval"]) - task.y["eval"]) ** 2).mean().item()

    start = eval_mse()
    for step in range(1, steps + 1):
        loss = ((predict(x) - y) ** 2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        for p in (model.on_step(step) if on_step else []):
            optimizer.state.pop(p, None)
    return start, eval_mse()


def test_kan_with_grid_extension_fits_two_sinusoids(registry):
    torch.manual_seed(0)
    task = registry.get("task", "fourier-regression").create(seed=0, frequencies=[1, 3], n_train=400,
                                                             eval_points=256)
    model = registry.get("model", "kan").create(input_spec=task.input_spec, d_out=1, width=8,
                                                grid_schedule=[[100, 10], [200, 20]])
    start, end = fit(model, task, steps=300, lr=1e-2, on_step=True)
    assert model.grid_size == 20
    assert end < 0.02 * start, (start, end)  # target variance is 1


def test_mlp_and_a_linear_head_fit_one_sinusoid(registry):
    torch.manual_seed(0)
    task = registry.get("task", "fourier-regression").create(seed=0, frequencies=[1], n_train=200,
                                                             eval_points=128)
    model = registry.get("model", "mlp").create(input_spec=task.input_spec, d_out=32, width=32, depth=2,
                                                activation="tanh")
    start, end = fit(model, task, steps=400, lr=1e-2, head=nn.Linear(32, 1))
    assert end < 0.05 * start, (start, end)
