"""The MLServer inference runtime that serves one registered version.

MLServer (docs/guide/serving.md says why it was chosen) speaks the Open Inference Protocol; this
runtime gives it the model: it loads the artifact with the same format loaders as
``ll.models.load``, declares the inputs and outputs (datatypes and shapes) the protocol's
metadata shows, checks every request against them, and batches concurrent requests.

Batching uses MLServer's own :class:`~mlserver.batching.AdaptiveBatcher`, but inside the
runtime, after each request is checked, rather than through ``ModelSettings.max_batch_size``
(which batches before ``predict`` sees a request): there a request with a wrong shape would be
merged with good ones and fail them all.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from mlserver import MLModel
from mlserver.batching import AdaptiveBatcher
from mlserver.codecs import NumpyCodec
from mlserver.errors import MLServerError
from mlserver.types import InferenceRequest, InferenceResponse, MetadataTensor
from prometheus_client import Histogram

from lepton_lab.models.formats import format_for

#: Open Inference Protocol datatypes of numpy dtypes (and of ONNX tensor element types).
DATATYPES = {
    "bool": "BOOL",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "float16": "FP16",
    "float32": "FP32",
    "float64": "FP64",
}
ONNX_TYPES = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
}
NUMPY_OF = {v: k for k, v in DATATYPES.items()}

_batch_sizes: Histogram | None = None


def batch_size_metric() -> Histogram:
    """``lepton_batch_size``: rows per model call, labelled by model (made lazily, after
    MLServer has chosen its metrics registry)."""
    global _batch_sizes
    if _batch_sizes is None:
        _batch_sizes = Histogram(
            "lepton_batch_size",
            "Rows in each call of the model (more than 1: requests were batched)",
            ["model"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
        )
    return _batch_sizes


def _dims(shape: Any) -> list[int]:
    """A shape with every unknown (symbolic) dimension as -1."""
    return [d if isinstance(d, int) and d >= 0 else -1 for d in shape]


def signature(format: str, loaded: Any) -> tuple[list[MetadataTensor], list[MetadataTensor]]:
    """The inputs and outputs of a loaded artifact, as the protocol's metadata shows them."""
    if format.startswith("onnx"):
        inputs = [
            MetadataTensor(
                name=i.name, datatype=ONNX_TYPES.get(i.type, "BYTES"), shape=_dims(i.shape)
            )
            for i in loaded.get_inputs()
        ]
        outputs = [
            MetadataTensor(
                name=o.name, datatype=ONNX_TYPES.get(o.type, "BYTES"), shape=_dims(o.shape)
            )
            for o in loaded.get_outputs()
        ]
        return inputs[:1], outputs[:1]
    if format == "keras":
        i, o = loaded.inputs[0], loaded.outputs[0]
        return (
            [
                MetadataTensor(
                    name="input", datatype=DATATYPES.get(str(i.dtype), "FP32"), shape=_dims(i.shape)
                )
            ],
            [
                MetadataTensor(
                    name="output",
                    datatype=DATATYPES.get(str(o.dtype), "FP32"),
                    shape=_dims(o.shape),
                )
            ],
        )
    if format == "torch.export":
        graph = loaded.graph_module.graph if hasattr(loaded, "graph_module") else loaded.graph
        user = {
            spec.arg.name
            for spec in loaded.graph_signature.input_specs
            if spec.kind.name == "USER_INPUT"
        }
        first_in = next(n for n in graph.nodes if n.op == "placeholder" and n.name in user)
        result = next(n for n in graph.nodes if n.op == "output").args[0]
        first_out = result[0] if isinstance(result, (list, tuple)) else result
        return (
            [_torch_tensor("input", first_in.meta.get("val"))],
            [_torch_tensor("output", getattr(first_out, "meta", {}).get("val"))],
        )
    # torchscript and others: the shape is learned from the first request's rows only
    return (
        [MetadataTensor(name="input", datatype="FP32", shape=[-1, -1])],
        [MetadataTensor(name="output", datatype="FP32", shape=[-1, -1])],
    )


def _torch_tensor(name: str, val: Any) -> MetadataTensor:
    if val is None:
        return MetadataTensor(name=name, datatype="FP32", shape=[-1, -1])
    dtype = str(val.dtype).replace("torch.", "")
    return MetadataTensor(
        name=name, datatype=DATATYPES.get(dtype, "FP32"), shape=_dims(list(val.shape))
    )


class LeptonRuntime(MLModel):
    """One registered version: ``parameters.uri`` is the local artifact, ``parameters.extra``
    names its ``format`` and ``framework`` and the batching limits."""

    async def load(self) -> bool:
        extra = self.settings.parameters.extra or {}
        self._format = extra["format"]
        self._fmt = format_for(self._format, extra["framework"])
        path = Path(self.settings.parameters.uri)
        self._loaded = await asyncio.to_thread(self._fmt.load, path)
        self.inputs, self.outputs = signature(self._format, self._loaded)
        self._input = self.inputs[0]
        self._output = self.outputs[0]
        # one call now: a model that cannot run fails its load, not its first request
        example = np.zeros(
            [1] + [d if d > 0 else 1 for d in self._input.shape[1:]],
            dtype=NUMPY_OF.get(self._input.datatype, "float32"),
        )
        await asyncio.to_thread(self._fmt.predict, self._loaded, example)
        self._metric = batch_size_metric().labels(model=self.name)
        size, delay_ms = (
            int(extra.get("max_batch_size", 1)),
            float(extra.get("max_batch_delay_ms", 0)),
        )
        self._batcher: AdaptiveBatcher | None = None
        if size > 1 and delay_ms > 0:
            # AdaptiveBatcher reads a model's batching settings and its predict; give it the
            # checked-request path of this runtime (see the module's docstring)
            self._batcher = AdaptiveBatcher(
                SimpleNamespace(  # type: ignore[arg-type]
                    settings=SimpleNamespace(max_batch_size=size, max_batch_time=delay_ms / 1000),
                    predict=self._predict_batch,
                )
            )
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        self._check(payload)
        if self._batcher is not None:
            return await self._batcher.predict(payload)
        return await self._predict_batch(payload)

    def _check(self, payload: InferenceRequest) -> None:
        """A 400 in the protocol's error shape for a request the model cannot take."""
        expected = self._input
        if len(payload.inputs) != 1:
            raise MLServerError(
                f"expected 1 input tensor ({expected.name!r}), got {len(payload.inputs)}"
            )
        tensor = payload.inputs[0]
        if tensor.name != expected.name:
            raise MLServerError(
                f"unknown input {tensor.name!r}; this model takes {expected.name!r}"
            )
        if tensor.datatype != expected.datatype:
            raise MLServerError(
                f"input {tensor.name!r} has datatype {tensor.datatype}; "
                f"expected {expected.datatype}"
            )
        shape = list(tensor.shape)
        want = list(expected.shape)
        if len(shape) != len(want) or any(
            w >= 0 and s != w for s, w in zip(shape[1:], want[1:], strict=True)
        ):
            raise MLServerError(
                f"input {tensor.name!r} has shape {shape}; expected {want} (-1: any size)"
            )
        if any(s < 1 for s in shape):
            raise MLServerError(f"input {tensor.name!r} has an empty dimension: {shape}")
        data = tensor.data.root if hasattr(tensor.data, "root") else tensor.data
        count = len(data) if isinstance(data, list) else None
        if count is not None and _flat_len(data) != math.prod(shape):
            raise MLServerError(
                f"input {tensor.name!r} holds {_flat_len(data)} values; shape {shape} needs "
                f"{math.prod(shape)}"
            )

    async def _predict_batch(self, payload: InferenceRequest) -> InferenceResponse:
        try:
            x = NumpyCodec.decode_input(payload.inputs[0])
        except (ValueError, TypeError) as exc:
            raise MLServerError(f"input {payload.inputs[0].name!r}: {exc}") from None
        x = x.astype(NUMPY_OF.get(self._input.datatype, "float32"), copy=False)
        y = await asyncio.to_thread(self._fmt.predict, self._loaded, x)
        self._metric.observe(len(x))
        output = NumpyCodec.encode_output(name=self._output.name, payload=np.asarray(y))
        return InferenceResponse(
            id=payload.id, model_name=self.name, model_version=self.version, outputs=[output]
        )


def _flat_len(data: list) -> int:
    """The number of values in a (possibly nested) JSON list."""
    if data and isinstance(data[0], list):
        return sum(_flat_len(d) for d in data)
    return len(data)
