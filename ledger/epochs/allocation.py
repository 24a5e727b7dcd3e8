"""Exact integer pro-rata allocation of an epoch's emission by points (largest remainder)."""


def allocate(emission: int, points: dict[str, int]) -> dict[str, int]:
    """Split `emission` base units among contributors in proportion to their points.

    Each contributor first gets floor(emission * p / P). The units left over go one each to the
    largest fractional remainders; equal remainders favour the numerically lower address. The
    result sums to `emission` exactly, and is empty when no points were earned.

    Raises:
        ValueError: on a negative emission or a non-positive point count.
    """
    if emission < 0:
        raise ValueError(f"emission must not be negative, got {emission}")
    for address, value in points.items():
        if value <= 0:
            raise ValueError(f"points of {address} must be positive, got {value}")

    total = sum(points.values())
    if total == 0:
        return {}

    shares: dict[str, int] = {}
    remainders: list[tuple[int, int, str]] = []
    for address, value in points.items():
        share, remainder = divmod(emission * value, total)
        shares[address] = share
        remainders.append((-remainder, int(address, 16), address))

    leftover = emission - sum(shares.values())
    remainders.sort()
    for _, _, address in remainders[:leftover]:
        shares[address] += 1
    return shares


def tokens_for_points(points: int, *, epoch_emission: int, epoch_points: int) -> int:
    """Return floor(points * emission / total points): what `points` earned at an epoch's rate."""
    if epoch_points <= 0:
        return 0
    return points * epoch_emission // epoch_points
