"""Export a model to each asked format and check every artifact before it counts: reload it in
its own runtime, run the check input, compare with the original's output.

A format that fails (its exporter raises, its reload raises, or its output is off by more than
its tolerance) is left out with the reason; the others go on.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lepton_lab.models.artifacts import digest
from lepton_lab.models.formats import (
    FormatError,
    ModelFormat,
    as_array,
    format_for,
    keras_predict,
    quiet,
    torch_predict,
)


@dataclass
class Exported:
    """What one run of :func:`export_all` produced: artifacts (rows to be) and failures."""

    artifacts: list[dict[str, Any]] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    #: format -> staged local path
    paths: dict[str, Path] = field(default_factory=dict)


def original_predict(model: Any, framework: str, x: np.ndarray) -> np.ndarray:
    if framework == "keras":
        return keras_predict(model, x)
    return torch_predict(model, x)


def _run_original(model: Any, framework: str, x: np.ndarray, what: str) -> Any:
    """The model's own output on ``x``; a model that cannot run on it is the caller's input
    error, said as such."""
    from lepton_lab.contract import RequestError

    try:
        return original_predict(model, framework, x)
    except Exception as exc:  # noqa: BLE001 - whatever the framework raises
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise RequestError(
            f"the model cannot run on {what} (shape {tuple(x.shape)}, {x.dtype}): "
            f"{type(exc).__name__}: {first}"
        ) from exc


def accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    """Share of rows whose highest output is the label (a class index, or one-hot)."""
    labels = np.asarray(labels)
    if labels.ndim > 1 and labels.shape[-1] > 1:
        labels = labels.argmax(axis=-1)
    predicted = outputs.argmax(axis=-1) if outputs.ndim > 1 else (outputs > 0.5).astype(int)
    return float((predicted.reshape(-1) == labels.reshape(-1)).mean())


def _reason(exc: BaseException, printed: str = "") -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    if len(text) < 20:
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    lines = text.splitlines()
    if len(lines) > 6:
        text = "\n".join(lines[:6]) + " ..."
    return text


def _check_one(
    fmt: ModelFormat,
    model: Any,
    path: Path,
    example: np.ndarray,
    reference: np.ndarray,
    tolerance: float | None,
) -> tuple[Any, float, float]:
    """Reload ``path`` and compare; returns (loaded, max_abs_diff, bound) or raises."""
    with quiet():
        loaded = fmt.verify_with(model, path) if hasattr(fmt, "verify_with") else fmt.load(path)
        got = as_array(fmt.predict(loaded, example))
    if got.shape != reference.shape:
        raise FormatError(f"the reloaded model answers shape {got.shape}, not {reference.shape}")
    diff = float(np.max(np.abs(got.astype(np.float64) - reference.astype(np.float64))))
    scale = float(np.max(np.abs(reference))) if reference.size else 0.0
    bound = tolerance if tolerance is not None else fmt.atol + fmt.rtol * scale
    if not np.isfinite(diff) or diff > bound:
        raise FormatError(
            f"the reloaded model's output differs by {diff:.3g}, over the tolerance {bound:.3g}"
        )
    return loaded, diff, bound


def export_all(
    model: Any,
    framework: str,
    formats: list[str],
    example: np.ndarray,
    staging: Path,
    eval_data: tuple[np.ndarray, np.ndarray] | None = None,
    tolerance: dict[str, float] | None = None,
) -> Exported:
    """Export ``model`` to ``formats`` under ``staging``, each verified; see the module doc."""
    out = Exported()
    reference = as_array(_run_original(model, framework, example, "example_input"))
    reference_accuracy = None
    if eval_data is not None:
        outputs = as_array(_run_original(model, framework, eval_data[0], "eval_data's inputs"))
        reference_accuracy = accuracy(outputs, eval_data[1])
    wanted = list(dict.fromkeys(formats))
    # formats made from another's artifact come after it; the other is exported for them
    # even when it was not asked for (and then not kept)
    order: list[str] = []
    for name in wanted:
        for need in format_for(name, framework).needs:
            if need not in order:
                order.append(need)
        if name not in order:
            order.append(name)
    for name in order:
        fmt = format_for(name, framework)
        missing = [n for n in fmt.needs if n not in out.paths]
        if missing:
            out.failures[name] = f"needs the {missing[0]!r} artifact, which failed"
            continue
        path = staging / fmt.file
        started = time.perf_counter()
        printed = ""
        try:
            with quiet() as captured:
                fmt.export(model, path, example, out.paths)
            printed = captured.getvalue()
            exported_s = time.perf_counter() - started
            loaded, diff, bound = _check_one(
                fmt, model, path, example, reference, (tolerance or {}).get(name)
            )
        except Exception as exc:  # noqa: BLE001 - one format's failure is reported, not raised
            out.failures[name] = _reason(exc, printed)
            _discard(path)
            continue
        details: dict[str, Any] = {
            "export_seconds": round(exported_s, 4),
            "verify_seconds": round(time.perf_counter() - started - exported_s, 4),
            "check_rows": int(example.shape[0]),
        }
        if name == "onnx-int8":
            if eval_data is None:
                details["accuracy_change"] = None
                details["note"] = "no evaluation data given, so the accuracy change is unknown"
            else:
                quantized = accuracy(as_array(fmt.predict(loaded, eval_data[0])), eval_data[1])
                details.update(
                    accuracy=quantized,
                    reference_accuracy=reference_accuracy,
                    accuracy_change=quantized - (reference_accuracy or 0.0),
                    eval_rows=int(len(eval_data[1])),
                )
        out.paths[name] = path
        if name in wanted:
            sha, size = digest(path)
            out.artifacts.append(
                {
                    "format": name,
                    "file": fmt.file,
                    "sha256": sha,
                    "size": size,
                    "max_abs_diff": diff,
                    "tolerance": bound,
                    "details": details,
                }
            )
    for name in list(out.paths):
        if name not in wanted:  # exported only to make another format
            _discard(out.paths.pop(name))
    return out


def _discard(path: Path) -> None:
    import shutil

    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()
