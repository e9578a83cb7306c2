"""A KServe ``InferenceService`` for a registered model version: the way to serve it on a
Kubernetes cluster that runs KServe, beyond the one machine that ``lepton-lab serve`` uses.

Nothing here talks to Kubernetes: :func:`inference_service` builds the manifest (a dict, YAML
by :meth:`Manifest.yaml`) and :func:`stage_repository` copies the digest-checked artifact to
the layout KServe's runtime reads. ``kubectl apply -f`` is the user's step. See
docs/guide/kserve.md.

Why a repository layout: every format below is served by KServe's Triton runtime
(``kserve-tritonserver`` starts ``tritonserver --model-store=/mnt/models``), and Triton reads
a model repository, ``<storageUri>/<model>/<version>/model.onnx``, never a lone file. The
registry keeps ``<artifact dir>/models/<name>/<folder>/model.onnx`` next to the version's
other formats, so its URI alone is not something Triton can load.

This module imports no serving runtime (no mlserver, no kserve package): only the registry's
records, fsspec and PyYAML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from lepton_lab.contract import NotFound, RequestError

API_VERSION = "serving.kserve.io/v1beta1"
KIND = "InferenceService"
#: prefix of the labels and annotations that tie a manifest to its registered version
LABEL_PREFIX = "lepton-lab.io"
#: the runtime every mapped format lands on (see :data:`KSERVE_FORMATS`)
TRITON_RUNTIME = "kserve-tritonserver"

#: KServe's InferenceService name rule (``IsvcNameFmt`` in its validation webhook)
_ISVC_NAME = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
#: KServe names the predictor's Knative service ``<name>-predictor`` and its revisions
#: ``<name>-predictor-00001``: those must fit a 63-character DNS label, so ``name`` gets 47
MAX_NAME = 47
#: a Kubernetes label value: 63 characters, alphanumeric at both ends
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")
#: a Kubernetes resource quantity (the CRD's own pattern for requests/limits)
_QUANTITY = re.compile(
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
#: URI schemes KServe's storage initializer downloads from (a bare path is read inside the
#: pod, which is why :func:`inference_service` warns about it)
KSERVE_SCHEMES = ("s3", "gs", "pvc", "hdfs", "webhdfs", "http", "https", "oci", "hf")
#: fsspec spellings of a scheme that KServe spells otherwise
_SCHEME_ALIASES = {"gcs": "gs"}


@dataclass(frozen=True)
class KServeFormat:
    """How one Lepton format is served by KServe's Triton runtime."""

    model_format: str  # spec.predictor.model.modelFormat.name (the ServingRuntime's name)
    version: str  # modelFormat.version, as the runtime's supportedModelFormats lists it
    repository_file: str  # the name Triton's backend looks for in <model>/<version>/
    runtime: str | None = None  # a runtime to name, where auto-selection picks another one
    note: str | None = None  # what the user still has to do, if anything


#: Lepton format -> KServe model format, checked against KServe's config/runtimes (the
#: ``supportedModelFormats`` of kserve-tritonserver, kserve-tensorflow-serving and
#: kserve-torchserve). ``protocolVersion: v2`` keeps auto-selection on Triton: TensorFlow
#: Serving speaks only v1. Formats not listed here (keras, safetensors, torch.export) have no
#: KServe runtime that loads them.
KSERVE_FORMATS: dict[str, KServeFormat] = {
    "onnx": KServeFormat("onnx", "1", "model.onnx"),
    "onnx-int8": KServeFormat("onnx", "1", "model.onnx"),
    "savedmodel": KServeFormat("tensorflow", "2", "model.savedmodel"),
    "torchscript": KServeFormat(
        "pytorch",
        "1",
        "model.pt",
        # TorchServe is auto-selected for pytorch and wants a .mar archive, not TorchScript
        runtime=TRITON_RUNTIME,
        note="Triton's PyTorch backend also needs <model>/config.pbtxt (platform "
        "pytorch_libtorch, inputs INPUT__0, outputs OUTPUT__0 with their dims), which "
        "Lepton Lab does not write: add it as <storageUri>/<model>/config.pbtxt",
    ),
}
#: the format chosen when none is asked for: the first one the version has
PREFERENCE = ("onnx", "savedmodel", "onnx-int8", "torchscript")


@dataclass
class Manifest:
    """An InferenceService body, the artifact it serves, and notes for the person applying
    it (the CLI prints them on stderr)."""

    body: dict[str, Any]
    format: str
    artifact: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def yaml(self) -> str:
        import yaml

        annotations = self.body["metadata"]["annotations"]
        model = annotations[f"{LABEL_PREFIX}/model"]
        version = annotations[f"{LABEL_PREFIX}/version"]
        header = (
            f"# KServe InferenceService for {model} v{version} ({self.format}, sha256 "
            f"{self.artifact['sha256'][:12]}), written by lepton-lab models deploy-manifest\n"
        )
        return header + yaml.safe_dump(self.body, sort_keys=False, default_flow_style=False)


def servable_formats() -> str:
    """The formats KServe can serve, as an error message lists them."""
    return ", ".join(f"{k} (as {v.model_format})" for k, v in KSERVE_FORMATS.items())


def isvc_name(model_name: str) -> str:
    """A valid InferenceService name from a model name: lower case, runs of other characters
    as one '-', starting with a letter (``m-`` is put in front otherwise), at most
    :data:`MAX_NAME` characters."""
    name = re.sub(r"[^a-z0-9]+", "-", model_name.lower()).strip("-")
    if not name or not name[0].isalpha():
        name = f"m-{name}".rstrip("-")
    return name[:MAX_NAME].rstrip("-")


def check_isvc_name(name: str) -> str:
    """``name`` if KServe and Knative accept it, else a :class:`RequestError` saying why."""
    if not _ISVC_NAME.fullmatch(name):
        raise RequestError(
            f"invalid InferenceService name {name!r}: lower-case letters, digits and '-', "
            "starting with a letter and ending with a letter or digit"
        )
    if len(name) > MAX_NAME:
        raise RequestError(
            f"InferenceService name {name!r} has {len(name)} characters; at most {MAX_NAME}, "
            "so that KServe's <name>-predictor-00001 fits a 63-character DNS label"
        )
    return name


def check_resources(resources: dict[str, dict[str, str]] | None) -> dict[str, dict[str, str]]:
    """``{"requests": {...}, "limits": {...}}`` with every value a Kubernetes quantity."""
    clean: dict[str, dict[str, str]] = {}
    for kind, values in (resources or {}).items():
        if kind not in ("requests", "limits"):
            raise RequestError(f"resources take 'requests' and 'limits', not {kind!r}")
        for key, value in values.items():
            if not key or not _QUANTITY.match(str(value)):
                raise RequestError(
                    f"{kind} {key}={value!r} is not a Kubernetes quantity (e.g. 500m, 2, 1Gi)"
                )
        if values:
            clean[kind] = {k: str(v) for k, v in values.items()}
    return clean


def pick_format(record: dict[str, Any], format: str | None = None) -> dict[str, Any]:
    """The artifact row to serve: ``format``'s (which KServe must be able to serve and the
    version must have), else the first of :data:`PREFERENCE` that the version has."""
    have = {a["format"]: a for a in record["artifacts"]}
    described = f"{record['name']} v{record['version']}"
    if format is not None:
        if format not in KSERVE_FORMATS:
            raise RequestError(
                f"KServe has no runtime for the {format!r} format; it serves {servable_formats()}"
            )
        if format not in have:
            raise NotFound(
                f"{described} has no {format!r} artifact (it has {', '.join(have) or 'none'})"
            )
        return have[format]
    for candidate in PREFERENCE:
        if candidate in have:
            return have[candidate]
    raise RequestError(
        f"{described} has no format KServe can serve (it has {', '.join(have) or 'none'}); "
        f"KServe serves {servable_formats()}: register the model with one of them"
    )


def _is_local(uri: str) -> bool:
    scheme = uri.split("://", 1)[0] if "://" in uri else ""
    return scheme in ("", "file", "local")


def _storage_uri(uri: str, notes: list[str]) -> str:
    """``uri`` as KServe spells it (gcs:// -> gs://), with a note when the cluster cannot
    read it."""
    scheme, sep, rest = uri.partition("://")
    if sep and scheme in _SCHEME_ALIASES:
        uri = f"{_SCHEME_ALIASES[scheme]}://{rest}"
        scheme = _SCHEME_ALIASES[scheme]
    if _is_local(uri):
        notes.append(
            f"storageUri {uri} is a path on this machine, and a cluster cannot read this "
            "machine's disk: pass --stage or --storage-uri with object storage (s3://, "
            "gs://, ...), or set the artifact directory to object storage "
            "(c.LeptonLab.artifact_dir, or LEPTON_LAB_ARTIFACT_DIR for the CLI and kernels) "
            "and register the model again"
        )
    elif scheme not in KSERVE_SCHEMES:
        notes.append(
            f"KServe's storage initializer does not read {scheme}:// URIs (it reads "
            f"{', '.join(s + '://' for s in KSERVE_SCHEMES)}): pass --storage-uri with one"
        )
    return uri


def inference_service(
    record: dict[str, Any],
    *,
    format: str | None = None,
    name: str | None = None,
    namespace: str | None = None,
    storage_uri: str | None = None,
    resources: dict[str, dict[str, str]] | None = None,
    min_replicas: int | None = None,
    max_replicas: int | None = None,
    runtime: str | None = None,
) -> Manifest:
    """The InferenceService that serves ``record`` (a registered version, as
    ``ModelRegistry.version`` returns it) in ``format``.

    ``storage_uri`` is where the cluster downloads the model from: a Triton model repository
    (such as :func:`stage_repository` writes); without one, the registered artifact's own
    URI, with a note that Triton cannot load it as it lies.
    """
    artifact = pick_format(record, format)
    fmt = artifact["format"]
    kformat = KSERVE_FORMATS[fmt]
    isvc = check_isvc_name(name) if name is not None else isvc_name(record["name"])
    notes: list[str] = []
    if storage_uri is None:
        notes.append(
            f"KServe's Triton runtime reads a model repository "
            f"(<storageUri>/<model>/<version>/{kformat.repository_file}), not one file: this "
            f"storageUri is the registered file itself, which Triton cannot load as it lies. "
            "Pass --stage URI to copy it there in that layout, or --storage-uri URI for a "
            "repository you laid out"
        )
    elif storage_uri.rstrip("/").endswith((".onnx", ".pt", ".pb")):
        notes.append(
            f"storageUri {storage_uri} looks like one file; KServe's Triton runtime reads a "
            f"model repository (<storageUri>/<model>/<version>/{kformat.repository_file})"
        )
    uri = _storage_uri(storage_uri or artifact["uri"], notes)
    if kformat.note:
        notes.append(kformat.note)

    version = str(record["version"])
    labels = {f"{LABEL_PREFIX}/version": version, f"{LABEL_PREFIX}/format": fmt}
    if _LABEL_VALUE.fullmatch(record["name"]):  # a label value has 63 characters at most
        labels = {f"{LABEL_PREFIX}/model": record["name"], **labels}
    annotations = {
        f"{LABEL_PREFIX}/model": record["name"],
        f"{LABEL_PREFIX}/version": version,
        f"{LABEL_PREFIX}/format": fmt,
        f"{LABEL_PREFIX}/sha256": artifact["sha256"],
        f"{LABEL_PREFIX}/artifact-uri": artifact["uri"],
    }
    metadata: dict[str, Any] = {"name": isvc}
    if namespace:
        metadata["namespace"] = namespace
    metadata.update(labels=labels, annotations=annotations)

    model_format = {"name": kformat.model_format, "version": kformat.version}
    model: dict[str, Any] = {"modelFormat": model_format, "protocolVersion": "v2"}
    if runtime or kformat.runtime:
        model["runtime"] = runtime or kformat.runtime
    model["storageUri"] = uri
    clean = check_resources(resources)
    if clean:
        model["resources"] = clean

    predictor: dict[str, Any] = {}
    for key, value in (("minReplicas", min_replicas), ("maxReplicas", max_replicas)):
        if value is not None:
            if value < 0:
                raise RequestError(f"{key} must be 0 or more, got {value}")
            predictor[key] = value
    if min_replicas is not None and max_replicas is not None and max_replicas < min_replicas:
        raise RequestError(f"maxReplicas {max_replicas} is below minReplicas {min_replicas}")
    predictor["model"] = model
    body = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": metadata,
        "spec": {"predictor": predictor},
    }
    return Manifest(body=body, format=fmt, artifact=artifact, notes=notes)


def repository_path(repository_uri: str, record: dict[str, Any], format: str) -> str:
    """Where :func:`stage_repository` puts the artifact: ``<repo>/<model>/<version>/<file>``.
    Triton's model name is the folder's (the registered name: clients call
    ``/v2/models/<name>/infer``) and its version the registered number."""
    file = KSERVE_FORMATS[format].repository_file
    return f"{repository_uri.rstrip('/')}/{record['name']}/{record['version']}/{file}"


def stage_repository(
    registry: Any, record: dict[str, Any], format: str, repository_uri: str
) -> str:
    """Copy ``record``'s ``format`` artifact (digest-checked on the way) into a Triton model
    repository at ``repository_uri`` (any fsspec URL) and return the URL of the copy.

    A repository that already holds this model is refused, never merged into: Triton serves
    the highest version folder it finds, so an older version staged next to a newer one would
    silently not be served. Stage each deployment into its own URI.
    """
    import fsspec

    _, local = registry.artifact(record["name"], record["version"], format)
    target = repository_path(repository_uri, record, format)
    model_dir = target.rsplit("/", 2)[0]
    try:
        fs, path = fsspec.core.url_to_fs(model_dir)
    except ImportError as exc:  # s3fs, gcsfs, ... are the user's to install
        raise RequestError(f"cannot write to {repository_uri}: {exc}") from None
    if fs.exists(path):
        raise RequestError(
            f"{model_dir} exists; stage into a new URI (Triton would serve the highest "
            "version folder found there, not necessarily this one)"
        )
    _, target_path = fsspec.core.url_to_fs(target)
    fs.makedirs(target_path.rsplit("/", 1)[0], exist_ok=True)
    fs.put(str(local), target_path, recursive=local.is_dir())
    return target
