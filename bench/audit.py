"""6. The audit trail: what sealing and writing ahead cost, and how fast ``bfxd audit show``/``verify`` read.

Cost (in-process, the real sink and structlog chain, stdout a Unix stream socket drained by a thread, as
journald's stdout stream is):
- ``seal_us_per_line``: a JSON line with ``run``/``seq``/``chain`` minus the same line unsealed;
- write-ahead: a batch of frame.sent lines logged *and flushed* before its bytes go out (what the connection
  writer does) minus the same lines left to the batched writer (flushed every 8 batches, as the idle flush
  would), per batch of 1 frame (a lone cancel: one extra write(2)) and per frame in a batch of 64 (a
  cancel_all). Best of 5 (noise only adds).

Reading: a synthetic log of sealed lines shaped like a busy daemon's (cancels from many clients, the book's
changes), ``--quick`` 50 MB, else 1 GB; wall time of ``bfxd audit show --offer`` (one offer's story, a fresh
process) and ``bfxd audit verify`` over it. The file is fresh in the page cache: this is CPU, not disk.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import time

import orjson
import structlog

from bench._harness import PYTHON, Workdir, child_env


def _drained_socket() -> tuple[io.TextIOWrapper, subprocess.Popen, socket.socket]:
    """A Unix stream socket read by another process (``cat``), as journald reads a service's stdout: a thread
    of ours would contend for the GIL and blur the figures."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    reader = subprocess.Popen(["cat"], stdin=theirs, stdout=subprocess.DEVNULL)
    theirs.close()
    return io.TextIOWrapper(ours.makefile("wb"), encoding="utf-8", write_through=False), reader, ours


def _per_line_us(audit: bool, lines: int) -> float:
    """µs per info line through structlog into the batched sink (as under ``bfxd run``), sealed or not."""
    from bfxd import logconfig

    stream, _reader, sock = _drained_socket()
    logconfig.configure_logging(fmt="json", level="info", stream=stream,
                                audit=logconfig.AuditSettings() if audit else None)
    sink = logconfig._sink  # batched_log_writes needs trio; its sink state is all that matters here
    sink.batch(64 * 1024)
    log = structlog.get_logger()
    started = time.perf_counter()
    for i in range(lines):
        log.info("frame.sent", kind="foc", generation=1, offer_id=41238934 + i, request_ids=[f"7.{i}"])
    sink.flush()
    elapsed = time.perf_counter() - started
    sink.write_through()
    logconfig.close_audit_trail()
    stream.close()
    sock.close()
    _reader.wait()
    return elapsed / lines * 1e6


def _write_ahead_us(batch: int, batches: int, ahead: bool) -> float:
    """µs per batch: log the batch's lines (inside batched writes), flush them at once if *ahead*."""
    from bfxd import logconfig

    stream, _reader, sock = _drained_socket()
    logconfig.configure_logging(fmt="json", level="info", stream=stream, audit=logconfig.AuditSettings())
    sink = logconfig._sink  # batched_log_writes needs trio; its sink state is all that matters here
    sink.batch(64 * 1024)
    log = structlog.get_logger()
    started = time.perf_counter()
    for b in range(batches):
        for i in range(batch):
            log.info("frame.sent", kind="foc", generation=1, offer_id=41238934 + i, request_ids=[f"7.{b}"])
        if ahead:
            logconfig.flush_log()
        elif b % 8 == 7:
            sink.flush()  # batched: the idle flush writes a few batches together
    sink.flush()
    elapsed = time.perf_counter() - started
    sink.write_through()
    logconfig.close_audit_trail()
    stream.close()
    sock.close()
    _reader.wait()
    return elapsed / batches * 1e6


def _synthetic_log(path, target_bytes: int) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """A sealed log of about *target_bytes*; returns (lines, the offer id whose story is asked for)."""
    from bfxd.audit.chain import Chain

    chain = Chain()
    stamp = "2026-12-02T13:48:03.123456Z"
    target = 41_000_000 + 777_777
    lines = 0
    size = 0
    with open(path, "w", encoding="utf-8") as out:
        buffer = []
        n = 0
        while size < target_bytes:
            n += 1
            client = n % 97 + 1
            rid = f"{client}.{n}"
            offer = target if n == 1_500 or n % 250_000 == 0 else 41_000_000 + n
            who = {"client_id": client, "peer_pid": 4000 + client, "peer_uid": 1000 + client % 5,
                   "peer_gid": 1000, "request_id": rid}
            records = [
                {"op": "cancel", "ref": n, "offer_id": offer, "event": "command.received", **who},
                {"kind": "foc", "generation": 1, "offer_id": offer, "request_ids": [rid], "event": "frame.sent",
                 "actor": "connection"},
                {"type": "foc-req", "status": "SUCCESS", "text": "Submitted for cancellation; waiting for "
                 f"confirmation (ID: {offer}).", "offer_id": offer, "matched_by": "offer_id",
                 "request_ids": [rid], "event": "notification.received", "actor": "account"},
                {"op": "cancel", "ref": n, "offer_id": offer, "outcome": "ok", "latency_ms": 0.412,
                 "status": "SUCCESS", "event": "command.completed", **who},
                {"offer_id": offer, "symbol": "fUSD", "status": "CANCELED", "amount": 1071.02, "rate": 0.000824,
                 "event": "offer.cancel", "actor": "account"},
            ]
            for record in records:
                record["level"], record["timestamp"] = "info", stamp
                line = chain.seal(orjson.dumps(record).decode())
                buffer.append(line)
                size += len(line) + 1
                lines += 1
            if len(buffer) >= 5000:
                out.write("\n".join(buffer) + "\n")
                buffer.clear()
        if buffer:
            out.write("\n".join(buffer) + "\n")
    return lines, target


def _wall(command: list[str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(command, env=child_env(), capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{command[3:5]} exited {proc.returncode}: {proc.stderr.decode()[-300:]}")
    return elapsed


def run(work: Workdir, *, quick: bool = False) -> dict:
    lines_cost = 20_000 if quick else 200_000
    plain = min(_per_line_us(False, lines_cost) for _ in range(5))
    sealed = min(_per_line_us(True, lines_cost) for _ in range(5))
    batches = 2_000 if quick else 20_000
    one_ahead = min(_write_ahead_us(1, batches, True) for _ in range(5))
    one_batched = min(_write_ahead_us(1, batches, False) for _ in range(5))
    many_ahead = min(_write_ahead_us(64, batches // 20, True) for _ in range(5))
    many_batched = min(_write_ahead_us(64, batches // 20, False) for _ in range(5))

    path = work.new("audit-log")
    target_bytes = (50 if quick else 1024) * 1024 * 1024
    lines, offer = _synthetic_log(path, target_bytes)
    size = os.path.getsize(path)
    bfxd = [PYTHON, "-m", "bfxd", "audit"]
    show_s = min(_wall([*bfxd, "show", "--offer", str(offer), str(path)]) for _ in range(2))
    verify_s = _wall([*bfxd, "verify", str(path)])
    os.unlink(path)
    return {
        "line_us_plain": round(plain, 2),
        "line_us_sealed": round(sealed, 2),
        "seal_us_per_line": round(sealed - plain, 2),
        "write_ahead_us_per_lone_frame": round(one_ahead - one_batched, 2),
        "write_ahead_us_per_frame_batch_64": round((many_ahead - many_batched) / 64, 3),
        "log_mb": round(size / 1e6, 1),
        "log_lines": lines,
        "show_s": round(show_s, 2),
        "show_lines_per_s": round(lines / show_s),
        "show_s_per_gb": round(show_s / (size / 1e9), 2),
        "verify_s": round(verify_s, 2),
        "verify_lines_per_s": round(lines / verify_s),
    }
