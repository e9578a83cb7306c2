"""``FitLauncher``: a form for ``ll.fit``'s run options that turns into the run's monitor.

Fields are text boxes checked on every keystroke, so a bad value says why at once and keeps
Launch disabled; the checks are the ones ``ll.fit`` itself makes (it still has the last word).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from lepton_lab.cluster.scheduler import scheduler_identity
from lepton_lab.training.fit import PRECISIONS


def _integer(text: str, low: int, high: int | None = None, blank: bool = False) -> int | None:
    """Parse a form field: an integer in [low, high] (or blank, when allowed)."""
    text = text.strip()
    if not text:
        if blank:
            return None
        raise ValueError("is required")
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"must be a whole number, not {text!r}") from None
    if value < low:
        raise ValueError(f"must be at least {low}")
    if high is not None and value > high:
        raise ValueError(f"must be at most {high} (the cluster has {high} worker(s))")
    return value


class FitLauncher(w.VBox):
    """Run options for ``ll.fit(fn, data=..., ...)``; Launch starts the run and shows it.

    ``fn`` is a Keras ``model_fn`` (with ``data``) or a per-worker loop (with
    ``framework="torch"``); for a loop, epochs and batch size go into its ``config``.
    Other keyword arguments are passed to ``ll.fit`` unchanged.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        data: Any = None,
        *,
        workers: int | None = None,
        epochs: int = 1,
        batch_size: int = 32,
        precision: str | None = None,
        max_failures: int = 0,
        checkpoint_every: int | None = None,
        name: str | None = None,
        **fit_kwargs: Any,
    ) -> None:
        from lepton_lab.cluster.attach import attach

        self.fn = fn
        self.data = data
        self.fit_kwargs = fit_kwargs
        self.run: Any = None
        self.monitor: Any = None
        client = fit_kwargs.get("client") or attach()
        self.available = len(scheduler_identity(client)["workers"])
        style = {"description_width": "140px"}

        def field(label: str, value: Any) -> w.Text:
            box = w.Text(
                value="" if value is None else str(value),
                description=label,
                continuous_update=True,
                style=style,
            )
            box.observe(self._validate, names="value")
            return box

        self.fields = {
            "workers": field("workers", workers or self.available),
            "epochs": field("epochs", epochs),
            "batch_size": field("batch size", batch_size),
            "max_failures": field("max failures", max_failures),
            "checkpoint_every": field("checkpoint every", checkpoint_every),
            "name": field("name", name or getattr(fn, "__qualname__", "")),
        }
        self.fields["checkpoint_every"].placeholder = "epochs between checkpoints (blank: none)"
        self.precision = w.Dropdown(
            options=[("default", None)] + [(p, p) for p in PRECISIONS if p],
            value=precision,
            description="precision",
            style=style,
        )
        self.errors = w.HTML()
        self.launch_button = w.Button(description="Launch", icon="play", button_style="primary")
        self.launch_button.add_class("lepton-launch")
        self.launch_button.on_click(self._on_launch)
        self.form = w.VBox([*self.fields.values(), self.precision, self.errors, self.launch_button])
        super().__init__([self.form])
        self.add_class("lepton-fit-launcher")
        self._validate()

    def values(self) -> dict[str, Any]:
        """The form's options for ``ll.fit``; raises ``ValueError`` naming the bad field."""
        text = {k: f.value for k, f in self.fields.items()}
        checks: dict[str, Callable[[str], Any]] = {
            "workers": lambda s: _integer(s, 1, self.available),
            "epochs": lambda s: _integer(s, 1),
            "batch_size": lambda s: _integer(s, 1),
            "max_failures": lambda s: _integer(s, 0),
            "checkpoint_every": lambda s: _integer(s, 1, blank=True),
            "name": lambda s: s.strip() or None,
        }
        out: dict[str, Any] = {}
        problems = []
        for key, check in checks.items():
            try:
                out[key] = check(text[key])
            except ValueError as exc:
                problems.append(f"{self.fields[key].description} {exc}")
        if problems:
            raise ValueError("; ".join(problems))
        out["precision"] = self.precision.value
        return out

    def _validate(self, _change: Any = None) -> bool:
        try:
            self.values()
        except ValueError as exc:
            self.errors.value = (
                f"<span class='lepton-form-error' style='color:#d62728'>"
                f"{html.escape(str(exc))}</span>"
            )
            self.launch_button.disabled = True
            return False
        self.errors.value = ""
        self.launch_button.disabled = self.run is not None
        return True

    def _on_launch(self, _button: Any = None) -> None:
        if not self._validate() or self.run is not None:
            return
        self.launch_button.disabled = True
        try:
            self.launch()
        except Exception as exc:  # noqa: BLE001 - ll.fit's refusal is shown in the form
            self.errors.value = (
                f"<span class='lepton-form-error' style='color:#d62728'>"
                f"{html.escape(f'{type(exc).__name__}: {exc}')}</span>"
            )
            self.launch_button.disabled = False

    def launch(self) -> Any:
        """Start ``ll.fit`` with the form's values and replace the form with the monitor."""
        from lepton_lab.training.fit import fit
        from lepton_lab.widgets.monitor import RunMonitor

        v = self.values()
        kwargs = dict(self.fit_kwargs)
        options = dict(
            workers=v["workers"],
            precision=v["precision"],
            max_failures=v["max_failures"],
            checkpoint_every=v["checkpoint_every"],
            name=v["name"],
        )
        if self.data is not None and kwargs.get("framework") in (None, "keras"):
            options.update(epochs=v["epochs"], batch_size=v["batch_size"])
        else:
            config = dict(kwargs.pop("config", None) or {})
            config.update(epochs=v["epochs"], batch_size=v["batch_size"])
            if v["checkpoint_every"] is not None:
                config["checkpoint_every"] = v["checkpoint_every"]
            kwargs["config"] = config
            options.pop("checkpoint_every")
        self.run = fit(self.fn, self.data, **kwargs, **options)
        self.monitor = RunMonitor(self.run)
        self.children = [self.monitor]
        return self.run
