"""Path policy for caller-chosen files, and writes that cannot escape it (security.md §4.3).

Pure and synchronous (no ComfyUI import; run it off the event loop with ``asyncio.to_thread``).

* :func:`check_path_text` rejects a path string before any filesystem call: empty, too long, control,
  bidi and zero-width characters, ``~``, ``..``, Windows drive / UNC / device / root-relative forms,
  ``<>:"|?*`` in a name, reserved device names, names ending in a dot or space, suffixes outside the
  image allow-list. Windows rules apply on every OS; ``\\`` is read as a folder separator everywhere.
* :class:`PathPolicy` places a checked path inside its roots: lexically first, then with the existing
  parent resolved (symlinks followed) and required inside a resolved root and outside the deny trees;
  the missing leaf is never resolved. Missing folders are created one level at a time, through
  directory descriptors opened with ``O_NOFOLLOW``, only after every check passed.
* :func:`safe_write` writes through a parent descriptor reached without following any symlink, into
  an exclusive temporary file, fsyncs, then publishes it with ``rename`` (overwrite) or ``link``
  (no overwrite: of two concurrent writers exactly one wins).

Error messages name the caller's own text, the allowed folders and a hint; never a resolved path that
lies outside the roots.
"""

from __future__ import annotations

import errno
import os
import secrets
import site
import stat
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp"})
MAX_PATH_CHARS = 1024
MAX_NAME_BYTES = 255

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)
_DIR_FLAGS = os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC
_USE_DIR_FD = bool(
    _O_NOFOLLOW and _O_DIRECTORY and {os.open, os.mkdir, os.link, os.rename, os.unlink} <= os.supports_dir_fd
)

_CASELESS = sys.platform in ("darwin", "win32")  # default filesystems there ignore case
_WINDOWS_BAD = frozenset('<>:"|?*')
_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{p}{n}" for p in ("COM", "LPT") for n in (*"123456789", "¹", "²", "³")}
)
BRIDGE_CODE = Path(__file__).resolve().parents[2]  # this extension's own folder

# Code folders of an interpreter prefix, protected instead of the whole prefix when ComfyUI's own
# input or output folder lies inside it (e.g. ComfyUI installed under /usr/local).
_PREFIX_CODE = ("bin", "lib", "lib64", "include", "Lib", "Scripts", "DLLs")

_NO_LINKS = frozenset({errno.EPERM, errno.EMLINK, errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP})


class PathRejected(ValueError):
    """A path the policy refuses. ``reason`` says what was wrong; the message adds where is allowed."""

    def __init__(
        self, reason: str, *, subject: str = "", allowed: Sequence[str] = (), hint: str = ""
    ) -> None:
        self.reason = reason
        self.allowed = tuple(allowed)
        message = f"{subject} was refused: {reason}" if subject else reason
        if allowed:
            message += ". Allowed folders: " + ", ".join(allowed)
        if hint:
            message += ". " + hint
        super().__init__(message)


def show(text: str, limit: int = 120) -> str:
    """Caller text for a message: quoted, invisible and control characters escaped, cut to ``limit``."""
    out = []
    for char in text[:limit]:
        if char.isprintable() and unicodedata.category(char) not in {"Cf", "Cs", "Co", "Zl", "Zp"}:
            out.append(char)
        else:
            out.append(f"\\u{ord(char):04x}")
    return "'" + "".join(out).replace("'", "\\'") + ("...'" if len(text) > limit else "'")


def check_path_text(
    text: object, suffixes: Iterable[str] | None = IMAGE_SUFFIXES
) -> tuple[bool, tuple[str, ...]]:
    """Lexical checks only (no filesystem call); return ``(is_absolute, names)`` or raise PathRejected.

    ``/`` and ``\\`` both separate folders; empty and ``.`` names are dropped. With ``suffixes`` None
    any extension is accepted.
    """
    if not isinstance(text, str):
        raise PathRejected("the path must be a string")
    if not text.strip():
        raise PathRejected("the path is empty")
    if len(text) > MAX_PATH_CHARS:
        raise PathRejected(f"the path is longer than {MAX_PATH_CHARS} characters")
    for char in text:
        code = ord(char)
        if code < 0x20 or 0x7F <= code <= 0x9F:
            raise PathRejected(f"the path contains control character U+{code:04X}")
        if unicodedata.category(char) in {"Cf", "Cs", "Zl", "Zp"}:
            raise PathRejected(f"the path contains invisible or direction-changing character U+{code:04X}")
    if "~" in text:
        raise PathRejected("'~' is not allowed (home folders are not expanded; give the full folder)")
    windows = PureWindowsPath(text)
    if windows.drive:
        raise PathRejected("Windows drive letters, network (UNC) and device paths are not allowed")
    if text.startswith("\\") or (os.name == "nt" and text.startswith("/")):
        raise PathRejected("root-relative Windows paths (starting with '\\') are not allowed")
    if text.startswith("//"):
        raise PathRejected("paths starting with '//' are not allowed")
    if text[-1] in "/\\":
        raise PathRejected("the path ends in a folder separator; name the file")
    names = tuple(n for n in text.replace("\\", "/").split("/") if n not in ("", "."))
    if not names:
        raise PathRejected("the path has no file name")
    for name in names:
        _check_name(name)
    if suffixes is not None:
        allowed = {s.lower() for s in suffixes}
        suffix = PurePosixPath(names[-1]).suffix.lower()
        if suffix not in allowed:
            raise PathRejected(
                f"the file name must end in one of {', '.join(sorted(allowed))} (upper or lower case)"
            )
    return text.startswith("/"), names


def _check_name(name: str) -> None:
    if name == "..":
        raise PathRejected("'..' is not allowed in a path")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise PathRejected(f"a file or folder name is longer than {MAX_NAME_BYTES} bytes")
    if ":" in name:
        raise PathRejected("':' is not allowed in a file or folder name (drive letters and NTFS streams)")
    bad = sorted(set(name) & _WINDOWS_BAD)
    if bad:
        raise PathRejected(f"{' '.join(bad)} cannot appear in a file or folder name")
    if name[-1] in ". ":
        raise PathRejected(f"the name {show(name)} ends in a dot or space")
    if name.split(".", 1)[0].rstrip(" ").upper() in _RESERVED:
        raise PathRejected(f"{show(name)} is a reserved device name on Windows")


def numbered(path_text: str, count: int) -> list[str]:
    """File names for ``count`` images: ``path_text`` itself for one, else ``stem_1.ext``, ``stem_2.ext``."""
    if count <= 1:
        return [path_text]
    cut = max(path_text.rfind("/"), path_text.rfind("\\")) + 1
    folder, leaf = path_text[:cut], path_text[cut:]
    stem, dot, ext = leaf.rpartition(".")
    if not dot or not stem:
        return [f"{path_text}_{i}" for i in range(1, count + 1)]
    return [f"{folder}{stem}_{i}.{ext}" for i in range(1, count + 1)]


@dataclass(frozen=True)
class _Root:
    given: Path  # absolute, as configured
    real: Path  # resolved


def _ancestor_or_self(path: Path, other: Path) -> bool:
    return other == path or other.is_relative_to(path)


def _under_caseless(path: Path, other: Path) -> bool:
    """Like :func:`_ancestor_or_self`, ignoring case where the filesystem usually does (deny checks)."""
    if not _CASELESS:
        return _ancestor_or_self(path, other)
    parts = [p.casefold() for p in path.parts]
    return [p.casefold() for p in other.parts[: len(parts)]] == parts


def _too_broad(real: Path) -> str | None:
    if real == Path(real.anchor):
        return "a filesystem root is never an allowed folder"
    homes = {Path.home()}
    try:
        homes.add(Path.home().resolve())
    except (OSError, RuntimeError):
        pass
    if any(_ancestor_or_self(real, home) for home in homes):
        return "a home folder (or a folder containing one) is never an allowed folder"
    if real.parent in {Path("/home"), Path("/Users")} or real == Path("/root"):
        return "a home folder is never an allowed folder"
    return None


class PathPolicy:
    """Where caller-named files may be written (``resolve_output``) or read (``resolve_input``).

    Roots that do not exist, that are a filesystem root, a home folder or an ancestor of one are
    ignored (listed in ``ignored``). ``deny`` trees are refused even inside a root. ``hint`` ends every
    error message (e.g. which setting allows another folder).
    """

    def __init__(
        self,
        roots: Iterable[Path | str],
        deny: Iterable[Path | str] = (),
        *,
        hint: str = "",
        suffixes: Iterable[str] | None = IMAGE_SUFFIXES,
    ) -> None:
        self.hint = hint
        self.suffixes = None if suffixes is None else frozenset(s.lower() for s in suffixes)
        self.ignored: list[tuple[str, str]] = []
        usable: list[_Root] = []
        for root in roots:
            given = Path(os.path.abspath(root))
            try:
                real = given.resolve(strict=True)
            except (OSError, RuntimeError):
                self.ignored.append((str(given), "it does not exist or cannot be read"))
                continue
            if not real.is_dir():
                self.ignored.append((str(given), "it is not a folder"))
                continue
            broad = _too_broad(real)
            if broad:
                self.ignored.append((str(given), broad))
                continue
            usable.append(_Root(given, real))
        self.roots: tuple[_Root, ...] = tuple(usable)
        denied: list[Path] = []
        for path in deny:
            given = Path(os.path.abspath(path))
            denied.append(given)
            try:
                denied.append(given.resolve())
            except (OSError, RuntimeError):
                pass
        self.deny: tuple[Path, ...] = tuple(dict.fromkeys(denied))

    @property
    def allowed(self) -> list[str]:
        """The allowed folders, as shown in error messages."""
        return [str(r.real) for r in self.roots]

    def _reject(self, reason: str, subject: str) -> PathRejected:
        return PathRejected(reason, subject=subject, allowed=self.allowed or ["none"], hint=self.hint)

    def _candidate(self, text: object, base_dir: Path | str | None, subject: str) -> Path:
        try:
            absolute, names = check_path_text(text, self.suffixes)
        except PathRejected as exc:
            raise self._reject(exc.reason, subject) from None
        if absolute:
            candidate = Path("/", *names)
        elif base_dir is None:
            raise self._reject("a relative path needs a base folder; give a full path", subject)
        else:
            candidate = Path(os.path.abspath(base_dir)).joinpath(*names)
        if not any(candidate.is_relative_to(r.given) or candidate.is_relative_to(r.real) for r in self.roots):
            raise self._reject("it is outside the allowed folders", subject)
        return candidate

    def _inside(self, real: Path) -> bool:
        return any(_ancestor_or_self(r.real, real) for r in self.roots) and not any(
            _under_caseless(d, real) for d in self.deny
        )

    def resolve_output(
        self, path_text: str, base_dir: Path | str | None = None, *, create_dirs: bool = True
    ) -> Path:
        """Where to write ``path_text``: a real path inside a root, its parent folder existing.

        Relative paths start at ``base_dir``. With ``create_dirs`` False nothing is created (use it to
        check a path early; call again with True right before writing). Raises :class:`PathRejected`.
        """
        subject = f"output_path {show(path_text)}" if isinstance(path_text, str) else "output_path"
        candidate = self._candidate(path_text, base_dir, subject)
        missing: list[str] = []
        probe = candidate.parent
        while not os.path.lexists(probe) and probe != probe.parent:
            missing.append(probe.name)
            probe = probe.parent
        try:
            real = probe.resolve(strict=True)
        except (OSError, RuntimeError):
            raise self._reject("a symbolic link in the path is broken or loops", subject) from None
        if not real.is_dir():
            raise self._reject("a part of the path is a file, not a folder", subject)
        parent = real.joinpath(*reversed(missing))
        if not self._inside(real) or not self._inside(parent):  # folders are only ever made inside a root
            raise self._reject("it leads outside the allowed folders (or into a protected one)", subject)
        target = parent / candidate.name
        if not missing and os.path.lexists(target):
            if os.path.islink(target):
                raise self._reject("the file is a symbolic link; links are never written through", subject)
            if os.path.isdir(target):
                raise self._reject("a folder of that name exists", subject)
        if missing and create_dirs:
            try:
                _make_dirs(real, list(reversed(missing)))
            except PathRejected as exc:
                raise self._reject(exc.reason, subject) from None
        return target

    def resolve_input(self, path_text: str, base_dir: Path | str | None = None) -> Path:
        """The real path of an existing regular file inside a root (symlinks resolved), for reading."""
        subject = f"input path {show(path_text)}" if isinstance(path_text, str) else "input path"
        candidate = self._candidate(path_text, base_dir, subject)
        try:
            real = candidate.resolve(strict=True)
        except FileNotFoundError:
            raise self._reject("no such file", subject) from None
        except (OSError, RuntimeError):
            raise self._reject("the file cannot be opened", subject) from None
        if not self._inside(real):
            raise self._reject("it leads outside the allowed folders (or into a protected one)", subject)
        try:
            mode = os.stat(real).st_mode
        except OSError:
            raise self._reject("the file cannot be opened", subject) from None
        if not stat.S_ISREG(mode):
            raise self._reject("it is not a regular file", subject)
        return real


def resolve_input(
    path_text: str, roots: Iterable[Path | str], base_dir: Path | str | None = None, *, hint: str = ""
) -> Path:
    """:meth:`PathPolicy.resolve_input` with a policy of ``roots`` and no deny list."""
    return PathPolicy(roots, hint=hint).resolve_input(path_text, base_dir)


def interpreter_folders() -> list[str]:
    """The running Python's prefixes and package folders (its own and the user's site-packages)."""
    found = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    try:
        found += [*site.getsitepackages(), site.getusersitepackages()]
    except AttributeError:  # site trimmed down (some embedded or frozen interpreters)
        pass
    return list(dict.fromkeys(found))


def protected_trees(listed: Iterable[str | Path], open_folders: Iterable[str | Path]) -> list[str]:
    """The one list of folders no caller may read from or write into, even inside an allowed root.

    ``listed`` (ComfyUI's user, model and custom-node folders), this extension's code, and the
    interpreter's prefixes and site-packages. A prefix that contains one of ``open_folders`` (ComfyUI's
    input and output folders) is narrowed to its code folders so those stay usable.
    """
    keep = [Path(os.path.abspath(f)) for f in open_folders]
    trees = [str(p) for p in listed] + [str(BRIDGE_CODE)]
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    for folder in interpreter_folders():
        path = Path(os.path.abspath(folder))
        if folder in prefixes and any(_ancestor_or_self(path, k) for k in keep):
            trees += [str(path / name) for name in _PREFIX_CODE]
        else:
            trees.append(str(path))
    return list(dict.fromkeys(trees))


def _open_dir(path: Path) -> int:
    """Open folder ``path`` walking down from its anchor with ``O_NOFOLLOW`` at every level."""
    if not path.is_absolute():
        raise PathRejected("the folder must be an absolute path")
    fd = os.open(path.anchor, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
    try:
        for name in path.parts[1:]:
            fd = _step_into(fd, name, "a part of the path is a symbolic link or not a folder")
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_no_follow(path: Path, max_bytes: int) -> tuple[bytes, int]:
    """Up to ``max_bytes + 1`` bytes of regular file ``path`` (resolved by :meth:`PathPolicy.resolve_input`)
    and its size, opened without following a link at any level: a file swapped for a link after the
    check is refused, not read (``PathRejected``). Blocking."""
    flags = os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC
    try:
        if _USE_DIR_FD:
            parent = _open_dir(path.parent)
            try:
                fd = os.open(path.name, flags, dir_fd=parent)
            finally:
                os.close(parent)
        else:
            fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
            raise PathRejected("the file was replaced by a link") from None
        raise
    with os.fdopen(fd, "rb") as fh:
        facts = os.fstat(fh.fileno())
        if not stat.S_ISREG(facts.st_mode):
            raise PathRejected("not a regular file")
        return fh.read(max_bytes + 1), facts.st_size


def _make_dirs(real_parent: Path, names: Sequence[str]) -> None:
    """Create ``names`` below the existing ``real_parent``, one level at a time, never via a symlink."""
    if not _USE_DIR_FD:
        current = real_parent
        for name in names:
            current = current / name
            try:
                os.mkdir(current, 0o755)
            except FileExistsError:
                pass
            if current.is_symlink() or current.resolve() != current or not current.is_dir():
                raise PathRejected("a folder in the path was replaced by a link or a file")
        return
    fd = _open_dir(real_parent)
    try:
        for name in names:
            try:
                os.mkdir(name, 0o755, dir_fd=fd)
            except FileExistsError:
                pass
            fd = _step_into(fd, name, "a folder in the path was replaced by a link or a file")
    finally:
        os.close(fd)


def safe_write(path: Path, data: bytes, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` (from :meth:`PathPolicy.resolve_output`) atomically, never via a link.

    Without ``overwrite`` an existing file (or link) is an error, and of two concurrent writers exactly
    one succeeds. Readers never see a partial file (except on filesystems without hard links, where the
    file is created exclusively in place). Raises :class:`PathRejected` for policy errors and
    ``OSError`` for I/O failures; the temporary file is removed either way.
    """
    path = Path(path)
    name = path.name
    if not name or name in (".", ".."):
        raise PathRejected("the path has no file name")
    if not _USE_DIR_FD:
        return _portable_write(path, data, overwrite)
    parent_fd = _open_dir(path.parent)
    tmp = f".mcp-bridge-{secrets.token_hex(8)}.tmp"
    try:
        _write_new(tmp, parent_fd, data)
        try:
            if overwrite:
                try:
                    os.rename(tmp, name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
                except IsADirectoryError:
                    raise PathRejected("a folder of that name exists") from None
            else:
                try:
                    os.link(tmp, name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd, follow_symlinks=False)
                except FileExistsError:
                    raise _exists() from None
                except OSError as exc:
                    if exc.errno not in _NO_LINKS:
                        raise
                    _write_new(name, parent_fd, data)  # no hard links here: exclusive create in place
        finally:
            try:
                os.unlink(tmp, dir_fd=parent_fd)
            except FileNotFoundError:
                pass
        os.fsync(parent_fd)
    finally:
        os.close(parent_fd)
    return path


def _exists() -> PathRejected:
    return PathRejected("the file already exists; pass overwrite=true to replace it, or choose another name")


def _write_new(name: str, dir_fd: int, data: bytes) -> None:
    """Create ``name`` exclusively in ``dir_fd`` (no link followed), write all of ``data``, fsync."""
    try:
        fd = os.open(
            name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC, 0o644, dir_fd=dir_fd
        )
    except FileExistsError:
        raise _exists() from None
    try:
        _write_all(fd, data)
    except BaseException:
        os.close(fd)
        try:
            os.unlink(name, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        raise
    os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
    os.fsync(fd)


def _portable_write(path: Path, data: bytes, overwrite: bool) -> Path:
    """Fallback without directory descriptors (Windows): exclusive temp file, then replace or link."""
    parent = path.parent
    if parent.is_symlink() or parent.resolve() != parent:
        raise PathRejected("a part of the path is a symbolic link")
    tmp = parent / f".mcp-bridge-{secrets.token_hex(8)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_BINARY
    fd = os.open(tmp, flags, 0o644)
    try:
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
        if overwrite:
            if path.is_symlink() or path.is_dir():
                raise PathRejected("the target is a link or a folder")
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise _exists() from None
        if path.resolve() != path:
            raise PathRejected("the written file resolves elsewhere")
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
    return path


def _step_into(fd: int, name: str, refusal: str) -> int:
    """Open folder ``name`` inside ``fd`` without following a link, close ``fd``, return the child.

    A link or a non-folder there is refused with ``refusal``; ``fd`` stays open when this raises."""
    try:
        child = os.open(name, _DIR_FLAGS, dir_fd=fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
            raise PathRejected(refusal) from None
        raise
    os.close(fd)
    return child
