#!/usr/bin/env python3
"""The pointer signature's worked example, `pointer-signature.json`, written from the format's
definition (shared-eval/src/pointer/signature.rs, "The signed bytes") and signed with Python's
`cryptography` (OpenSSL's Ed25519), independently of the Rust code that reads it.

    python3 signing.py            checks the file: every message and signature, the key id
    python3 signing.py --write    writes it again

The key is a test key (its seed is in the file): never configure it anywhere.
"""

import base64
import hashlib
import json
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

HERE = Path(__file__).parent
FILE = HERE / "pointer-signature.json"
SEED = bytes(range(32))
A = "346b7447d1c0c2f6b9b0fbd7a8cbd5f3e07f7bba8a4f3c0cbf6f4b8f0e2d2a11"
B = "683c2e56a1f49d7ab2a0c8a2e8c35d1f3a1fc2c79a0e7e1b5d9f52c0d3b4e6f7"


def buckets(percent):
    """A percent as buckets of 100,000, rounded half away from zero (pointer.rs, `buckets_of`)."""
    scaled = percent * 100000 / 100
    whole = int(scaled)
    return whole + (1 if scaled - whole >= 0.5 else 0)


def message(environment, pointer):
    """The signed bytes, from the format's definition."""
    lines = [
        "flags-pointer-signature-v1",
        f"environment={environment}",
        f"version={pointer['version']}",
        f"sha256={pointer['sha256']}",
        f"content_hash={pointer.get('content_hash') or ''}",
    ]
    canary = pointer.get("canary")
    if canary:
        lines += [
            f"canary.sha256={canary['sha256']}",
            f"canary.content_hash={canary.get('content_hash') or ''}",
            f"canary.buckets={buckets(canary['percent'])}",
            f"canary.salt={canary['salt']}",
            f"canary.since={canary['since']}",
        ]
    for line in lines:
        assert all(ord(c) >= 0x20 and ord(c) != 0x7F for c in line), line
    return ("\n".join(lines) + "\n").encode()


def key_id(public_raw):
    """The publisher's key id: the first 16 hex digits of the public key's SHA-256."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


def pointers():
    stable = {
        "version": 7,
        "blob": f"blobs/{A}.json.gz",
        "sha256": A,
        "content_hash": "sha256:30eb",
    }
    canary = dict(
        stable,
        canary={
            "blob": f"blobs/{B}.json.gz",
            "sha256": B,
            "content_hash": "sha256:0572",
            "percent": 12.5,
            "salt": "canary-prod-6",
            "since": 6,
        },
    )
    return [("stable only", "prod", stable), ("with a canary", "prod", canary)]


def build():
    private = Ed25519PrivateKey.from_private_bytes(SEED)
    public_raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    kid = key_id(public_raw)
    cases = []
    for name, environment, pointer in pointers():
        text = message(environment, pointer)
        signature = private.sign(text)
        signed = dict(
            pointer,
            signature={"key_id": kid, "ed25519": base64.b64encode(signature).decode()},
        )
        cases.append(
            {"name": name, "environment": environment, "pointer": signed, "message": text.decode()}
        )
    return {
        "about": "Pointer signatures (shared-eval/src/pointer/signature.rs), made by signing.py",
        "seed_hex": SEED.hex(),
        "public_key_base64": base64.b64encode(public_raw).decode(),
        "key_id": kid,
        "cases": cases,
    }


def check(data):
    public_raw = base64.b64decode(data["public_key_base64"])
    public = Ed25519PublicKey.from_public_bytes(public_raw)
    assert key_id(public_raw) == data["key_id"]
    for case in data["cases"]:
        pointer = {k: v for k, v in case["pointer"].items() if k != "signature"}
        text = message(case["environment"], pointer)
        assert text.decode() == case["message"], case["name"]
        signature = case["pointer"]["signature"]
        assert signature["key_id"] == data["key_id"]
        public.verify(base64.b64decode(signature["ed25519"]), text)  # raises if it does not verify
    assert build() == data, "the file is not what signing.py writes"


if __name__ == "__main__":
    if "--write" in sys.argv:
        FILE.write_text(json.dumps(build(), indent=2) + "\n")
    check(json.loads(FILE.read_text()))
    print(f"{FILE.name}: {len(json.loads(FILE.read_text())['cases'])} cases verified")
