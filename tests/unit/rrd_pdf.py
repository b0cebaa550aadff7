"""The text of a graph rrdtool drew as PDF, where it stands, and its horizontal strokes (cairo's PDF keeps text as
text with a ToUnicode map, where its SVG draws glyph outlines): enough to read a graph's title, axis labels and
legend as an operator sees them, without a PDF library."""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

_OBJECT_START = re.compile(rb"(\d+) 0 obj\b")
_TOKEN = re.compile(rb"\((?:\\.|[^\\)])*\)"  # a literal string
                    rb"|<[0-9A-Fa-f\s]*>|\[|\]|/[^\s/\[\]()<>]+"  # a hex string, an array's brackets, a name
                    rb"|[-+]?(?:\d+\.?\d*|\.\d+)|[A-Za-z'\"*]+", re.S)  # a number, an operator
_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f", b"(": b"(", b")": b")", b"\\": b"\\"}


@dataclass(frozen=True)
class Text:
    """One run of text: where its baseline starts (image pixels, y down) and whether it is turned (vertical)."""

    text: str
    x: float
    y: float
    turned: bool


@dataclass(frozen=True)
class Stroke:
    """A straight stroked segment and its colour (r, g, b from 0 to 1)."""

    x0: float
    y0: float
    x1: float
    y1: float
    colour: tuple[float, float, float]


def _literal(token: bytes) -> bytes:
    body, out, i = token[1:-1], bytearray(), 0
    while i < len(body):
        c = body[i:i + 1]
        if c == b"\\":
            nxt = body[i + 1:i + 2]
            octal = re.match(rb"[0-7]{1,3}", body[i + 1:i + 4])
            if octal:
                out.append(int(octal.group(), 8) & 0xFF)
                i += 1 + len(octal.group())
                continue
            out += _ESCAPES.get(nxt, nxt)
            i += 2
            continue
        out += c
        i += 1
    return bytes(out)


def _code_bytes(token: bytes) -> bytes:
    if token.startswith(b"("):
        return _literal(token)
    return bytes.fromhex(re.sub(rb"\s", b"", token[1:-1]).decode())


def _unicode_map(cmap: bytes) -> dict[int, str]:
    out: dict[int, str] = {}
    for block in re.findall(rb"beginbfchar(.*?)endbfchar", cmap, re.S):
        for code, uni in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            out[int(code, 16)] = bytes.fromhex(uni.decode()).decode("utf-16-be")
    for block in re.findall(rb"beginbfrange(.*?)endbfrange", cmap, re.S):
        for lo, hi, uni in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            first = int(uni, 16)
            for k, code in enumerate(range(int(lo, 16), int(hi, 16) + 1)):
                out[code] = chr(first + k)
    return out


def _streams(pdf: bytes) -> dict[int, tuple[bytes, bytes]]:
    """Every object: its dictionary and its stream, inflated (read by its /Length: a font's bytes may hold
    ``endobj``)."""
    out: dict[int, tuple[bytes, bytes]] = {}
    pos = 0
    while found := _OBJECT_START.search(pdf, pos):
        head_end = min(i for i in (pdf.find(b"stream", found.end()), pdf.find(b"endobj", found.end())) if i >= 0)
        head = pdf[found.end():head_end]
        data = b""
        if pdf.startswith(b"stream", head_end):
            start = head_end + len(b"stream") + (2 if pdf.startswith(b"\r\n", head_end + 6) else 1)
            length = re.search(rb"/Length\s+(\d+)(\s+0\s+R)?", head)
            assert length, head
            size = int(length.group(1))
            if length.group(2):  # an indirect length: "5 0 obj 1231 endobj"
                size = int(re.search(rb"\b%d 0 obj\s*(\d+)\s*endobj" % size, pdf).group(1))
            data = pdf[start:start + size]
            if b"/FlateDecode" in head:
                data = zlib.decompress(data)
            head_end = start + size
        out[int(found.group(1))] = (head, data)
        pos = pdf.find(b"endobj", head_end) + len(b"endobj")
    return out


def _fonts(objects: dict[int, tuple[bytes, bytes]]) -> dict[str, dict[int, str]]:
    """Each font resource name and its code -> text map."""
    maps: dict[int, dict[int, str]] = {}
    for number, (head, _data) in objects.items():
        found = re.search(rb"/ToUnicode (\d+) 0 R", head)
        if found:
            maps[number] = _unicode_map(objects[int(found.group(1))][1])
    out = {}
    for head, _data in objects.values():
        for block in re.findall(rb"/Font\s*<<(.*?)>>", head, re.S):
            for name, ref in re.findall(rb"/([^\s/]+)\s+(\d+) 0 R", block):
                out[name.decode()] = maps.get(int(ref), {})
    return out


class _Page:
    """The state of one content stream as its operators run: the text matrix, the font, the stroke colour and
    the current path."""

    def __init__(self, fonts: dict[str, dict[int, str]], gap: float) -> None:
        self.fonts, self.gap = fonts, gap
        self.matrix = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0]
        self.codes: dict[int, str] = {}
        self.colour = (0.0, 0.0, 0.0)
        self.path: list[tuple[float, float]] = []
        self.segments: list[tuple[float, float, float, float]] = []
        self.texts: list[Text] = []
        self.strokes: list[Stroke] = []

    def show(self, parts: list[bytes]) -> None:
        words, current = [], ""
        for part in parts:
            if part.startswith((b"(", b"<")):
                current += "".join(self.codes.get(c, chr(c)) for c in _code_bytes(part))
            elif -float(part) > self.gap:  # TJ numbers move left when positive: a large negative one is a gap
                words.append(current)
                current = ""
        words.append(current)
        a, b, c, d, e, f = self.matrix
        turned = abs(b) > 1e-6 or abs(c) > 1e-6
        self.texts += [Text(w.strip(), e, f, turned) for w in words if w.strip()]

    def run(self, op: bytes, args: list[bytes | list[bytes]]) -> None:
        nums = [float(a) for a in args if isinstance(a, bytes) and re.fullmatch(rb"[-+.\d]+", a)]
        if op == b"Tm" and len(nums) == 6:
            self.matrix = nums
        elif op == b"Td" and len(nums) == 2:
            a, b, c, d, e, f = self.matrix
            self.matrix = [a, b, c, d, e + nums[0] * a + nums[1] * c, f + nums[0] * b + nums[1] * d]
        elif op == b"Tf" and args and isinstance(args[0], bytes):
            self.codes = self.fonts.get(args[0][1:].decode(), {})
        elif op in (b"Tj", b"TJ") and args:
            self.show(args[0] if isinstance(args[0], list) else [args[0]])
        elif op == b"RG" and len(nums) == 3:
            self.colour = (nums[0], nums[1], nums[2])
        elif op == b"m" and len(nums) == 2:
            self.path = [(nums[0], nums[1])]
        elif op == b"l" and len(nums) == 2 and self.path:
            self.segments.append((*self.path[-1], nums[0], nums[1]))
            self.path.append((nums[0], nums[1]))
        elif op == b"S":
            self.strokes += [Stroke(*seg, self.colour) for seg in self.segments]
            self.segments, self.path = [], []
        elif op in (b"n", b"f"):
            self.segments, self.path = [], []


def read(pdf: bytes, gap: float = 500.0) -> tuple[list[Text], list[Stroke]]:
    """The text runs (a TJ array split where it jumps more than ``gap`` thousandths of an em: the labels of one
    axis are one array) and the stroked straight segments of a PDF drawn by rrdtool."""
    objects = _streams(pdf)
    page = _Page(_fonts(objects), gap)
    for _head, data in objects.values():
        if b"BT" not in data:
            continue
        stack: list[bytes | list[bytes]] = []
        array: list[bytes] | None = None
        for token in _TOKEN.findall(data):
            if token == b"[":
                array = []
            elif token == b"]" and array is not None:
                stack.append(array)
                array = None
            elif array is not None:
                array.append(token)
            elif token[:1].isalpha() or token[:1] in (b"'", b'"', b"*"):
                page.run(token, stack)
                stack = []
            else:
                stack.append(token)
    return page.texts, page.strokes
