"""Small but real files for what a simulated follower sends: a PNG and AMR audio."""

import struct
import zlib

# AMR-NB 12.2 kbit/s: each 20 ms frame is a 1-byte header (mode 7, quality
# bit set → 0x3C) and 31 bytes of speech bits; all-zero bits decode as silence.
_AMR_MAGIC = b"#!AMR\n"
_AMR_FRAME = b"\x3c" + bytes(31)


def png(width=96, height=96, color=(7, 193, 96)):
    """A valid RGB PNG: a diagonal gradient over `color` (WeChat green by default)."""
    rows = []
    for y in range(height):
        row = bytearray([0])  # filter type 0 for every scanline
        for x in range(width):
            shade = (x + y) * 96 // (width + height)
            row += bytes(min(255, c + shade) for c in color)
        rows.append(bytes(row))
    raw = b"".join(rows)

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def amr(seconds=2):
    """AMR-NB audio of `seconds` of silence (50 frames a second)."""
    return _AMR_MAGIC + _AMR_FRAME * (50 * max(1, int(seconds)))
