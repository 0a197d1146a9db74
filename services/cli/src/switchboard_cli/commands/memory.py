"""`switchboard memory`: conversation sessions and RAG collections (/api/memory)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import RenderableType

from switchboard_cli import output
from switchboard_cli.api import segment
from switchboard_cli.output import NONE, json_option, when
from switchboard_cli.session import Session

MAX_PAGE_SIZE = 1000
_PAGE_SIZE = click.option("--page-size", type=click.IntRange(1, MAX_PAGE_SIZE), default=100,
                          show_default=True, metavar="N", help="Items fetched per request.")
_LIMIT = click.option("--limit", type=click.IntRange(min=1), metavar="N",
                      help="At most N (default: every one).")


def _tenant(tenant_id: str | None) -> dict[str, Any]:
    return {"tenant_id": tenant_id} if tenant_id else {}


_TENANT = click.option("--tenant", "tenant_id", metavar="ID",
                       help="Another tenant's (admin keys only; default: the key's own).")


@click.group("memory")
def command() -> None:
    """Conversation memory by session id, and RAG collections."""


# --- sessions ----------------------------------------------------------------------------------


def session_view(s: dict[str, Any]) -> RenderableType:
    rows = [("Session", s["session_id"]), ("Tenant", s.get("tenant_id") or NONE),
            ("Started by", s.get("key_id") or NONE), ("Turns", str(s.get("turn_count", 0))),
            ("Updated", when(s.get("updated_at"))), ("Expires", when(s.get("expires_at")))]
    for m in s.get("messages") or ():
        content = m.get("content")
        text = content if isinstance(content, str) else json.dumps(content)
        rows.append((m.get("role", "?"), text if len(text) <= 200 else text[:200] + " …"))
    return output.details(rows)


def sessions_view(sessions: list[dict[str, Any]]) -> RenderableType:
    rows = ((s["session_id"], str(s.get("turn_count", 0)), s.get("key_id") or NONE,
             when(s.get("updated_at"), seconds=False)) for s in sessions)
    return output.listing(("SESSION", "TURNS", "STARTED BY", "UPDATED"), rows, empty="No sessions.")


@command.group("sessions")
def sessions() -> None:
    """Stored conversations (a request's session_id)."""


@sessions.command("list")
@click.option("--key-id", help="Only the sessions this key started.")
@_TENANT
@_LIMIT
@_PAGE_SIZE
@json_option
@click.pass_obj
def list_sessions(session: Session, key_id: str | None, tenant_id: str | None, limit: int | None,
                  page_size: int) -> None:
    """List sessions, most recently updated first."""
    params = {**_tenant(tenant_id), **({"key_id": key_id} if key_id else {})}
    found = list(session.api().pages("/api/memory/sessions", "sessions", params,
                                     page_size=page_size, limit=limit))
    output.emit(session, found, sessions_view)


@sessions.command("show")
@click.argument("session_id")
@_TENANT
@json_option
@click.pass_obj
def show_session(session: Session, session_id: str, tenant_id: str | None) -> None:
    """Show a session's stored messages and turns."""
    output.emit(session, session.api().get(f"/api/memory/sessions/{segment(session_id)}",
                                           _tenant(tenant_id)), session_view)


@sessions.command("delete")
@click.argument("session_id")
@_TENANT
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (needed when not on a terminal).")
@json_option
@click.pass_obj
def delete_session(session: Session, session_id: str, tenant_id: str | None, yes: bool) -> None:
    """Delete a session and every turn in it."""
    output.confirm(f"Delete session {session_id}", yes)
    path = f"/api/memory/sessions/{segment(session_id)}"
    if tenant_id:
        path += f"?tenant_id={segment(tenant_id)}"
    output.emit(session, session.api().delete(path),
                lambda r: f"Deleted session {session_id} ({r.get('turns_deleted', 0)} turns).")


# --- collections -------------------------------------------------------------------------------


def collection_view(c: dict[str, Any]) -> RenderableType:
    return output.details([
        ("Name", c["name"]), ("Tenant", c.get("tenant_id") or NONE),
        ("Documents", output.number(c.get("documents", 0))),
        ("Chunks", output.number(c.get("chunks", 0))),
        ("Embedding model", c.get("embedding_model") or NONE),
        ("Chunk tokens", f"{c.get('chunk_tokens', NONE)} (overlap {c.get('chunk_overlap_tokens', 0)})"),
        ("Created", when(c.get("created_at"))), ("Updated", when(c.get("updated_at")))])


def collections_view(collections: list[dict[str, Any]]) -> RenderableType:
    rows = ((c["name"], output.number(c.get("documents", 0)), output.number(c.get("chunks", 0)),
             c.get("embedding_model") or NONE) for c in collections)
    return output.listing(("NAME", "DOCUMENTS", "CHUNKS", "EMBEDDING MODEL"), rows,
                          empty="No collections.")


@command.group("collections")
def collections() -> None:
    """RAG collections (a request's rag_collection) and their documents."""


@collections.command("create")
@click.argument("name")
@click.option("--embedding-model", help="A model the gateway serves on /v1/embeddings (default: "
                                        "the embedded offline model).")
@click.option("--chunk-tokens", type=click.IntRange(min=1), help="Tokens per chunk.")
@click.option("--chunk-overlap-tokens", type=click.IntRange(min=0), help="Tokens shared by neighbours.")
@_TENANT
@json_option
@click.pass_obj
def create_collection(session: Session, name: str, embedding_model: str | None,
                      chunk_tokens: int | None, chunk_overlap_tokens: int | None,
                      tenant_id: str | None) -> None:
    """Create a collection."""
    body: dict[str, Any] = {"name": name, **_tenant(tenant_id)}
    for field, value in (("embedding_model", embedding_model), ("chunk_tokens", chunk_tokens),
                         ("chunk_overlap_tokens", chunk_overlap_tokens)):
        if value is not None:
            body[field] = value
    output.emit(session, session.api().post("/api/memory/collections", body), collection_view)


@collections.command("list")
@_TENANT
@_LIMIT
@_PAGE_SIZE
@json_option
@click.pass_obj
def list_collections(session: Session, tenant_id: str | None, limit: int | None,
                     page_size: int) -> None:
    """List collections, by name."""
    found = list(session.api().pages("/api/memory/collections", "collections", _tenant(tenant_id),
                                     page_size=page_size, limit=limit))
    output.emit(session, found, collections_view)


@collections.command("show")
@click.argument("name")
@json_option
@click.pass_obj
def show_collection(session: Session, name: str) -> None:
    """Show a collection's size and settings."""
    output.emit(session, session.api().get(f"/api/memory/collections/{segment(name)}"),
                collection_view)


@collections.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (needed when not on a terminal).")
@json_option
@click.pass_obj
def delete_collection(session: Session, name: str, yes: bool) -> None:
    """Delete a collection with every document and chunk in it."""
    output.confirm(f"Delete collection {name} and all its documents", yes)
    output.emit(session, session.api().delete(f"/api/memory/collections/{segment(name)}"),
                lambda _: f"Deleted collection {name}.")


@collections.command("add")
@click.argument("name")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--metadata", "metadata", multiple=True, metavar="KEY=VALUE",
              help="Metadata for every document added (repeatable).")
@json_option
@click.pass_obj
def add_documents(session: Session, name: str, files: tuple[Path, ...],
                  metadata: tuple[str, ...]) -> None:
    """Add text or markdown files as documents (each file's name is its id; one with the same
    id is replaced)."""
    meta = dict(_pair(item) for item in metadata)
    documents = [{"id": f.name, "text": f.read_text(encoding="utf-8"),
                  **({"metadata": meta} if meta else {})} for f in files]
    answer = session.api().post(f"/api/memory/collections/{segment(name)}/documents",
                                {"documents": documents})
    output.emit(session, answer, _ingestion_view)


def _ingestion_view(answer: dict[str, Any]) -> str:
    ingestion = answer.get("ingestion") or {}
    state = str(ingestion.get("state", "")).removeprefix("INGESTION_STATE_").lower() or "unknown"
    line = (f"Ingestion {ingestion.get('ingestion_id', '')}: {state}, "
            f"{ingestion.get('documents_done', 0)}/{ingestion.get('documents_total', 0)} documents, "
            f"{answer.get('chunks_added', 0)} chunks added.")
    if ingestion.get("error"):
        line += f" {ingestion['error']}"
    return line


def _pair(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--metadata")
    return key, value


@collections.command("query")
@click.argument("name")
@click.argument("text")
@click.option("--top-k", type=click.IntRange(1, 1000), default=5, show_default=True)
@json_option
@click.pass_obj
def query(session: Session, name: str, text: str, top_k: int) -> None:
    """The chunks a request with this collection would get for TEXT, best first."""
    answer = session.api().post(f"/api/memory/collections/{segment(name)}/query",
                                {"query": text, "top_k": top_k})
    output.emit(session, answer, _hits_view)


def _hits_view(answer: dict[str, Any]) -> RenderableType:
    hits = answer.get("chunks") or []
    rows = ((h.get("chunk_id", ""), f"{float(h.get('score', 0)):.3f}",
             (h.get("text") or "")[:80].replace("\n", " ")) for h in hits)
    return output.listing(("CHUNK", "SCORE", "TEXT"), rows, empty="No chunks matched.")
