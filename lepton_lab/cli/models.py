"""``lepton-lab models list | show | compare | alias | delete | export | deploy-manifest``: the
model registry from a shell.

They use the same store and artifact directory as the lab's server and ``ll.models`` (the
configured ones: ``LEPTON_LAB_STATE_DIR``, ``LEPTON_LAB_DATABASE_URL``,
``LEPTON_LAB_ARTIFACT_DIR``), through the same :class:`ModelService` that REST calls.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from lepton_lab.cli.common import CLIError, _human_bytes

VERSION_HELP = "a number, latest, an alias (or @alias), or best:<metric>"


def _service() -> Any:
    """The models facade on this user's store and artifact directory."""
    from lepton_lab.services.models import ModelService
    from lepton_lab.store import open_store

    return ModelService(open_store())


def _version_ref(version: str) -> str:
    """A version argument as the registry reads it: ``3``, ``latest``, ``best:acc``,
    ``@prod``; a bare ``prod`` is the alias too, as in ``NAME@prod``."""
    from lepton_lab.models.registry import split_ref

    if version.startswith("@"):
        return version
    return str(split_ref(f"_@{version}")[1])


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _numbers(values: dict[str, Any]) -> str:
    from lepton_lab.models.api import Table

    return ", ".join(f"{k}={Table.cell(v)}" for k, v in values.items()) or "-"


def _print_json(model: Any) -> None:
    print(model.model_dump_json(indent=2))


# -- list / show / compare ---------------------------------------------------------------------


def cmd_models_list(args: argparse.Namespace) -> int:
    from lepton_lab.models.api import Table

    listing = _service().list()
    if args.json:
        _print_json(listing)
        return 0
    if not listing.models:
        print("no models registered yet", file=sys.stderr)
        return 0
    rows = [
        [
            m.name,
            m.framework,
            m.latest_version,
            m.versions,
            ", ".join(f"{a}->v{v}" for a, v in sorted(m.aliases.items())) or "-",
            _numbers(m.metrics),
            _when(m.updated_at),
        ]
        for m in listing.models
    ]
    columns = ["name", "framework", "latest", "versions", "aliases", "metrics", "updated"]
    print(Table(columns, rows))
    return 0


def _artifact_rows(version: Any) -> list[list[Any]]:
    rows = []
    for a in version.artifacts:
        change = a.details.get("accuracy_change")
        rows.append(
            [
                a.format,
                a.file,
                _human_bytes(a.size),
                a.sha256[:12],
                "-" if a.max_abs_diff is None else f"{a.max_abs_diff:.2e}",
                "-" if a.tolerance is None else f"{a.tolerance:.1e}",
                "-" if change is None else f"{change:+.4f}",
            ]
        )
    return rows


def format_version(version: Any) -> str:
    """A version as ``lepton-lab models show`` prints it: lineage, artifacts, evaluations."""
    from lepton_lab.models.api import Table

    aliases = "  " + " ".join(f"@{a}" for a in version.aliases) if version.aliases else ""
    notebook = version.notebook or "-"
    if version.notebook and version.notebook_sha256:
        notebook += f" (sha256 {version.notebook_sha256[:12]})"
    git = "-"
    if version.git is not None:
        git = version.git.commit[:12] + (" (dirty)" if version.git.dirty else " (clean)")
        if version.git.branch:
            git += f" on {version.git.branch}"
    lines = [
        f"{version.name} v{version.version} ({version.framework}){aliases}",
        f"created:    {_when(version.created_at)}",
        "tags:       " + (", ".join(f"{k}={v}" for k, v in version.tags.items()) or "-"),
        "lineage:",
        f"  run:      {version.run_id or '-'}",
        f"  job:      {version.job_id or '-'}",
        f"  notebook: {notebook}",
        f"  git:      {git}",
        "params:     " + (json.dumps(version.params, default=str) if version.params else "-"),
        f"metrics:    {_numbers(version.metrics)}",
        "libraries:  " + (", ".join(f"{k} {v}" for k, v in version.versions.items()) or "-"),
        "artifacts:",
    ]
    if version.artifacts:
        columns = ["format", "file", "size", "sha256", "max |diff|", "tolerance", "int8 acc change"]
        table = Table(columns, _artifact_rows(version))
        lines += ["  " + line for line in str(table).splitlines()]
    else:
        lines.append("  none")
    if version.failed_formats:
        lines.append("not registered:")
        lines += [f"  {fmt}: {reason}" for fmt, reason in version.failed_formats.items()]
    lines.append("evaluations:")
    if version.evaluations:
        table = Table(
            ["time", "dataset", "job", "metrics"],
            [
                [_when(e.time), e.dataset or "-", e.job_id or "-", _numbers(e.metrics)]
                for e in version.evaluations
            ],
        )
        lines += ["  " + line for line in str(table).splitlines()]
    else:
        lines.append("  none")
    return "\n".join(lines)


def cmd_models_show(args: argparse.Namespace) -> int:
    from lepton_lab.models.registry import split_ref

    name, version = split_ref(args.ref)
    found = _service().version(name, str(version))
    if args.json:
        _print_json(found)
        return 0
    print(format_version(found))
    return 0


def cmd_models_compare(args: argparse.Namespace) -> int:
    from lepton_lab.contract.models import CompareQuery
    from lepton_lab.models.api import Table

    query = CompareQuery(metric=args.metric)
    comparison = _service().compare(args.name, query)
    if args.json:
        _print_json(comparison)
        return 0
    columns = comparison.columns
    print(Table(columns, [[row.get(c) for c in columns] for row in comparison.rows]))
    return 0


# -- alias / delete / export -------------------------------------------------------------------


def cmd_models_alias(args: argparse.Namespace) -> int:
    from lepton_lab.contract import NotFound
    from lepton_lab.contract.models import check_alias

    registry = _service().registry
    alias = check_alias(args.alias)
    number = registry.resolve(args.name, _version_ref(args.version))
    try:
        before: int | None = registry.resolve(args.name, f"@{alias}")
    except NotFound:
        before = None
    if args.remove:
        if before is None:
            raise CLIError(f"model {args.name!r} has no alias {alias!r}")
        if before != number:
            raise CLIError(
                f"{args.name}@{alias} points at v{before}, not v{number}; nothing was removed"
            )
        registry.remove_alias(args.name, alias)
        print(f"{args.name}@{alias} removed (it pointed at v{number})")
        return 0
    registry.add_alias(args.name, number, alias)
    if before is None or before == number:
        print(f"{args.name}@{alias} -> v{number}")
    else:
        print(f"{args.name}@{alias} -> v{number} (moved from v{before})")
    return 0


def _confirm(question: str) -> bool:
    if not sys.stdin or not sys.stdin.isatty():
        raise CLIError(
            "refusing to delete without confirmation: stdin is not a terminal; pass --yes"
        )
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def cmd_models_delete(args: argparse.Namespace) -> int:
    service = _service()
    version = service.version(args.name, _version_ref(args.version))
    described = f"{version.name} v{version.version}"
    if not args.yes:
        extra = [", ".join(a.format for a in version.artifacts) or "no artifacts"]
        if version.aliases:
            extra.append("aliases " + ", ".join(f"@{a}" for a in version.aliases))
        if not _confirm(f"delete {described} ({'; '.join(extra)}) and its files?"):
            print("nothing deleted", file=sys.stderr)
            return 1
    service.delete(version.name, str(version.version))
    print(f"deleted {described}")
    return 0


def cmd_models_export(args: argparse.Namespace) -> int:
    from lepton_lab.models.artifacts import CorruptArtifact, digest
    from lepton_lab.models.formats import known_formats

    if args.format not in known_formats():
        raise CLIError(
            f"unknown format {args.format!r}; known formats: {', '.join(known_formats())}"
        )
    target = Path(args.to).expanduser()
    # like cp: a folder (an existing one, or any path ending in /) receives the artifact
    # under its download name
    into_folder = args.to.endswith(("/", os.sep)) or (target.is_dir() and not target.is_symlink())
    if into_folder and not target.is_dir():
        raise CLIError(f"the folder {target} does not exist")
    registry = _service().registry
    number = registry.resolve(args.name, _version_ref(args.version))
    try:
        row, source = registry.artifact(args.name, number, args.format)
    except CorruptArtifact as exc:
        raise CLIError(str(exc)) from None
    if into_folder:
        target = target / f"{args.name}-v{number}-{row['file']}"
    if target.is_dir() and not target.is_symlink():
        raise CLIError(f"{target} is an existing folder; it is never overwritten")
    if target.exists() or target.is_symlink():
        if not args.force:
            raise CLIError(f"{target} exists; pass --force to overwrite it")
    if not target.parent.is_dir():
        raise CLIError(f"the folder {target.parent} does not exist")
    # copied next to the target, checked, then renamed into place: no half-written target
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        copy = scratch / target.name
        if source.is_dir():
            shutil.copytree(source, copy)
        else:
            shutil.copyfile(source, copy)
        found, size = digest(copy)
        if found != row["sha256"]:
            raise CLIError(
                f"the copy of {args.name} v{number} {args.format} has sha256 {found[:16]}..., "
                f"registered as {row['sha256'][:16]}...; nothing was written"
            )
        if source.is_dir():
            if target.exists() or target.is_symlink():  # a file, with --force (checked above)
                target.unlink()
            os.rename(copy, target)
        else:
            os.replace(copy, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(
        f"exported {args.name} v{number} {args.format} ({_human_bytes(size)}, "
        f"sha256 {row['sha256'][:12]}) to {target}"
    )
    return 0


# -- deploy-manifest ---------------------------------------------------------------------------


def _quantities(pairs: list[str], option: str) -> dict[str, str]:
    """``["cpu=1,memory=2Gi", "nvidia.com/gpu=1"]`` -> ``{"cpu": "1", ...}``."""
    found: dict[str, str] = {}
    for item in (p for text in pairs for p in text.split(",") if p.strip()):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise CLIError(f"{option} takes NAME=QUANTITY (e.g. cpu=500m,memory=1Gi), got {item!r}")
        found[key.strip()] = value.strip()
    return found


def cmd_models_deploy_manifest(args: argparse.Namespace) -> int:
    from lepton_lab.models.registry import split_ref
    from lepton_lab.serving import kserve

    name, version = split_ref(args.ref)
    registry = _service().registry
    record = registry.version(name, version)
    limits = _quantities(args.limits, "--limits")
    if args.gpus is not None:
        limits["nvidia.com/gpu"] = str(args.gpus)
    resources = {"requests": _quantities(args.requests, "--requests"), "limits": limits}
    options = dict(
        format=args.format,
        name=args.name,
        namespace=args.namespace,
        resources=resources,
        min_replicas=args.min_replicas,
        max_replicas=args.max_replicas,
        runtime=args.runtime,
    )
    # built once before staging, so that a mistake in the options copies nothing
    manifest = kserve.inference_service(
        record, storage_uri=args.stage or args.storage_uri, **options
    )
    if args.stage:
        copy = kserve.stage_repository(registry, record, manifest.format, args.stage)
        print(
            f"staged {record['name']} v{record['version']} {manifest.format} at {copy}",
            file=sys.stderr,
        )
    text = manifest.yaml()
    if args.output:
        target = Path(args.output).expanduser()
        if target.is_dir():
            raise CLIError(f"{target} is a folder; -o takes the file to write")
        scratch = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            scratch.write_text(text)
            os.replace(scratch, target)
        finally:
            scratch.unlink(missing_ok=True)
        print(f"wrote {target}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    for note in manifest.notes:
        print(f"lepton-lab: note: {note}", file=sys.stderr)
    return 0


def register(sub: Any) -> None:
    models = sub.add_parser("models", help="the model registry: versions, aliases, artifacts")
    m_sub = models.add_subparsers(dest="models_command", required=True)

    ls = m_sub.add_parser("list", help="registered models: newest version, aliases, metrics")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=cmd_models_list)

    show = m_sub.add_parser(
        "show", help="one version: lineage, params, metrics, artifacts, evaluations"
    )
    show.add_argument("ref", metavar="NAME[@VERSION]", help=f"VERSION: {VERSION_HELP}")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=cmd_models_show)

    compare = m_sub.add_parser("compare", help="the versions of a model side by side")
    compare.add_argument("name")
    compare.add_argument("--metric", help="best first by this metric")
    compare.add_argument("--json", action="store_true", help="print JSON")
    compare.set_defaults(func=cmd_models_compare)

    alias = m_sub.add_parser("alias", help="point an alias at a version (or remove it)")
    alias.add_argument("name")
    alias.add_argument("version", help=VERSION_HELP)
    alias.add_argument("alias")
    alias.add_argument(
        "--remove", action="store_true", help="remove the alias (it must point at VERSION)"
    )
    alias.set_defaults(func=cmd_models_alias)

    delete = m_sub.add_parser("delete", help="delete a version: its artifacts and rows")
    delete.add_argument("name")
    delete.add_argument("version", help=VERSION_HELP)
    delete.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(func=cmd_models_delete)

    export = m_sub.add_parser(
        "export", help="copy an artifact (digest-checked) out of the registry"
    )
    export.add_argument("name")
    export.add_argument("version", help=VERSION_HELP)
    export.add_argument("--format", required=True, help="the artifact's format, e.g. onnx")
    export.add_argument(
        "--to",
        required=True,
        metavar="PATH",
        help="the file (or folder, for SavedModel) to write; an existing folder or a path "
        "ending in / receives NAME-vN-FILE",
    )
    export.add_argument("--force", action="store_true", help="overwrite an existing file at PATH")
    export.set_defaults(func=cmd_models_export)

    deploy = m_sub.add_parser(
        "deploy-manifest",
        help="write a KServe InferenceService (YAML) that serves a version on a cluster",
        description="Write a KServe InferenceService for a registered version (to stdout, or "
        "-o FILE); kubectl apply -f is yours to run. See docs/guide/kserve.md.",
    )
    deploy.add_argument("ref", metavar="NAME[@VERSION]", help=f"VERSION: {VERSION_HELP}")
    deploy.add_argument("--target", required=True, choices=["kserve"], help="the platform")
    deploy.add_argument(
        "--format",
        help="the artifact to serve (default: onnx, then savedmodel, onnx-int8, "
        "torchscript, the first the version has)",
    )
    deploy.add_argument("--name", help="the InferenceService name (default: from NAME)")
    deploy.add_argument("--namespace", help="metadata.namespace (default: kubectl's)")
    where = deploy.add_mutually_exclusive_group()
    where.add_argument(
        "--storage-uri",
        metavar="URI",
        help="the storageUri: a Triton model repository holding NAME/VERSION/<model file> "
        "(default: the registered artifact's URI)",
    )
    where.add_argument(
        "--stage",
        metavar="URI",
        help="copy the artifact into a new Triton model repository at URI (any fsspec URL) "
        "and use it as the storageUri",
    )
    deploy.add_argument(
        "--requests",
        action="append",
        default=[],
        metavar="NAME=Q[,NAME=Q]",
        help="resource requests, e.g. cpu=500m,memory=1Gi",
    )
    deploy.add_argument(
        "--limits",
        action="append",
        default=[],
        metavar="NAME=Q[,NAME=Q]",
        help="resource limits, e.g. cpu=2,memory=2Gi",
    )
    deploy.add_argument("--gpus", type=int, help="nvidia.com/gpu limit")
    deploy.add_argument("--min-replicas", type=int, help="spec.predictor.minReplicas")
    deploy.add_argument("--max-replicas", type=int, help="spec.predictor.maxReplicas")
    deploy.add_argument("--runtime", help="a ServingRuntime to name instead of KServe's choice")
    deploy.add_argument("-o", "--output", metavar="FILE", help="write the YAML to FILE")
    deploy.set_defaults(func=cmd_models_deploy_manifest)
