"""Ask the source what it publishes now: a plain file URL (HEAD), a `models.json` manifest (URL or
local), or a local directory or file. Parsing is pure; the HTTP and file reads are thin."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlparse

import httpx

from router.update.errors import UpdateFailed
from router.update.plan import Candidate, check_sha256, check_version, version_of

MANIFEST = "models.json"


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def parse_manifest(data: Any, name: str, base: str, where: str) -> Candidate:
    """The entry for `name` in a manifest: one object {version, file, sha256, size[, name]}, or
    {"models": [such objects with a name]}. `file` is relative to `base` (the manifest's URL or folder)."""
    entries = data.get("models") if isinstance(data, dict) and "models" in data else [data]
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ValueError(f"{where}: expected an object with version and file, or {{\"models\": [...]}}")
    matching = [e for e in entries if e.get("name", name) == name]
    if not matching:
        names = ", ".join(str(e.get("name")) for e in entries)
        raise ValueError(f"{where} has no model named {name!r} (it has: {names})")
    entry = matching[0]
    for key in ("version", "file"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise ValueError(f"{where}: the entry for {name!r} needs a {key!r} string")
    version = check_version(entry["version"])
    sha256 = check_sha256(entry["sha256"]) if entry.get("sha256") else None
    size = entry.get("size")
    if size is not None and (not isinstance(size, int) or size < 0):
        raise ValueError(f"{where}: size must be a whole number of bytes, got {size!r}")
    location = urljoin(base, entry["file"]) if is_url(base) else str(Path(base) / entry["file"])
    file_name = _file_name(Path(unquote(urlparse(location).path) if is_url(location) else location).name, where)
    return Candidate(name=name, version=version, location=location, file_name=file_name,
                     fingerprint=f"manifest {where} version {version} sha256 {sha256}", sha256=sha256, size=size)


def plain_candidate(name: str, url: str, headers: httpx.Headers | dict[str, str]) -> Candidate:
    """A plain file URL judged by its HEAD answer, as the size check it replaces did: ETag, Last-Modified
    and Content-Length together make the fingerprint."""
    lowered = {key.lower(): value for key, value in headers.items()}
    etag, modified, length = lowered.get("etag"), lowered.get("last-modified"), lowered.get("content-length")
    if not (etag or modified or length):
        raise ValueError(f"{url} answers HEAD with no ETag, Last-Modified or Content-Length, so a new file cannot be "
                         f"told from the old one; publish a {MANIFEST} with a version instead")
    fingerprint = f"url {url} etag {etag} modified {modified} size {length}"
    file_name = _file_name(Path(unquote(urlparse(url).path)).name or f"{name}.gguf", url)
    return Candidate(name=name, version=version_of(fingerprint, modified), location=url, file_name=file_name,
                     fingerprint=fingerprint, size=int(length) if length and length.isdigit() else None,
                     validator=etag or modified)


def _file_name(file_name: str, where: str) -> str:
    """The installed file's name: a plain name, never hidden or a way out of its version's folder."""
    if not file_name or file_name.startswith(".") or "/" in file_name or "\x00" in file_name:
        raise ValueError(f"{where}: {file_name!r} cannot be the model's file name")
    return file_name


def local_file_candidate(name: str, path: Path) -> Candidate:
    stat = path.stat()
    fingerprint = f"file {path.resolve()} size {stat.st_size} mtime {stat.st_mtime_ns}"
    return Candidate(name=name, version=version_of(fingerprint), location=str(path.resolve()), file_name=path.name,
                     fingerprint=fingerprint, size=stat.st_size)


def check_source(source: str, name: str, client: httpx.Client) -> Candidate:
    """What `source` publishes now; UpdateFailed (with what to fix) when it cannot be read."""
    try:
        if is_url(source):
            return _check_url(source, name, client)
        return _check_local(Path(source), name)
    except ValueError as exc:
        raise UpdateFailed(str(exc)) from exc


def _check_url(url: str, name: str, client: httpx.Client) -> Candidate:
    try:
        if urlparse(url).path.endswith(".json"):
            response = client.get(url)
            response.raise_for_status()
            return parse_manifest(response.json(), name, url, url)
        response = client.head(url, follow_redirects=True)
        response.raise_for_status()
    except httpx.HTTPStatusError as exc:
        raise UpdateFailed(f"the source {url} answered {exc.response.status_code}") from exc
    except httpx.HTTPError as exc:
        raise UpdateFailed(f"cannot reach the source {url} ({exc.__class__.__name__}: {exc})") from exc
    return plain_candidate(name, url, response.headers)


def _check_local(path: Path, name: str) -> Candidate:
    if path.is_dir():
        manifest = path / MANIFEST
        if manifest.is_file():
            return parse_manifest(_read_json(manifest), name, str(path), str(manifest))
        files = sorted(path.glob("*.gguf"))
        if len(files) != 1:
            raise UpdateFailed(f"{path} has {len(files)} .gguf files and no {MANIFEST}; put one file there, or a "
                               f"{MANIFEST} naming the version and file")
        return local_file_candidate(name, files[0])
    if path.is_file():
        return parse_manifest(_read_json(path), name, str(path.parent), str(path)) if path.suffix == ".json" \
            else local_file_candidate(name, path)
    raise UpdateFailed(f"the source {path} is neither a URL nor an existing file or directory")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UpdateFailed(f"cannot read {path}: {exc}") from exc
