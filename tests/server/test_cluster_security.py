"""Only the lab drives the lab's cluster: a real ``jupyter lab`` starts its LocalCluster with
Dask's mutual TLS; its kernels, jobs and CLI attach through the cluster file, while a process
without the key pair (in this process tree, or another OS user's) is refused."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from distributed import Client
from distributed.security import Security

from tests.support.labserver import LabServer, execute
from tests.support.permissions import not_private

LAB = {
    "cluster_mode": "local",
    "n_workers": 2,
    "threads_per_worker": 1,
    "dashboard_address": "127.0.0.1:0",
}
INTRUDER = "lepton-intruder"


@pytest.fixture(scope="module")
def place():
    """A parent folder every user may pass through, so that what keeps another user out is
    the lab's own modes (pytest's tmp folders are 0700 all the way up)."""
    parent = Path(tempfile.mkdtemp(prefix="lepton-security-"))
    parent.chmod(0o755)
    yield parent
    shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(scope="module")
def lab(place, tmp_path_factory):
    log = tmp_path_factory.mktemp("logs") / "lab.log"  # kept by pytest for a failure's story
    server = LabServer(place / "root", {**LAB, "state_dir": str(place / "state")}, log_path=log)
    server.start()
    try:
        server.wait_cluster()
        yield server
    finally:
        server.stop()


def cluster_file(lab: LabServer) -> dict:
    [path] = lab.runtime_dir.glob("lepton-lab-cluster-*.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return json.loads(path.read_text())


def test_the_lab_cluster_speaks_tls_and_its_keys_are_private(lab, place):
    status = lab.wait_cluster()
    assert status["scheduler_address"].startswith("tls://127.0.0.1:")
    state = cluster_file(lab)
    assert state["scheduler_address"] == status["scheduler_address"]
    creds = state["security"]
    assert set(creds) == {"tls_ca_file", "tls_client_cert", "tls_client_key"}
    key = Path(creds["tls_client_key"])
    tls_dir = place / "state" / "tls"
    assert key.parent.parent == tls_dir
    assert "PRIVATE KEY" in key.read_text()
    assert not_private(tls_dir) == []
    assert not_private(place / "state") == []


def test_a_client_without_the_key_pair_is_refused(lab):
    address = lab.wait_cluster()["scheduler_address"]
    with pytest.raises((OSError, TypeError)):  # no TLS context at all: refused before sending
        Client(address, timeout=5)
    # a client with a key pair of its own: the scheduler refuses its certificate
    with pytest.raises(OSError):
        Client(address, timeout=5, security=Security.temporary())
    # a plain TCP peer speaking Dask's protocol gets no answer but a closed connection
    host, port = address.removeprefix("tls://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.sendall(b"\x00" * 64)
        raw.settimeout(10)
        try:
            answer = raw.recv(1024)
        except ConnectionResetError:
            answer = b""
        # a TLS server answers garbage with an alert at most, never a Dask message
        assert answer == b"" or answer[:1] == b"\x15"


def test_with_the_cluster_file_a_client_connects(lab):
    state = cluster_file(lab)
    security = Security(**state["security"], require_encryption=True)
    with Client(state["scheduler_address"], timeout=30, security=security) as client:
        assert client.submit(sum, [1, 2, 3]).result(timeout=30) == 6


def test_kernels_attach_over_tls_and_fit_runs(lab):
    client = lab.start_kernel("lepton-cpu")
    try:
        out = execute(
            client,
            "import lepton_lab as ll, distributed\n"
            "c = ll.attach()\n"
            "print('ATTACH', c.scheduler.address, c.submit(sum, [1, 2]).result())\n"
            "with distributed.Client() as plain:\n"
            "    print('PLAIN', plain.scheduler.address, plain.submit(sum, [3, 4]).result())\n"
            "def loop(config):\n"
            "    ctx = ll.context()\n"
            "    ctx.report(step=1, loss=1.0 / (ctx.rank + 1))\n"
            "    return ctx.rank\n"
            "run = ll.fit(loop, framework='torch', workers=2)\n"
            "print('FIT', run.wait(timeout=120), sorted(run.result))\n",
            timeout=240,
        )
    finally:
        client.shutdown()
        client.stop_channels()
    address = lab.wait_cluster()["scheduler_address"]
    assert f"ATTACH {address} 3" in out, out
    # a plain distributed.Client() finds the lab's cluster and its TLS settings (Dask config)
    assert f"PLAIN {address} 7" in out, out
    assert "FIT completed [0, 1]" in out, out


def test_the_cli_attaches_through_the_cluster_file(lab):
    state_file = next(lab.runtime_dir.glob("lepton-lab-cluster-*.json"))
    address = lab.wait_cluster()["scheduler_address"]
    env = dict(
        os.environ, LEPTON_LAB_CLUSTER_FILE=str(state_file), LEPTON_LAB_SCHEDULER_ADDRESS=address
    )
    out = subprocess.run(
        [sys.executable, "-m", "lepton_lab.cli.main", "cluster", "status", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)
    assert status["scheduler_address"] == address
    assert status["totals"]["workers"] == 2


def test_a_job_attaches_over_tls(lab):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "lepton-cpu", "display_name": "CPU", "language": "python"}
    nb.cells.append(
        nbformat.v4.new_code_cell(
            "import lepton_lab as ll\n"
            "c = ll.attach()\n"
            "assert c.scheduler.address.startswith('tls://'), c.scheduler.address\n"
            "ll.log_metrics(answer=c.submit(sum, [20, 22]).result())"
        )
    )
    nbformat.write(nb, lab.root_dir / "tls_job.ipynb")
    code, job = lab.request("POST", "lepton-lab/api/jobs", {"path": "tls_job.ipynb"})
    assert code in (200, 201), job
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        code, job = lab.request("GET", f"lepton-lab/api/jobs/{job['id']}")
        if job["status"] in ("completed", "failed", "timed_out", "stopped"):
            break
        time.sleep(0.5)
    assert job["status"] == "completed", job
    assert [m["value"] for m in job["metrics"] if m["name"] == "answer"] == [42.0]


def _intruder() -> str:
    try:
        pwd.getpwnam(INTRUDER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", INTRUDER],
            check=True,
            capture_output=True,
        )
    return INTRUDER


INTRUDER_SCRIPT = r"""
import json, os, socket, ssl, sys
from pathlib import Path
state, cluster_file, key, address = sys.argv[1:5]
out = {}
for name, action in (
    ("list_state", lambda: os.listdir(state)),
    ("read_cluster_file", lambda: Path(cluster_file).read_text()),
    ("read_key", lambda: Path(key).read_text()),
):
    try:
        action()
        out[name] = "allowed"
    except PermissionError:
        out[name] = "denied"
host, port = address.removeprefix("tls://").rsplit(":", 1)
# TLS without the lab's client certificate: the scheduler ends the handshake
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
try:
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with ctx.wrap_socket(raw) as tls:
            tls.sendall(b"\x00" * 64)
            data = tls.recv(1024)
            out["tls"] = "answered " + repr(data[:20]) if data else "closed"
except (ssl.SSLError, OSError) as exc:
    out["tls"] = "refused " + str(exc)
# plain TCP: not a TLS client hello, so no Dask message comes back
with socket.create_connection((host, int(port)), timeout=10) as raw:
    raw.sendall(b"\x00" * 64)
    try:
        data = raw.recv(1024)
    except OSError:
        data = b""
    out["plain"] = "alert or closed" if data[:1] in (b"", b"\x15") else "answered"
print(json.dumps(out))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="making a second OS user needs root (CI is root)")
def test_another_os_user_can_neither_connect_nor_read_the_state(lab, place):
    user = _intruder()
    state = cluster_file(lab)
    [state_file] = lab.runtime_dir.glob("lepton-lab-cluster-*.json")
    script = place / "intruder.py"
    script.write_text(INTRUDER_SCRIPT)
    script.chmod(0o644)
    # the system's Python: the test's own may live where another user cannot run it
    python = shutil.which("python3", path="/usr/bin:/bin") or "/usr/bin/python3"
    result = subprocess.run(
        [
            shutil.which("runuser") or "/usr/sbin/runuser",
            "-u",
            user,
            "--",
            python,
            str(script),
            str(place / "state"),
            str(state_file),
            state["security"]["tls_client_key"],
            state["scheduler_address"],
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["list_state"] == "denied", seen
    assert seen["read_cluster_file"] == "denied", seen
    assert seen["read_key"] == "denied", seen
    # TLS 1.3: the scheduler checks the client's certificate after the client has finished its
    # side of the handshake; it answers with a certificate_required alert or, racing the
    # client's first read, just drops the connection (EOF, reset). Either way: refused.
    refusal = seen["tls"].upper().replace(" ", "_")
    assert seen["tls"].startswith("refused"), seen
    assert any(
        why in refusal for why in ("CERTIFICATE_REQUIRED", "EOF_OCCURRED", "CONNECTION_RESET")
    ), seen
    assert seen["plain"] == "alert or closed", seen


def test_a_state_directory_others_can_read_gets_a_warning(tmp_path):
    state = tmp_path / "shared-state"
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    server = LabServer(
        tmp_path / "root", {"n_workers": 0, "run_jobs": False, "state_dir": str(state)}
    )
    server.start()
    try:
        server.wait_cluster()
    finally:
        assert server.stop() == 0
    assert f"the state directory {state} is readable by others (mode 755)" in server.log()
    # what the lab itself writes there is still private, and the folder is left as it was
    assert stat.S_IMODE(state.stat().st_mode) == 0o755
    assert not_private(state / "tls") == []
    database = next(state.glob("*.db"))
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
