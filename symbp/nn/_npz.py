"""Reading an ``.npz`` archive without trusting it: sizes and headers before data.

``np.load`` reads a member as soon as it is asked for, sized by the member's own header, and an
archive's member can claim terabytes (a header of 2**40 floats: MemoryError) or inflate 1000:1
(a 1 MB zip bomb costs 1 GB). Here the caller first lists the members from the zip directory
(:func:`members`), parses each ``.npy`` header alone (:func:`header`), checks dtype and shape
against what it expects, and only then reads exactly that many bytes (:func:`read`). Nothing is
ever unpickled. Every failure is a :class:`~symbp.errors.SymbpError` naming the file.
"""

from __future__ import annotations

import os
import stat
import zipfile
import zlib
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from ..errors import SymbpError

MAX_HEADER = 10_000
"""Bytes of an ``.npy`` header (numpy's own default limit)."""

MAX_RATIO = 100
"""Largest accepted inflation of a compressed member above :data:`RATIO_FLOOR` bytes (symbp
writes members uncompressed; real weights compress barely, a zip bomb 1000:1)."""

RATIO_FLOOR = 1 << 20

_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error,
                NotImplementedError, RuntimeError)


def open_archive(path: Path) -> zipfile.ZipFile:
    """The zip archive at ``path`` (a regular file: a FIFO or a folder is refused, not
    waited on); only its directory is read."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise SymbpError(f"no such file: {path}") from None
    except OSError as exc:
        raise SymbpError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise SymbpError(f"cannot read {path}: not a regular file")
    try:
        return zipfile.ZipFile(path)
    except _READ_ERRORS as exc:
        raise SymbpError(f"cannot read {path}: not a complete symbp model file "
                         f"({type(exc).__name__}: {exc})") from None


def members(archive: zipfile.ZipFile, path: Path) -> dict[str, zipfile.ZipInfo]:
    """The archive's members by array name (``coef_0`` for ``coef_0.npy``), from the zip
    directory alone; a duplicate name, a non-``.npy`` member or a compressed member that would
    inflate more than :data:`MAX_RATIO` times is refused."""
    found: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        name = info.filename
        if not name.endswith(".npy") or "/" in name:
            raise SymbpError(f"{path} is not a symbp model file (unexpected entry {name!r})")
        key = name[:-len(".npy")]
        if key in found:
            raise SymbpError(f"{path}: damaged symbp model file (entry {name!r} twice)")
        if info.compress_type != zipfile.ZIP_STORED and info.file_size > RATIO_FLOOR \
                and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise SymbpError(f"{path}: entry {name!r} would inflate from {info.compress_size:,} "
                             f"to {info.file_size:,} bytes; refused (a zip bomb?)")
        found[key] = info
    return found


def header(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> tuple:
    """``(shape, fortran_order, dtype, header_bytes)`` of a member's ``.npy`` header, read
    alone (at most :data:`MAX_HEADER` bytes); an object dtype is refused."""
    try:
        with archive.open(info) as handle:
            version = npy_format.read_magic(handle)
            if version == (1, 0):
                shape, fortran, dtype = npy_format.read_array_header_1_0(
                    handle, max_header_size=MAX_HEADER)
            elif version == (2, 0):
                shape, fortran, dtype = npy_format.read_array_header_2_0(
                    handle, max_header_size=MAX_HEADER)
            else:
                raise ValueError(f"unsupported .npy format version {version}")
            size = handle.tell()
    except _READ_ERRORS as exc:
        raise SymbpError(f"cannot read {path}: entry {info.filename!r} is not a complete "
                         f"array ({type(exc).__name__}: {exc})") from None
    if dtype.hasobject:
        raise SymbpError(f"cannot read {path}: entry {info.filename!r} holds Python objects; "
                         "symbp model files hold numbers and text only (nothing is unpickled)")
    return tuple(shape), bool(fortran), dtype, size


def read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> np.ndarray:
    """The member's array, read after its header has been checked by the caller: exactly the
    bytes the header announces (the zip directory's size bounds what is inflated), then the
    rest of the member so that its CRC is verified."""
    shape, fortran, dtype, size = header(archive, info, path)
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    nbytes = count * dtype.itemsize
    if size + nbytes > info.file_size or info.file_size - size - nbytes > MAX_HEADER:
        raise SymbpError(f"{path}: entry {info.filename!r} is {info.file_size:,} bytes, its "
                         f"header announces {size + nbytes:,}")
    try:
        with archive.open(info) as handle:
            handle.read(size)
            data = handle.read(nbytes)
            handle.read()  # to the end: the CRC check
    except _READ_ERRORS as exc:
        raise SymbpError(f"cannot read {path}: not a complete symbp model file "
                         f"({type(exc).__name__}: {exc})") from None
    if len(data) != nbytes:
        raise SymbpError(f"cannot read {path}: entry {info.filename!r} is truncated")
    array = np.frombuffer(data, dtype=dtype, count=count)
    return array.reshape(shape, order="F" if fortran else "C")
