"""TLS for the lab's cluster: who may drive it.

A Dask scheduler runs whatever a connected client sends it, as the user who started it. Without
TLS, any process on the machine (another user of a shared GPU server, a JupyterHub neighbour)
could connect to the lab's 127.0.0.1 scheduler and run code as the lab's user. So the clusters
the lab starts (its own and a script's embedded one) use Dask's mutual TLS with a key pair made
at start (``Security.temporary()``): scheduler, nannies, workers and clients all present the
certificate, and a peer without it fails the handshake.

The key pair is written once, as files, into a private folder of the state directory (0700,
files 0600) and the cluster file names those files. Files rather than PEM text in memory:
Dask's ``Security`` writes in-memory PEM to a fresh temporary folder every time it builds an
SSL context, and kernels, jobs and the CLI need something to read anyway. The folder goes when
the cluster closes; folders of processes that died are swept at the next start.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from lepton_lab.config.files import PRIVATE_DIR, private_dir

if TYPE_CHECKING:
    from distributed.security import Security

#: the fields of ``distributed.security.Security`` that a client needs
CLIENT_TLS_FIELDS = ("tls_ca_file", "tls_client_cert", "tls_client_key")
#: the settings ``c.LeptonLab.security`` accepts (Dask's TLS settings of a client)
ACCEPTED_FIELDS = (*CLIENT_TLS_FIELDS, "tls_ciphers", "tls_min_version", "require_encryption")


class LabCredentials:
    """A temporary key pair for one cluster, in its own private folder.

    ``security()`` is what the scheduler, workers and in-process clients use; ``client``
    (file paths) is what goes into the cluster file for other processes.
    """

    def __init__(self, parent: str | os.PathLike[str], name: str) -> None:
        from distributed.security import Security

        parent = private_dir(parent, tighten=True)
        _sweep_dead(parent)
        self.folder = parent / f"{name}-{os.getpid()}-{os.urandom(4).hex()}"
        self.folder.mkdir(mode=PRIVATE_DIR)
        made = Security.temporary()
        self.cert = _write_private(self.folder / "cluster.pem", made.tls_client_cert)
        self.key = _write_private(self.folder / "cluster-key.pem", made.tls_client_key)

    @property
    def client(self) -> dict[str, str]:
        """What a client of this cluster needs (paths); also the cluster file's entry."""
        # self-signed: the certificate is its own CA
        return {
            "tls_ca_file": str(self.cert),
            "tls_client_cert": str(self.cert),
            "tls_client_key": str(self.key),
        }

    def security(self) -> Security:
        """For the scheduler, its nannies and workers, and clients in this process."""
        from distributed.security import Security

        cert, key = str(self.cert), str(self.key)
        return Security(
            require_encryption=True,
            tls_ca_file=cert,
            tls_client_cert=cert,
            tls_client_key=key,
            tls_scheduler_cert=cert,
            tls_scheduler_key=key,
            tls_worker_cert=cert,
            tls_worker_key=key,
        )

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def client_security(settings: dict[str, Any] | None) -> Security | None:
    """``Security`` of a client from TLS settings (paths or PEM text), or None without
    settings; encryption required, so an address without ``tls://`` is refused."""
    if not settings:
        return None
    from distributed.security import Security

    return Security(**{"require_encryption": True, **settings})


def check_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """``c.LeptonLab.security`` checked: known fields, a CA and a certificate, files that
    exist. Raises ValueError with what is wrong."""
    unknown = sorted(set(settings) - set(ACCEPTED_FIELDS))
    if unknown:
        raise ValueError(
            f"c.LeptonLab.security: unknown field(s) {', '.join(unknown)}; accepted: "
            f"{', '.join(ACCEPTED_FIELDS)}"
        )
    missing = [name for name in ("tls_ca_file", "tls_client_cert") if not settings.get(name)]
    if missing:
        raise ValueError(f"c.LeptonLab.security needs {' and '.join(missing)}")
    for name in CLIENT_TLS_FIELDS:
        value = settings.get(name)
        if isinstance(value, str) and "\n" not in value and not Path(value).expanduser().is_file():
            raise ValueError(f"c.LeptonLab.security: {name} {value!r} is not a file")
    return settings


def cluster_file_security(state_file: str | os.PathLike[str], address: str) -> Security | None:
    """The credentials that the server wrote into its cluster file for ``address``, or None
    when the file names none (or another scheduler)."""
    try:
        state = json.loads(Path(state_file).read_text())
    except (OSError, ValueError):
        return None
    if state.get("scheduler_address") != address:
        return None
    return client_security(state.get("security"))


def _write_private(path: Path, text: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    return path


def _sweep_dead(parent: Path) -> None:
    """Remove key folders whose process is gone (a server or script that was killed)."""
    for folder in parent.iterdir():
        parts = folder.name.rsplit("-", 2)
        if len(parts) != 3 or not parts[1].isdigit():
            continue
        pid = int(parts[1])
        if pid == os.getpid() or psutil.pid_exists(pid):
            continue
        with contextlib.suppress(OSError):
            shutil.rmtree(folder)
