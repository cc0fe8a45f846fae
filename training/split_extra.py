"""Split the extra photo crops into training and held-out folders, by photograph.

    EXTRA/images/<package>__<image>_<k>.webp ─group by <package>__<image>─> sha256(name) % 20 == 0 ?
        yes: OUT/heldout/   no: OUT/train/        (symbolic links, nothing copied)

All crops of one photograph land on the same side, so the held-out slice measures photographs
the model has never seen; the hash makes the split the same on every machine and independent of
which packages were built. About 1 in 20 photographs is held out.

    python training/split_extra.py --extra ~/aecodec-extra --out ~/aecodec-split
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path

HELDOUT_ONE_IN = 20
CROP_NAME = re.compile(r"^(?P<photo>.+)_(?P<k>\d+)\.webp$")


def photograph(path: Path) -> str:
    """The photograph a crop was cut from: its file name without the crop number."""
    match = CROP_NAME.match(path.name)
    if match is None:
        raise ValueError(f"{path.name}: not a crop name of build.py (<package>__<image>_<k>.webp)")
    return match["photo"]


def is_heldout(photo: str) -> bool:
    digest = hashlib.sha256(photo.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % HELDOUT_ONE_IN == 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--extra", type=Path, required=True, help="build.py's --out folder")
    ap.add_argument("--out", type=Path, required=True, help="gets train/ and heldout/ of links")
    args = ap.parse_args(argv)
    crops = sorted((args.extra / "images").glob("*.webp"))
    if not crops:
        print(f"error: no crops in {args.extra / 'images'}", file=sys.stderr)
        return 2
    counts = {"train": 0, "heldout": 0}
    for side in counts:
        (args.out / side).mkdir(parents=True, exist_ok=True)
    for crop in crops:
        side = "heldout" if is_heldout(photograph(crop)) else "train"
        link = args.out / side / crop.name
        if not link.exists():
            link.symlink_to(crop.resolve())
        counts[side] += 1
    print(f"{counts['train']} training crops, {counts['heldout']} held-out crops -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
