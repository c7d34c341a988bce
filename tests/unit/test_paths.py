"""Path policy and safe writes (security.md §4.3 and §6 rows 1-8) on real tmp_path trees."""

from __future__ import annotations

import contextlib
import errno
import os
import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mcp_bridge.delivery import paths
from mcp_bridge.delivery.paths import (
    IMAGE_SUFFIXES,
    PathPolicy,
    PathRejected,
    check_path_text,
    numbered,
    resolve_input,
    safe_write,
    show,
)

HINT = "To allow another folder, add it to the output_roots setting."


class Tree:
    """tmp_path/root (allowed, with a protected subtree) and tmp_path/outside (not allowed)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.root = base / "root"
        self.outside = base / "outside"
        self.root.mkdir()
        (self.root / "protected").mkdir()
        self.outside.mkdir()
        self.secret = self.outside / "secret.png"
        self.secret.write_bytes(b"SECRET")
        self.policy = PathPolicy([self.root], deny=[self.root / "protected"], hint=HINT)

    def snapshot(self) -> dict[str, bytes | str | None]:
        """Every entry under base: file bytes, link target, or None for a folder."""
        entries: dict[str, bytes | str | None] = {}
        for folder, dirs, files in os.walk(self.base):
            for name in dirs + files:
                path = Path(folder) / name
                key = str(path.relative_to(self.base))
                if path.is_symlink():
                    entries[key] = os.readlink(path)
                elif path.is_dir():
                    entries[key] = None
                else:
                    entries[key] = path.read_bytes()
        return entries


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return Tree(tmp_path)


@contextlib.contextmanager
def filesystem_forbidden() -> Iterator[None]:
    """Fail if the code inside touches the filesystem (restored before pytest looks at the result)."""

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("filesystem call before the lexical checks finished")

    with pytest.MonkeyPatch.context() as patch:
        for name in ("lstat", "stat", "open", "mkdir", "readlink", "listdir", "scandir"):
            patch.setattr(os, name, forbidden)
        patch.setattr(os.path, "lexists", forbidden)
        patch.setattr(os.path, "exists", forbidden)
        patch.setattr(Path, "resolve", forbidden)
        yield


# --- security.md §6 rows 1-3, 6, 7: refused by the text alone, before any filesystem call -------------

LEXICAL = [
    # row 1: traversal
    pytest.param("../../.bashrc", "'..'", id="row1-dotdot-bashrc"),
    pytest.param("a/../../x.png", "'..'", id="row1-dotdot-inside"),
    pytest.param("..\\..\\x.png", "'..'", id="row1-backslash-dotdot"),
    pytest.param("a/../x.png", "'..'", id="row1-dotdot-that-stays-inside"),
    # row 2: home expansion (absolute paths outside the roots are in OUTSIDE below)
    pytest.param("~/.ssh/x.png", "'~'", id="row2-tilde-home"),
    pytest.param("~root/x.png", "'~'", id="row2-tilde-user"),
    pytest.param("PROGRA~1/x.png", "'~'", id="row2-tilde-short-name"),
    # row 3: extensions
    pytest.param("out.py", "must end in", id="row3-python"),
    pytest.param("x.pth", "must end in", id="row3-pth"),
    pytest.param("x.png.sh", "must end in", id="row3-double-extension"),
    pytest.param("noext", "must end in", id="row3-no-extension"),
    pytest.param(".png", "must end in", id="row3-only-an-extension"),
    pytest.param("x.gif", "must end in", id="row3-gif"),
    pytest.param("dir.png/", "folder separator", id="trailing-slash"),
    pytest.param("dir.png\\", "folder separator", id="trailing-backslash"),
    # row 6: invisible and control characters
    pytest.param("x\x00.png", "U+0000", id="row6-nul"),
    pytest.param("x\n.png", "U+000A", id="row6-newline"),
    pytest.param("x\r.png", "U+000D", id="row6-carriage-return"),
    pytest.param("x\x1b[31m.png", "U+001B", id="row6-escape"),
    pytest.param("x\x7f.png", "U+007F", id="row6-delete"),
    pytest.param("x\x9b.png", "U+009B", id="row6-c1-csi"),
    pytest.param("gnp.\u202ex.png", "U+202E", id="row6-right-to-left-override"),
    pytest.param("x\u200b.png", "U+200B", id="row6-zero-width-space"),
    pytest.param("x\u200d.png", "U+200D", id="row6-zero-width-joiner"),
    pytest.param("\ufeffx.png", "U+FEFF", id="row6-byte-order-mark"),
    pytest.param("x\u2066.png", "U+2066", id="row6-bidi-isolate"),
    pytest.param("x\u2028.png", "U+2028", id="row6-line-separator"),
    pytest.param("x\ud800.png", "U+D800", id="row6-lone-surrogate"),
    # row 7: Windows forms, on every OS
    pytest.param("C:\\Windows\\x.png", "drive", id="row7-drive-absolute"),
    pytest.param("C:x.png", "drive", id="row7-drive-relative"),
    pytest.param("c:/x.png", "drive", id="row7-drive-forward-slash"),
    pytest.param("\\\\host\\share\\x.png", "drive", id="row7-unc"),
    pytest.param("//host/share/x.png", "drive", id="row7-unc-forward-slashes"),
    pytest.param("\\\\?\\C:\\x.png", "drive", id="row7-device-namespace"),
    pytest.param("\\\\.\\PhysicalDrive0", "drive", id="row7-physical-drive"),
    pytest.param("\\x.png", "root-relative", id="row7-root-relative"),
    pytest.param("//x.png", "'//'", id="row7-double-slash"),
    pytest.param("NUL.png", "reserved", id="row7-nul-device"),
    pytest.param("com1.jpg", "reserved", id="row7-com1"),
    pytest.param("sub/aux.png", "reserved", id="row7-aux-in-a-folder"),
    pytest.param("CON.tar.png", "reserved", id="row7-con-double-extension"),
    pytest.param("lpt9 .webp", "reserved", id="row7-lpt9-trailing-space"),
    pytest.param("COM\u00b9.png", "reserved", id="row7-com-superscript"),
    pytest.param("conin$.png", "reserved", id="row7-conin"),
    pytest.param("PRN/x.png", "reserved", id="row7-prn-folder"),
    pytest.param("x.png:ads", "':'", id="row7-ntfs-stream"),
    pytest.param("sub/a:b/x.png", "':'", id="row7-colon-in-folder"),
    pytest.param("x.png.", "dot or space", id="row7-trailing-dot"),
    pytest.param("x.png ", "dot or space", id="row7-trailing-space"),
    pytest.param("dir./x.png", "dot or space", id="row7-folder-trailing-dot"),
    pytest.param("a<b.png", "<", id="row7-less-than"),
    pytest.param("a>b.png", ">", id="row7-greater-than"),
    pytest.param('a"b.png', '"', id="row7-quote"),
    pytest.param("a|b.png", "|", id="row7-pipe"),
    pytest.param("a?.png", "?", id="row7-question-mark"),
    pytest.param("a*.png", "*", id="row7-star"),
    # size and emptiness
    pytest.param("", "empty", id="empty"),
    pytest.param("   ", "empty", id="blank"),
    pytest.param("/", "folder separator", id="only-a-slash"),
    pytest.param(".", "no file name", id="only-a-dot"),
    pytest.param("./.", "no file name", id="only-dots"),
    pytest.param("a/" * 600 + "x.png", "longer than 1024", id="path-over-1024-characters"),
    pytest.param("x" * 252 + ".png", "255 bytes", id="name-over-255-bytes"),
    pytest.param("é" * 126 + ".png", "255 bytes", id="name-over-255-utf8-bytes"),
]


@pytest.mark.parametrize(("text", "reason"), LEXICAL)
def test_bad_output_paths_are_refused_before_any_filesystem_call(tree: Tree, text: str, reason: str) -> None:
    with pytest.raises(PathRejected) as info, filesystem_forbidden():
        tree.policy.resolve_output(text, tree.root, create_dirs=True)
    assert reason in info.value.reason
    assert HINT in str(info.value)


@pytest.mark.parametrize(("text", "reason"), LEXICAL)
def test_bad_paths_leave_the_tree_unchanged_when_checked_for_real(tree: Tree, text: str, reason: str) -> None:
    before = tree.snapshot()
    with pytest.raises(PathRejected):
        tree.policy.resolve_output(text, tree.root)
    assert tree.snapshot() == before


@pytest.mark.parametrize("text", ["x.PNG", "x.JpEg", "a b/c-d_e (1).webp", "./x.jpg", "sub//x.png", "é.png"])
def test_good_relative_names_are_accepted(tree: Tree, text: str) -> None:
    target = tree.policy.resolve_output(text, tree.root)
    assert target.parent.is_relative_to(tree.root.resolve()) and target.parent.is_dir()
    assert target.suffix.lower() in IMAGE_SUFFIXES


def test_check_path_text_reads_backslashes_as_separators_and_drops_dot_names() -> None:
    assert check_path_text("a\\b/./c.png") == (False, ("a", "b", "c.png"))
    assert check_path_text("/srv/out/x.png") == (True, ("srv", "out", "x.png"))
    assert check_path_text("notes.txt", suffixes=None) == (False, ("notes.txt",))
    with pytest.raises(PathRejected, match="must be a string"):
        check_path_text(["x.png"])


# --- row 2: absolute paths outside the roots ----------------------------------------------------------

OUTSIDE = [
    pytest.param("/etc/cron.d/x.png", id="row2-etc-cron"),
    pytest.param("/dev/shm/x.png", id="row2-dev-shm"),
    pytest.param("/root/.ssh/x.png", id="row2-home-ssh"),
    pytest.param("/x.png", id="row2-filesystem-root"),
]


@pytest.mark.parametrize("text", OUTSIDE)
def test_absolute_paths_outside_the_roots_are_refused_without_touching_the_filesystem(
    tree: Tree, text: str
) -> None:
    with pytest.raises(PathRejected) as info, filesystem_forbidden():
        tree.policy.resolve_output(text, tree.root)
    message = str(info.value)
    assert "outside the allowed folders" in message
    assert f"Allowed folders: {tree.root.resolve()}" in message


def test_an_absolute_path_to_a_sibling_folder_is_refused_and_nothing_is_created(tree: Tree) -> None:
    before = tree.snapshot()
    with pytest.raises(PathRejected, match="outside the allowed folders"):
        tree.policy.resolve_output(str(tree.outside / "new" / "x.png"), tree.root)
    with pytest.raises(PathRejected, match="outside the allowed folders"):
        tree.policy.resolve_output(str(tree.base / "rootx" / "x.png"), tree.root)
    assert tree.snapshot() == before


def test_an_absolute_path_inside_a_root_is_accepted(tree: Tree) -> None:
    target = tree.policy.resolve_output(str(tree.root / "a" / "x.png"))
    assert target == tree.root.resolve() / "a" / "x.png"


def test_a_relative_path_needs_a_base_folder_inside_a_root(tree: Tree) -> None:
    with pytest.raises(PathRejected, match="needs a base folder"):
        tree.policy.resolve_output("x.png")
    with pytest.raises(PathRejected, match="outside the allowed folders"):
        tree.policy.resolve_output("x.png", tree.outside)


def test_protected_trees_inside_a_root_are_refused(tree: Tree) -> None:
    with pytest.raises(PathRejected, match="protected"):
        tree.policy.resolve_output("protected/x.png", tree.root)
    with pytest.raises(PathRejected, match="protected"):
        tree.policy.resolve_output("protected/new/deeper/x.png", tree.root)
    assert list((tree.root / "protected").iterdir()) == []


def test_protected_trees_are_matched_without_case_where_filesystems_ignore_case(
    tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paths, "_CASELESS", True)
    with pytest.raises(PathRejected, match="protected"):
        tree.policy.resolve_output("PROTECTED/x.png", tree.root, create_dirs=False)
    assert tree.policy.resolve_output("protectedness/x.png", tree.root, create_dirs=False)


def test_a_root_deleted_after_start_up_is_not_created_again(tree: Tree) -> None:
    policy = PathPolicy([tree.root / "protected"])
    (tree.root / "protected").rmdir()
    before = tree.snapshot()
    with pytest.raises(PathRejected, match="outside the allowed folders"):
        policy.resolve_output("x.png", tree.root / "protected")
    assert tree.snapshot() == before


# --- missing folders ------------------------------------------------------------------------------------


def test_missing_folders_are_created_level_by_level_inside_the_root(tree: Tree) -> None:
    target = tree.policy.resolve_output("a/b/c/x.png", tree.root)
    assert target == tree.root.resolve() / "a" / "b" / "c" / "x.png"
    assert target.parent.is_dir() and not target.exists()


def test_a_dry_run_creates_nothing(tree: Tree) -> None:
    before = tree.snapshot()
    target = tree.policy.resolve_output("a/b/x.png", tree.root, create_dirs=False)
    assert target == tree.root.resolve() / "a" / "b" / "x.png"
    assert tree.snapshot() == before


def test_a_file_used_as_a_folder_is_refused(tree: Tree) -> None:
    (tree.root / "file.png").write_bytes(b"x")
    with pytest.raises(PathRejected, match="is a file, not a folder"):
        tree.policy.resolve_output("file.png/x.png", tree.root)


def test_an_existing_folder_with_the_target_name_is_refused(tree: Tree) -> None:
    (tree.root / "x.png").mkdir()
    with pytest.raises(PathRejected, match="folder of that name"):
        tree.policy.resolve_output("x.png", tree.root)


def test_a_folder_swapped_for_a_link_while_being_created_is_refused(
    tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_mkdir = os.mkdir

    def hostile_mkdir(path: Any, mode: int = 0o777, *, dir_fd: int | None = None) -> None:
        os.symlink(tree.outside, path, dir_fd=dir_fd)
        raise FileExistsError(errno.EEXIST, "exists")

    monkeypatch.setattr(os, "mkdir", hostile_mkdir)
    with pytest.raises(PathRejected, match="replaced by a link"):
        tree.policy.resolve_output("new/x.png", tree.root)
    monkeypatch.setattr(os, "mkdir", real_mkdir)
    assert sorted(p.name for p in tree.outside.iterdir()) == ["secret.png"]


# --- row 4: symlinks --------------------------------------------------------------------------------------


def test_a_folder_link_leading_out_of_the_root_is_refused(tree: Tree) -> None:
    (tree.root / "link").symlink_to(tree.outside)
    before = tree.snapshot()
    for text in ("link/x.png", "link/new/x.png", str(tree.root / "link" / "x.png")):
        with pytest.raises(PathRejected) as info:
            tree.policy.resolve_output(text, tree.root)
        assert "outside the allowed folders" in str(info.value)
        assert str(tree.outside) not in str(info.value)
    assert tree.snapshot() == before


def test_a_file_link_leading_out_of_the_root_is_refused_and_its_target_untouched(tree: Tree) -> None:
    (tree.root / "out.png").symlink_to(tree.secret)
    with pytest.raises(PathRejected, match="symbolic link"):
        tree.policy.resolve_output("out.png", tree.root)
    with pytest.raises(PathRejected, match="already exists"):
        safe_write(tree.root / "out.png", b"EVIL", overwrite=False)
    assert tree.secret.read_bytes() == b"SECRET"


def test_overwriting_a_link_replaces_the_link_not_its_target(tree: Tree) -> None:
    (tree.root / "out.png").symlink_to(tree.secret)
    safe_write(tree.root / "out.png", b"NEW", overwrite=True)
    assert not (tree.root / "out.png").is_symlink()
    assert (tree.root / "out.png").read_bytes() == b"NEW"
    assert tree.secret.read_bytes() == b"SECRET"


def test_safe_write_refuses_a_parent_that_is_a_link_even_if_it_points_inside(tree: Tree) -> None:
    (tree.root / "real").mkdir()
    (tree.root / "alias").symlink_to(tree.root / "real")
    (tree.root / "away").symlink_to(tree.outside)
    with pytest.raises(PathRejected, match="symbolic link"):
        safe_write(tree.root / "away" / "x.png", b"EVIL")
    with pytest.raises(PathRejected, match="symbolic link"):
        safe_write(tree.root / "alias" / "x.png", b"x")
    assert sorted(p.name for p in tree.outside.iterdir()) == ["secret.png"]


def test_a_link_between_folders_inside_the_root_resolves_to_its_real_place(tree: Tree) -> None:
    (tree.root / "real").mkdir()
    (tree.root / "alias").symlink_to(tree.root / "real")
    target = tree.policy.resolve_output("alias/x.png", tree.root)
    assert target == tree.root.resolve() / "real" / "x.png"
    safe_write(target, b"ok")
    assert (tree.root / "real" / "x.png").read_bytes() == b"ok"


def test_a_broken_link_in_the_path_is_refused(tree: Tree) -> None:
    (tree.root / "dangling").symlink_to(tree.base / "nowhere")
    with pytest.raises(PathRejected, match="broken or loops"):
        tree.policy.resolve_output("dangling/x.png", tree.root)
    assert not (tree.base / "nowhere").exists()


def test_a_folder_swapped_for_a_link_after_the_check_is_refused_at_write_time(tree: Tree) -> None:
    target = tree.policy.resolve_output("sub/x.png", tree.root)
    (tree.root / "sub").rmdir()
    (tree.root / "sub").symlink_to(tree.outside)
    with pytest.raises(PathRejected, match="symbolic link"):
        safe_write(target, b"EVIL")
    assert sorted(p.name for p in tree.outside.iterdir()) == ["secret.png"]


def test_a_root_given_through_a_link_is_used_by_its_real_place(tree: Tree) -> None:
    (tree.base / "root-link").symlink_to(tree.root)
    policy = PathPolicy([tree.base / "root-link"])
    assert policy.allowed == [str(tree.root.resolve())]
    assert policy.resolve_output(str(tree.base / "root-link" / "x.png")) == tree.root.resolve() / "x.png"
    assert policy.resolve_output(str(tree.root / "y.png")) == tree.root.resolve() / "y.png"


# --- roots -------------------------------------------------------------------------------------------------


def test_filesystem_roots_home_folders_and_missing_folders_never_count_as_roots(tree: Tree) -> None:
    policy = PathPolicy(["/", Path.home(), Path.home().parent, tree.base / "missing", tree.secret, tree.root])
    assert policy.allowed == [str(tree.root.resolve())]
    reasons = dict(policy.ignored)
    assert "filesystem root" in reasons["/"]
    assert "home folder" in reasons[str(Path.home())]
    assert "does not exist" in reasons[str(tree.base / "missing")]
    assert "not a folder" in reasons[str(tree.secret)]


def test_a_policy_without_usable_roots_refuses_everything_and_says_so(tree: Tree) -> None:
    policy = PathPolicy(["/"], hint=HINT)
    with pytest.raises(PathRejected) as info:
        policy.resolve_output("/tmp/x.png")
    assert "Allowed folders: none" in str(info.value) and HINT in str(info.value)


# --- row 5: existing files and concurrent writers -------------------------------------------------


def test_safe_write_creates_the_file_with_exactly_the_data(tree: Tree) -> None:
    target = tree.policy.resolve_output("new/x.png", tree.root)
    data = os.urandom(300_000)
    assert safe_write(target, data) == target
    assert target.read_bytes() == data
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.png"]


def test_an_existing_file_is_not_overwritten_unless_asked(tree: Tree) -> None:
    target = tree.root / "x.png"
    target.write_bytes(b"OLD")
    with pytest.raises(PathRejected, match="already exists; pass overwrite=true"):
        safe_write(target, b"NEW", overwrite=False)
    assert target.read_bytes() == b"OLD"
    safe_write(target, b"NEW", overwrite=True)
    assert target.read_bytes() == b"NEW"
    assert sorted(p.name for p in tree.root.iterdir()) == ["protected", "x.png"]


def test_an_existing_folder_is_never_replaced_by_safe_write(tree: Tree) -> None:
    (tree.root / "x.png").mkdir()
    for overwrite in (False, True):
        with pytest.raises(PathRejected):
            safe_write(tree.root / "x.png", b"x", overwrite=overwrite)
    assert (tree.root / "x.png").is_dir()


def _race(target: Path, payloads: list[bytes], overwrite: bool) -> list[bool]:
    barrier = threading.Barrier(len(payloads))
    results: list[bool | None] = [None] * len(payloads)

    def writer(index: int) -> None:
        barrier.wait(timeout=10)
        try:
            safe_write(target, payloads[index], overwrite=overwrite)
            results[index] = True
        except PathRejected:
            results[index] = False

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(len(payloads))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert all(r is not None for r in results)
    return [bool(r) for r in results]


def test_exactly_one_of_several_concurrent_writers_wins_and_the_file_is_whole(tree: Tree) -> None:
    target = tree.root / "race.png"
    payloads = [bytes([i]) * 200_000 for i in range(8)]
    results = _race(target, payloads, overwrite=False)
    assert results.count(True) == 1
    assert target.read_bytes() == payloads[results.index(True)]
    assert sorted(p.name for p in tree.root.iterdir()) == ["protected", "race.png"]


def test_concurrent_overwriting_writers_leave_one_whole_file(tree: Tree) -> None:
    target = tree.root / "race.png"
    payloads = [bytes([i]) * 200_000 for i in range(8)]
    assert _race(target, payloads, overwrite=True) == [True] * 8
    assert target.read_bytes() in payloads
    assert sorted(p.name for p in tree.root.iterdir()) == ["protected", "race.png"]


def test_the_temporary_file_is_removed_when_writing_fails(
    tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="I/O error"):
        safe_write(tree.root / "x.png", b"data")
    monkeypatch.undo()
    assert sorted(p.name for p in tree.root.iterdir()) == ["protected"]


def test_without_hard_links_the_file_is_still_created_exclusively(
    tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    safe_write(tree.root / "x.png", b"one")
    with pytest.raises(PathRejected, match="already exists"):
        safe_write(tree.root / "x.png", b"two")
    assert (tree.root / "x.png").read_bytes() == b"one"
    assert sorted(p.name for p in tree.root.iterdir()) == ["protected", "x.png"]


def test_the_portable_fallback_keeps_the_same_promises(tree: Tree, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paths, "_USE_DIR_FD", False)
    target = tree.policy.resolve_output("deep/er/x.png", tree.root)
    safe_write(target, b"one")
    with pytest.raises(PathRejected, match="already exists"):
        safe_write(target, b"two")
    safe_write(target, b"three", overwrite=True)
    assert target.read_bytes() == b"three"
    (tree.root / "away").symlink_to(tree.outside)
    with pytest.raises(PathRejected, match="symbolic link"):
        safe_write(tree.root / "away" / "x.png", b"EVIL")
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.png"]
    assert sorted(p.name for p in tree.outside.iterdir()) == ["secret.png"]


# --- row 8: input paths ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("/etc/passwd", id="row8-etc-passwd"),
        pytest.param("/proc/self/environ", id="row8-proc-environ"),
        pytest.param("~/.ssh/id_rsa", id="row8-ssh-key"),
        pytest.param("/etc/passwd.png", id="row8-outside-with-an-image-suffix"),
        pytest.param("../outside/secret.png", id="row8-traversal"),
    ],
)
def test_input_paths_outside_the_roots_are_refused_without_contents(tree: Tree, text: str) -> None:
    with pytest.raises(PathRejected) as info:
        tree.policy.resolve_input(text, tree.root)
    assert "root:" not in str(info.value) and "SECRET" not in str(info.value)


def test_an_input_file_inside_a_root_resolves_to_its_real_path(tree: Tree) -> None:
    (tree.root / "in").mkdir()
    (tree.root / "in" / "cat.png").write_bytes(b"x")
    assert tree.policy.resolve_input("in/cat.png", tree.root) == tree.root.resolve() / "in" / "cat.png"
    assert (
        resolve_input(str(tree.root / "in" / "cat.png"), [tree.root])
        == tree.root.resolve() / "in" / "cat.png"
    )


def test_an_input_link_leading_out_is_refused_without_saying_where_it_leads(tree: Tree) -> None:
    (tree.root / "cat.png").symlink_to(tree.secret)
    with pytest.raises(PathRejected) as info:
        tree.policy.resolve_input("cat.png", tree.root)
    assert "outside the allowed folders" in str(info.value) and str(tree.outside) not in str(info.value)


def test_input_folders_missing_files_and_protected_files_are_refused(tree: Tree) -> None:
    (tree.root / "dir.png").mkdir()
    (tree.root / "protected" / "p.png").write_bytes(b"x")
    with pytest.raises(PathRejected, match="not a regular file"):
        tree.policy.resolve_input("dir.png", tree.root)
    with pytest.raises(PathRejected, match="no such file"):
        tree.policy.resolve_input("missing.png", tree.root)
    with pytest.raises(PathRejected, match="protected"):
        tree.policy.resolve_input("protected/p.png", tree.root)


def test_existing_and_missing_files_outside_the_roots_get_the_same_answer(tree: Tree) -> None:
    answers = set()
    for path in (tree.secret, tree.outside / "missing.png"):
        with pytest.raises(PathRejected) as info:
            tree.policy.resolve_input(str(path))
        answers.add(info.value.reason)
    assert len(answers) == 1


# --- helpers --------------------------------------------------------------------------------------


def test_numbered_names_add_an_index_before_the_extension() -> None:
    assert numbered("out/hero.png", 1) == ["out/hero.png"]
    assert numbered("out.d/hero.png", 3) == ["out.d/hero_1.png", "out.d/hero_2.png", "out.d/hero_3.png"]
    assert numbered("a\\b.webp", 2) == ["a\\b_1.webp", "a\\b_2.webp"]
    assert numbered("noext", 2) == ["noext_1", "noext_2"]


def test_show_escapes_invisible_characters_and_truncates() -> None:
    assert show("a\u202eb\x00c") == "'a\\u202eb\\u0000c'"
    assert show("x" * 200, limit=10) == "'xxxxxxxxxx...'"


def test_error_messages_escape_the_callers_text(tree: Tree) -> None:
    with pytest.raises(PathRejected) as info:
        tree.policy.resolve_output("evil\u202egnp.exe", tree.root)
    assert "\u202e" not in str(info.value) and "\\u202e" in str(info.value)


# --- properties -----------------------------------------------------------------------------------

ALPHABET = "ab.~:/\\ \x00\u202e\u200bCONULPT1png.jpgwebpé<>|?*\t"
PIECES = [
    "..",
    "../",
    "C:",
    "\\\\?\\",
    "//",
    "~/",
    "nul",
    "x.png",
    "y.JPG",
    ".webp",
    "link/",
    "sub/",
    "/",
    "\\",
]


def _check_property(policy: PathPolicy, root: Path, base: Path, text: str) -> bool:
    try:
        target = policy.resolve_output(text, base, create_dirs=False)
    except PathRejected:
        return False
    real_root = root.resolve()
    missing_ok = target.parent
    while not missing_ok.exists():
        missing_ok = missing_ok.parent
    assert missing_ok.resolve().is_relative_to(real_root), text
    assert target.is_relative_to(real_root), text
    assert target.suffix.lower() in IMAGE_SUFFIXES, text
    assert not target.parent.is_relative_to(root.resolve() / "protected"), text
    return True


SEGMENTS = ["sub", "link", "new", "..", ".", "", "a b", "CON", "x:y", "~", "é", "protected", "sub/link"]
LEAVES = ["x.png", "y.JPG", "z.webp", "w.txt", "nul.png", "q.png.", ".png", "link", "sub"]


def _random_path(rng: random.Random, root: Path) -> str:
    if rng.random() < 0.5:
        pieces = [
            rng.choice(PIECES) if rng.random() < 0.5 else rng.choice(ALPHABET)
            for _ in range(rng.randint(1, 8))
        ]
        text = "".join(pieces)
    else:
        folders = [rng.choice(SEGMENTS) for _ in range(rng.randint(0, 4))]
        text = rng.choice("/\\").join([*folders, rng.choice(LEAVES)])
    return str(root) + "/" + text if rng.random() < 0.3 else text


def test_random_text_is_either_refused_or_placed_inside_the_root_with_an_image_suffix(tree: Tree) -> None:
    (tree.root / "link").symlink_to(tree.outside)
    (tree.root / "sub").mkdir()
    (tree.root / "sub" / "link").symlink_to(tree.base)
    rng = random.Random(20261124)
    before = tree.snapshot()
    accepted = 0
    for _ in range(3000):
        accepted += _check_property(tree.policy, tree.root, tree.root, _random_path(rng, tree.root))
    assert tree.snapshot() == before
    assert accepted > 150  # the generator reaches the filesystem checks, not only the lexical ones


def test_hypothesis_finds_no_path_that_escapes_the_root(tmp_path_factory: pytest.TempPathFactory) -> None:
    hypothesis = pytest.importorskip("hypothesis")
    st = pytest.importorskip("hypothesis.strategies")
    tree = Tree(tmp_path_factory.mktemp("hyp"))
    (tree.root / "link").symlink_to(tree.outside)
    (tree.root / "sub").mkdir()
    (tree.root / "sub" / "link").symlink_to(tree.base)
    text_strategy = st.one_of(
        st.text(max_size=40),
        st.builds(_random_path, st.randoms(use_true_random=False), st.just(tree.root)),
        st.lists(st.one_of(st.sampled_from(PIECES), st.text(alphabet=ALPHABET, max_size=3)), max_size=8).map(
            "".join
        ),
    )

    @hypothesis.settings(max_examples=400, deadline=None, database=None)  # type: ignore[untyped-decorator]
    @hypothesis.given(text_strategy)  # type: ignore[untyped-decorator]
    def prop(text: str) -> None:
        _check_property(tree.policy, tree.root, tree.root, text)

    prop()
