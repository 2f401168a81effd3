"""One behavioural contract for every object store, run against each backend.

:class:`StoreContract` is written once over a ``store`` fixture; each backend subclasses it and says how
to build the store. The S3 backend runs against a real moto server on loopback, over HTTP: no patching.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import pickle
import socket
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, cast

import pytest

from sluice.config import StorageConfig, load_config
from sluice.errors import InvalidKeyError, NoSuchKeyError, SpecError, StorageError
from sluice.storage import ObjectStore, store_for
from sluice.storage.local import LocalStore
from sluice.storage.s3 import S3Store
from tests.s3server import reset_s3_server

BUCKET = "conformance"
MiB = 1 << 20

BAD_KEYS = ["../escape", "a/../../escape", "a/..", "./a", "/absolute", "a\x00b", "a//b"]
BAD_BUCKETS = ["UPPER", "ab", "under_score", "-leading", "trailing-", "two..dots", "a/b", ""]


def _files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _read_in_worker(store: ObjectStore, bucket: str, key: str) -> bytes:
    """Runs in a separate process: the store arrived pickled, or inherited across fork."""
    return store.get_bytes(bucket, key)


def _read_in_forked_child(store: ObjectStore, bucket: str, key: str, out: Any) -> None:
    try:
        out.put(store.get_bytes(bucket, key))
    except BaseException as exc:  # report, so the parent's assertion says what went wrong
        out.put(f"{type(exc).__name__}: {exc}")


def _client_owner_in_forked_child(store: S3Store, bucket: str, key: str, out: Any) -> None:
    try:
        store.get_bytes(bucket, key)
        out.put(store._client_pid == os.getpid())
    except BaseException as exc:
        out.put(f"{type(exc).__name__}: {exc}")


def _closed_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _unreachable_s3_store() -> S3Store:
    """An S3 store whose endpoint refuses connections at once: one attempt, a short connect timeout."""
    config = StorageConfig(
        endpoint_url=f"http://127.0.0.1:{_closed_loopback_port()}",
        access_key_id="testing",
        secret_access_key="testing",
    )
    return S3Store(config, connect_timeout=1.0, read_timeout=1.0, max_attempts=1)


class StoreContract:
    """What every backend promises. Subclasses provide ``store``, ``offline_store`` and ``read_presigned``."""

    @pytest.fixture
    def store(self) -> ObjectStore:
        raise NotImplementedError

    @pytest.fixture
    def offline_store(self) -> ObjectStore:
        """A store of the same kind that would fail loudly if it touched its backing storage at all."""
        raise NotImplementedError

    def read_presigned(self, url: str) -> bytes:
        raise NotImplementedError

    @pytest.fixture
    def bucket(self, store: ObjectStore) -> str:
        store.create_bucket(BUCKET)
        return BUCKET

    def keys(self, store: ObjectStore, prefix: str = "") -> list[str]:
        return [o.key for o in store.list(BUCKET, prefix)]

    def seed(self, store: ObjectStore, bucket: str, keys: list[str]) -> None:
        """Create many empty objects quickly (a backend may override this with a cheaper path)."""
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(lambda k: store.put(bucket, k, b""), keys))

    # ---- put / get ---------------------------------------------------------------------------
    def test_put_then_get_returns_the_same_bytes(self, store: ObjectStore, bucket: str) -> None:
        data = bytes(range(256)) * 33
        store.put(bucket, "data/blob.bin", data)
        assert store.get_bytes(bucket, "data/blob.bin") == data

    def test_put_of_9_mib_of_bytes_round_trips(self, store: ObjectStore, bucket: str) -> None:
        data = os.urandom(9 * MiB)  # over the S3 multipart threshold
        assert store.put(bucket, "large", data).size == len(data)
        assert store.get_bytes(bucket, "large") == data

    def test_put_of_an_empty_object_reads_back_empty(self, store: ObjectStore, bucket: str) -> None:
        info = store.put(bucket, "empty", b"")
        assert info.size == 0
        assert store.get_bytes(bucket, "empty") == b""

    def test_put_accepts_a_readable_file_object(
        self, store: ObjectStore, bucket: str, tmp_path: Path
    ) -> None:
        src = tmp_path / "src.bin"
        src.write_bytes(b"from a file object" * 1000)
        with open(src, "rb") as fh:
            info = store.put(bucket, "from-file", fh)
        assert info.size == src.stat().st_size
        assert store.get_bytes(bucket, "from-file") == src.read_bytes()

    def test_put_accepts_a_stream_that_cannot_seek(self, store: ObjectStore, bucket: str) -> None:
        data = os.urandom(9 * MiB)  # over the S3 multipart threshold

        class Pipe(io.RawIOBase):  # like a socket or a pipe: read-only, forward-only
            def __init__(self) -> None:
                self.pos = 0

            def readable(self) -> bool:
                return True

            def readinto(self, buffer: Any) -> int:
                chunk = data[self.pos:self.pos + min(len(buffer), 64 * 1024)]
                buffer[:len(chunk)] = chunk
                self.pos += len(chunk)
                return len(chunk)

        info = store.put(bucket, "streamed", cast(BinaryIO, io.BufferedReader(Pipe())))
        assert info.size == len(data)
        assert store.get_bytes(bucket, "streamed") == data

    def test_put_returns_what_stat_then_says(self, store: ObjectStore, bucket: str) -> None:
        info = store.put(bucket, "k", b"12345")
        assert (info.bucket, info.key, info.size) == (bucket, "k", 5)
        assert store.stat(bucket, "k") == info

    def test_keys_with_spaces_unicode_and_url_characters_round_trip(
        self, store: ObjectStore, bucket: str
    ) -> None:
        key = "odd dir/ü+%20?#=&;,'@!$ .txt"
        store.put(bucket, key, b"odd")
        assert store.get_bytes(bucket, key) == b"odd"
        assert self.keys(store) == [key]
        assert store.stat(bucket, key).size == 3

    def test_open_gives_a_readable_binary_stream_usable_in_with(
        self, store: ObjectStore, bucket: str
    ) -> None:
        data = os.urandom(3 * MiB + 17)
        store.put(bucket, "stream", data)
        with store.open(bucket, "stream") as fh:
            assert fh.readable()
            first = fh.read(1000)
            rest = fh.read()
        assert fh.closed
        assert first + rest == data

    def test_put_replaces_the_whole_object_and_the_etag_changes(
        self, store: ObjectStore, bucket: str
    ) -> None:
        old = store.put(bucket, "model.tar.gz", b"version one, longer than the next")
        new = store.put(bucket, "model.tar.gz", b"version two")
        assert store.get_bytes(bucket, "model.tar.gz") == b"version two"
        assert new.size == len(b"version two")
        assert new.etag and old.etag and new.etag != old.etag
        assert store.stat(bucket, "model.tar.gz").etag == new.etag

    @pytest.mark.parametrize("key", ["k", "folder/"])
    def test_put_into_a_missing_bucket_raises_no_such_key_and_creates_no_bucket(
        self, store: ObjectStore, key: str
    ) -> None:
        with pytest.raises(NoSuchKeyError, match="no-such-bucket"):
            store.put("no-such-bucket", key, b"")
        assert not store.bucket_exists("no-such-bucket")

    # ---- list --------------------------------------------------------------------------------
    def test_listing_is_lexicographic_by_full_key_not_by_directory(
        self, store: ObjectStore, bucket: str
    ) -> None:
        # '-' < '.' < '/' < '0' < 'A' < '_' < 'a': a directory walk that sorts per level gets this wrong.
        keys = ["b", "a0", "a/z", "a/b/c", "a-b", "a.b", "A", "a_", "a/b-c", "a/b.c/d"]
        for key in keys:
            store.put(bucket, key, key.encode())
        assert self.keys(store) == sorted(keys)

    def test_keys_starting_with_a_dot_are_listed_like_any_other(
        self, store: ObjectStore, bucket: str
    ) -> None:
        keys = [".hidden", ".sluice-tmp", "dir/.dotfile", "dir/.sluice-tmp"]
        for key in keys:
            store.put(bucket, key, b"x")
        assert self.keys(store) == keys

    def test_listing_reports_the_bucket_key_size_and_etag_stat_reports(
        self, store: ObjectStore, bucket: str
    ) -> None:
        store.put(bucket, "x/one", b"1")
        store.put(bucket, "x/three", b"333")
        listed = {o.key: o for o in store.list(bucket, "x/")}
        assert {k: o.size for k, o in listed.items()} == {"x/one": 1, "x/three": 3}
        for key, info in listed.items():
            stat = store.stat(bucket, key)
            assert (info.key, info.size, info.etag) == (stat.key, stat.size, stat.etag)
            assert info.bucket == stat.bucket == bucket
            assert info.uri == f"s3://{bucket}/{key}"
            assert abs(info.last_modified - time.time()) < 600

    @pytest.fixture
    def tree(self, store: ObjectStore, bucket: str) -> list[str]:
        keys = ["data/part-1.csv", "data/part-2.csv", "data/part/inner.csv", "data/other.csv", "database"]
        keys.append("zz")
        for key in keys:
            store.put(bucket, key, b"x")
        return keys

    def test_listing_with_a_directory_prefix_returns_everything_below_it(
        self, store: ObjectStore, tree: list[str]
    ) -> None:
        assert self.keys(store, "data/") == ["data/other.csv", "data/part-1.csv", "data/part-2.csv",
                                             "data/part/inner.csv"]

    def test_listing_with_a_prefix_ending_mid_segment_matches_by_string_prefix(
        self, store: ObjectStore, tree: list[str]
    ) -> None:
        assert self.keys(store, "data/part") == ["data/part-1.csv", "data/part-2.csv", "data/part/inner.csv"]
        assert self.keys(store, "data/part-") == ["data/part-1.csv", "data/part-2.csv"]
        assert self.keys(store, "dat") == ["data/other.csv", "data/part-1.csv", "data/part-2.csv",
                                           "data/part/inner.csv", "database"]

    def test_listing_with_a_prefix_equal_to_a_key_includes_that_key(
        self, store: ObjectStore, tree: list[str]
    ) -> None:
        assert self.keys(store, "data/part-1.csv") == ["data/part-1.csv"]
        assert self.keys(store, "database") == ["database"]

    def test_listing_with_no_prefix_returns_the_whole_bucket_and_nothing_else(
        self, store: ObjectStore, tree: list[str]
    ) -> None:
        assert self.keys(store) == sorted(tree)

    @pytest.mark.parametrize("prefix", ["nothing/", "nothing", "data/zzz", "data/part-1.csv/", "x/y/z/"])
    def test_listing_a_prefix_with_nothing_under_it_yields_nothing(
        self, store: ObjectStore, tree: list[str], prefix: str
    ) -> None:
        assert self.keys(store, prefix) == []

    def test_listing_an_empty_bucket_yields_nothing(self, store: ObjectStore, bucket: str) -> None:
        assert self.keys(store) == []

    def test_listing_goes_past_one_page_of_results(self, store: ObjectStore, bucket: str) -> None:
        keys = [f"many/{i:05d}" for i in range(1010)]  # S3 returns at most 1000 keys per page
        self.seed(store, bucket, keys)
        assert self.keys(store, "many/") == keys

    def test_listing_a_missing_bucket_raises_no_such_key(self, store: ObjectStore) -> None:
        with pytest.raises(NoSuchKeyError, match="no-such-bucket"):
            list(store.list("no-such-bucket"))

    # ---- stat / missing objects --------------------------------------------------------------
    def test_stat_gives_the_size(self, store: ObjectStore, bucket: str) -> None:
        store.put(bucket, "sized", b"x" * 4321)
        info = store.stat(bucket, "sized")
        assert info.size == 4321
        assert info.etag

    def test_stat_of_a_missing_key_raises_no_such_key_naming_the_uri(
        self, store: ObjectStore, bucket: str
    ) -> None:
        with pytest.raises(NoSuchKeyError, match=f"s3://{bucket}/missing"):
            store.stat(bucket, "missing")

    def test_open_of_a_missing_key_raises_no_such_key_naming_the_uri(
        self, store: ObjectStore, bucket: str
    ) -> None:
        with pytest.raises(NoSuchKeyError, match=f"s3://{bucket}/missing"):
            store.open(bucket, "missing")

    def test_stat_and_open_in_a_missing_bucket_raise_no_such_key(self, store: ObjectStore) -> None:
        with pytest.raises(NoSuchKeyError):
            store.stat("no-such-bucket", "k")
        with pytest.raises(NoSuchKeyError):
            store.open("no-such-bucket", "k")

    def test_a_prefix_is_not_an_object(self, store: ObjectStore, bucket: str) -> None:
        store.put(bucket, "dir/file", b"x")
        with pytest.raises(NoSuchKeyError):
            store.stat(bucket, "dir")
        with pytest.raises(NoSuchKeyError):
            store.open(bucket, "dir")
        assert not store.exists(bucket, "dir")

    def test_exists_says_whether_an_object_is_there(self, store: ObjectStore, bucket: str) -> None:
        store.put(bucket, "here", b"x")
        assert store.exists(bucket, "here")
        assert not store.exists(bucket, "not-here")

    # ---- delete ------------------------------------------------------------------------------
    def test_delete_removes_the_object_and_leaves_its_neighbours(
        self, store: ObjectStore, bucket: str
    ) -> None:
        store.put(bucket, "d/a", b"a")
        store.put(bucket, "d/b", b"b")
        store.delete(bucket, "d/a")
        assert not store.exists(bucket, "d/a")
        assert self.keys(store) == ["d/b"]

    def test_deleting_the_last_object_under_a_prefix_empties_the_prefix(
        self, store: ObjectStore, bucket: str
    ) -> None:
        store.put(bucket, "deep/er/est", b"x")
        store.delete(bucket, "deep/er/est")
        assert self.keys(store) == []
        store.put(bucket, "deep", b"now an object")  # nothing of the old prefix is left in the way
        assert store.get_bytes(bucket, "deep") == b"now an object"

    def test_delete_of_a_missing_key_is_fine(self, store: ObjectStore, bucket: str) -> None:
        store.delete(bucket, "never-existed")
        store.delete(bucket, "never/existed/either")

    # ---- buckets -----------------------------------------------------------------------------
    def test_create_bucket_is_idempotent_and_bucket_exists_sees_it(self, store: ObjectStore) -> None:
        assert not store.bucket_exists("fresh-bucket")
        store.create_bucket("fresh-bucket")
        store.put("fresh-bucket", "k", b"kept")
        store.create_bucket("fresh-bucket")
        assert store.bucket_exists("fresh-bucket")
        assert store.get_bytes("fresh-bucket", "k") == b"kept"

    @pytest.mark.parametrize("bad", BAD_BUCKETS)
    def test_invalid_bucket_names_are_refused_before_any_request(
        self, offline_store: ObjectStore, bad: str
    ) -> None:
        for call in (
            lambda: offline_store.create_bucket(bad),
            lambda: offline_store.bucket_exists(bad),
            lambda: list(offline_store.list(bad)),
            lambda: offline_store.put(bad, "k", b"x"),
            lambda: offline_store.stat(bad, "k"),
            lambda: offline_store.open(bad, "k"),
            lambda: offline_store.delete(bad, "k"),
            lambda: offline_store.presign(bad, "k"),
        ):
            with pytest.raises(SpecError, match="bucket name"):
                call()

    # ---- keys that would leave their bucket --------------------------------------------------
    @pytest.mark.parametrize("bad", BAD_KEYS)
    def test_keys_that_would_leave_the_bucket_are_refused_before_any_request(
        self, offline_store: ObjectStore, bad: str, tmp_path: Path
    ) -> None:
        src = tmp_path / "src"
        src.write_bytes(b"x")
        dest_dir = tmp_path / "dest"
        calls = {
            "put": lambda: offline_store.put(BUCKET, bad, b"x"),
            "open": lambda: offline_store.open(BUCKET, bad),
            "stat": lambda: offline_store.stat(BUCKET, bad),
            "exists": lambda: offline_store.exists(BUCKET, bad),
            "delete": lambda: offline_store.delete(BUCKET, bad),
            "presign": lambda: offline_store.presign(BUCKET, bad),
            "list": lambda: list(offline_store.list(BUCKET, bad)),
            "upload_file": lambda: offline_store.upload_file(src, BUCKET, bad),
            "download_file": lambda: offline_store.download_file(BUCKET, bad, dest_dir / "out"),
            "copy from": lambda: offline_store.copy(BUCKET, bad, BUCKET, "ok"),
            "copy to": lambda: offline_store.copy(BUCKET, "ok", BUCKET, bad),
        }
        for name, call in calls.items():
            with pytest.raises(InvalidKeyError):  # a request would have raised a different StorageError
                call()
            assert not dest_dir.exists() or _files_under(dest_dir) == [], name

    def test_an_empty_key_is_refused(self, offline_store: ObjectStore) -> None:
        with pytest.raises(InvalidKeyError):
            offline_store.put(BUCKET, "", b"x")
        with pytest.raises(InvalidKeyError):
            offline_store.stat(BUCKET, "")

    # ---- files -------------------------------------------------------------------------------
    def test_upload_file_then_download_file_round_trips_20_mib(
        self, store: ObjectStore, bucket: str, tmp_path: Path
    ) -> None:
        data = os.urandom(20 * MiB)
        src = tmp_path / "up" / "big.bin"
        src.parent.mkdir()
        src.write_bytes(data)
        info = store.upload_file(src, bucket, "big/big.bin")
        assert info.size == len(data)
        assert store.stat(bucket, "big/big.bin").etag == info.etag

        dest = tmp_path / "down" / "nested" / "big.bin"  # parents are created
        assert store.download_file(bucket, "big/big.bin", dest) == len(data)
        assert dest.read_bytes() == data
        assert _files_under(tmp_path / "down") == ["nested/big.bin"]  # no temp file left behind

    def test_download_file_replaces_an_existing_file(
        self, store: ObjectStore, bucket: str, tmp_path: Path
    ) -> None:
        store.put(bucket, "k", b"new")
        dest = tmp_path / "dest" / "out.txt"
        dest.parent.mkdir()
        dest.write_bytes(b"old and longer")
        assert store.download_file(bucket, "k", dest) == 3
        assert dest.read_bytes() == b"new"
        assert _files_under(dest.parent) == ["out.txt"]

    def test_download_of_a_missing_key_raises_and_leaves_nothing_behind(
        self, store: ObjectStore, bucket: str, tmp_path: Path
    ) -> None:
        dest_dir = tmp_path / "dest"
        dest_dir.mkdir()
        (dest_dir / "keep.txt").write_bytes(b"keep")
        with pytest.raises(NoSuchKeyError, match=f"s3://{bucket}/missing"):
            store.download_file(bucket, "missing", dest_dir / "out")
        assert _files_under(dest_dir) == ["keep.txt"]

    def test_upload_dir_then_download_prefix_round_trips_nested_directories(
        self, store: ObjectStore, bucket: str, tmp_path: Path
    ) -> None:
        src = tmp_path / "src"
        files = {"top.txt": b"top", "a/one.csv": b"1", "a/b/two.csv": b"22"}
        files["a/b/c/three.bin"] = os.urandom(1000)
        for rel, data in files.items():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            (src / rel).write_bytes(data)

        infos = store.upload_dir(src, bucket, "job/input/")
        assert sorted(i.key for i in infos) == sorted(f"job/input/{rel}" for rel in files)
        assert self.keys(store) == sorted(f"job/input/{rel}" for rel in files)

        dest = tmp_path / "dest"
        paths = store.download_prefix(bucket, "job/input/", dest)
        assert sorted(paths) == sorted(dest / rel for rel in files)
        assert {rel: (dest / rel).read_bytes() for rel in _files_under(dest)} == files

    def test_upload_dir_without_a_trailing_slash_on_the_prefix_adds_one(
        self, store: ObjectStore, bucket: str, tmp_path: Path
    ) -> None:
        (tmp_path / "src" / "sub").mkdir(parents=True)
        (tmp_path / "src" / "sub" / "f").write_bytes(b"f")
        store.upload_dir(tmp_path / "src", bucket, "out")
        assert self.keys(store) == ["out/sub/f"]

    def test_download_prefix_of_an_empty_prefix_downloads_nothing(
        self, store: ObjectStore, bucket: str, tmp_path: Path
    ) -> None:
        assert store.download_prefix(bucket, "nothing/", tmp_path / "dest") == []
        assert not (tmp_path / "dest").exists() or _files_under(tmp_path / "dest") == []

    # ---- copy --------------------------------------------------------------------------------
    def test_copy_makes_an_independent_object_with_the_same_bytes(
        self, store: ObjectStore, bucket: str
    ) -> None:
        store.create_bucket("other-bucket")
        store.put(bucket, "src/obj", b"payload")
        info = store.copy(bucket, "src/obj", "other-bucket", "dst/obj")
        assert (info.bucket, info.key, info.size) == ("other-bucket", "dst/obj", 7)
        store.put(bucket, "src/obj", b"changed later")
        assert store.get_bytes("other-bucket", "dst/obj") == b"payload"

    def test_copy_of_a_missing_object_raises_no_such_key(self, store: ObjectStore, bucket: str) -> None:
        with pytest.raises(NoSuchKeyError, match=f"s3://{bucket}/missing"):
            store.copy(bucket, "missing", bucket, "dst")
        assert not store.exists(bucket, "dst")

    # ---- presign -----------------------------------------------------------------------------
    def test_presign_gives_a_url_that_reads_the_object(self, store: ObjectStore, bucket: str) -> None:
        store.put(bucket, "shared/report.json", b'{"ok": true}')
        url = store.presign(bucket, "shared/report.json", expires_in=300)
        assert self.read_presigned(url) == b'{"ok": true}'

    def test_presign_of_a_key_with_url_characters_reads_the_object(
        self, store: ObjectStore, bucket: str
    ) -> None:
        key = "shared/a b+c%d?e#f.txt"
        store.put(bucket, key, b"odd")
        assert self.read_presigned(store.presign(bucket, key)) == b"odd"

    # ---- processes ---------------------------------------------------------------------------
    def test_the_store_pickles_and_the_copy_works(self, store: ObjectStore, bucket: str) -> None:
        store.put(bucket, "before", b"written by the original")
        clone = pickle.loads(pickle.dumps(store))
        assert type(clone) is type(store)
        assert clone.get_bytes(bucket, "before") == b"written by the original"
        clone.put(bucket, "after", b"written by the copy")
        assert store.get_bytes(bucket, "after") == b"written by the copy"

    def test_the_store_works_in_a_spawned_worker_process(self, store: ObjectStore, bucket: str) -> None:
        store.put(bucket, "shared", b"for the worker")
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            result = pool.submit(_read_in_worker, store, bucket, "shared").result(timeout=120)
        assert result == b"for the worker"

    def test_the_store_works_in_a_forked_child_after_the_parent_used_it(
        self, store: ObjectStore, bucket: str
    ) -> None:
        store.put(bucket, "shared", b"for the child")  # the parent's connections now exist
        ctx = multiprocessing.get_context("fork")
        out = ctx.Queue()
        child = ctx.Process(target=_read_in_forked_child, args=(store, bucket, "shared", out))
        child.start()
        try:
            assert out.get(timeout=120) == b"for the child"
        finally:
            child.join(timeout=120)
        assert child.exitcode == 0
        assert store.get_bytes(bucket, "shared") == b"for the child"  # and the parent's store still works


class TestLocalStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> ObjectStore:
        return LocalStore(tmp_path / "store-root")

    @pytest.fixture
    def offline_store(self, tmp_path: Path) -> Iterator[ObjectStore]:
        root = tmp_path / "absent-root"
        yield LocalStore(root)
        assert not root.exists()  # validation happened before the file system was touched

    def read_presigned(self, url: str) -> bytes:
        parsed = urllib.parse.urlparse(url)
        assert parsed.scheme == "file"
        return Path(urllib.request.url2pathname(parsed.path)).read_bytes()

    def test_objects_live_as_files_under_the_root(self, store: LocalStore, bucket: str) -> None:
        store.put(bucket, "a/b.txt", b"bytes")
        assert (store.root / bucket / "a" / "b.txt").read_bytes() == b"bytes"
        assert store.local_path(bucket, "a/b.txt") == store.root / bucket / "a" / "b.txt"


class TestS3Store(StoreContract):
    @pytest.fixture
    def store(self, s3_server: str) -> ObjectStore:
        reset_s3_server(s3_server)
        config = StorageConfig(endpoint_url=s3_server, access_key_id="testing", secret_access_key="testing")
        return S3Store(config)

    @pytest.fixture
    def offline_store(self) -> ObjectStore:
        return _unreachable_s3_store()

    def seed(self, store: ObjectStore, bucket: str, keys: list[str]) -> None:
        client = cast(S3Store, store)._client()  # one PUT per key, without put()'s confirming HEAD
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda k: client.put_object(Bucket=bucket, Key=k, Body=b""), keys))

    def read_presigned(self, url: str) -> bytes:
        assert urllib.parse.urlparse(url).scheme == "http"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # plain HTTP, no credentials
        with opener.open(url, timeout=30) as response:
            return bytes(response.read())

    def test_large_uploads_go_up_in_parts(self, store: ObjectStore, bucket: str, tmp_path: Path) -> None:
        src = tmp_path / "big.bin"
        src.write_bytes(os.urandom(20 * MiB))
        assert store.upload_file(src, bucket, "big.bin").etag.endswith("-3")  # 8 MiB parts: a multipart etag

    def test_an_unreachable_endpoint_raises_storage_error_naming_it(self, tmp_path: Path) -> None:
        store = _unreachable_s3_store()
        src = tmp_path / "src"
        src.write_bytes(b"x")
        calls = {
            "stat": lambda: store.stat(BUCKET, "k"),
            "open": lambda: store.open(BUCKET, "k"),
            "put": lambda: store.put(BUCKET, "k", b"x"),
            "list": lambda: list(store.list(BUCKET)),
            "delete": lambda: store.delete(BUCKET, "k"),
            "create_bucket": lambda: store.create_bucket(BUCKET),
            "bucket_exists": lambda: store.bucket_exists(BUCKET),
            "upload": lambda: store.upload_file(src, BUCKET, "k"),
            "download": lambda: store.download_file(BUCKET, "k", tmp_path / "dest" / "out"),
            "copy": lambda: store.copy(BUCKET, "k", BUCKET, "k2"),
        }
        for op, call in calls.items():
            with pytest.raises(StorageError) as caught:
                call()
            assert type(caught.value) is StorageError, op  # not botocore's, and not "missing"
            assert store.endpoint in str(caught.value), op
            assert op in str(caught.value), op
            assert caught.value.__cause__ is not None, op  # the original is chained for debugging
        assert _files_under(tmp_path) == ["src"]

    def test_a_refused_request_raises_storage_error_saying_why_not_botocore(
        self, store: S3Store, bucket: str, tmp_path: Path
    ) -> None:
        # An archived object is one refusal moto makes; set it up with the raw client.
        store._client().put_object(Bucket=bucket, Key="cold", Body=b"x", StorageClass="GLACIER")
        for op, call in {
            "open": lambda: store.open(bucket, "cold"),
            "download": lambda: store.download_file(bucket, "cold", tmp_path / "cold"),
            "copy": lambda: store.copy(bucket, "cold", bucket, "warm"),
        }.items():
            with pytest.raises(StorageError) as caught:
                call()
            assert type(caught.value) is StorageError, op
            message = str(caught.value)
            assert op in message and f"s3://{bucket}/cold" in message and store.endpoint in message, op
            assert "restore it" in message, op
        assert _files_under(tmp_path) == []

    def test_a_forked_child_builds_its_own_client_instead_of_sharing_the_parents_connections(
        self, store: S3Store, bucket: str
    ) -> None:
        store.put(bucket, "k", b"x")
        ctx = multiprocessing.get_context("fork")
        out = ctx.Queue()
        child = ctx.Process(target=_client_owner_in_forked_child, args=(store, bucket, "k", out))
        child.start()
        try:
            assert out.get(timeout=120) is True
        finally:
            child.join(timeout=120)

    def test_buckets_can_be_created_and_used_outside_us_east_1(self, s3_server: str) -> None:
        reset_s3_server(s3_server)
        config = StorageConfig(
            endpoint_url=s3_server, region="eu-west-1", access_key_id="testing", secret_access_key="testing"
        )
        store = S3Store(config)
        store.create_bucket("european")
        store.create_bucket("european")
        store.put("european", "k", b"bonjour")
        assert store.get_bytes("european", "k") == b"bonjour"

    def test_an_endpoint_that_is_not_a_url_is_refused_up_front(self) -> None:
        with pytest.raises(SpecError, match="endpoint_url"):
            S3Store(StorageConfig(endpoint_url="127.0.0.1:9000"))


# ---- choosing the backend ------------------------------------------------------------------------
def test_store_for_picks_s3_when_an_s3_endpoint_is_configured(s3_home: Path, s3_server: str) -> None:
    store = store_for(load_config())
    assert isinstance(store, S3Store)
    assert store.kind == "s3" and store.endpoint == s3_server
    store.create_bucket("configured")
    store.put("configured", "k", b"via the environment")
    assert store.get_bytes("configured", "k") == b"via the environment"


def test_store_for_picks_the_local_store_when_no_endpoint_is_configured(sluice_home: Path) -> None:
    config = load_config()
    store = store_for(config)
    assert isinstance(store, LocalStore)
    assert store.kind == "local"
    store.create_bucket("configured")
    store.put("configured", "k", b"on disk")
    assert (config.store_root / "configured" / "k").read_bytes() == b"on disk"


@pytest.fixture(autouse=True)
def _no_stray_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Backends here are built from explicit configs; keep a developer's AWS settings out of them."""
    for var in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_MAX_ATTEMPTS",
                "AWS_RETRY_MODE", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    yield
