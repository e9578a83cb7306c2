"""The secrets of jobs and schedules, encrypted at rest.

A job's (or a schedule's) secrets are one JSON object ``{NAME: value}`` sealed into one Fernet
token, which is what the database stores (its names are kept beside it in clear: they are
shown, the values never are). The key is ``secrets.key`` in the state directory: made on first
use, mode 0600, never in the database, so a copy of the database alone (a backup, a shared
PostgreSQL server, a bug report) reveals no value.

Why Fernet (``cryptography``): it is authenticated encryption (AES-128-CBC with an
HMAC-SHA256 over it) behind a two-call API with no nonce or padding for us to get wrong, from
the most reviewed cryptography package for Python; a token made with another key, or changed,
fails to open instead of decrypting to garbage.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

from lepton_lab.config.files import PRIVATE_FILE, private_dir

#: The key's file name in the state directory.
KEY_FILE = "secrets.key"


class SecretsKeyError(RuntimeError):
    """The key that opens stored secrets is missing or is not the one that sealed them."""


def key_path(state_dir: str | os.PathLike[str]) -> Path:
    """Where the secrets key of the state directory ``state_dir`` lives."""
    return Path(state_dir) / KEY_FILE


def _read_key(path: Path) -> bytes:
    """The key in ``path``. A key file being written by the process that created it without
    hard links (see :func:`_create_key`) can be empty for a moment: wait for it."""
    deadline = time.monotonic() + 2.0
    while True:
        key = path.read_bytes().strip()
        if key or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    if len(key) != 44:  # a Fernet key: 32 bytes, url-safe base64
        raise SecretsKeyError(
            f"the secrets key {path} is not a Fernet key ({len(key)} bytes); restore the "
            "original file (the stored secrets cannot be opened without it)"
        )
    return key


def _create_key(path: Path) -> None:
    """Make the key file unless another process did; racing processes end with one key.

    The key is written whole to a private temporary file (0600, ``O_EXCL``) and hard-linked to
    its name, which fails when the name exists: no process ever sees a half-written key, and
    none replaces a key that sealed someone else's secrets. Without hard links (some network
    file systems) the name itself is created with ``O_EXCL``.
    """
    from cryptography.fernet import Fernet

    private_dir(path.parent)
    key = Fernet.generate_key()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    try:
        os.write(fd, key + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process made the key first: everyone uses that one
    except OSError:  # no hard links here
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
        except FileExistsError:
            pass
        else:
            try:
                os.write(fd, key + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
    finally:
        tmp.unlink(missing_ok=True)


def _fernet(path: Path, create: bool):  # noqa: ANN202 - cryptography is imported lazily
    from cryptography.fernet import Fernet

    try:
        return Fernet(_read_key(path))
    except FileNotFoundError:
        if not create:
            raise SecretsKeyError(
                f"the secrets key {path} is missing, so the job's secrets cannot be "
                "decrypted; restore the file, or submit the job (or edit the schedule) again "
                "with its secrets"
            ) from None
    _create_key(path)
    return Fernet(_read_key(path))


def seal(state_dir: str | os.PathLike[str], values: Mapping[str, str]) -> str | None:
    """``values`` as one Fernet token (None when there are none), with the state directory's
    key (made now if it has none)."""
    if not values:
        return None
    data = json.dumps(dict(values), ensure_ascii=False).encode("utf-8")
    return _fernet(key_path(state_dir), create=True).encrypt(data).decode("ascii")


def unseal(key_file: str | os.PathLike[str], token: str | None) -> dict[str, str]:
    """The values that :func:`seal` sealed into ``token``, opened with the key in
    ``key_file``; :class:`SecretsKeyError` when the key is missing or not the sealing one."""
    if not token:
        return {}
    from cryptography.fernet import InvalidToken

    path = Path(key_file)
    try:
        data = _fernet(path, create=False).decrypt(token.encode("ascii"))
    except InvalidToken:
        raise SecretsKeyError(
            f"the job's secrets cannot be decrypted with the secrets key {path}: it is not "
            "the key that encrypted them (was the file replaced?); submit the job (or edit "
            "the schedule) again with its secrets"
        ) from None
    values = json.loads(data.decode("utf-8"))
    return {str(k): str(v) for k, v in values.items()}
