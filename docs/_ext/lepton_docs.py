"""Sphinx directives of the Lepton Lab docs: pages generated from the code at build time.

- ``lepton-traits``: the ``c.<Class>.*`` settings of a traitlets class (its own ``config=True``
  traits, as traitlets' ``class_config_rst_doc`` writes them, with dynamic defaults said so).
- ``lepton-cluster-aliases``: the ``c.LeptonLab.*`` names that configure the ClusterManager.
- ``lepton-demos``: the demo notebooks, linked where their page exists.
- On ``builder-inited`` the OpenAPI document is written to ``docs/_build/generated/openapi.json``
  by :func:`lepton_lab.server.openapi.openapi_document`, the function the server answers
  ``GET /lepton-lab/api/openapi.json`` with, so the REST page cannot drift from the server.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from textwrap import dedent, indent
from typing import Any

from docutils import nodes
from docutils.parsers.rst import Parser as RstParser
from docutils.utils import new_document
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

#: Where the generated files go (the pages refer to them as /_build/generated/...)
GENERATED = Path(__file__).resolve().parents[1] / "_build" / "generated"

#: The demo notebooks of issue #16: (file name prefix, title, what it shows); the page of a demo
#: is docs/demos/<prefix>_*.ipynb (a link to notebooks/)
DEMOS = [
    (
        "01",
        "Quickstart",
        "attach, the ClusterWidget, a 2-worker Keras digits run with the live monitor, "
        "register the model",
    ),
    (
        "02",
        "PyTorch DDP",
        "the per-worker loop, checkpoints, and resume after a deliberately killed worker",
    ),
    ("03", "TensorFlow", "MirroredStrategy on the lab's workers"),
    (
        "04",
        "Notebook to job",
        "run the quickstart as a job with other parameters, schedule it nightly from code "
        "and from the CLI; its output, metrics and usage",
    ),
    (
        "05",
        "Evaluate, export, serve",
        "load @candidate, evaluate, compare with @production, promote, serve",
    ),
    (
        "06",
        "GPU",
        "what the GPU kernel changes (mixed precision, one worker per GPU); on CPU it says so "
        "and still runs",
    ),
]


def _object(path: str) -> Any:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def traits_rst(cls: Any, prefix: str | None = None) -> str:
    """rST for the class's own ``config=True`` traits (inherited ones belong to their class:
    a jupyter-server ``ExtensionApp``'s ``open_browser``, ``log_level``...)."""
    prefix = prefix or cls.__name__
    dynamic = set(getattr(cls, "_trait_default_generators", {}))
    lines: list[str] = []
    for name, trait in sorted(cls.class_own_traits(config=True).items()):
        kind = type(trait).__name__
        lines.append(f"``c.{prefix}.{name}`` : {kind}")
        if name in dynamic:
            default = "computed at start (see the description)"
        else:
            try:
                default = f"``{trait.default_value_repr()}``"
            except Exception:  # noqa: BLE001 - a default traitlets cannot show
                default = None
        if default is not None:
            lines.append(indent(f"Default: {default}", "    "))
            lines.append("")
        # help texts are plain text: backquotes and stars would be read as rST markup
        text = dedent(trait.help or "No description").replace("\\", "\\\\")
        text = text.replace("*", "\\*").replace("`", "\\`").replace("|", "\\|")
        lines.append(indent(text, "    "))
        lines.append("")
    return "\n".join(lines)


class _RstDirective(SphinxDirective):
    """A directive whose output is generated rST. In a MyST page ``state.nested_parse`` would
    read it as Markdown, so it is parsed with docutils' rST parser into a document of its own
    (as MyST's ``eval-rst`` does) and the nodes moved over; Sphinx's roles work there too."""

    def parse(self, text: str) -> list[nodes.Node]:
        self.env.note_dependency(__file__)  # the page changes when this generator does
        doc = new_document(self.get_source_info()[0], self.state.document.settings)
        doc.reporter = self.state.document.reporter
        RstParser().parse(text, doc)
        return list(doc.children)


class TraitsDirective(_RstDirective):
    """``{lepton-traits} lepton_lab.server.app.LeptonLab``"""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        cls = _object(self.arguments[0])
        self.env.note_dependency(importlib.import_module(cls.__module__).__file__)
        return self.parse(traits_rst(cls))


class ClusterAliasesDirective(_RstDirective):
    """The ``c.LeptonLab.*`` names of cluster settings and the ClusterManager traits they set."""

    def run(self) -> list[nodes.Node]:
        from lepton_lab.server import app

        rows = ["   * - ``c.LeptonLab`` name", "     - sets", "     - status"]
        for old, new in sorted(app.CLUSTER_SETTINGS.items()):
            rows += [f"   * - ``{old}``", f"     - ``c.ClusterManager.{new}``", "     - current"]
        for old, new in sorted(app.LEGACY_CLUSTER_SETTINGS.items()):
            rows += [
                f"   * - ``{old}``",
                f"     - ``c.ClusterManager.{new}``",
                "     - deprecated (a warning in the log)",
            ]
        text = ".. list-table::\n   :header-rows: 1\n\n" + "\n".join(rows)
        return self.parse(text)


class DemosDirective(_RstDirective):
    """The demo table; a demo whose notebook is not in docs/demos/ yet is named unlinked."""

    def run(self) -> list[nodes.Node]:
        here = Path(self.env.doc2path(self.env.docname)).parent
        rows = ["   * - notebook", "     - what it shows"]
        for prefix, title, what in DEMOS:
            found = sorted(here.glob(f"{prefix}_*.ipynb"))
            if found:
                cell = f":doc:`{title} <{found[0].stem}>`"
            else:
                cell = f"{title} (``notebooks/{prefix}_*.ipynb``, not in this build)"
            rows += [f"   * - {cell}", f"     - {what}"]
        text = ".. list-table::\n   :header-rows: 1\n   :widths: 30 70\n\n" + "\n".join(rows)
        return self.parse(text)


def _plain(text: str | None) -> str | None:
    """Help text as literal rST: argparse help is written for a terminal, where ``*/10``
    in a cron example means no emphasis."""
    if not text:
        return text
    for char in ("\\", "*", "`", "|", "_"):
        text = text.replace(char, "\\" + char)
    return text


def cli_parser() -> Any:
    """``lepton-lab``'s parser (:func:`lepton_lab.cli.main.build_parser`) with its help texts
    escaped for sphinx-argparse, which reads them as rST."""
    import argparse

    from lepton_lab.cli.main import build_parser

    def plain(text: str | None) -> str | None:
        # ``code`` (the module docstring's) stays code; the rest is text as written
        return _text(text.replace("``", "`")) if text else text

    def escape(parser: argparse.ArgumentParser) -> None:
        parser.description = plain(parser.description)
        parser.epilog = plain(parser.epilog)
        for action in parser._actions:
            if action.help not in (None, argparse.SUPPRESS):
                action.help = plain(action.help)
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    choice.help = plain(choice.help)
                for sub in set(action.choices.values()):
                    escape(sub)

    parser = build_parser()
    escape(parser)
    return parser


def ipython_lexer(app: Sphinx, docname: str, source: list[str]) -> None:
    """Highlight a notebook's cells as IPython (``!lepton-lab ...`` shell lines included) when
    the notebook was written without ``language_info`` (one saved by a script, not by a
    kernel): myst-nb otherwise falls back to plain Python, which cannot lex them."""
    if not str(app.env.doc2path(docname)).endswith(".ipynb"):
        return
    try:
        nb = json.loads(source[0])
    except ValueError:
        return
    info = nb.setdefault("metadata", {}).setdefault("language_info", {})
    language = nb["metadata"].get("kernelspec", {}).get("language", "python")
    if language == "python" and "pygments_lexer" not in info:
        info.setdefault("name", "python")
        info["pygments_lexer"] = "ipython3"
        source[0] = json.dumps(nb)


def always_reread(app: Sphinx, env: Any, added: set, changed: set, removed: set) -> list[str]:
    """sphinx-argparse records no dependency on the parser's modules: the CLI page is read
    on every build (it takes milliseconds), so an edited help text always shows."""
    return ["reference/cli"] if "reference/cli" in env.found_docs else []


def write_openapi(app: Sphinx) -> None:
    from lepton_lab.server.openapi import openapi_document

    GENERATED.mkdir(parents=True, exist_ok=True)
    target = GENERATED / "openapi.json"
    text = json.dumps(openapi_document(), indent=2)
    # rewritten only when it changed, so the REST page is not re-read on every build
    if not target.exists() or target.read_text() != text:
        target.write_text(text)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("lepton-traits", TraitsDirective)
    app.add_directive("lepton-cluster-aliases", ClusterAliasesDirective)
    app.add_directive("lepton-demos", DemosDirective)
    app.add_directive("lepton-openapi", OpenAPIDirective)
    app.connect("builder-inited", write_openapi)
    app.connect("source-read", ipython_lexer)
    app.connect("env-get-outdated", always_reread)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}


# -- the REST reference ------------------------------------------------------------------------
# sphinxcontrib-openapi (0.10) renders this OpenAPI 3.1 document's paths, but shows no request or
# response schema (only examples with "string" in every field, and with `:examples:` its
# response examples come out as literal ".. sourcecode:: http" text), so the fields of the
# pydantic models, their limits and descriptions would be missing. This directive renders the
# document itself: every operation with its parameters, body and answers, then every schema as
# a table of its fields.


def _text(value: Any) -> str:
    """A description as rST: `code` spans as literals, everything else as plain text."""
    parts = " ".join(str(value).split()).split("`")
    if len(parts) % 2 == 0:  # an unpaired backquote: all plain
        return _plain("`".join(parts)) or ""
    return "".join(
        f"``{part}``" if i % 2 and part else (_plain(part) or "") for i, part in enumerate(parts)
    )


def _schema_type(schema: dict[str, Any]) -> str:
    """A schema as words, with links to the named schemas it refers to."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"`{name} <#openapi-schema-{name.lower()}>`__"
    if "anyOf" in schema or "oneOf" in schema:
        options = schema.get("anyOf") or schema.get("oneOf")
        kinds = [_schema_type(s) for s in options if s.get("type") != "null"]
        nullable = any(s.get("type") == "null" for s in options)
        return " or ".join(kinds) + (" or null" if nullable else "")
    if "enum" in schema:
        return "one of " + ", ".join(f"``{json.dumps(v)}``" for v in schema["enum"])
    if "const" in schema:
        return f"``{json.dumps(schema['const'])}``"
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array":
        return "array of " + _schema_type(schema.get("items", {}))
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return "object of " + _schema_type(schema["additionalProperties"])
    if schema.get("format"):
        return f"{kind} ({schema['format']})"
    return kind


def _limits(schema: dict[str, Any]) -> str:
    words = {
        "minimum": ">= {}",
        "exclusiveMinimum": "> {}",
        "maximum": "<= {}",
        "exclusiveMaximum": "< {}",
        "minLength": "at least {} characters",
        "maxLength": "at most {} characters",
        "minItems": "at least {} items",
        "maxItems": "at most {} items",
        "pattern": "matches ``{}``",
    }
    found = [fmt.format(schema[key]) for key, fmt in words.items() if key in schema]
    for option in schema.get("anyOf", []):
        found += [fmt.format(option[key]) for key, fmt in words.items() if key in option]
    return "; ".join(found)


def _table(header: list[str], rows: list[list[str]], widths: str) -> list[str]:
    lines = [".. list-table::", "   :header-rows: 1", f"   :widths: {widths}", ""]
    for row in [header, *rows]:
        lines.append(f"   * - {row[0] or ' '}")
        lines += [f"     - {cell or ' '}" for cell in row[1:]]
    return lines + [""]


def _fields(schema: dict[str, Any]) -> list[str]:
    properties = schema.get("properties", {})
    if not properties:
        return [f"{_schema_type(schema)}", ""]
    required = set(schema.get("required", []))
    rows = []
    for name, prop in properties.items():
        notes = [_text(prop["description"])] if prop.get("description") else []
        limits = _limits(prop)
        if limits:
            notes.append(limits)
        if "default" in prop and name not in required:
            notes.append(f"default ``{json.dumps(prop['default'])}``")
        rows.append(
            [f"``{name}``", _schema_type(prop), "yes" if name in required else "", "; ".join(notes)]
        )
    return _table(["field", "type", "required", "notes"], rows, "20 25 10 45")


def _heading(title: str, char: str) -> list[str]:
    return [title, char * max(len(title), 4), ""]


def openapi_rst(doc: dict[str, Any]) -> str:
    components = doc.get("components", {})
    answers = components.get("responses", {})
    groups: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, methods in doc["paths"].items():
        group = path.removeprefix("/lepton-lab/api/").split("/")[0] or "api"
        for method, op in methods.items():
            groups.setdefault(group, []).append((path, method, op))
    lines: list[str] = []
    for group, ops in groups.items():
        lines += _heading(group, "-")
        for path, method, op in ops:
            lines += _heading(f"{method.upper()} {path}", "~")
            if op.get("summary"):
                lines += [_text(op["summary"]), ""]
            params = op.get("parameters", [])
            if params:
                rows = [
                    [
                        f"``{p['name']}``",
                        p["in"],
                        _schema_type(p.get("schema", {})),
                        "; ".join(
                            x
                            for x in (
                                _text(p.get("description", "")),
                                _limits(p.get("schema", {})),
                                "required" if p.get("required") else "",
                            )
                            if x
                        ),
                    ]
                    for p in params
                ]
                lines += ["**Parameters**", ""]
                lines += _table(["name", "in", "type", "notes"], rows, "20 10 25 45")
            body = op.get("requestBody", {}).get("content", {})
            for media, content in body.items():
                lines += [f"**Body** ({media}): {_schema_type(content.get('schema', {}))}", ""]
            lines += ["**Answers**", ""]
            for status, answer in op.get("responses", {}).items():
                if "$ref" in answer:
                    answer = answers[answer["$ref"].rsplit("/", 1)[-1]]
                text = f"- ``{status}``: {_text(answer.get('description', ''))}"
                for media, content in answer.get("content", {}).items():
                    text += f" ({media}: {_schema_type(content.get('schema', {}))})"
                lines.append(text)
            lines.append("")
    lines += _heading("Schemas", "-")
    for name, schema in components.get("schemas", {}).items():
        lines += [f".. _openapi-schema-{name.lower()}:", ""]
        lines += _heading(name, "~")
        if schema.get("description"):
            lines += [_text(schema["description"]), ""]
        lines += _fields(schema)
    return "\n".join(lines)


class OpenAPIDirective(_RstDirective):
    """``{lepton-openapi}``: the document of :func:`lepton_lab.server.openapi.openapi_document`."""

    def run(self) -> list[nodes.Node]:
        from lepton_lab.server import openapi

        self.env.note_dependency(openapi.__file__)
        return self.parse(openapi_rst(openapi.openapi_document()))
