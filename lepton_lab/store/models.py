"""Queries of the model registry: versions, artifacts, aliases, evaluations.

Numbers count up per name; two processes registering the same name at once are kept apart by
the unique (name, version) constraint, and the loser takes the next number. Rows of one version
are written and deleted in one transaction each, so a reader never sees half a version.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lepton_lab.store.schema import (
    ModelAliasRow,
    ModelArtifactRow,
    ModelEvaluationRow,
    ModelNameRow,
    ModelVersionRow,
)


class UnknownModelVersion(KeyError):
    """No such model name, version or alias."""

    def __str__(self) -> str:
        return str(self.args[0])


class _Raced(Exception):
    """Another transaction took the version number first."""


class ModelQueries:
    """A part of :class:`~lepton_lab.store.Store`, which gives it ``session()``."""

    def session(self) -> Session:
        raise NotImplementedError

    # -- writing ---------------------------------------------------------------------------
    def add_model_version(
        self, name: str, fields: dict[str, Any], artifacts: Iterable[dict[str, Any]]
    ) -> dict[str, Any]:
        """Insert a version with its artifacts, atomically, numbered one past the last number
        ``name`` gave (kept in ``model_names``, so a deleted number is not given again).

        The number is taken with a compare-and-set on that row; a process that loses the race
        (or the unique (name, version) constraint) tries again with the next number.
        """
        artifacts = list(artifacts)
        for _ in range(50):
            try:
                with self.session() as s, s.begin():
                    last = s.scalar(
                        select(ModelNameRow.last_version).where(ModelNameRow.name == name)
                    )
                    if last is None:
                        last = s.scalar(
                            select(func.max(ModelVersionRow.version)).where(
                                ModelVersionRow.name == name
                            )
                        )
                        s.add(ModelNameRow(name=name, last_version=last or 0))
                        s.flush()
                    number = (last or 0) + 1
                    taken = s.execute(
                        update(ModelNameRow)
                        .where(ModelNameRow.name == name, ModelNameRow.last_version == (last or 0))
                        .values(last_version=number)
                    )
                    if taken.rowcount != 1:
                        raise _Raced
                    row = ModelVersionRow(name=name, version=number, **fields)
                    s.add(row)
                    s.flush()
                    s.add_all(ModelArtifactRow(version_id=row.id, **a) for a in artifacts)
            except (IntegrityError, _Raced):
                continue  # another process took this number: take the next
            return self.model_version(name, number)
        raise RuntimeError(f"could not number a new version of {name!r}: too many at once")

    def model_locations(self, name: str) -> set[str]:
        """Where the versions of ``name`` keep their files (what a sweep must not remove)."""
        with self.session() as s:
            return set(
                s.scalars(select(ModelVersionRow.location).where(ModelVersionRow.name == name))
            )

    def set_model_aliases(self, name: str, version: int, aliases: Iterable[str]) -> None:
        """Make exactly ``aliases`` point at ``version``: each moves here from wherever it
        pointed (one UPDATE or INSERT), and this version's other aliases are removed."""
        wanted = list(dict.fromkeys(aliases))
        with self.session() as s, s.begin():
            row = self._version_row(s, name, version)
            s.execute(
                delete(ModelAliasRow).where(
                    ModelAliasRow.version_id == row.id, ModelAliasRow.alias.not_in(wanted)
                )
            )
            for alias in wanted:
                moved = s.execute(
                    update(ModelAliasRow)
                    .where(ModelAliasRow.name == name, ModelAliasRow.alias == alias)
                    .values(version_id=row.id)
                )
                if moved.rowcount == 0:
                    s.add(ModelAliasRow(name=name, alias=alias, version_id=row.id))

    def add_model_alias(self, name: str, version: int, alias: str) -> None:
        """Point ``alias`` at ``version`` (moving it from another version), keeping the rest."""
        with self.session() as s, s.begin():
            row = self._version_row(s, name, version)
            moved = s.execute(
                update(ModelAliasRow)
                .where(ModelAliasRow.name == name, ModelAliasRow.alias == alias)
                .values(version_id=row.id)
            )
            if moved.rowcount == 0:
                s.add(ModelAliasRow(name=name, alias=alias, version_id=row.id))

    def remove_model_alias(self, name: str, alias: str) -> bool:
        with self.session() as s, s.begin():
            gone = s.execute(
                delete(ModelAliasRow).where(
                    ModelAliasRow.name == name, ModelAliasRow.alias == alias
                )
            )
            return bool(gone.rowcount)

    def update_model_tags(self, name: str, version: int, tags: dict[str, str | None]) -> None:
        """Merge ``tags`` into the version's tags; a ``None`` value removes that tag."""
        with self.session() as s, s.begin():
            row = self._version_row(s, name, version)
            merged = dict(row.tags or {})
            for key, value in tags.items():
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
            row.tags = merged

    def set_model_mlflow_version(self, name: str, version: int, mlflow_version: str) -> None:
        with self.session() as s, s.begin():
            self._version_row(s, name, version).mlflow_version = mlflow_version

    def add_model_evaluation(
        self,
        name: str,
        version: int,
        metrics: dict[str, float],
        dataset: str = "",
        job_id: str | None = None,
    ) -> dict[str, Any]:
        with self.session() as s, s.begin():
            row = self._version_row(s, name, version)
            evaluation = ModelEvaluationRow(
                version_id=row.id, metrics=metrics, dataset=dataset, job_id=job_id, time=time.time()
            )
            s.add(evaluation)
            s.flush()
            return evaluation.to_dict()

    def delete_model_version(self, name: str, version: int) -> None:
        """Remove the version's rows (artifacts, aliases, evaluations) in one transaction."""
        with self.session() as s, s.begin():
            row = self._version_row(s, name, version)
            # explicit, not only ON DELETE CASCADE: a SQLite connection opened without the
            # foreign-keys pragma (another tool) would otherwise leave them behind
            for table in (ModelArtifactRow, ModelAliasRow, ModelEvaluationRow):
                s.execute(delete(table).where(table.version_id == row.id))
            s.delete(row)

    # -- reading ---------------------------------------------------------------------------
    def _version_row(self, s: Session, name: str, version: int) -> ModelVersionRow:
        row = s.scalar(
            select(ModelVersionRow).where(
                ModelVersionRow.name == name, ModelVersionRow.version == version
            )
        )
        if row is None:
            if s.scalar(select(ModelVersionRow.id).where(ModelVersionRow.name == name).limit(1)):
                raise UnknownModelVersion(f"model {name!r} has no version {version}")
            raise UnknownModelVersion(f"no model named {name!r}")
        return row

    def _records(self, s: Session, rows: list[ModelVersionRow]) -> list[dict[str, Any]]:
        ids = [r.id for r in rows]
        artifacts: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
        aliases: dict[int, list[str]] = {i: [] for i in ids}
        evaluations: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
        if ids:
            for a in s.scalars(
                select(ModelArtifactRow)
                .where(ModelArtifactRow.version_id.in_(ids))
                .order_by(ModelArtifactRow.id)
            ):
                artifacts[a.version_id].append(a.to_dict())
            for al in s.scalars(
                select(ModelAliasRow)
                .where(ModelAliasRow.version_id.in_(ids))
                .order_by(ModelAliasRow.alias)
            ):
                aliases[al.version_id].append(al.alias)
            for e in s.scalars(
                select(ModelEvaluationRow)
                .where(ModelEvaluationRow.version_id.in_(ids))
                .order_by(ModelEvaluationRow.id)
            ):
                evaluations[e.version_id].append(e.to_dict())
        out = []
        for r in rows:
            record = r.to_dict()
            lineage = record.pop("lineage") or {}
            record["git"] = lineage.get("git")
            record["versions"] = lineage.get("versions", {})
            record["artifacts"] = artifacts[r.id]
            record["aliases"] = aliases[r.id]
            record["evaluations"] = evaluations[r.id]
            out.append(record)
        return out

    def model_version(self, name: str, version: int) -> dict[str, Any]:
        with self.session() as s:
            return self._records(s, [self._version_row(s, name, version)])[0]

    def model_versions(self, name: str) -> list[dict[str, Any]]:
        """Every version of ``name``, newest first (an empty list for an unknown name)."""
        with self.session() as s:
            rows = list(
                s.scalars(
                    select(ModelVersionRow)
                    .where(ModelVersionRow.name == name)
                    .order_by(ModelVersionRow.version.desc())
                )
            )
            return self._records(s, rows)

    def latest_model_version(self, name: str) -> int:
        with self.session() as s:
            newest = s.scalar(
                select(func.max(ModelVersionRow.version)).where(ModelVersionRow.name == name)
            )
        if newest is None:
            raise UnknownModelVersion(f"no model named {name!r}")
        return int(newest)

    def model_alias(self, name: str, alias: str) -> int:
        """The version number ``name@alias`` points at."""
        with self.session() as s:
            version = s.scalar(
                select(ModelVersionRow.version)
                .join(ModelAliasRow, ModelAliasRow.version_id == ModelVersionRow.id)
                .where(ModelAliasRow.name == name, ModelAliasRow.alias == alias)
            )
            if version is None:
                if not s.scalar(
                    select(ModelVersionRow.id).where(ModelVersionRow.name == name).limit(1)
                ):
                    raise UnknownModelVersion(f"no model named {name!r}")
                raise UnknownModelVersion(f"model {name!r} has no alias {alias!r}")
            return int(version)

    def model_aliases(self, name: str) -> dict[str, int]:
        with self.session() as s:
            rows = s.execute(
                select(ModelAliasRow.alias, ModelVersionRow.version)
                .join(ModelVersionRow, ModelAliasRow.version_id == ModelVersionRow.id)
                .where(ModelAliasRow.name == name)
                .order_by(ModelAliasRow.alias)
            )
            return {alias: version for alias, version in rows}

    def model_summaries(self) -> list[dict[str, Any]]:
        """One entry per name: framework, count, newest version, its metrics, aliases."""
        with self.session() as s:
            newest = (
                select(
                    ModelVersionRow.name,
                    func.max(ModelVersionRow.version).label("latest"),
                    func.count().label("count"),
                )
                .group_by(ModelVersionRow.name)
                .subquery()
            )
            rows = s.execute(
                select(ModelVersionRow, newest.c.count)
                .join(
                    newest,
                    (ModelVersionRow.name == newest.c.name)
                    & (ModelVersionRow.version == newest.c.latest),
                )
                .order_by(ModelVersionRow.created_at.desc())
            ).all()
            aliases: dict[str, dict[str, int]] = {}
            for name, alias, version in s.execute(
                select(ModelAliasRow.name, ModelAliasRow.alias, ModelVersionRow.version).join(
                    ModelVersionRow, ModelAliasRow.version_id == ModelVersionRow.id
                )
            ):
                aliases.setdefault(name, {})[alias] = version
        return [
            {
                "name": row.name,
                "framework": row.framework,
                "versions": count,
                "latest_version": row.version,
                "updated_at": row.created_at,
                "metrics": row.metrics or {},
                "aliases": aliases.get(row.name, {}),
            }
            for row, count in rows
        ]

    def model_refs(
        self, run_ids: Iterable[str] = (), job_ids: Iterable[str] = ()
    ) -> dict[str, list[dict[str, Any]]]:
        """The versions registered by each run id and job id: ``{id: [{name, version}]}``."""
        runs, jobs = list(run_ids), list(job_ids)
        out: dict[str, list[dict[str, Any]]] = {}
        if not runs and not jobs:
            return out
        with self.session() as s:
            query = select(
                ModelVersionRow.run_id,
                ModelVersionRow.job_id,
                ModelVersionRow.name,
                ModelVersionRow.version,
            ).order_by(ModelVersionRow.id)
            conditions = []
            if runs:
                conditions.append(ModelVersionRow.run_id.in_(runs))
            if jobs:
                conditions.append(ModelVersionRow.job_id.in_(jobs))
            for run_id, job_id, name, version in s.execute(query.where(or_(*conditions))):
                ref = {"name": name, "version": version}
                if run_id in runs:
                    out.setdefault(run_id, []).append(ref)
                if job_id in jobs:
                    out.setdefault(job_id, []).append(ref)
        return out
