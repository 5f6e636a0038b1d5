"""Code bundles: deterministic packing, ignore rules, and extraction that refuses hostile archives."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import pytest
from flytekitplugins.prebuilt.kit.config import ConfigError
from flytekitplugins.prebuilt.kit.errors import UserError
from flytekitplugins.prebuilt.script.bundle import changed, extract, read_files, verify
from flytekitplugins.prebuilt.script.packing import pack


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


def project(root: Path) -> Path:
    write(root, {"main.py": "print('hi')\n", "pkg/__init__.py": "", "pkg/util.py": "X = 1\n", "run.sh": "#!/bin/sh\n"})
    (root / "run.sh").chmod(0o755)
    return root


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- packing -----------------------------------------------------------------------------------------


def test_pack_is_byte_identical_across_runs_copies_mtimes_and_locations(tmp_path):
    a = project(tmp_path / "a")
    first, second = pack(a), pack(str(a))
    assert first == second
    # the same files written in another order, at another path, with other mtimes
    b = tmp_path / "elsewhere" / "b"
    for rel in reversed(first.files):
        write(b, {rel: (a / rel).read_bytes()})
        os.utime(b / rel, (1_000_000_000, 1_000_000_000))
    (b / "run.sh").chmod(0o775)  # group bits do not matter, only the user-executable bit
    copy = pack(b)
    assert (copy.data, copy.sha256) == (first.data, first.sha256) and first.sha256 == sha(first.data)
    assert first.files == ("main.py", "pkg/__init__.py", "pkg/util.py", "run.sh")
    for info in zipfile.ZipFile(io.BytesIO(first.data)).infolist():
        assert info.date_time == (1980, 1, 1, 0, 0, 0) and info.compress_type == zipfile.ZIP_DEFLATED
        assert info.external_attr >> 16 == stat.S_IFREG | (0o755 if info.filename == "run.sh" else 0o644)


def test_one_changed_byte_or_exec_bit_changes_the_digest(tmp_path):
    root = project(tmp_path / "p")
    before = pack(root).sha256
    (root / "pkg/util.py").write_text("X = 2\n")
    after = pack(root).sha256
    (root / "run.sh").chmod(0o644)
    assert len({before, after, pack(root).sha256}) == 3


def test_default_ignores(tmp_path):
    ignored = [
        ".git/config", ".hg/store", ".svn/entries", ".env", ".env.local", "__pycache__/m.cpython-311.pyc",
        "pkg/__pycache__/x.pyc", "stray.pyc", ".venv/bin/python", "venv/lib/x.py", "sub/env/x", ".mypy_cache/x",
        ".pytest_cache/x", ".ruff_cache/x", "nb/.ipynb_checkpoints/x", "web/node_modules/x/index.js",
        ".DS_Store", "pkg/.DS_Store", "my_pkg.egg-info/PKG-INFO", "dist/x.whl", "build/lib/x.py",
    ]  # fmt: skip
    kept = ["main.py", "environment.py", "env.py", "pkg/build.py", "dist.txt", "sub/.envrc", "bin/build", "env"]
    root = write(tmp_path / "p", dict.fromkeys(ignored + kept, "x"))
    (tmp_path / "elsewhere").mkdir()
    (root / "node_modules").symlink_to(tmp_path / "elsewhere")  # a linked folder: ignored, not followed
    assert pack(root).files == tuple(sorted(kept))


def test_gitignore_prebuiltignore_negation_anchors_directories_and_globs(tmp_path):
    root = write(
        tmp_path / "p",
        {
            ".gitignore": "# logs\n\n*.log\n/secret.txt\ndata/\n",
            ".prebuiltignore": (
                "!keep.log\ndocs/**/*.tmp\n**/cache/\nlogs/**\n!logs/important.txt\nfile?.bin\n!build/\n"
            ),
            **dict.fromkeys(["a.log", "sub/b.log", "secret.txt", "data/x.csv", "sub/data/y.csv"], "ignored"),
            **dict.fromkeys(["docs/x.tmp", "docs/a/b/y.tmp", "a/cache/c", "cache/d", "logs/l.txt", "file1.bin"], "ign"),
            **dict.fromkeys(["keep.log", "sub/secret.txt", "other/data", "other.tmp", "docs/page.md"], "kept"),
            **dict.fromkeys(["logs/important.txt", "file10.bin", "cachefile", "build/out.txt"], "kept"),
        },
    )  # `/secret.txt` is anchored at the root; `data/` matches folders only, at any depth
    expected = (
        ".gitignore", ".prebuiltignore", "build/out.txt", "cachefile", "docs/page.md", "file10.bin", "keep.log",
        "logs/important.txt", "other.tmp", "other/data", "sub/secret.txt",
    )  # fmt: skip
    assert pack(root).files == expected
    trimmed = pack(root, extra_ignores=["*.md", "/.*ignore", "!*.tmp"]).files
    assert trimmed == tuple(
        sorted({*expected, "docs/x.tmp", "docs/a/b/y.tmp"} - {".gitignore", ".prebuiltignore", "docs/page.md"})
    )


def test_single_file_source_is_stored_by_basename_with_its_exec_bit(tmp_path):
    script = write(tmp_path / "deep/dir", {"job.py": "print(1)\n"}) / "job.py"
    script.chmod(0o755)
    bundle = pack(script)
    assert bundle.files == ("job.py",) and read_files(bundle.data) == {"job.py": b"print(1)\n"}
    assert zipfile.ZipFile(io.BytesIO(bundle.data)).getinfo("job.py").external_attr >> 16 & 0o777 == 0o755


def test_missing_and_empty_sources_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="does not exist") as missing:
        pack(tmp_path / "nope")
    (tmp_path / "dangling").symlink_to(tmp_path / "nope")
    with pytest.raises(ConfigError, match=r"does not exist \(broken symlink\)") as broken:
        pack(tmp_path / "dangling")
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(ConfigError, match="neither a file nor a folder") as pipe:
        pack(tmp_path / "pipe")
    assert missing.value.field == broken.value.field == pipe.value.field == "source"
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no files left after ignore rules"):
        pack(tmp_path / "empty")
    write(tmp_path / "only_ignored", {".env": "TOKEN=1", "__pycache__/x.pyc": "x"})
    with pytest.raises(UserError, match="no files left after ignore rules"):
        pack(tmp_path / "only_ignored")


def test_limits_are_enforced_when_packing(tmp_path):
    root = project(tmp_path / "p")
    with pytest.raises(UserError, match="more than the limit of 3 files"):
        pack(root, max_files=3)
    with pytest.raises(UserError, match="more than the limit of 10"):
        pack(root, max_unpacked_bytes=10)
    with pytest.raises(UserError, match="packed size limit of 100 bytes"):
        pack(root, max_bundle_bytes=100)


def test_symlink_to_a_file_inside_is_stored_as_content(tmp_path):
    root = project(tmp_path / "p")
    (root / "link.py").symlink_to("pkg/util.py")
    bundle = pack(root)
    assert read_files(bundle.data)["link.py"] == b"X = 1\n"
    plain = project(tmp_path / "q")
    (plain / "link.py").write_text("X = 1\n")
    assert pack(plain) == bundle  # indistinguishable from a real copy


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root, out: (root / "esc").symlink_to(out / "outside.txt"), "symlink 'esc' points outside"),
        (lambda root, out: (root / "esc").symlink_to("../outside.txt"), "symlink 'esc' points outside"),
        (lambda root, out: (root / "pkglink").symlink_to("pkg"), "symlink 'pkglink' points to a directory"),
        (lambda root, out: (root / "gone").symlink_to("missing.py"), "symlink 'gone' is broken"),
        (lambda root, out: (root / "leak").symlink_to(".env"), r"symlink 'leak' points to an ignored file \(.env\)"),
    ],
)
def test_unsafe_symlinks_are_refused_by_name(tmp_path, make, message):
    root = project(tmp_path / "p")
    write(root, {".env": "TOKEN=secret"})
    write(tmp_path, {"outside.txt": "secret"})
    make(root, tmp_path)
    with pytest.raises(UserError, match=message):
        pack(root)


def test_has_file_answers_for_files_of_the_bundle_only(tmp_path):
    bundle = pack(project(tmp_path / "p"))
    assert all(bundle.has_file(p) for p in ("main.py", "./pkg/util.py", "pkg//util.py", "pkg/../run.sh"))
    outside = ("pkg", "pkg/", ".", "", "missing.py", "/main.py", "../p/main.py", "pkg/../../main.py", "pkg\\util.py")
    assert not any(bundle.has_file(p) for p in outside)


def test_ignored_symlinks_are_not_followed(tmp_path):
    root = project(tmp_path / "p")
    (tmp_path / "real_venv").mkdir()
    (root / ".venv").symlink_to(tmp_path / "real_venv")
    assert ".venv" not in pack(root).files


# --- verifying and extracting ------------------------------------------------------------------------


def test_the_runtime_side_extracts_without_the_author_side_pathspec(tmp_path):
    bundle = pack(project(tmp_path / "p"))
    (tmp_path / "b.zip").write_bytes(bundle.data)
    code = (  # as in the images, which install flytekit and the extra, and this package with --no-deps
        "import sys\n"
        "sys.modules['pathspec'] = None  # any import of it fails\n"
        "import flytekitplugins.prebuilt.executors.script\n"
        "from flytekitplugins.prebuilt.script.bundle import extract\n"
        f"print(*extract(open('b.zip', 'rb').read(), 'out', {bundle.sha256!r}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == list(bundle.files)


def test_tampered_bundle_is_refused_naming_both_digests(tmp_path):
    bundle = pack(project(tmp_path / "p"))
    tampered = bundle.data[:-1] + bytes([bundle.data[-1] ^ 1])
    verify(bundle.data, bundle.sha256.upper())
    message = f"bundle digest mismatch: expected {bundle.sha256}, got {sha(tampered)} (tampered or corrupted)"
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        verify(tampered, bundle.sha256)
    with pytest.raises(UserError, match="digest mismatch"):
        extract(tampered, tmp_path / "out", bundle.sha256)
    assert not (tmp_path / "out").exists()


def test_extract_restores_files_and_exec_bit(tmp_path):
    bundle = pack(project(tmp_path / "p"))
    out = tmp_path / "work" / "out"
    assert extract(bundle.data, out, bundle.sha256) == list(bundle.files)
    assert (out / "pkg/util.py").read_text() == "X = 1\n"
    assert stat.S_IMODE((out / "run.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((out / "main.py").stat().st_mode) == 0o644
    assert sorted(os.listdir(tmp_path / "work")) == ["out"]  # no temporary folder left beside it
    assert pack(out) == bundle  # round trip
    empty = tmp_path / "empty"
    empty.mkdir()
    extract(bundle.data, empty, bundle.sha256)  # an existing empty folder is fine
    with pytest.raises(UserError, match="not an empty folder"):
        extract(bundle.data, out, bundle.sha256)


def crafted(*members: tuple[str, bytes] | zipfile.ZipInfo, payloads: dict | None = None) -> bytes:
    """A zip written by hand, as an attacker would, bypassing pack()'s checks."""
    buf = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name we write on purpose
        zf.writestr("ok.txt", b"harmless")
        for member in members:
            if isinstance(member, zipfile.ZipInfo):
                zf.writestr(member, (payloads or {}).get(member.filename, b"x"))
            else:
                zf.writestr(zipfile.ZipInfo(member[0]), member[1])
    return buf.getvalue()


def symlink_member() -> zipfile.ZipInfo:
    info = zipfile.ZipInfo("link")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def lying_header(declared: int) -> bytes:
    """A member that inflates to 1 MiB while its headers claim `declared` bytes."""
    data = bytearray(crafted(("big", b"\0" * 2**20)))
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.rindex(signature) + offset  # the last local / central header: the member "big"
        data[at : at + 4] = declared.to_bytes(4, "little")
    return bytes(data)


@pytest.mark.parametrize(
    ("data", "limits", "message"),
    [
        (crafted(("../evil", b"x")), {}, r"unsafe bundle member '../evil': '..' component"),
        (crafted(("/abs", b"x")), {}, "unsafe bundle member '/abs': absolute path"),
        (crafted(("a/../../x", b"x")), {}, r"unsafe bundle member 'a/../../x': '..' component"),
        (crafted(("C:/win.ini", b"x")), {}, "drive letter"),
        (crafted(("a\\..\\..\\x", b"x")), {}, "backslash"),
        (crafted(symlink_member(), payloads={"link": b"/etc/passwd"}), {}, "unsafe bundle member 'link': symlink"),
        (crafted(("ok.txt", b"again")), {}, "'ok.txt' appears more than once"),
        (crafted(("ok.txt/inner", b"x")), {}, "'ok.txt/inner' is inside 'ok.txt', which is a file"),
        (crafted(*[(f"f{i}", b"x") for i in range(4)]), {"max_files": 4}, "5 members, more than the limit of 4"),
        (crafted(("bomb", b"\0" * 10 * 2**20)), {"max_unpacked_bytes": 2**20}, "declares 10485768 uncompressed"),
        (lying_header(10), {"max_unpacked_bytes": 1000}, "not a valid zip archive: Bad CRC-32 for file 'big'"),
        (lying_header(2**21), {}, "'big' holds 1048576 bytes but declares 2097152"),
        (b"not a zip at all", {}, "not a valid zip archive"),
    ],
    ids=[
        "dotdot", "absolute", "nested-dotdot", "drive", "backslash", "symlink", "duplicate", "file-as-dir",
        "too-many-files", "declared-bomb", "lying-header-small", "lying-header-large", "garbage",
    ],
)  # fmt: skip
def test_hostile_archives_are_refused_and_nothing_is_written(tmp_path, data, limits, message):
    out = tmp_path / "dest" / "out"
    out.parent.mkdir()
    with pytest.raises(UserError, match=message):
        extract(data, out, sha(data), **limits)
    assert os.listdir(out.parent) == []  # neither the destination nor a half-extracted temporary folder
    assert os.listdir(tmp_path) == ["dest"]
    with pytest.raises(UserError, match=message):
        read_files(data, **limits)


# --- new versions ------------------------------------------------------------------------------------


def test_changed_equals_packing_the_equivalent_folder(tmp_path):
    old = pack(project(tmp_path / "v1"))
    new = changed(old, added={"run.sh": b"#!/bin/sh\necho 2\n", "docs/README.md": b"# hi\n"}, removed=["pkg"])
    v2 = tmp_path / "v2"
    shutil.copytree(tmp_path / "v1", v2)
    shutil.rmtree(v2 / "pkg")
    write(v2, {"run.sh": "#!/bin/sh\necho 2\n", "docs/README.md": "# hi\n"})  # run.sh keeps its 0o755
    assert new == pack(v2)
    assert new.files == ("docs/README.md", "main.py", "run.sh")
    back = {"pkg/__init__.py": b"", "pkg/util.py": b"X = 1\n", "run.sh": b"#!/bin/sh\n"}
    assert changed(new, removed=["docs/"], added=back) == old and changed(old) == old
    assert changed(changed(old, removed="run.sh"), added={"run.sh": b"#!/bin/sh\n"}).sha256 != old.sha256  # 0o644


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"removed": ["nope.py"]}, "cannot remove 'nope.py': not in the bundle"),
        ({"added": {"../x": b""}}, "unsafe bundle member '../x'"),
        ({"added": {"main.py/x": b""}}, "is inside 'main.py', which is a file"),
        ({"removed": ["main.py", "pkg", "run.sh"]}, "would be empty"),
    ],
)
def test_changed_refuses_impossible_versions(tmp_path, kwargs, message):
    with pytest.raises(UserError, match=message):
        changed(pack(project(tmp_path / "p")), **kwargs)


def test_changed_refuses_a_bundle_whose_data_does_not_match_its_digest(tmp_path):
    good = pack(project(tmp_path / "p"))
    forged = type(good)(good.data[:-1] + b"\1", good.sha256, good.files)
    with pytest.raises(UserError, match="digest mismatch"):
        changed(forged, added={"x": b""})
