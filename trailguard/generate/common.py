"""Placeholder identities, addresses, ids and times shared by the generators.

Every value is a documentation placeholder: the AWS example accounts, the
RFC 5737 test networks and `example-*` names, so generated data can never be
mistaken for (or collide with) a real account.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

ACCOUNTS = ("111122223333", "444455556666")
REGIONS = ("us-east-1", "us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2")
IP_NETWORKS = ("198.51.100.", "203.0.113.", "192.0.2.")
USER_NAMES = ("example-user", "example-admin", "example-ci", "example-auditor", "example-dev")
ROLE_NAMES = ("example-deploy-role", "example-readonly-role", "example-lambda-role")
BUCKET_NAMES = ("example-logs-bucket", "example-data-bucket", "example-public-site",
                "example-backups")
CITIES = (("Ashburn", "United States", 39.04, -77.49), ("Frankfurt", "Germany", 50.11, 8.68),
          ("Sao Paulo", "Brazil", -23.55, -46.63), ("Singapore", "Singapore", 1.29, 103.85),
          ("Amsterdam", "Netherlands", 52.37, 4.9))
_KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def as_rng(seed: random.Random | int) -> random.Random:
    """The `random.Random` to draw from: `seed` itself, or a new one seeded with it."""
    return seed if isinstance(seed, random.Random) else random.Random(seed)


def placeholder_ip(rng: random.Random) -> str:
    """An address from one of the three documentation networks."""
    return f"{rng.choice(IP_NETWORKS)}{rng.randrange(1, 255)}"


def hex_id(rng: random.Random, digits: int = 32) -> str:
    """`digits` lowercase hex characters, such as a GuardDuty finding or detector id."""
    return f"{rng.getrandbits(4 * digits):0{digits}x}"


def uuid4(rng: random.Random) -> str:
    """A version-4 UUID drawn from `rng` (uuid.uuid4 would use the OS, not the seed)."""
    bits = rng.getrandbits(128)
    bits = (bits & ~(0xF000 << 64)) | (0x4000 << 64)   # version 4
    bits = (bits & ~(0xC000 << 48)) | (0x8000 << 48)   # RFC 4122 variant
    text = f"{bits:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def key_id(rng: random.Random, prefix: str) -> str:
    """An access key or principal id shape (`AKIA...`, `ASIA...`, `AIDA...`, `AROA...`)."""
    return prefix + "".join(rng.choices(_KEY_ALPHABET, k=20 - len(prefix)))


def iso_seconds(epoch_ms: int) -> str:
    """`2024-05-01T12:00:00Z`, the precision of CloudTrail eventTime and EventBridge time."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_ms // 1000))


def iso_millis(epoch_ms: int) -> str:
    """`2024-05-01T12:00:00.123Z`, the precision of GuardDuty createdAt/updatedAt."""
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_ms // 1000))
    return f"{whole}.{epoch_ms % 1000:03d}Z"


def spread_times(rng: random.Random, start_ms: int, end_ms: int, count: int) -> Iterator[int]:
    """`count` increasing epoch-ms times in [start_ms, end_ms), one per equal slice, jittered.

    Drawn lazily, so a million times cost no memory. The first slice starts at
    `start_ms` rounded up to a whole second, so that second-precision fields
    (CloudTrail eventTime, EventBridge time) still fall inside the range.
    """
    first = -(-start_ms // 1000) * 1000
    if count <= 0:
        return
    if end_ms <= first:
        raise ValueError(f"time range [{start_ms}, {end_ms}) holds no whole second; widen it")
    step = (end_ms - first) / count
    for index in range(count):
        yield min(end_ms - 1, first + int((index + rng.random()) * step))
