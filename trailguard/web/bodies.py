"""Read request bodies with a size limit enforced while reading."""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request

from trailguard.errors import IngestError


async def read_limited(request: Request, limit: int) -> bytes:
    """The whole body, or `IngestError` 413 as soon as it exceeds `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise IngestError(f"request body is {declared} bytes; the limit is {limit}", 413)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise IngestError(f"request body exceeds the limit of {limit} bytes", 413)
            chunks.append(chunk)
    except ClientDisconnect as exc:
        # Nothing was acknowledged; the sender retries. Not a server error.
        raise IngestError("the client closed the connection before the body was complete",
                          400) from exc
    return b"".join(chunks)
