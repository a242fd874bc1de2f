"""Reading small XML documents from strangers: bounded, no DTDs, no entities.

:func:`read_fields` parses with expat directly and returns the text of the elements asked
for (by local name, namespaces ignored). Anything beyond plain elements and text is refused
with :class:`BadXml`: a DOCTYPE (so no entity definitions, hence no "billion laughs" and no
external entities), processing of parameter entities, more than ``MAX_DEPTH`` levels or
``MAX_ELEMENTS`` elements, a field longer than ``MAX_TEXT``. The size of the document itself
is limited by the caller before it gets here.
"""

from __future__ import annotations

from xml.parsers import expat

MAX_DEPTH = 16
MAX_ELEMENTS = 256
MAX_TEXT = 2048


class BadXml(ValueError):
    """Not a document we accept; the message is fit to show to the client."""


class _Reader:
    def __init__(self, wanted: frozenset[str]) -> None:
        self.wanted = wanted
        self.root: str | None = None
        self.depth = 0
        self.elements = 0
        self.fields: dict[str, str] = {}
        self._capturing: list[str | None] = []

    def start(self, name: str, attrs: dict[str, str]) -> None:
        local = name.rpartition(" ")[2]
        self.depth += 1
        self.elements += 1
        if self.depth > MAX_DEPTH or self.elements > MAX_ELEMENTS:
            raise BadXml("document too deeply nested or too large")
        if self.root is None:
            self.root = local
        capture = local if local in self.wanted and local not in self.fields else None
        if capture is not None:
            self.fields[capture] = ""
        self._capturing.append(capture)

    def end(self, name: str) -> None:
        self.depth -= 1
        self._capturing.pop()

    def text(self, data: str) -> None:
        capture = self._capturing[-1] if self._capturing else None
        if capture is None:
            return
        value = self.fields[capture] + data
        if len(value) > MAX_TEXT:
            raise BadXml(f"{capture} is too long")
        self.fields[capture] = value


def _refuse_doctype(*args: object) -> None:
    raise BadXml("DOCTYPE declarations are not accepted")


def _refuse_entity(*args: object) -> None:
    raise BadXml("entity declarations are not accepted")


def _refuse_external(context: str, base: str | None, system_id: str | None,
                     public_id: str | None) -> int:
    raise BadXml("external entities are not accepted")


def read_fields(data: bytes, wanted: set[str]) -> tuple[str, dict[str, str]]:
    """(local name of the root element, {local name: stripped text}) for the first
    occurrence of each ``wanted`` element. Raises :class:`BadXml`."""
    reader = _Reader(frozenset(wanted))
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.EntityDeclHandler = _refuse_entity
    parser.UnparsedEntityDeclHandler = _refuse_entity
    parser.ExternalEntityRefHandler = _refuse_external
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    parser.CharacterDataHandler = reader.text
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise BadXml(f"not well-formed XML ({expat.ErrorString(exc.code)})") from exc
    if reader.root is None:
        raise BadXml("empty document")
    return reader.root, {k: v.strip() for k, v in reader.fields.items()}
