"""The one way out to a URL a user gave: resolve it, refuse non-public targets, then connect
to the very address that was checked (never to the name again).

Used by the connector's fetch (at every redirect hop) and by webhook delivery.
"""

from __future__ import annotations

import asyncio
import socket

import httpx

from jobrunner.errors import PermanentError, TransientError
from jobrunner.pipelines.urlcheck import IPAddress, UrlTarget, check_addresses

__all__ = ["pinned_request", "resolve_checked"]


async def resolve_checked(target: UrlTarget, allow_private: bool) -> IPAddress:
    """The address to connect to; every address the name resolves to must be allowed.

    Errors: PermanentError ``fetch_unknown_host``, ``url_target_not_allowed``;
    TransientError ``fetch_dns_error``.
    """
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        msg = f"cannot resolve {target.host}: {exc}"
        if exc.errno == socket.EAI_NONAME:
            raise PermanentError(msg, code="fetch_unknown_host") from exc
        raise TransientError(msg, code="fetch_dns_error") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    return check_addresses(target.host, addresses, allow_private=allow_private)[0]


def pinned_request(
    client: httpx.AsyncClient,
    target: UrlTarget,
    address: IPAddress,
    headers: dict[str, str],
    *,
    method: str = "GET",
    content: bytes | None = None,
) -> httpx.Request:
    """A request to ``target`` that connects to ``address``.

    Resolving again at connect time would let DNS answer differently (rebinding). The name
    still goes in the Host header and, for https, in TLS SNI, against which the certificate
    is verified.
    """
    url = httpx.URL(target.url)
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    return client.build_request(
        method,
        url.copy_with(host=str(address)),
        headers={**headers, "Host": url.netloc.decode("ascii")},
        content=content,
        extensions=extensions,
    )
