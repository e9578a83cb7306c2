"""``data=(x, y)`` to the ranks: split once, in shared memory, each rank maps its own shard.

Sent with each rank's task, the whole arrays were pickled once per rank, held by the scheduler
for the run's life, and copied into every worker: about 230 MB/s on one host. Instead the
driver writes each rank's shard once into files under ``/dev/shm`` (a ``.npy`` per array, in
a private folder), and a rank on the same host maps its file copy-on-write: no pickling, no
copy through the scheduler, nothing in the scheduler's memory. A rank on another host (which
cannot see this host's ``/dev/shm``) gets its shard sent straight from the driver to its
worker with ``scatter(direct=True)``: one transfer of its own share, still not through the
scheduler. Either way a rank sees the rows ``rank, rank + world, ...`` that ``equal_shard``
gave it before, so results do not depend on which path the data took.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lepton_lab.config.files import private_dir, private_file

#: tmpfs: pages written here are the pages the ranks map, with no disk behind them
SHARED_ROOT = Path("/dev/shm")
PREFIX = "lepton-lab-data-"


@dataclass(frozen=True)
class ShardRef:
    """What travels to a rank on the driver's host: where its shard's files are."""

    folder: str
    rank: int
    #: "x" for one input array, or the names of a dict of inputs (Keras' named inputs)
    x_names: tuple[str, ...] | None

    def visible(self) -> bool:
        """Whether this process sees the driver's files (it runs on the same host)."""
        return (Path(self.folder) / f"rank{self.rank}-y.npy").exists()

    def load(self) -> tuple[Any, Any]:
        """The shard as numpy arrays mapped copy-on-write: in-place changes stay private."""
        import numpy as np

        def part(name: str) -> Any:
            return np.load(Path(self.folder) / f"rank{self.rank}-{name}.npy", mmap_mode="c")

        x = part("x") if self.x_names is None else {k: part(f"x.{k}") for k in self.x_names}
        return x, part("y")


def rank_data(spec: dict[str, Any], rank: int, world: int) -> Any:
    """What ``ctx.data`` is for this rank: its mapped shard, the shard sent to its worker,
    or (for arrays that could not be staged) its rows of the whole arrays sent with the task."""
    if spec.get("data_ref") is not None:
        return spec["data_ref"].load()
    if spec.get("data_shard") is not None:
        return spec["data_shard"]
    if spec.get("data") is not None:
        return take_rows(*spec["data"], rank, world)
    return None


def take_rows(x: Any, y: Any, rank: int, world: int) -> tuple[Any, Any]:
    """This rank's rows (``equal_rows``) of whole ``(x, y)`` arrays, ``x`` maybe a dict."""
    import numpy as np

    rows = equal_rows(len(y), rank, world)
    if isinstance(x, dict):
        return {k: np.asarray(v)[rows] for k, v in x.items()}, np.asarray(y)[rows]
    return np.asarray(x)[rows], np.asarray(y)[rows]


def equal_rows(n: int, rank: int, world: int) -> slice:
    """This rank's rows: every ``world``-th from ``rank``, the same count on every rank (an
    uneven batch count would leave one rank waiting in a collective the others never enter)."""
    per_rank = n // world
    return slice(rank, rank + per_rank * world, world)


def stageable(x: Any, y: Any) -> bool:
    """Plain numeric arrays (numpy, or anything ``np.asarray`` takes without Python objects)."""
    import numpy as np

    arrays = list(x.values()) if isinstance(x, dict) else [x]
    try:
        return all(np.asarray(a).dtype.kind in "biufcmM" for a in [*arrays, y])
    except Exception:  # noqa: BLE001 - whatever numpy cannot take goes the old way
        return False


class DataStage:
    """One run's ``(x, y)``, written once as ``world`` shards; removed by :meth:`close`."""

    def __init__(self, run_id: str, x: Any, y: Any, world: int) -> None:
        import numpy as np

        self.world = world
        self.x_names = tuple(x) if isinstance(x, dict) else None
        arrays = {"y": np.asarray(y)}
        if self.x_names is None:
            arrays["x"] = np.asarray(x)
        else:
            arrays.update({f"x.{k}": np.asarray(v) for k, v in x.items()})
        n = len(arrays["y"])
        nbytes = sum(a.nbytes for a in arrays.values())
        _sweep_orphans()
        root = SHARED_ROOT if _room(SHARED_ROOT, nbytes) else Path(tempfile.gettempdir())
        # a random name: another user cannot guess it, and no other host has it
        self.folder = private_dir(root / f"{PREFIX}{os.getpid()}-{run_id}-{uuid.uuid4().hex}")
        try:
            for rank in range(world):
                rows = equal_rows(n, rank, world)
                for name, array in arrays.items():
                    _write(self.folder / f"rank{rank}-{name}.npy", array[rows])
        except BaseException:
            self.close()
            raise

    def ref(self, rank: int) -> ShardRef:
        return ShardRef(str(self.folder), rank, self.x_names)

    def shard(self, rank: int) -> tuple[Any, Any]:
        """Rank ``rank``'s shard read back here, to send to a worker on another host."""
        import numpy as np

        x, y = self.ref(rank).load()
        x = {k: np.array(v) for k, v in x.items()} if isinstance(x, dict) else np.array(x)
        return x, np.array(y)

    def close(self) -> None:
        """Remove the files (ranks that still map them keep their pages until they exit)."""
        shutil.rmtree(self.folder, ignore_errors=True)


def _write(path: Path, rows: Any) -> None:
    import numpy as np

    private_file(path)  # 0600 before any byte is written; open_memmap keeps the mode
    out = np.lib.format.open_memmap(path, mode="w+", dtype=rows.dtype, shape=rows.shape)
    out[...] = rows
    out.flush()
    del out


def _room(root: Path, nbytes: int) -> bool:
    """Whether ``root`` exists and has twice ``nbytes`` free (a container's /dev/shm is often
    only 64 MB: the system temp folder, in the page cache too, is used instead)."""
    try:
        stat = os.statvfs(root)
    except OSError:
        return False
    return stat.f_bavail * stat.f_frsize > 2 * nbytes


def _sweep_orphans() -> None:
    """Remove folders left by driver processes that were killed before they could."""
    for root in (SHARED_ROOT, Path(tempfile.gettempdir())):
        try:
            entries = list(root.glob(f"{PREFIX}*"))
        except OSError:
            continue
        for folder in entries:
            try:
                pid = int(folder.name[len(PREFIX) :].split("-", 1)[0])
                if folder.stat().st_uid != os.getuid() or _alive(pid):
                    continue
            except (ValueError, OSError):
                continue
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
