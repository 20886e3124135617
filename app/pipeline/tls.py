"""One verified TLS context per CA file for all of Prefect's clients in a process.

Prefect 3.8.8 builds a new verified `SSLContext` for every client it creates — the whole CA
bundle parsed, ~15 ms of CPU — even for a plain `http://` API. A flow run creates about 12
clients, a worker one per flow run it starts, the API one per trigger: in a 100-run burst this
was 40% of a worker's CPU. `share_tls_contexts()` makes Prefect's client module build each
context once per process and hand out the same one. Prefect's insecure mode (no CA file) changes
the context it gets, so that one is never shared. A CA file replaced on disk is read again when
the process restarts.
"""

import ssl
import types

_shared = False


def share_tls_contexts() -> None:
    """Patch Prefect's client modules to share contexts (idempotent); build the default one now,
    so that a process forked afterwards (the zygote's children) inherits it."""
    global _shared
    if _shared:
        return
    import certifi
    import prefect._internal.version_checking
    import prefect.client.orchestration
    from prefect.settings import PREFECT_API_SSL_CERT_FILE

    contexts: dict[tuple[object, ...], ssl.SSLContext] = {}

    def create_default_context(
        purpose: ssl.Purpose = ssl.Purpose.SERVER_AUTH,
        *,
        cafile: str | None = None,
        capath: str | None = None,
        cadata: str | bytes | None = None,
    ) -> ssl.SSLContext:
        if cafile is None:  # Prefect's insecure path changes the context it gets: never share it
            return ssl.create_default_context(purpose, capath=capath, cadata=cadata)
        key = (purpose, cafile, capath, cadata)
        if key not in contexts:
            contexts[key] = ssl.create_default_context(
                purpose, cafile=cafile, capath=capath, cadata=cadata
            )
        return contexts[key]

    shared = types.ModuleType("ssl")
    shared.__dict__.update(ssl.__dict__)
    shared.create_default_context = create_default_context  # type: ignore[attr-defined]
    for module in (prefect.client.orchestration, prefect._internal.version_checking):
        module.ssl = shared  # type: ignore[attr-defined]
    # the CA file Prefect's clients will ask for: its setting (SSL_CERT_FILE by default), else
    # certifi's bundle
    create_default_context(cafile=PREFECT_API_SSL_CERT_FILE.value() or certifi.where())
    _shared = True
