"""Killing the router with -9 under a client's stream, and starting it again: what the crash
tests (billing's journal, memory's turns) share."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import time

import httpx
import orjson

from switchboard_stack.processes import grpc_serving

GATEWAY = "switchboard.gateway.v1.GatewayService"


def kill_router(stack) -> None:
    router = stack.services["router"]
    os.kill(router.pid, signal.SIGKILL)
    router.proc.wait(10)


def restart_router(stack) -> None:
    router = stack.services["router"]
    router.start()
    router.wait_ready(grpc_serving(stack.config.target("router"), GATEWAY), 60)


def kill_mid_stream(stack, body: dict, key: str, pieces: int = 20) -> tuple[str, list[str]]:
    """Streams the chat `body` with `key` and kills the router once `pieces` content chunks
    have reached the client: (the request's id, the content of each chunk it received)."""
    received: list[str] = []

    def read_until_cut() -> str:
        with httpx.stream("POST", stack.base_url + "/chat/completions", json=body, timeout=30,
                          headers={"authorization": f"Bearer {key}"}) as resp:
            assert resp.status_code == 200
            try:
                for line in resp.iter_lines():
                    if line.startswith("data: {"):
                        choices = orjson.loads(line[6:])["choices"]
                        if choices and "content" in choices[0]["delta"]:
                            received.append(choices[0]["delta"]["content"] or "")
            except httpx.HTTPError:
                pass  # the router died under us
        return resp.headers["x-request-id"]

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        cut = pool.submit(read_until_cut)
        deadline = time.monotonic() + 10
        while len(received) < pieces and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(received) >= pieces
        kill_router(stack)
        return cut.result(timeout=30), received
