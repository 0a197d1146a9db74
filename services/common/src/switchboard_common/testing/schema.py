"""The scenarios every service with a database passes for its alembic history, written once.

A service's test module sets `HISTORY` (its `migrations.History`) and `METADATA` (its tables)
and imports these tests, so pytest collects them there; they need the `empty_database_url`
fixture (switchboard_common.testing.fixtures).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import zipfile

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text

from switchboard_common import db, migrations


def _head(history: migrations.History) -> str:
    config = Config()
    config.set_main_option("script_location", str(history.location))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None, f"no revisions under {history.location}"
    return head


def _base(history: migrations.History) -> str:
    config = Config()
    config.set_main_option("script_location", str(history.location))
    base = ScriptDirectory.from_config(config).get_base()
    assert base is not None, f"{history.location} has no revision"
    return base


async def _recorded_revisions(url: str, history: migrations.History) -> list[str]:
    engine = db.create_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text(f"SELECT version_num FROM {history.version_table}"))
            return [row[0] for row in rows]
    finally:
        await engine.dispose()


async def test_migrations_make_exactly_the_declared_tables(request, empty_database_url):
    history, metadata = request.module.HISTORY, request.module.METADATA
    await migrations.upgrade(empty_database_url, history)
    assert await migrations.differences(empty_database_url, history, metadata) == []
    assert await _recorded_revisions(empty_database_url, history) == [_head(history)]


async def test_concurrent_starts_migrate_once(request, empty_database_url):
    history, metadata = request.module.HISTORY, request.module.METADATA
    # Replicas starting together, each with its own engine: none fails, the schema is made once.
    await asyncio.gather(*(migrations.upgrade(empty_database_url, history) for _ in range(4)))
    await migrations.upgrade(empty_database_url, history)  # and a restart finds nothing to do
    assert await migrations.differences(empty_database_url, history, metadata) == []
    assert await _recorded_revisions(empty_database_url, history) == [_head(history)]


async def test_a_database_made_by_create_all_is_adopted(request, empty_database_url):
    history, metadata = request.module.HISTORY, request.module.METADATA
    # What a service's create_all made before migrations: the first revision's tables, unrecorded.
    await migrations.upgrade(empty_database_url, history, _base(history))
    engine = db.create_engine(empty_database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP TABLE {history.version_table}"))
    finally:
        await engine.dispose()
    await migrations.upgrade(empty_database_url, history)
    assert await _recorded_revisions(empty_database_url, history) == [_head(history)]
    assert await migrations.differences(empty_database_url, history, metadata) == []


def test_the_wheel_ships_the_migrations(request, tmp_path):
    history = request.module.HISTORY
    package = history.location.parent  # src/switchboard_<svc>
    project = package.parents[1]  # services/<svc>, holding pyproject.toml
    # Build from a copy: setuptools writes build/ and egg-info beside the sources it builds.
    copy = tmp_path / project.name
    copy.mkdir()
    shutil.copy(project / "pyproject.toml", copy)
    shutil.copytree(package, copy / "src" / package.name,
                    ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps",
                    "--quiet", "--wheel-dir", str(tmp_path / "dist"), str(copy)], check=True)
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    wanted = {f"{package.name}/{path.relative_to(package).as_posix()}"
              for path in history.location.rglob("*")
              if path.is_file() and path.suffix in (".py", ".mako")}
    assert wanted and wanted <= shipped, sorted(wanted - shipped)
    assert f"{package.name}/migrations/env.py" in shipped
