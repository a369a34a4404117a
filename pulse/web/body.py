"""Request bodies of the API: read with a size limit, and JSON parsed so that no body can crash the parser.

Python's json module turns some valid-looking input into exceptions other than JSONDecodeError: nesting tens of
thousands deep (RecursionError), an integer of 4,300+ digits (ValueError), and it accepts what no database can
keep: lone surrogates (\\ud800), NaN and 1e999 (infinity). Each is a 400 here, with a sentence.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from starlette.requests import Request

from pulse import fields
from pulse.errors import BadRequest, PayloadTooLarge

MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_DEPTH = 16  # a batch of events is 5 deep ({"events": [{"contact": {"attributes": {}}}]})
MAX_DIGITS = 100


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, refusing (413) to read more than `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if fields.WHOLE_NUMBER.fullmatch(declared) and int(declared) > limit:
        raise PayloadTooLarge(f"The body is larger than {limit // (1024 * 1024)} MB. Send smaller batches.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The body is larger than {limit // (1024 * 1024)} MB. Send smaller batches.")
        chunks.append(chunk)
    return b"".join(chunks)


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise BadRequest(f"The body has a number of more than {MAX_DIGITS} digits.")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadRequest("The body has a number that is too large.")
    return value


def _constant(name: str) -> Any:
    raise BadRequest(f"The body has {name}, which is not a JSON number.")


def _may_hold_surrogates(body: bytes) -> bool:
    """Whether the parsed body can hold a lone surrogate: only through a \\uD800-\\uDFFF escape, or through
    surrogates encoded as bytes (UTF-8 ED A0-BF, which json decodes with surrogatepass, or a UTF-16/32 body)."""
    if 0 in body[:4] or body.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True
    # two byte searches first: the pattern itself is slower than both on a batch without either
    return (b"\\u" in body or b"\xed" in body) and SURROGATE_BYTES.search(body) is not None


SURROGATE_BYTES = re.compile(rb"\\u[dD][89abcdefABCDEF]|\xed[\xa0-\xbf]")


def _check_depth(data: Any) -> None:
    """Refuse nesting deeper than MAX_DEPTH, visiting only the objects and lists."""
    pending: list[tuple[Any, int]] = [(data, 0)]
    while pending:
        value, depth = pending.pop()
        if depth >= MAX_DEPTH:
            raise BadRequest(f"The body is nested more than {MAX_DEPTH} levels deep.")
        for item in value.values() if type(value) is dict else value:
            if type(item) is dict or type(item) is list:
                pending.append((item, depth + 1))


def _check(data: Any) -> None:
    """Refuse nesting deeper than MAX_DEPTH and lone surrogates, walking the value without recursion."""
    pending: list[tuple[Any, int]] = [(data, 0)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            texts: Any = (value,)
        elif isinstance(value, dict | list):
            if depth >= MAX_DEPTH:
                raise BadRequest(f"The body is nested more than {MAX_DEPTH} levels deep.")
            items = value.values() if isinstance(value, dict) else value
            pending.extend((item, depth + 1) for item in items)
            texts = value.keys() if isinstance(value, dict) else ()
        else:
            continue
        for text in texts:
            found = fields.NOT_STORABLE.search(text)
            if found and found.group() != "\x00":  # NUL is a character: the field that holds it says no
                raise BadRequest(
                    f"The body has a lone surrogate (\\u{ord(found.group()):04x}), which is not a character."
                )


def parse_json(body: bytes) -> Any:
    """The JSON value of a body, or a 400 that says what is wrong with it."""
    try:
        data = json.loads(body, parse_int=_integer, parse_float=_float, parse_constant=_constant)
    except RecursionError:
        raise BadRequest(f"The body is nested more than {MAX_DEPTH} levels deep.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BadRequest(f"The body is not valid JSON: {error}.") from None
    if _may_hold_surrogates(body):
        _check(data)
    elif type(data) is dict or type(data) is list:
        _check_depth(data)  # the common case: only the nesting is left to check
    return data


async def read_json(request: Request, limit: int = MAX_BODY_BYTES) -> Any:
    """The request's JSON body (at most `limit` bytes), checked as `parse_json` does."""
    return parse_json(await read_body(request, limit))
