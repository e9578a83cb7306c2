"""A small trained model to register, and a run as the registry recognises one, for the tests
of the model registry's surfaces (CLI, REST)."""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Any


@functools.cache
def digits_mlp() -> SimpleNamespace:
    """A torch MLP trained briefly on sklearn's digits (``net``, inputs ``x``, labels ``y``);
    trained once per process."""
    import torch
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    optimizer = torch.optim.Adam(net.parameters(), 1e-2)
    for _ in range(30):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        optimizer.step()
    return SimpleNamespace(net=net.eval(), x=x, y=y)


class FakeRun:
    """A completed run as ``ModelRegistry.register`` recognises one (by its shape), backed by
    a run row of ``store``: its lineage (id, params, last metrics) is read from there."""

    status = "completed"

    def __init__(self, store: Any, run_id: str, model: Any, sample: Any) -> None:
        self.id, self._store, self.model, self.sample_input = run_id, store, model, sample

    def record(self) -> dict:
        return self._store.get_run(self.id)

    def wait(self, timeout: float | None = None) -> str:
        return self.status
