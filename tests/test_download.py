"""Downloads and extraction against a loopback server: resume, verification, safety, reruns."""

from __future__ import annotations

import hashlib
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from helpers.data import download as dl
from helpers.data.download import Remote, download, download_coco, extract, serve_directory
from helpers.data.layouts import coco_split
from helpers.errors import CourseError


def _zip(archive: Path, files: dict[str, Path | bytes]) -> Path:
    """A zip of the given members (name -> file on disk or bytes)."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data if isinstance(data, bytes) else data.read_bytes())
    return archive


@pytest.fixture(scope="module")
def mirror(small_coco, tmp_path_factory) -> Path:
    """A folder laid out like images.cocodataset.org, holding zips of the small tiny COCO."""
    site = tmp_path_factory.mktemp("mirror")
    anns = {f"annotations/{p.name}": p for p in (small_coco / "annotations").glob("*.json")}
    _zip(site / "annotations" / "annotations_trainval2014.zip", anns)
    for split in ("train", "val"):
        images = {f"{split}2014/{p.name}": p for p in (small_coco / f"{split}2014").iterdir()}
        _zip(site / "zips" / f"{split}2014.zip", images)
    return site


@pytest.fixture
def coco_remotes(mirror, monkeypatch) -> None:
    """Point COCO_2014's sizes and md5s at the mirror's small zips."""
    for name, remote in dl.COCO_2014.items():
        local = mirror / remote.url.removeprefix(dl.COCO_HOST + "/")
        md5 = hashlib.md5(local.read_bytes()).hexdigest()
        monkeypatch.setitem(dl.COCO_2014, name, Remote(remote.url, local.stat().st_size, md5))


def _one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


def test_coco_2014_lists_the_official_archives():
    assert dl.COCO_2014["train"].url == "http://images.cocodataset.org/zips/train2014.zip"
    assert dl.COCO_2014["val"].size == 6_645_013_297
    assert all(len(r.md5) == 32 for r in dl.COCO_2014.values())


def test_download_coco_gives_the_official_layout(mirror, coco_remotes, small_coco, tmp_path):
    log = []
    with serve_directory(mirror, log=log) as url:
        root = download_coco(tmp_path / "coco", base_url=url)
    assert len(log) == 3
    for split in ("train", "val"):
        found = coco_split(root, split)
        assert found.images == root / f"{split}2014"
        assert sorted(p.name for p in found.images.iterdir()) == sorted(
            p.name for p in (small_coco / f"{split}2014").iterdir()
        )
        assert (
            found.annotations.read_bytes()
            == (small_coco / found.annotations.relative_to(root)).read_bytes()
        )
    # Archives are removed after unpacking, and nothing temporary is left behind.
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".extracted-")) == [
        "annotations",
        "train2014",
        "val2014",
    ]


def test_rerun_skips_completed_download_and_extraction(mirror, coco_remotes, tmp_path):
    root = tmp_path / "coco"
    with serve_directory(mirror) as url:
        download_coco(root, parts=["val"], base_url=url, keep_archives=True)
    archive = root / "val2014.zip"
    removed = next((root / "val2014").iterdir())
    removed.unlink()  # a rewrite would bring it back
    log = []
    with serve_directory(mirror, log=log) as url:
        download_coco(root, parts=["val"], base_url=url)
        assert download(f"{url}/zips/val2014.zip", archive, archive.stat().st_size) == archive
        extract(archive, root, progress=False)
    assert log == []
    assert not removed.exists()


def test_interrupted_download_resumes_with_range(mirror, tmp_path):
    source = mirror / "zips" / "train2014.zip"
    dest = tmp_path / "train2014.zip"
    log = []
    with serve_directory(mirror, log=log, cut_after=1000) as url:
        with pytest.raises(CourseError) as err:
            download(f"{url}/zips/train2014.zip", dest, source.stat().st_size, progress=False)
        assert "a rerun resumes" in _one_line(err) and url in str(err.value)
        assert not dest.exists() and dest.with_name("train2014.zip.part").stat().st_size == 1000
        download(f"{url}/zips/train2014.zip", dest, source.stat().st_size, progress=False)
    assert log[0][1] is None and log[1][1] == "bytes=1000-"
    assert dest.read_bytes() == source.read_bytes()
    assert not dest.with_name("train2014.zip.part").exists()


def test_server_ignoring_range_still_gives_the_right_file(mirror, tmp_path):
    source = mirror / "zips" / "val2014.zip"
    dest = tmp_path / "val2014.zip"
    dest.with_name("val2014.zip.part").write_bytes(b"x" * 700)  # must be replaced, not appended to
    log = []
    with serve_directory(mirror, log=log, ignore_range=True) as url:
        download(f"{url}/zips/val2014.zip", dest, md5=hashlib.md5(source.read_bytes()).hexdigest())
    assert log[0][1] == "bytes=700-"
    assert dest.read_bytes() == source.read_bytes()


def test_complete_part_of_unknown_size_is_finished_without_downloading_again(mirror, tmp_path):
    source = mirror / "zips" / "val2014.zip"
    dest = tmp_path / "val2014.zip"
    dest.with_name("val2014.zip.part").write_bytes(source.read_bytes())
    with serve_directory(mirror) as url:
        download(f"{url}/zips/val2014.zip", dest, progress=False)
    assert dest.read_bytes() == source.read_bytes()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"size": 10**9}, "expected 1000000000"),
        ({"md5": "0" * 32}, "expected 00000000"),
    ],
)
def test_verification_failure_leaves_no_file(mirror, tmp_path, kwargs, message):
    dest = tmp_path / "val2014.zip"
    with serve_directory(mirror) as url, pytest.raises(CourseError) as err:
        download(f"{url}/zips/val2014.zip", dest, progress=False, **kwargs)
    assert message in _one_line(err)
    assert list(tmp_path.iterdir()) == []


def test_part_longer_than_expected_is_deleted(tmp_path):
    dest = tmp_path / "a.zip"
    dest.with_name("a.zip.part").write_bytes(b"y" * 20)
    with pytest.raises(CourseError) as err:
        download("http://127.0.0.1:9/a.zip", dest, size=10, progress=False)
    assert "got 20 bytes, expected 10" in _one_line(err)
    assert list(tmp_path.iterdir()) == []


def test_network_errors_name_the_url(mirror, tmp_path):
    with serve_directory(mirror) as url:
        with pytest.raises(CourseError) as err:
            download(f"{url}/zips/nope.zip", tmp_path / "nope.zip", progress=False)
        assert f"{url}/zips/nope.zip: HTTP 404" in _one_line(err)
    # The server is gone now: connection refused.
    with pytest.raises(CourseError) as err:
        download(f"{url}/zips/val2014.zip", tmp_path / "v.zip", progress=False, timeout=5)
    assert url in _one_line(err) and "a rerun resumes" in str(err.value)
    assert not (tmp_path / "v.zip").exists()


def test_corrupt_archives_give_one_line_errors(mirror, tmp_path):
    not_zip = tmp_path / "notes.zip"
    not_zip.write_text("this is not a zip")
    with pytest.raises(CourseError) as err:
        extract(not_zip, tmp_path / "out", progress=False)
    assert "not a readable zip archive" in _one_line(err)

    data = bytearray((mirror / "zips" / "val2014.zip").read_bytes())
    data[200:260] = bytes(60)  # damage the first member's compressed data
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bytes(data))
    target = tmp_path / "out"
    with pytest.raises(CourseError) as err:
        extract(bad, target, progress=False)
    assert "corrupt archive" in _one_line(err)
    assert list(target.iterdir()) == []  # no marker, no temporary folder


@pytest.mark.parametrize("member", ["../evil.txt", "/tmp/evil.txt", "val2014/../../evil.txt"])
def test_members_escaping_the_target_are_refused(tmp_path, member):
    archive = _zip(tmp_path / "evil.zip", {"val2014/ok.txt": b"fine", member: b"pwned"})
    assert member in zipfile.ZipFile(archive).namelist()
    target = tmp_path / "a" / "target"
    with pytest.raises(CourseError) as err:
        extract(archive, target, progress=False)
    assert "refused" in _one_line(err)
    assert not target.exists()
    assert not list(tmp_path.rglob("evil.txt")) and not Path("/tmp/evil.txt").exists()


def test_symlink_members_are_refused(tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("val2014/link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc")
    with pytest.raises(CourseError, match="symbolic link"):
        extract(archive, tmp_path / "target", progress=False)
    assert not (tmp_path / "target").exists()


def test_extraction_completes_an_interrupted_one(mirror, tmp_path):
    target = tmp_path / "coco"
    (target / "val2014").mkdir(parents=True)
    (target / "val2014" / "partial.jpg").write_bytes(b"from an earlier run")
    (target / ".extracting-val2014.zip" / "junk").mkdir(parents=True)
    extract(mirror / "zips" / "val2014.zip", target, progress=False)
    names = zipfile.ZipFile(mirror / "zips" / "val2014.zip").namelist()
    assert all((target / n).is_file() for n in names)
    assert sorted(p.name for p in target.iterdir()) == [".extracted-val2014.zip", "val2014"]


def test_unknown_part_is_refused(tmp_path):
    with pytest.raises(CourseError, match="unknown COCO 2014 part"):
        download_coco(tmp_path, parts=["test"])
    with pytest.raises(CourseError, match="unknown COCO 2017 part"):
        download_coco(tmp_path, parts=["test"], year="2017")
    with pytest.raises(CourseError, match="year must be one of 2014, 2017"):
        download_coco(tmp_path, parts=["val"], year="2015")


def test_coco_2017_lists_the_official_archives():
    assert dl.COCO_2017["val"].url == "http://images.cocodataset.org/zips/val2017.zip"
    assert dl.COCO_2017["val"].size == 815_585_330
    assert dl.COCO_2017["annotations"].md5 == "f4bbac642086de4f52a3fdda2de5fa2c"
    assert all(len(r.md5) == 32 for r in dl.COCO_2017.values())


@pytest.fixture(scope="module")
def mirror2017(small_coco, tmp_path_factory) -> Path:
    """images.cocodataset.org's 2017 files, holding the small tiny COCO renamed to 2017."""
    site = tmp_path_factory.mktemp("mirror2017")
    anns = {
        f"annotations/{p.name.replace('2014', '2017')}": p
        for p in (small_coco / "annotations").glob("*.json")
    }
    _zip(site / "annotations" / "annotations_trainval2017.zip", anns)
    images = {f"val2017/{p.name}": p for p in (small_coco / "val2014").iterdir()}
    _zip(site / "zips" / "val2017.zip", images)
    return site


def test_coco_2017_parts_resume_verify_and_unpack(mirror2017, small_coco, monkeypatch, tmp_path):
    for name in ("annotations", "val"):
        remote = dl.COCO_2017[name]
        local = mirror2017 / remote.url.removeprefix(dl.COCO_HOST + "/")
        md5 = hashlib.md5(local.read_bytes()).hexdigest()
        monkeypatch.setitem(dl.COCO_2017, name, Remote(remote.url, local.stat().st_size, md5))
    root = tmp_path / "coco"
    log = []
    # The first transfer is cut after 1,000 bytes: a rerun of the same command resumes it.
    with serve_directory(mirror2017, log=log, cut_after=1000) as url:
        with pytest.raises(CourseError, match="a rerun resumes"):
            download_coco(root, ["annotations", "val"], url, progress=False, year="2017")
        download_coco(root, ["annotations", "val"], url, progress=False, year="2017")
    assert ("/annotations/annotations_trainval2017.zip", "bytes=1000-") in log
    found = coco_split(root, "val")
    assert found.annotations == root / "annotations" / "captions_val2017.json"
    assert sorted(p.name for p in found.images.iterdir()) == sorted(
        p.name for p in (small_coco / "val2014").iterdir()
    )
    # A file that is not the published one (here: another md5) is refused and not kept.
    monkeypatch.setitem(dl.COCO_2017, "val", Remote(dl.COCO_2017["val"].url, None, "0" * 32))
    with serve_directory(mirror2017) as url, pytest.raises(CourseError, match="expected 0000"):
        download_coco(tmp_path / "other", ["val"], url, progress=False, year="2017")
    assert not (tmp_path / "other" / "val2017.zip").exists()


def test_cli_bad_input_is_one_line_without_traceback(tmp_path):
    (tmp_path / "empty").mkdir()
    with serve_directory(tmp_path / "empty") as url:
        run = subprocess.run(
            [sys.executable, "-m", "helpers.data.download", "--parts", "val"]
            + ["--root", str(tmp_path / "coco"), "--base-url", url],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
        )
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    assert run.stderr.strip().count("\n") == 0 and "HTTP 404" in run.stderr
    assert not (tmp_path / "coco" / "val2014.zip").exists()


def test_part_longer_than_the_servers_file_is_deleted(mirror, tmp_path):
    dest = tmp_path / "val2014.zip"
    size = (mirror / "zips" / "val2014.zip").stat().st_size
    dest.with_name("val2014.zip.part").write_bytes(b"z" * (size + 5))
    with serve_directory(mirror) as url, pytest.raises(CourseError) as err:
        download(f"{url}/zips/val2014.zip", dest, progress=False)
    assert "a rerun starts over" in _one_line(err)
    assert list(tmp_path.iterdir()) == []


def test_a_foreign_file_under_the_final_name_is_not_overwritten(tmp_path):
    dest = tmp_path / "val2014.zip"
    dest.write_bytes(b"someone else's file")
    with pytest.raises(CourseError, match="delete it and rerun"):
        download("http://127.0.0.1:9/val2014.zip", dest, size=10**6, progress=False)
    assert dest.read_bytes() == b"someone else's file"
