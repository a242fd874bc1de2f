"""The bounded, entity-free XML reader behind Autodiscover."""

from __future__ import annotations

import pytest

from hayate.http.safexml import MAX_TEXT, BadXml, read_fields

REQUEST = b"""<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress> alice@example.com </EMailAddress>
    <AcceptableResponseSchema>urn:x</AcceptableResponseSchema>
  </Request>
</Autodiscover>"""


def test_fields_are_found_by_local_name_whatever_the_namespace() -> None:
    root, fields = read_fields(REQUEST, {"EMailAddress", "AcceptableResponseSchema", "Missing"})
    assert root == "Autodiscover"
    assert fields == {"EMailAddress": "alice@example.com", "AcceptableResponseSchema": "urn:x"}
    prefixed = b'<a:Autodiscover xmlns:a="urn:y"><a:EMailAddress>b&amp;c@x.y</a:EMailAddress>' \
               b"</a:Autodiscover>"
    assert read_fields(prefixed, {"EMailAddress"}) == ("Autodiscover", {"EMailAddress": "b&c@x.y"})


def test_only_the_first_occurrence_counts() -> None:
    doc = b"<r><EMailAddress>one@x.y</EMailAddress><EMailAddress>two@x.y</EMailAddress></r>"
    assert read_fields(doc, {"EMailAddress"})[1] == {"EMailAddress": "one@x.y"}


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (b'<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><r>&b;</r>',
         "DOCTYPE"),
        (b'<!DOCTYPE r SYSTEM "file:///etc/passwd"><r/>', "DOCTYPE"),
        (b"<r>&undefined;</r>", "undefined entity"),
        (b"<r><EMailAddress>x</r>", "not well-formed"),
        (b"", "not well-formed"),
        (b"just text", "not well-formed"),
        (b"<a>" * 40 + b"</a>" * 40, "deeply nested"),
        (b"<r>" + b"<e/>" * 1000 + b"</r>", "too large"),
        (b"<r><EMailAddress>" + b"x" * (MAX_TEXT + 1) + b"</EMailAddress></r>", "too long"),
    ],
)
def test_refused_documents(document: bytes, reason: str) -> None:
    with pytest.raises(BadXml, match=reason):
        read_fields(document, {"EMailAddress"})
