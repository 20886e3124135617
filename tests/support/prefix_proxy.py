"""A reverse proxy that serves an upstream under a path prefix and strips it, as nginx's
`location /pipelines/ { proxy_pass http://api:8000/; proxy_set_header Host $http_host; }` does:
for the service run with `UVICORN_ROOT_PATH=/pipelines`. Served by uvicorn in the test's event
loop; a path outside the prefix is its own 404, as the proxy's other applications' would be."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from tests.support.served import serve_app

# hop-by-hop and framing headers: each side of the proxy sets its own
_NOT_PASSED = {b"connection", b"keep-alive", b"transfer-encoding", b"content-length"}


class PrefixProxy:
    """Pure ASGI app: `prefix`/x → `upstream`/x, the Host the browser sent passed on."""

    def __init__(self, upstream: str, prefix: str) -> None:
        self.prefix = prefix
        self.client = httpx.AsyncClient(base_url=upstream, timeout=60)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["raw_path"].decode()
        if not path.startswith(f"{self.prefix}/"):
            await PlainTextResponse("not under the prefix", 404)(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        query = f"?{scope['query_string'].decode()}" if scope["query_string"] else ""
        request = self.client.build_request(
            scope["method"],
            path[len(self.prefix) :] + query,
            headers=[(k, v) for k, v in scope["headers"] if k not in _NOT_PASSED],
            content=body,
        )
        response = await self.client.send(request, stream=True)
        try:
            headers = [(k, v) for k, v in response.headers.raw if k.lower() not in _NOT_PASSED]
            await send(
                {"type": "http.response.start", "status": response.status_code, "headers": headers}
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()


@asynccontextmanager
async def behind_prefix(prefix: str) -> AsyncIterator[str]:
    """The app served with uvicorn's root_path `prefix`, behind the proxy: the proxy's base URL
    (the app at that URL + `prefix` + `/`)."""
    async with (
        serve_app(root_path=prefix) as upstream,
        serve_app(PrefixProxy(upstream, prefix)) as proxy,
    ):
        yield proxy
