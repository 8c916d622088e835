"""The official-client reference: bitfinex-api-py (bfxapi) cancelling funding offers on the simulator.

``python -m bench._official URL KEY SECRET`` connects and authenticates (filter funding + notify, as bfxd
does), prints ``READY``, then reads commands on stdin: ``RUN id id ...`` runs one sequential cancel per id,
each timed from ``await client.wss.inputs.cancel_funding_offer(id)`` to its ``foc-req-notification``, and
prints ``RESULT [ns, ...]``; ``QUIT`` (or EOF) ends it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
import warnings


async def main(url: str, key: str, secret: str) -> None:
    warnings.simplefilter("ignore")
    from bfxapi import Client

    client = Client(api_key=key, api_secret=secret, wss_host=url, filters=["funding", "notify"])
    logging.getLogger("bfxapi").setLevel(logging.WARNING)
    loop = asyncio.get_running_loop()
    authenticated = loop.create_future()
    waiting: dict[int, asyncio.Future] = {}

    @client.wss.on("authenticated")
    def on_auth(_data) -> None:  # type: ignore[no-untyped-def]
        if not authenticated.done():
            authenticated.set_result(None)

    @client.wss.on("foc-req-notification")
    def on_notification(notification) -> None:  # type: ignore[no-untyped-def]
        future = waiting.pop(notification.data.id, None)
        if future is not None and not future.done():
            future.set_result(notification.status)

    runner = asyncio.create_task(client.wss.start())
    await asyncio.wait_for(authenticated, 30)
    print("READY", flush=True)
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line or line.startswith("QUIT"):
            break
        ids = [int(x) for x in line.split()[1:]]
        results = []
        for offer_id in ids:
            started = time.perf_counter_ns()
            future = waiting[offer_id] = loop.create_future()
            await client.wss.inputs.cancel_funding_offer(id=offer_id)
            status = await asyncio.wait_for(future, 10)
            results.append(time.perf_counter_ns() - started)
            if status != "SUCCESS":
                raise RuntimeError(f"official client: cancel {offer_id}: {status}")
        print("RESULT " + json.dumps(results), flush=True)
    await client.wss.close()
    runner.cancel()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
