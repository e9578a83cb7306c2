"""Pickle a training function together with its source, for TensorFlow's AutoGraph.

``tf.function`` converts Python control flow by reading the function's source
(``inspect.getsource``). A loop defined in a notebook cell or a script's ``__main__`` travels
by value, and cloudpickle 3.1 writes such code objects with ``co_filename = "<dynamic-code>"``
(for deterministic payloads), so in the rank's process AutoGraph finds no source and runs the
function unconverted (a Python ``for`` over a tensor then fails or unrolls). Here the code
objects keep their file name, and the lines of those files (IPython keeps each cell's lines in
``linecache``) travel with the payload into the rank's ``linecache``.

cloudpickle has no option for this; the one change is made in ``reducer_override``, which
cloudpickle documents as the extension point of its ``Pickler``.
"""

from __future__ import annotations

import io
import linecache
import types
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

PLACEHOLDER = "<dynamic-code>"


class _SourcePickler(cloudpickle.Pickler):
    def __init__(self, file: Any) -> None:
        super().__init__(file)
        self.files: set[str] = set()

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, types.CodeType):
            reduced = cloudpickle.cloudpickle._code_reduce(obj)
            constructor, args = reduced[0], reduced[1]
            if PLACEHOLDER in args and obj.co_filename != PLACEHOLDER:
                self.files.add(obj.co_filename)
                args = tuple(obj.co_filename if a == PLACEHOLDER else a for a in args)
            return (constructor, args)
        return super().reducer_override(obj)


@dataclass
class Packed:
    """Pickled objects plus the source lines of the files their code came from."""

    blob: bytes
    sources: dict[str, list[str]] = field(default_factory=dict)

    def load(self) -> Any:
        for name, lines in self.sources.items():
            # mtime None: linecache.checkcache never drops it (no file to compare with)
            linecache.cache[name] = (sum(map(len, lines)), None, lines, name)
        return cloudpickle.loads(self.blob)


def pack(obj: Any) -> Packed:
    buffer = io.BytesIO()
    pickler = _SourcePickler(buffer)
    pickler.dump(obj)
    sources = {}
    for name in pickler.files:
        lines = linecache.getlines(name)
        if lines:
            sources[name] = list(lines)
    return Packed(buffer.getvalue(), sources)
