"""W3C Bitstring Status List: the revocation list's encodedList, and reading a credential's bit from it."""

from __future__ import annotations

import base64
import gzip
import zlib

from assessor.certificates.keys import b64url
from assessor.errors import CertificateError

MULTIBASE_BASE64URL = "u"
MAX_LIST_BYTES = 2 * 1024 * 1024  # decompressed: far above the 16 KB of a 131,072-entry list


def encode_bitstring(indexes: list[int], size: int) -> str:
    """The spec's encodedList: multibase ("u" prefix) base64url, no padding, of the GZIP-compressed bitstring;
    index 0 is the left-most bit of the first byte."""
    bits = bytearray(size // 8)
    for index in indexes:
        bits[index // 8] |= 0x80 >> (index % 8)
    return MULTIBASE_BASE64URL + b64url(gzip.compress(bytes(bits), mtime=0))


def decode_bitstring(encoded: str) -> bytes:
    if not isinstance(encoded, str) or not encoded.startswith(MULTIBASE_BASE64URL):
        raise CertificateError("encodedList is not multibase base64url (no 'u' prefix)")
    body = encoded[len(MULTIBASE_BASE64URL):]
    try:
        compressed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        # Bounded, so a hostile list cannot expand into gigabytes.
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        bits = decompressor.decompress(compressed, MAX_LIST_BYTES)
    except (ValueError, zlib.error) as error:
        raise CertificateError(f"encodedList is not base64url GZIP: {error}") from None
    if decompressor.unconsumed_tail:
        raise CertificateError("encodedList is larger than any status list")
    return bits


def bit_is_set(bitstring: bytes, index: int) -> bool:
    if not 0 <= index < len(bitstring) * 8:
        raise CertificateError(f"status index {index} is outside the list ({len(bitstring) * 8} entries)")
    return bool(bitstring[index // 8] & (0x80 >> (index % 8)))
