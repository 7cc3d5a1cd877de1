"""Hand-made hostile image files for the reading tests and ``tools/hostile_corpus.py``: TIFFs
with any tags and IFD chain, PNGs with any chunks, JPEG bytes to cut or patch."""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

SHORT, LONG = 3, 4
"""TIFF field types used by :class:`Page` tags."""


@dataclass
class Page:
    """One TIFF page, one strip: what its tags claim and the bytes it really holds."""

    width: int
    height: int
    data: bytes
    samples: int = 1
    bits: int = 8
    photometric: int = 1
    compression: int = 1
    tags: dict[int, tuple[int, list[int]]] = field(default_factory=dict)

    def entries(self, strip: int) -> dict[int, tuple[int, list[int]]]:
        """The IFD entries of the page, its strip at byte ``strip``."""
        return {
            256: (LONG, [self.width]),
            257: (LONG, [self.height]),
            258: (SHORT, [self.bits] * self.samples),
            259: (SHORT, [self.compression]),
            262: (SHORT, [self.photometric]),
            273: (LONG, [strip]),
            277: (SHORT, [self.samples]),
            278: (LONG, [self.height]),
            279: (LONG, [len(self.data)]),
            284: (SHORT, [1]),
            **self.tags,
        }


def _ifd(entries: dict[int, tuple[int, list[int]]], at: int) -> bytes:
    """A little-endian classic IFD placed at byte ``at`` (next offset 0); long values follow."""
    n = len(entries)
    out, extra = [struct.pack("<H", n)], b""
    extra_at = at + 2 + 12 * n + 4
    for tag in sorted(entries):
        kind, values = entries[tag]
        data = struct.pack(f"<{len(values)}{'H' if kind == SHORT else 'I'}", *values)
        if len(data) <= 4:
            out.append(struct.pack("<HHI", tag, kind, len(values)) + data.ljust(4, b"\0"))
        else:
            out.append(struct.pack("<HHII", tag, kind, len(values), extra_at + len(extra)))
            extra += data
    return b"".join(out) + struct.pack("<I", 0) + extra


def forged_tiff(pages: list[Page], *, loop_to: int | None = None) -> tuple[bytes, list[int]]:
    """A TIFF written by hand, and the byte offsets of its IFDs.

    ``loop_to`` makes the last IFD point back to that page's IFD (a chain that never ends).
    """
    blob = bytearray(b"II*\0\0\0\0\0")
    offsets: list[int] = []
    for page in pages:
        strip = len(blob)
        blob += page.data
        blob += b"\0" * (len(blob) & 1)
        offsets.append(len(blob))
        blob += _ifd(page.entries(strip), len(blob))
    struct.pack_into("<I", blob, 4, offsets[0])
    targets = [*offsets[1:], 0 if loop_to is None else offsets[loop_to]]
    for at, target in zip(offsets, targets, strict=True):
        (n,) = struct.unpack_from("<H", blob, at)
        struct.pack_into("<I", blob, at + 2 + 12 * n, target)
    return bytes(blob), offsets


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk with a correct CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def forged_png(
    width: int, height: int, data: bytes, *, colour: int = 0, plte: bytes = b"", depth: int = 8
) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` over the zlib stream ``data``."""
    head = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))
    body = png_chunk(b"PLTE", plte) if plte else b""
    return b"\x89PNG\r\n\x1a\n" + head + body + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")


def jpeg_bytes(arr: np.ndarray, **kwargs: object) -> bytes:
    """``arr`` saved as JPEG by Pillow (``quality``, ``progressive``, ``exif``, ...)."""
    buffer = io.BytesIO()
    Image.fromarray(arr).save(buffer, "JPEG", **kwargs)
    return buffer.getvalue()


def set_jpeg_size(data: bytes, height: int, width: int) -> bytes:
    """The JPEG with its frame header claiming another size (the data is unchanged)."""
    out = bytearray(data)
    sof = next(i for i in range(len(out) - 1) if out[i] == 0xFF and out[i + 1] in (0xC0, 0xC2))
    struct.pack_into(">HH", out, sof + 5, height, width)
    return bytes(out)
