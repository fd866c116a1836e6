#!/usr/bin/env python3
"""Independent reference for shared-eval's bucketing, written from the specifications only.

SipHash follows Aumasson & Bernstein, "SipHash: a fast short-input PRF" (2012), with c compression
and d finalization rounds; MurmurHash3_x86_32 follows Austin Appleby's reference C++.

    python3 bucketing.py            # verify bucket-vectors.json (exit 1 on any difference)
    python3 bucketing.py --write    # regenerate bucket-vectors.json from ROWS below

It checks itself against the SipHash paper's SipHash-2-4 outputs before trusting its own
SipHash-1-3 (the two differ only in round counts).
"""
import json
import os
import struct
import sys

MASK = (1 << 64) - 1
BUCKETS = 100_000
HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = os.path.join(HERE, "bucket-vectors.json")


def rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & MASK


def siphash(key: bytes, msg: bytes, c: int, d: int) -> int:
    k0, k1 = struct.unpack("<QQ", key)
    v0 = k0 ^ 0x736F6D6570736575
    v1 = k1 ^ 0x646F72616E646F6D
    v2 = k0 ^ 0x6C7967656E657261
    v3 = k1 ^ 0x7465646279746573

    def sipround():
        nonlocal v0, v1, v2, v3
        v0 = (v0 + v1) & MASK; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32)
        v2 = (v2 + v3) & MASK; v3 = rotl(v3, 16); v3 ^= v2
        v0 = (v0 + v3) & MASK; v3 = rotl(v3, 21); v3 ^= v0
        v2 = (v2 + v1) & MASK; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32)

    # Pad: the final word holds the last len%8 bytes and len mod 256 in its top byte.
    tail_len = len(msg) % 8
    padded = msg[: len(msg) - tail_len] + msg[len(msg) - tail_len:] + bytes(7 - tail_len) + bytes([len(msg) & 0xFF])
    for i in range(0, len(padded), 8):
        (m,) = struct.unpack("<Q", padded[i : i + 8])
        v3 ^= m
        for _ in range(c):
            sipround()
        v0 ^= m
    v2 ^= 0xFF
    for _ in range(d):
        sipround()
    return v0 ^ v1 ^ v2 ^ v3


def murmur3_x86_32(data: bytes, seed: int = 0) -> int:
    c1, c2 = 0xCC9E2D51, 0x1B873593
    m32 = 0xFFFFFFFF
    rotl32 = lambda x, r: ((x << r) | (x >> (32 - r))) & m32
    h = seed & m32
    nblocks = len(data) // 4
    for i in range(nblocks):
        (k,) = struct.unpack("<I", data[4 * i : 4 * i + 4])
        k = (k * c1) & m32; k = rotl32(k, 15); k = (k * c2) & m32
        h ^= k
        h = rotl32(h, 13); h = (h * 5 + 0xE6546B64) & m32
    tail = data[4 * nblocks :]
    k = 0
    for i, byte in enumerate(tail):
        k |= byte << (8 * i)
    if tail:
        k = (k * c1) & m32; k = rotl32(k, 15); k = (k * c2) & m32
        h ^= k
    h ^= len(data) & m32
    h ^= h >> 16; h = (h * 0x85EBCA6B) & m32
    h ^= h >> 13; h = (h * 0xC2B2AE35) & m32
    h ^= h >> 16
    return h


def self_check():
    key = bytes(range(16))
    msg = bytes(range(15))
    # SipHash paper, Appendix A (15-byte message) and the reference implementation's vectors.h.
    paper = {0: 0x726FDB47DD0E0E31, 1: 0x74F839C593DC67FD, 15: 0xA129CA6149BE45E5}
    for n, want in paper.items():
        got = siphash(key, msg[:n], 2, 4)
        assert got == want, f"SipHash-2-4 self-check failed for {n} bytes: {got:#x} != {want:#x}"
    # MurmurHash3_x86_32 reference values (Appleby's SMHasher verification examples).
    assert murmur3_x86_32(b"", 0) == 0
    assert murmur3_x86_32(b"", 1) == 0x514E28B7
    assert murmur3_x86_32(b"hello", 0) == 0x248BFA47


def cpython_check(rows):
    """CPython 3.11+ hashes bytes with SipHash-1-3; with PYTHONHASHSEED=0 its key is all zeros,
    so hash(message) is a second, independent SipHash-1-3 to compare against (run as
    `PYTHONHASHSEED=0 python3 bucketing.py`)."""
    if os.environ.get("PYTHONHASHSEED") != "0" or sys.hash_info.algorithm != "siphash13":
        return
    for salt, value in rows:
        m = message(salt, value)
        ours = siphash(bytes(16), m, 1, 3)
        theirs = hash(m) & MASK
        # CPython maps a hash of -1 to -2; irrelevant unless ours is all ones.
        assert ours == theirs or ours == MASK, f"CPython disagrees on {salt!r}, {value!r}"
    print(f"CPython's built-in SipHash-1-3 agrees on all {len(rows)} messages")


def message(salt: str, value: str) -> bytes:
    s = salt.encode("utf-8")
    return struct.pack("<Q", len(s)) + s + value.encode("utf-8")


def row(salt: str, value: str) -> dict:
    h = siphash(bytes(16), message(salt, value), 1, 3)
    return {"salt": salt, "value": value, "siphash13": f"{h:016x}", "bucket": (h * BUCKETS) >> 64}


ROWS = [
    ("", ""),
    ("", "user-1"),
    ("a", ""),
    ("new-checkout", "user-1"),
    ("new-checkout", "user-2"),
    ("new-checkout", "user-3"),
    ("new-checkout", "alice@example.com"),
    ("new-checkout", "bob@example.com"),
    ("beta-banner", "user-1"),
    ("beta-banner", "user-2"),
    ("dark-mode", "org-42"),
    ("dark-mode", "org-43"),
    ("salt-2024-06", "user-1"),
    ("ab", "c"),
    ("a", "bc"),
    ("abc", ""),
    ("", "abc"),
    ("flag", "0"),
    ("flag", "42"),
    ("flag", "-1"),
    ("flag", "3.5"),
    ("ünïcödé-flag", "user-1"),
    ("new-checkout", "ユーザー"),
    ("new-checkout", "😀 emoji"),
    ("new-checkout", "\u0000"),
    ("nul\u0000salt", "value"),
    ("new-checkout", "x" * 7),
    ("new-checkout", "x" * 8),
    ("new-checkout", "x" * 9),
    ("new-checkout", "long-" * 50),
    ("l" * 300, "user-1"),
    ("checkout", "d2f1c0a4-6b9e-4c3e-9f1a-0b7e5d2c8a11"),
]


def main():
    self_check()
    cpython_check(ROWS)
    table = {"comment": "bucket(salt, value) = (SipHash-1-3(key 0, le64(len(salt)) || salt || value) * 100000) >> 64; "
             "regenerate/verify with bucketing.py", "rows": [row(s, v) for s, v in ROWS]}
    if "--write" in sys.argv:
        with open(VECTORS, "w", encoding="utf-8") as f:
            json.dump(table, f, indent=1, ensure_ascii=False)
            f.write("\n")
        print(f"wrote {len(ROWS)} rows to {VECTORS}")
        return
    with open(VECTORS, encoding="utf-8") as f:
        stored = json.load(f)
    bad = [r for r in stored["rows"] if row(r["salt"], r["value"]) != r]
    for r in bad:
        print("MISMATCH", r, "expected", row(r["salt"], r["value"]))
    print(f"{len(stored['rows']) - len(bad)}/{len(stored['rows'])} rows verified")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
