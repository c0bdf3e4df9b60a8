"""Package benchmark: WebDataset shards of N photo-sized JPEGs against a plain `tar` of them.

    python bench/package_bench.py [--images 10000] [--repeats 3] [--workdir DIR]

Generates N JPEGs of realistic sizes (512-1600 px a side, noise over gradients so that they
compress like photographs, about 50-550 KB, ~180 KB on average) once, and keeps them in
WORKDIR/images-N between runs. Then times, on the same disk:

- the package: for each image, read it, splice the consent XMP in (`embed_xmp`), SHA-256 it
  and append it with its JSON record to `ShardWriter` (which checks the digest again, hashes
  the shard as it writes and fsyncs each finished shard): the delivery job's own code path;
- the floor: `tar -cf` of the same files into one archive, then an fsync of it.

Each figure is the median of --repeats runs (page cache warm for both: the files are read
once before timing). Target: the package at >= 0.5x tar's throughput.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from common import print_table
from PIL import Image, ImageFilter

from marketplace.delivery import formats
from marketplace.xmp import DataMining, xmp_packet

TEXTURE_SIDE = 1600
CREATED = datetime(2026, 1, 1, tzinfo=UTC)


def texture(rng: random.Random) -> Image.Image:
    """A 1600 px square of blurred noise over rotated gradients, one per channel."""
    channels = []
    for _ in range(3):
        gradient = Image.linear_gradient("L").rotate(rng.randrange(360))
        gradient = gradient.resize((TEXTURE_SIDE, TEXTURE_SIDE))
        noise = Image.effect_noise((TEXTURE_SIDE, TEXTURE_SIDE), rng.uniform(20, 70))
        noise = noise.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.5)))
        channels.append(Image.blend(gradient, noise, rng.uniform(0.3, 0.6)))
    return Image.merge("RGB", channels)


def generate(folder: Path, count: int) -> list[Path]:
    """`count` JPEGs in `folder`, made once (a complete set is reused as it is)."""
    paths = [folder / f"{i:06d}.jpg" for i in range(count)]
    done = folder / ".complete"
    if done.exists():
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(20261203)
    textures = [texture(rng) for _ in range(6)]
    t0 = time.perf_counter()
    for i, path in enumerate(paths):
        width, height = rng.randint(512, TEXTURE_SIDE), rng.randint(512, TEXTURE_SIDE)
        x, y = rng.randint(0, TEXTURE_SIDE - width), rng.randint(0, TEXTURE_SIDE - height)
        picture = rng.choice(textures).crop((x, y, x + width, y + height))
        if rng.random() < 0.5:
            picture = picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        out = io.BytesIO()
        picture.save(out, "JPEG", quality=rng.randint(75, 90))
        path.write_bytes(out.getvalue())
        if i % 1000 == 999:
            print(f"  generated {i + 1:,} images ({time.perf_counter() - t0:.0f} s)", flush=True)
    done.touch()
    return paths


def package(paths: list[Path], out: Path) -> float:
    """Seconds to build the shards of `paths` with the delivery code path."""
    packet = xmp_packet(DataMining.ALLOWED, "https://example.test/terms/stock")
    t0 = time.perf_counter()
    with formats.ShardWriter(out, "bench", CREATED) as writer:
        for position, path in enumerate(paths):
            prepared = formats.prepare_image(path.read_bytes(), packet)
            record = formats.ItemRecord(
                key=f"{position:09d}",
                item_id=position,
                title=f"Study {position}",
                creator="Anonymous",
                source="Bench Museum",
                source_kind="institution",
                licence="public_domain",
                licence_uri="https://creativecommons.org/publicdomain/zero/1.0/",
                terms_version=None,
                terms_url="",
                terms_seq=None,
                sha256=prepared.sha256,
                media_type=prepared.media_type,
                source_url=f"https://museum.example/objects/{position}",
                ledger_seq=position + 1,
                attribution_required=False,
                attribution="",
            )
            writer.add(record, prepared)
        writer.close()
    return time.perf_counter() - t0


def plain_tar(folder: Path, paths: list[Path], out: Path) -> float:
    """Seconds for `tar -cf` of the same files, plus an fsync (the shards are fsynced too)."""
    listing = out.with_suffix(".list")
    listing.write_text("".join(f"{p.name}\n" for p in paths))
    t0 = time.perf_counter()
    subprocess.run(["tar", "-cf", str(out), "-C", str(folder), "-T", str(listing)], check=True)
    with out.open("rb") as handle:
        os.fsync(handle.fileno())
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "marketplace-package-bench"
    )
    args = parser.parse_args()
    folder = args.workdir / f"images-{args.images}"
    needed = args.images * 180_000 * 3  # the images, the shards and the tar
    free = shutil.disk_usage(args.workdir.parent if not args.workdir.exists() else args.workdir)
    if not (folder / ".complete").exists() and free.free < needed:
        raise SystemExit(f"needs ~{needed / 1e9:.1f} GB free in {args.workdir}; use --images")
    paths = generate(folder, args.images)
    total_bytes = sum(p.stat().st_size for p in paths)
    for path in paths:  # warm the page cache for both contenders alike
        path.read_bytes()
    package_runs, tar_runs = [], []
    for _ in range(args.repeats):
        out = args.workdir / "out"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        package_runs.append(package(paths, out / "shards"))
        tar_runs.append(plain_tar(folder, paths, out / "plain.tar"))
        shutil.rmtree(out)
    package_s, tar_s = statistics.median(package_runs), statistics.median(tar_runs)
    megabytes = total_bytes / 1e6
    print_table(
        f"Packaging {args.images:,} JPEGs ({megabytes:,.0f} MB), median of {args.repeats}:",
        [
            {
                "images": f"{args.images:,}",
                "MB": f"{megabytes:,.0f}",
                "package (embed_xmp + sha256 + tar)": (
                    f"{package_s:.1f} s ({megabytes / package_s:,.0f} MB/s)"
                ),
                "tar -cf floor": f"{tar_s:.1f} s ({megabytes / tar_s:,.0f} MB/s)",
                "package / tar throughput": f"{tar_s / package_s:.2f}x",
            }
        ],
    )


if __name__ == "__main__":
    main()
