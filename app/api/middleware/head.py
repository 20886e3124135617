"""HEAD wherever GET is: FastAPI's routes answer HEAD with 405 (Starlette's own routes add it).
A health probe or `curl -I` then got "405 Method Not Allowed" with `Allow: GET`."""

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    """A HEAD request no route takes itself (downloads and static files do, without reading the
    file) is answered as its GET would be, with the headers and without the body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD" or _taken(scope):
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return  # the rest of a streamed body: nothing of it is sent
                message = {"type": "http.response.body", "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


def _taken(scope: Scope) -> bool:
    """Whether a route of the app answers this HEAD request itself."""
    router = scope["app"].router
    return any(route.matches(scope)[0] == Match.FULL for route in router.routes)
