"""The chain store: ``vectors.npy`` [N, D], ``offsets.npy`` [C+1] and ``manifest.json``.

Chain ``c`` is ``vectors[offsets[c]:offsets[c+1]]``.  Arrays are opened with
``mmap_mode="r"`` and ``allow_pickle=False`` so a store costs its unique vectors
and nothing in it can execute code.  The manifest carries the sha256 of each
array file; loading checks them, so a swapped or truncated array is caught
before it can produce a number.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lvmbench.errors import DataError
from lvmbench.io import atomic_write_json, current_umask, disk_full, disk_full_behind, read_json, sha256_file

MANIFEST = "manifest.json"
VECTORS = "vectors.npy"
OFFSETS = "offsets.npy"
FORMAT = "lvmbench-chain-store"
FORMAT_VERSION = 1


@dataclass
class ChainStore:
    path: Path
    vectors: np.ndarray  # [N, D] float16/float32, memory-mapped
    offsets: np.ndarray  # [C+1] int64
    manifest: dict[str, Any]

    @property
    def n_chains(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_vectors(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def name(self) -> str:
        return str(self.manifest.get("name", self.path.name))

    @property
    def sha256(self) -> str:
        """Dataset identity: the hashes of both arrays, combined."""
        return str(self.manifest["sha256"]["dataset"])

    def chain(self, c: int) -> np.ndarray:
        return self.vectors[self.offsets[c] : self.offsets[c + 1]]

    def chain_ids(self) -> list[str]:
        ids = self.manifest.get("chain_ids")
        return list(ids) if ids else [str(i) for i in range(self.n_chains)]


def _combined(vec_sha: str, off_sha: str) -> str:
    import hashlib

    return hashlib.sha256(f"{vec_sha}:{off_sha}".encode()).hexdigest()


def write_store(
    out: str | Path,
    vectors: np.ndarray,
    offsets: np.ndarray,
    manifest: dict[str, Any],
    overwrite: bool = False,
) -> ChainStore:
    """Write a chain store to ``out`` all at once.

    The arrays and manifest are written into a sibling temp directory which is
    renamed into place, so a reader never sees a store whose manifest does not
    match its arrays.
    """
    out = Path(out)
    vectors = np.asarray(vectors)
    offsets = np.asarray(offsets, dtype=np.int64)
    validate_arrays(vectors, offsets, where=str(out))
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise DataError(f"{out}: directory exists and is not empty (pass --overwrite to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes 0700
    try:
        np.save(tmp / VECTORS, np.ascontiguousarray(vectors), allow_pickle=False)
        np.save(tmp / OFFSETS, offsets, allow_pickle=False)
        vec_sha, off_sha = sha256_file(tmp / VECTORS), sha256_file(tmp / OFFSETS)
        lengths = np.diff(offsets)
        full = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": manifest.get("name", out.name),
            **manifest,
            "dim": int(vectors.shape[1]),
            "dtype": str(vectors.dtype),
            "n_chains": int(len(offsets) - 1),
            "n_vectors": int(vectors.shape[0]),
            "chain_length": {
                "min": int(lengths.min()) if len(lengths) else 0,
                "max": int(lengths.max()) if len(lengths) else 0,
                "mean": float(lengths.mean()) if len(lengths) else 0.0,
            },
            "files": {"vectors": VECTORS, "offsets": OFFSETS},
            "sha256": {"vectors": vec_sha, "offsets": off_sha, "dataset": _combined(vec_sha, off_sha)},
        }
        if "chain_ids" in full and len(full["chain_ids"]) != len(offsets) - 1:
            raise DataError(f"{out}: manifest has {len(full['chain_ids'])} chain ids for {len(offsets) - 1} chains")
        atomic_write_json(tmp / MANIFEST, full)
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        full = disk_full_behind(exc)
        if full is not None:
            raise disk_full(out, full) from None
        raise
    return load_store(out)


def validate_arrays(vectors: np.ndarray, offsets: np.ndarray, where: str) -> None:
    """Hard checks: shape, dtype, monotone offsets, finite and non-zero vectors."""
    if vectors.ndim != 2 or vectors.shape[1] < 1:
        raise DataError(f"{where}: vectors must be a 2-D [N, D] array, got shape {vectors.shape}")
    if vectors.dtype not in (np.float16, np.float32):
        raise DataError(f"{where}: vectors must be float16 or float32, got {vectors.dtype}")
    if offsets.ndim != 1 or len(offsets) < 1 or offsets.dtype != np.int64:
        raise DataError(f"{where}: offsets must be a 1-D int64 array of C+1 entries")
    if vectors.shape[0] == 0 or len(offsets) < 2:
        raise DataError(f"{where}: dataset is empty (no vectors or no chains)")
    bad = _offsets_fault(offsets, vectors.shape[0])
    if bad:
        raise DataError(f"{where}: offsets must start at 0, be non-decreasing and end at N={vectors.shape[0]}: {bad}")
    # Blockwise so a memory-mapped store is not pulled into RAM at float32.
    block = 65536
    for start in range(0, vectors.shape[0], block):
        v = np.asarray(vectors[start : start + block], dtype=np.float32)
        bad = ~np.isfinite(v).all(axis=1)
        if bad.any():
            row = start + int(np.argmax(bad))
            raise DataError(f"{where}: vector {row} (chain {_chain_of(offsets, row)}) has NaN or Inf values")
        norms = np.linalg.norm(v.astype(np.float64), axis=1)  # float64: a huge row's square must not overflow
        zero = norms <= 1e-30
        if zero.any():
            row = start + int(np.argmax(zero))
            raise DataError(f"{where}: vector {row} (chain {_chain_of(offsets, row)}) has zero norm")


def _offsets_fault(offsets: np.ndarray, n: int) -> str | None:
    """What is wrong with ``offsets`` and at which index, or None."""
    if offsets[0] != 0:
        return f"offsets[0] is {offsets[0]}"
    steps = np.diff(offsets)
    if np.any(steps < 0):
        i = int(np.argmax(steps < 0)) + 1
        return f"offsets[{i}] = {offsets[i]} is below offsets[{i - 1}] = {offsets[i - 1]} (chain {i - 1})"
    if offsets[-1] != n:
        return f"offsets[{len(offsets) - 1}] (the last) is {offsets[-1]}"
    return None


def _chain_of(offsets: np.ndarray, row: int) -> int:
    return int(np.searchsorted(offsets, row, side="right") - 1)


def load_npy(path: Path) -> np.ndarray:
    """Memory-map a numeric ``.npy``; refuse anything else with one line naming the file.

    The header is read first: without the NUMPY magic ``np.load`` would fall
    back to unpickling (refused anyway by ``allow_pickle=False``, with a
    misleading message), and a data section shorter than the header promises
    is a truncated file, reported as such.
    """
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with open(path, "rb") as fh:
            if fh.read(6) != np.lib.format.MAGIC_PREFIX:
                raise DataError(f"{path}: not a .npy file (no NUMPY header; empty, corrupt or another format)")
            fh.seek(0)
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                raise DataError(f"{path}: unsupported .npy format version {version}")
            header_end = fh.tell()
    except (ValueError, EOFError) as exc:
        raise DataError(f"{path}: truncated or corrupt .npy header ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read .npy ({exc.strerror or exc})") from None
    if dtype.hasobject:
        raise DataError(f"{path}: holds Python objects (a pickled array); only numeric arrays are loaded")
    expected = header_end + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = path.stat().st_size
    if actual < expected:
        raise DataError(f"{path}: truncated .npy: the header promises {expected} bytes, the file has {actual}")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, EOFError) as exc:
        raise DataError(f"{path}: not a readable numeric .npy array ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read .npy ({exc.strerror or exc})") from None


def _read_manifest(path: Path, mpath: Path) -> dict[str, Any]:
    """The store's manifest, refused unless it is a chain-store manifest of a format this version reads."""
    if not path.is_dir():
        raise DataError(f"{path}: dataset directory not found")
    if not mpath.is_file():
        raise DataError(f"{mpath}: manifest not found (is this a chain store?)")
    manifest = read_json(mpath, DataError)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DataError(f"{mpath}: not an lvmbench chain-store manifest")
    version = manifest.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise DataError(f"{mpath}: format_version {version!r} is not an integer")
    if version > FORMAT_VERSION:
        raise DataError(
            f"{mpath}: format version {manifest.get('format_version')} is newer than this lvmbench "
            f"understands ({FORMAT_VERSION}); upgrade lvmbench"
        )
    return manifest


def _manifest_tables(mpath: Path, manifest: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The manifest's ``files`` and ``sha256`` tables, each required to be an object."""
    files = manifest.get("files", {})
    sha = manifest.get("sha256", {})
    for key, value in (("files", files), ("sha256", sha)):
        if not isinstance(value, dict):
            raise DataError(f"{mpath}: '{key}' must be an object mapping array names to values")
    return files, sha


def _array_paths(path: Path, mpath: Path, files: dict[str, Any]) -> dict[str, Path]:
    """Resolve the array files, refusing entries that escape the dataset directory."""
    arrays = {}
    for key, default in (("vectors", VECTORS), ("offsets", OFFSETS)):
        name = str(files.get(key, default))
        fpath = (path / name).resolve()
        if path.resolve() not in fpath.parents:
            raise DataError(f"{mpath}: file entry {name!r} points outside the dataset directory")
        arrays[key] = fpath
    return arrays


def _verify_hashes(mpath: Path, arrays: dict[str, Path], sha: dict[str, Any]) -> None:
    """Each array file against its manifest hash, then the combined dataset hash against both."""
    for key, fpath in arrays.items():
        if not fpath.is_file():
            raise DataError(f"{fpath}: file not found")
        actual = sha256_file(fpath)
        if actual != sha.get(key):
            raise DataError(
                f"{fpath}: sha256 {actual[:12]}… does not match the manifest ({str(sha.get(key))[:12]}…)"
            )
    if sha.get("dataset") != _combined(str(sha.get("vectors")), str(sha.get("offsets"))):
        raise DataError(f"{mpath}: sha256.dataset is missing or does not match the array hashes")


def _load_arrays(arrays: dict[str, Path]) -> tuple[np.ndarray, np.ndarray]:
    """Memory-map the vectors and read the offsets, which must be int64."""
    vectors = load_npy(arrays["vectors"])
    offsets = np.asarray(load_npy(arrays["offsets"]))
    if offsets.dtype != np.int64:
        raise DataError(f"{arrays['offsets']}: offsets must be int64, got {offsets.dtype}")
    return vectors, offsets


def _check_manifest_matches(mpath: Path, manifest: dict[str, Any], vectors: np.ndarray, offsets: np.ndarray) -> None:
    """The manifest's ``dim`` and ``chain_ids`` must describe the arrays actually loaded."""
    if "dim" in manifest and vectors.ndim == 2 and manifest["dim"] != vectors.shape[1]:
        raise DataError(f"{mpath}: manifest dim {manifest['dim']!r} but vectors have dim {vectors.shape[1]}")
    ids = manifest.get("chain_ids")
    if ids is not None and offsets.ndim == 1 and (not isinstance(ids, list) or len(ids) != len(offsets) - 1):
        n = len(ids) if isinstance(ids, list) else type(ids).__name__
        raise DataError(f"{mpath}: 'chain_ids' must list one id per chain ({n} for {len(offsets) - 1} chains)")


def load_store(path: str | Path, verify: bool = True) -> ChainStore:
    """Open a chain store, checking the manifest, hashes and array contents."""
    path = Path(path)
    mpath = path / MANIFEST
    manifest = _read_manifest(path, mpath)
    files, sha = _manifest_tables(mpath, manifest)
    arrays = _array_paths(path, mpath, files)
    if verify:
        _verify_hashes(mpath, arrays, sha)
    vectors, offsets = _load_arrays(arrays)
    if verify:
        validate_arrays(vectors, offsets, where=str(path))
    _check_manifest_matches(mpath, manifest, vectors, offsets)
    return ChainStore(path=path, vectors=vectors, offsets=offsets, manifest=manifest)
