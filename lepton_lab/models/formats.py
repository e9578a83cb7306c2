"""The export formats: how each writes a model, reloads it in its own runtime, and runs it.

A format is a :class:`ModelFormat`; the built-in ones are below and other packages add theirs
on the ``lepton_lab.model_formats`` entry-point group (the way the job executors are plugged
in). Frameworks are imported only when a format is used, so the registry works on a laptop
that has only one of them.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import logging
import sys
import warnings
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lepton_lab.contract import RequestError

ENTRY_POINT_GROUP = "lepton_lab.model_formats"


class FormatError(RuntimeError):
    """A format could not be exported or reloaded; the message says why."""


def framework_of(model: Any) -> str:
    """``"keras"`` or ``"torch"`` for a model object, else a RequestError saying what is
    accepted. Only frameworks already imported are checked: an object of a framework that was
    never imported cannot be that framework's model."""
    if "keras" in sys.modules:
        import keras

        if isinstance(model, keras.Model):
            return "keras"
    if "torch" in sys.modules:
        import torch

        if isinstance(model, torch.nn.Module):
            return "torch"
    raise RequestError(
        f"cannot register a {type(model).__module__}.{type(model).__qualname__}: expected a "
        "Keras model, a torch.nn.Module, or a finished Run whose model is one"
    )


@contextlib.contextmanager
def quiet() -> Any:
    """Exporters print progress, log advice ("consider pre-processing before quantization",
    "torchvision is not installed") and warn about deprecations; a registry call shows none of
    it (what they printed is kept for the error message when they fail)."""
    out = io.StringIO()
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(out):
            warnings.simplefilter("ignore")
            yield out
    finally:
        logging.disable(previous)


def as_array(output: Any) -> np.ndarray:
    """A model's output as a numpy array: the first of a tuple/list/dict of outputs."""
    if isinstance(output, dict):
        output = next(iter(output.values()))
    if isinstance(output, list | tuple):
        output = output[0]
    if hasattr(output, "detach"):  # torch
        output = output.detach().cpu().numpy()
    elif hasattr(output, "numpy"):  # tensorflow
        output = output.numpy()
    return np.asarray(output)


def _missing(module: str, extra: str) -> FormatError:
    return FormatError(f"needs the {module!r} package: pip install 'lepton-lab[{extra}]'")


class ModelFormat:
    """One way to write a model down. Subclasses set the class attributes and methods."""

    name: ClassVar[str]
    #: model frameworks it exports from
    frameworks: ClassVar[tuple[str, ...]]
    #: the artifact's file (or folder) name inside the version's folder
    file: ClassVar[str]
    #: reloaded output must match within atol + rtol * max|original|
    atol: ClassVar[float] = 1e-4
    rtol: ClassVar[float] = 1e-4
    #: formats made from another one's artifact (onnx-int8 from onnx)
    needs: ClassVar[tuple[str, ...]] = ()

    def check(self, model: Any, framework: str) -> None:
        """Raise RequestError when this format cannot be made from this model at all."""
        if framework not in self.frameworks:
            raise RequestError(
                f"format {self.name!r} does not apply to a {framework} model "
                f"(it exports {', '.join(self.frameworks)} models)"
            )

    def export(self, model: Any, path: Path, example: np.ndarray, staged: dict[str, Path]) -> None:
        raise NotImplementedError

    def load(self, path: Path, **options: Any) -> Any:
        """The ready object a user gets from ``ll.models.load(..., format=name)``."""
        raise NotImplementedError

    def predict(self, loaded: Any, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError


# -- Keras -------------------------------------------------------------------------------------
def keras_predict(model: Any, x: np.ndarray) -> np.ndarray:
    import keras

    return np.asarray(keras.ops.convert_to_numpy(model(x, training=False)))


@contextlib.contextmanager
def without_tensorflow_probe() -> Any:
    """Keras' (de)serializer asks whether TensorFlow is importable, importing it to find out,
    only to recognise ``tf.TensorShape`` values. None can exist in a process that has not
    imported TensorFlow, and the probe cost a torch-backend kernel about 450 MB wherever
    TensorFlow is installed (the Binder quickstart went over 2 GB with it). So while a process
    without TensorFlow saves or loads, Keras' lazy module answers "not available"; afterwards
    it asks again. Keras keeps that lazy module in a private module: if it moves, nothing is
    skipped."""
    lazy = None
    if "tensorflow" not in sys.modules:
        with contextlib.suppress(ImportError, AttributeError):
            from keras.src.utils import module_utils

            if module_utils.tensorflow._available is None:
                lazy = module_utils.tensorflow
    if lazy is None:
        yield
        return
    lazy._available = False
    try:
        yield
    finally:
        lazy._available = None


class KerasFile(ModelFormat):
    name = "keras"
    frameworks = ("keras",)
    file = "model.keras"
    atol = rtol = 1e-6

    def export(self, model: Any, path: Path, example: np.ndarray, staged: dict[str, Path]) -> None:
        with without_tensorflow_probe():
            model.save(str(path))

    def load(self, path: Path, **options: Any) -> Any:
        import keras

        with without_tensorflow_probe():
            return keras.models.load_model(str(path), compile=options.get("compile", True))

    def predict(self, loaded: Any, x: np.ndarray) -> np.ndarray:
        return keras_predict(loaded, x)


class SavedModel(ModelFormat):
    """TensorFlow's SavedModel, written by Keras' ``model.export``: Keras 3.15 writes one from
    the TensorFlow and JAX backends, not from torch (docs/guide/models.md)."""

    name = "savedmodel"
    frameworks = ("keras",)
    file = "savedmodel"

    def check(self, model: Any, framework: str) -> None:
        super().check(model, framework)
        import keras

        backend = keras.backend.backend()
        if backend not in ("tensorflow", "jax"):
            raise RequestError(
                f"format 'savedmodel' needs Keras on the TensorFlow (or JAX) backend; this "
                f"model runs on {backend!r} (export 'keras' or 'onnx' instead)"
            )

    def export(self, model: Any, path: Path, example: np.ndarray, staged: dict[str, Path]) -> None:
        try:
            import tensorflow  # noqa: F401
        except ImportError:
            raise _missing("tensorflow", "tensorflow") from None
        model.export(str(path), format="tf_saved_model", verbose=False)

    def load(self, path: Path, **options: Any) -> Any:
        import tensorflow as tf

        return tf.saved_model.load(str(path))

    def predict(self, loaded: Any, x: np.ndarray) -> np.ndarray:
        return as_array(loaded.serve(x))


class OnnxRuntimeFormat(ModelFormat):
    """A format that onnxruntime loads and runs (on CPU unless ``providers=`` says)."""

    def load(self, path: Path, **options: Any) -> Any:
        return onnx_session(path, options.get("providers"))

    def predict(self, loaded: Any, x: np.ndarray) -> np.ndarray:
        return onnx_predict(loaded, x)


class KerasOnnx(OnnxRuntimeFormat):
    name = "onnx"
    frameworks = ("keras",)
    file = "model.onnx"

    def export(self, model: Any, path: Path, example: np.ndarray, staged: dict[str, Path]) -> None:
        for module in ("onnx", "onnxruntime"):
            _require(module, "onnx")
        import keras

        if keras.backend.backend() == "tensorflow":  # Keras converts TF graphs with tf2onnx
            _require("tf2onnx", "tensorflow")
        model.export(str(path), format="onnx", verbose=False)


# -- torch -------------------------------------------------------------------------------------
def _tensor(x: np.ndarray) -> Any:
    import torch

    return torch.from_numpy(np.ascontiguousarray(x))


def _eval_copy(module: Any) -> Any:
    """A CPU copy in eval mode: exports trace inference, and the user's module stays as it
    was (its device, its training flag)."""
    return copy.deepcopy(module).cpu().eval()


def torch_predict(module: Any, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return as_array(module(_tensor(x)))


def _batch_dims() -> Any:
    import torch

    return ({0: torch.export.Dim("batch")},)


class Safetensors(ModelFormat):
    """The weights only, in a format that cannot run code when loaded (a pickled state_dict
    can); loading gives a state dict, or fills the module passed as ``module=``."""

    name = "safetensors"
    frameworks = ("torch",)
    file = "model.safetensors"
    atol = rtol = 0.0

    def export(self, model: Any, path: Path, example: np.ndarray, staged: dict[str, Path]) -> None:
        _require("safetensors", "torch")
        from safetensors.torch import save_model

        save_model(model, str(path))  # handles tied weights, unlike save_file

    def load(self, path: Path, **options: Any) -> Any:
        from safetensors.torch import load_file, load_model

        module = options.get("module")
        if module is None:
            return load_file(str(path))
        load_model(module, str(path))
        return module

    def verify_with(self, model: Any, path: Path) -> Any:
        """The reloaded module to run: a copy of the original filled from the file."""
        return self.load(path, module=_eval_copy(model))

    def predict(self, loaded: Any, x: np.ndarray) -> np.ndarray:
        return torch_predict(loaded, x)


class TorchExport(ModelFormat):
    """``torch.export``'s ExportedProgram (``.pt2``) with a dynamic batch dimension."""

    name = "torch.export"
    frameworks = ("torch",)
    file = "model.pt2"
    atol = rtol = 1e-5

    def export(self, model: Any, path: Path, example: np.ndarray, staged: dict[str, Path]) -> None:
        import torch

        module = _eval_copy(model)
        try:
            program = torch.export.export(module, (_tensor(example),), dynamic_shapes=_batch_dims())
        except Exception:  # noqa: BLE001 - a model whose code fixes the batch size
            program = torch.export.export(module, (_tensor(example),))
        torch.export.save(program, str(path))

    def load(self, path: Path, **options: Any) -> Any:
        import torch

        return torch.export.load(str(path))

    def predict(self, loaded: Any, x: np.ndarray) -> np.ndarray:
        return torch_predict(loaded.module(), x)


class TorchScript(ModelFormat):
    """A traced TorchScript module. torch 2.13 deprecates ``torch.jit`` in favour of
    ``torch.export``; it stays for runtimes (LibTorch, older servers) that read only it."""

    name = "torchscript"
    frameworks = ("torch",)
    file = "model.torchscript.pt"
    atol = rtol = 1e-5

    def export(self, model: Any, path: Path, example: np.ndarray, staged: dict[str, Path]) -> None:
        import torch

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            traced = torch.jit.trace(_eval_copy(model), _tensor(example))
        # a trace records one path through the code: the tracer's warning (data-dependent
        # control flow, Python values) means other inputs may take another, which checking
        # on the example cannot show
        tracer = [w for w in caught if issubclass(w.category, torch.jit.TracerWarning)]
        if tracer:
            raise FormatError(
                "torch.jit.trace warned that the traced module may not match the model on "
                f"other inputs: {str(tracer[0].message).splitlines()[0]}"
            )
        traced.save(str(path))

    def load(self, path: Path, **options: Any) -> Any:
        import torch

        with quiet():
            return torch.jit.load(str(path), map_location="cpu")

    def predict(self, loaded: Any, x: np.ndarray) -> np.ndarray:
        return torch_predict(loaded, x)


class TorchOnnx(OnnxRuntimeFormat):
    name = "onnx"
    frameworks = ("torch",)
    file = "model.onnx"

    def export(self, model: Any, path: Path, example: np.ndarray, staged: dict[str, Path]) -> None:
        import torch

        for module in ("onnx", "onnxscript", "onnxruntime"):
            _require(module, "onnx")
        torch.onnx.export(
            _eval_copy(model),
            (_tensor(example),),
            str(path),
            input_names=["input"],
            output_names=["output"],
            dynamic_shapes=_batch_dims(),
            external_data=False,  # one file: a digest and a download cover the whole model
            dynamo=True,
            verbose=False,
        )


# -- any ONNX model ----------------------------------------------------------------------------
def onnx_session(path: Path, providers: list[str] | None = None) -> Any:
    try:
        import onnxruntime as ort
    except ImportError:
        raise _missing("onnxruntime", "onnx") from None
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(str(path), options, providers=providers or ["CPUExecutionProvider"])


def onnx_predict(session: Any, x: np.ndarray) -> np.ndarray:
    name = session.get_inputs()[0].name
    return np.asarray(session.run(None, {name: np.ascontiguousarray(x)})[0])


class OnnxInt8(OnnxRuntimeFormat):
    """The ONNX artifact with int8 weights (onnxruntime's dynamic quantization): smaller and
    faster on CPU, less exact, so its tolerance is wide and its accuracy change is recorded
    when evaluation data is given."""

    name = "onnx-int8"
    frameworks = ("keras", "torch")
    file = "model.int8.onnx"
    atol, rtol = 0.05, 0.1
    needs = ("onnx",)

    def export(self, model: Any, path: Path, example: np.ndarray, staged: dict[str, Path]) -> None:
        _require("onnxruntime", "onnx")
        from onnxruntime.quantization import QuantType, quantize_dynamic

        with quiet():
            quantize_dynamic(str(staged["onnx"]), str(path), weight_type=QuantType.QInt8)


def _require(module: str, extra: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise _missing(module, extra)


# -- the table of formats ----------------------------------------------------------------------
_BUILTIN: tuple[ModelFormat, ...] = (
    KerasFile(),
    SavedModel(),
    KerasOnnx(),
    Safetensors(),
    TorchExport(),
    TorchScript(),
    TorchOnnx(),
    OnnxInt8(),
)

#: what ``formats=None`` exports, per framework (SavedModel is added on the TF backend)
DEFAULTS = {
    "keras": ("keras", "onnx"),
    "torch": ("safetensors", "torch.export", "onnx"),
}
#: what ``load(format=None)`` picks, first present wins
LOAD_ORDER = {
    "keras": ("keras", "savedmodel", "onnx"),
    "torch": ("torch.export", "torchscript", "onnx", "safetensors"),
}


@functools.lru_cache(maxsize=1)
def _plugins() -> tuple[ModelFormat, ...]:
    found = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        fmt = ep.load()
        found.append(fmt() if isinstance(fmt, type) else fmt)
    return tuple(found)


def formats_for(framework: str) -> dict[str, ModelFormat]:
    """Every format that exports ``framework`` models, by name."""
    return {f.name: f for f in (*_BUILTIN, *_plugins()) if framework in f.frameworks}


def known_formats() -> list[str]:
    return sorted({f.name for f in (*_BUILTIN, *_plugins())})


def format_for(name: str, framework: str) -> ModelFormat:
    """The format called ``name`` for ``framework`` models, or a RequestError naming what is
    known and what fits."""
    fits = formats_for(framework)
    if name in fits:
        return fits[name]
    known = known_formats()
    if name not in known:
        raise RequestError(f"unknown format {name!r}; known formats: {', '.join(known)}")
    raise RequestError(
        f"format {name!r} does not apply to a {framework} model; "
        f"{framework} models export to {', '.join(sorted(fits))}"
    )


def default_formats(model: Any, framework: str) -> list[str]:
    chosen = list(DEFAULTS.get(framework, ()))
    if framework == "keras":
        import keras

        if keras.backend.backend() == "tensorflow":
            chosen.append("savedmodel")
    return chosen
