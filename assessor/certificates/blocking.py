"""Run one of pyHanko's coroutines to completion from plain synchronous code, whatever thread calls it."""

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run_to_completion(coroutine: Coroutine[Any, Any, T]) -> T:
    """asyncio.run, except that a thread already running an event loop (an async server, a browser driver)
    hands the coroutine to a short-lived thread of its own instead of failing."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pyhanko") as pool:
        return pool.submit(asyncio.run, coroutine).result()
