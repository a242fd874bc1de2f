"""Mail client autoconfiguration on the HTTP listener: a user types an address and a password
and the client finds the servers by itself.

Routes (all answer 404 "not found", with nothing else, for a domain that is not local):

``GET /.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=ADDRESS``
``GET /mail/config-v1.1.xml?emailaddress=ADDRESS``
    Thunderbird's autoconfig; the second is what it asks ``autoconfig.<domain>``. Without
    ``emailaddress`` the domain comes from the Host header.
``POST /autodiscover/autodiscover.xml`` (and the ``Autodiscover/Autodiscover.xml`` spellings)
    Outlook's POX Autodiscover: the request names ``EMailAddress`` and asks for the
    ``outlook/responseschema/2006a`` schema. A body over ``MAX_AUTODISCOVER_REQUEST`` bytes,
    XML that is not well-formed or has a DOCTYPE, or a request without an address → 400 with
    an Autodiscover ``Error`` (600); another response schema → 400 with error 601.
``GET /autodiscover/autodiscover.json?Email=ADDRESS&Protocol=AutodiscoverV1``
``GET /autodiscover/autodiscover.json/v1.0/ADDRESS?Protocol=AutodiscoverV1``
    Newer Outlook asks this first; the answer points at the POX URL of
    ``autodiscover.<domain>``. Other protocols (ActiveSync, EWS) → 400 ProtocolNotSupported.

Nothing here looks accounts up: every address of a local domain gets the same answer, so
the endpoints cannot be used to find out which accounts exist. Server names and ports:
``hayate.http.mailservers``.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from hayate.config import Config
from hayate.http.bodies import BodyTooLarge, read_limited
from hayate.http.clientxml import (
    ERROR_INVALID_REQUEST,
    ERROR_NOT_FOUND,
    ERROR_SCHEMA_NOT_AVAILABLE,
    OUTLOOK_RESPONSE_SCHEMA,
    autodiscover_error,
    autodiscover_settings,
    thunderbird_config,
)
from hayate.http.mailservers import local_domain_for, offered_servers
from hayate.http.safexml import BadXml, read_fields

XML = "application/xml"
MAX_AUTODISCOVER_REQUEST = 16 * 1024  # bytes; real requests are about 400
AUTODISCOVER_XML_PATHS = (
    "/autodiscover/autodiscover.xml",
    "/Autodiscover/Autodiscover.xml",
    "/AutoDiscover/AutoDiscover.xml",
)
AUTODISCOVER_JSON_PROTOCOL = "AutodiscoverV1"


def _not_found() -> Response:
    return Response("not found\n", status_code=404, media_type="text/plain")


def _xml_error(status: int, code: int, message: str) -> Response:
    return Response(autodiscover_error(code, message), status_code=status, media_type=XML)


def autoconfig_router(cfg: Config, bound_ports: Mapping[str, int] | None = None) -> APIRouter:
    """The routes above for ``cfg``; ``bound_ports`` are the listeners' real ports."""
    router = APIRouter()
    servers = offered_servers(cfg, bound_ports)
    display_name = cfg.autoconfig.display_name

    async def thunderbird(request: Request) -> Response:
        domain = local_domain_for(
            cfg, request.query_params.get("emailaddress"), request.headers.get("host")
        )
        if domain is None:
            return _not_found()
        return Response(thunderbird_config(domain, display_name, servers), media_type=XML)

    router.add_api_route("/.well-known/autoconfig/mail/config-v1.1.xml", thunderbird,
                         methods=["GET"], include_in_schema=False)
    router.add_api_route("/mail/config-v1.1.xml", thunderbird, methods=["GET"],
                         include_in_schema=False)

    async def autodiscover(request: Request) -> Response:
        try:
            body = await read_limited(request, MAX_AUTODISCOVER_REQUEST)
            root, fields = read_fields(body, {"EMailAddress", "AcceptableResponseSchema"})
        except (BodyTooLarge, BadXml) as exc:
            return _xml_error(400, ERROR_INVALID_REQUEST, f"Invalid Request: {exc}")
        address = fields.get("EMailAddress", "")
        if root != "Autodiscover" or not address:
            return _xml_error(400, ERROR_INVALID_REQUEST, "Invalid Request: no EMailAddress")
        schema = fields.get("AcceptableResponseSchema", OUTLOOK_RESPONSE_SCHEMA)
        if schema != OUTLOOK_RESPONSE_SCHEMA:
            return _xml_error(400, ERROR_SCHEMA_NOT_AVAILABLE,
                              "The requested response schema is not available")
        if local_domain_for(cfg, address, None) is None:
            return _xml_error(404, ERROR_NOT_FOUND, "The e-mail address cannot be found.")
        return Response(autodiscover_settings(address.lower(), servers), media_type=XML)

    for path in AUTODISCOVER_XML_PATHS:
        router.add_api_route(path, autodiscover, methods=["POST"], include_in_schema=False)

    async def autodiscover_json(request: Request, address: str | None = None) -> Response:
        address = address or request.query_params.get("Email")
        domain = local_domain_for(cfg, address, None) if address else None
        if domain is None:
            return _not_found()
        protocol = request.query_params.get("Protocol", AUTODISCOVER_JSON_PROTOCOL)
        if protocol.lower() != AUTODISCOVER_JSON_PROTOCOL.lower():
            return JSONResponse(
                {"ErrorCode": "ProtocolNotSupported",
                 "ErrorMessage": f"The given protocol value '{protocol[:40]}' is invalid. "
                                 f"Supported values are '{AUTODISCOVER_JSON_PROTOCOL}'."},
                status_code=400,
            )
        url = f"https://autodiscover.{domain}{AUTODISCOVER_XML_PATHS[0]}"
        return JSONResponse({"Protocol": AUTODISCOVER_JSON_PROTOCOL, "Url": url})

    router.add_api_route("/autodiscover/autodiscover.json", autodiscover_json, methods=["GET"],
                         include_in_schema=False)
    router.add_api_route("/autodiscover/autodiscover.json/v1.0/{address}", autodiscover_json,
                         methods=["GET"], include_in_schema=False)
    return router
