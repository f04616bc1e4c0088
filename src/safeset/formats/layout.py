"""What a folder holds, looked at as a whole: the layouts users actually have on disk.

A folder given as SOURCE may be a tree of images (the folder format), or a tree of dataset
files of one kind with metadata beside them:

  shards/00000.tar 00000.parquet 00000_stats.json      img2dataset, webdataset output
  out/00000.parquet 00000_stats.json                   img2dataset, parquet output
  ds/train/00000.tar ds/val/00000.tar                  split folders
  snapshot/README.md snapshot/data/train-00000-of-00001.parquet   a Hugging Face Hub snapshot
  saved/data-00000-of-00001.arrow state.json dataset_info.json    datasets' save_to_disk
  urls/part-0.txt part-1.txt                           img2dataset's url lists

``survey`` walks the tree once and says which: the dataset files found at any depth (the
metadata beside them, which is not data, left out), or that it holds images, or neither, in
which case the folder is refused in one line rather than scanned into a few review rows.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from safeset.errors import SafesetError
from safeset.formats.base import IMAGE_EXTENSIONS, extension

# Dataset files by kind, as their names say. Tars with a metadata Parquet beside each one are
# img2dataset's webdataset output: the tars are the data.
CONTAINER_KINDS = {
    "tar": (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz"),
    "parquet": (".parquet",),
    "arrow": (".arrow",),
    "table": (".csv", ".tsv"),
}
# Files that hold a layout's metadata, never samples: left out of the dataset files.
METADATA_EXTENSIONS = frozenset({"json", "md", "yaml", "yml", "lock", "gitattributes", "txt"})
# Magic numbers of image formats, for files whose names do not say (first bytes).
IMAGE_MAGIC = (
    b"\xff\xd8\xff",
    b"\x89PNG",
    b"GIF8",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"\x00\x00\x00\x0cjP",
)
SNIFF_LIMIT = 64  # files of unknown type looked into per folder survey


def container_kind(path: Path) -> str | None:
    name = path.name.lower()
    for kind, suffixes in CONTAINER_KINDS.items():
        if name.endswith(suffixes):
            return kind
    return None


def is_url_list(path: Path) -> bool:
    """A ``.txt`` file whose first non-blank line is an http(s) URL: img2dataset's url list
    (``input_format="txt"``). Captions beside images are ``.txt`` too, hence the look."""
    if path.suffix.lower() != ".txt" or not path.is_file():
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    for line in head.splitlines():
        if line.strip():
            return line.strip().lower().startswith((b"http://", b"https://"))
    return False


@dataclass
class Survey:
    """What a folder tree holds."""

    root: Path
    containers: dict[str, list[Path]] = field(default_factory=dict)
    url_lists: list[Path] = field(default_factory=list)
    images: int = 0
    others: Counter[str] = field(default_factory=Counter)  # by extension, for the refusal

    @property
    def dataset_files(self) -> list[Path]:
        """The files that hold the samples, of the one kind the folder holds, sorted."""
        kinds = [k for k in self.containers if self.containers[k]]
        if self.images and kinds == ["table"]:
            return []  # an image folder's metadata.csv (imagefolder), not a url table
        if "tar" in kinds:  # img2dataset: tar shards with metadata-only Parquet beside them
            kinds = ["tar"]
        if len(kinds) > 1:
            first, second = (self.containers[k][0] for k in kinds[:2])
            raise SafesetError(
                f"{self.root} holds dataset files of several kinds ({first.name}, {second.name}): "
                "pass each kind as its own SOURCE argument"
            )
        if kinds:
            return sorted(self.containers[kinds[0]])
        return sorted(self.url_lists)

    def refuse(self) -> SafesetError:
        found = ", ".join(f"{n} {ext or '(no extension)'}" for ext, n in self.others.most_common(5))
        return SafesetError(
            f"{self.root} holds no images and no dataset files (.tar, .parquet, .arrow, .csv, "
            f".tsv, .txt url lists){'; it holds ' + found if found else ', no files at all'}"
        )


def survey(root: Path) -> Survey:
    """Walk ``root`` (without following links to folders) and sort what it holds.

    A dataset file whose link leads outside the dataset folder is refused, as a dataset may
    never make safeset read outside it (invariant 7); a Hugging Face cache snapshot's links
    into its repository's ``blobs/`` stay inside the repository folder, which counts as the
    dataset's folder there.
    """
    found = Survey(root)
    boundary = dataset_boundary(root)
    sniffed = 0
    texts: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(folder) / name
            kind = container_kind(path)
            ext = extension(name)
            if kind is not None:
                _check_inside(path, boundary)
                found.containers.setdefault(kind, []).append(path)
            elif ext in IMAGE_EXTENSIONS:
                found.images += 1
            elif ext == "txt":
                texts.append(path)  # url lists, or captions: looked into only if need be
            elif ext in METADATA_EXTENSIONS or name.startswith("."):
                found.others[ext] += 1
            elif sniffed < SNIFF_LIMIT and _looks_like_image(path):
                sniffed += 1
                found.images += 1
            else:
                sniffed += 1
                found.others[ext] += 1
    if found.images or any(found.containers.values()):
        found.others["txt"] += len(texts)
        return found
    for path in texts:
        if is_url_list(path):
            _check_inside(path, boundary)
            found.url_lists.append(path)
        else:
            found.others["txt"] += 1
    return found


def dataset_boundary(root: Path) -> Path:
    """The folder a dataset's files may lead into: the folder itself, or for a snapshot in the
    Hugging Face hub cache (``datasets--OWNER--NAME/snapshots/REVISION/...``), the repository
    folder holding ``blobs/`` that the snapshot's files link to."""
    real = Path(os.path.realpath(root))
    for parent in [real, *real.parents]:
        if parent.parent.name == "snapshots" and parent.parent.parent.name.startswith("datasets--"):
            return parent.parent.parent
    return real


def _check_inside(path: Path, boundary: Path) -> None:
    if not Path(os.path.realpath(path)).is_relative_to(boundary):
        raise SafesetError(f"{path} is a link leading outside the dataset folder; not read")


def _looks_like_image(path: Path) -> bool:
    """Whether a file without an image name starts like one (regular files only: a FIFO under
    any name would block)."""
    try:
        if not path.is_file() or path.is_symlink():
            return False
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return False
    return head.startswith(IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
