"""What every toolchain's canaries share: names that read like a learner's own, and putting the files back."""

import secrets
from pathlib import Path

# Words for planted names, so a canary cannot be picked out by the look of its name.
WORDS = ("order", "ledger", "retry", "window", "budget", "quota", "batch", "cursor", "bucket", "lease", "shard",
         "token", "route", "probe", "queue", "slot", "epoch", "drain", "merge", "span")


def name_parts(rng: secrets.SystemRandom) -> list[str]:
    """Two words and a number, e.g. ["retry", "ledger", "42"]."""
    return [rng.choice(WORDS), rng.choice(WORDS), str(rng.randrange(10, 99))]


def restore(root: Path, planted: list) -> None:
    """Put back each file a canary was appended to (its `file` relative to `root`, its `original` and `appended`
    bytes); a file the run changed is left as the run left it, for the check that follows."""
    for canary in planted:
        target = root / canary.file
        try:
            if not target.is_symlink() and target.read_bytes() == canary.original + canary.appended:
                target.write_bytes(canary.original)
        except OSError:
            continue
