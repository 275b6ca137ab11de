from magnet_lib.pool.envs.files import FilesEnv
from tests.envs_support import ToolRecorder


def test_browse_read_write_and_delete():
    r = ToolRecorder(FilesEnv(seed=1))
    listing = r.ok("list_directory", directory="/documents")
    assert listing["entries"] and all(e["file_path"].startswith("/documents/") for e in listing["entries"])
    first = listing["entries"][0]["file_path"]
    text = r.ok("read_file", file_path=first)["content"]
    assert text
    # content flow: what was read is written to a new file, then appended to
    new = r.ok("write_file", file_path="/projects/copy_of_notes.txt", content=text)
    assert r.ok("read_file", file_path=new["file_path"])["content"] == text
    r.ok("write_file", file_path=new["file_path"], content="P.S. done", write_mode="append")
    assert r.env.files[new["file_path"]].content.endswith("P.S. done")
    r.err("write_file", "file_already_exists", file_path=new["file_path"], content="x")
    r.err("write_file", "unknown_directory", file_path="/nowhere/a.txt", content="x")
    r.err("write_file", "file_not_found", file_path="/projects/missing.txt", content="x", write_mode="append")

    copied = r.ok("copy_file", file_path=first, destination_directory="/projects")
    assert copied["file_path"] == "/projects/" + first.rsplit("/", 1)[1]
    r.err("copy_file", "file_already_exists", file_path=first, destination_directory="/projects")
    moved = r.ok("move_file", file_path=copied["file_path"], destination_directory="/downloads")
    assert not r.ok("check_file_exists", file_path=copied["file_path"])["exists"]
    assert r.ok("check_file_exists", file_path=moved["file_path"])["exists"]
    assert r.ok("check_file_exists", file_path="/photos")["is_directory"]
    r.ok("delete_file", file_path=moved["file_path"])
    assert moved["file_path"] not in r.env.files
    r.err("delete_file", "file_not_found", file_path=moved["file_path"])
    r.err("read_file", "file_not_found", file_path="/documents")
    r.err("list_directory", "unknown_directory", directory="/music")
    r.err("move_file", "unknown_directory", file_path=first, destination_directory="/music")


def test_find_compress_and_share():
    r = ToolRecorder(FilesEnv(seed=2))
    photos = r.ok("find_files", name_pattern="*.*", directory="/photos")["file_paths"]
    assert len(photos) == 3
    assert r.ok("find_files", name_pattern=photos[0].rsplit("/", 1)[1][:4])["file_paths"]
    archive = r.ok("compress_files", file_paths=photos, archive_name="holiday")
    assert archive["file_path"] == "/photos/holiday.zip"
    assert "3 files" in r.env.files["/photos/holiday.zip"].content
    r.err("compress_files", "file_already_exists", file_paths=photos, archive_name="holiday")
    r.err("compress_files", "no_files", file_paths=[], archive_name="empty")
    r.err("compress_files", "file_not_found", file_paths=["/photos/none.jpg"], archive_name="x")
    perms = r.ok("get_file_permissions", file_path=archive["file_path"])
    assert perms["is_owner"] and perms["shared_with"] == []
    mate = r.env.teammates[0]
    share = r.ok("share_file", file_path=archive["file_path"], username=mate, access="edit")
    assert share["share_id"].startswith("SH-")
    assert r.ok("get_file_permissions", file_path=archive["file_path"])["shared_with"] == [{"username": mate, "access": "edit"}]
    r.err("share_file", "unknown_user", file_path=archive["file_path"], username="nobody")


def test_permissions_gate_actions():
    r = ToolRecorder(FilesEnv(seed=3))
    env = r.env
    theirs = {f.mode: f.file_path for f in env.files.values() if f.owner != env.username}
    assert set(theirs) == {"private", "read_only", "read_write"}
    r.err("read_file", "permission_denied", file_path=theirs["private"])
    assert r.ok("read_file", file_path=theirs["read_only"])["content"]
    perms = r.ok("get_file_permissions", file_path=theirs["read_only"])
    assert perms["can_read"] and not perms["can_write"] and not perms["is_owner"]
    r.err("delete_file", "permission_denied", file_path=theirs["read_only"])
    r.err("set_file_permissions", "permission_denied", file_path=theirs["read_only"], mode="read_write")
    r.err("share_file", "permission_denied", file_path=theirs["read_write"], username=env.teammates[0])
    r.ok("write_file", file_path=theirs["read_write"], content="edited", write_mode="overwrite")
    assert env.files[theirs["read_write"]].content == "edited"

    mine = next(p for p, f in env.files.items() if f.owner == env.username)
    r.ok("set_file_permissions", file_path=mine, mode="read_only")
    r.err("write_file", "permission_denied", file_path=mine, content="x", write_mode="overwrite")
    assert r.ok("set_file_permissions", file_path=mine, mode="read_write")["can_write"]
    r.ok("write_file", file_path=mine, content="now allowed", write_mode="overwrite")


def test_download_is_gated_by_existence():
    r = ToolRecorder(FilesEnv(seed=4))
    items = r.ok("search_download_catalogue", query="report data template map music python software minutes")["items"]
    assert len(items) >= 3
    item = items[0]
    target = f"/downloads/{item['file_name']}"
    assert not r.ok("check_file_exists", file_path=target)["exists"]
    saved = r.ok("download_file_from_url", url=item["url"], destination_directory="/downloads")
    assert saved["file_path"] == target and saved["size_bytes"] == item["size_bytes"]
    assert r.ok("check_file_exists", file_path=target)["exists"]
    r.err("download_file_from_url", "file_already_exists", url=item["url"], destination_directory="/downloads")
    r.err("download_file_from_url", "unknown_url", url="https://example.com/none", destination_directory="/downloads")
    assert r.ok("search_download_catalogue", query="zzz")["items"] == []


def test_every_tool_called():
    r = ToolRecorder(FilesEnv(seed=5))
    # one compact flow touching every tool once, on a fresh world
    doc = r.ok("list_directory", directory="/projects")["entries"][0]["file_path"]
    r.ok("check_file_exists", file_path=doc)
    content = r.ok("read_file", file_path=doc)["content"]
    new = r.ok("write_file", file_path="/documents/draft.txt", content=content)["file_path"]
    paths = r.ok("find_files", name_pattern="draft")["file_paths"]
    zipped = r.ok("compress_files", file_paths=paths, archive_name="drafts")["file_path"]
    r.ok("get_file_permissions", file_path=zipped)
    r.ok("set_file_permissions", file_path=zipped, mode="read_write")
    r.ok("share_file", file_path=zipped, username=r.env.teammates[1])
    copy = r.ok("copy_file", file_path=new, destination_directory="/shared")["file_path"]
    moved = r.ok("move_file", file_path=copy, destination_directory="/photos")["file_path"]
    r.ok("delete_file", file_path=moved)
    url = r.ok("search_download_catalogue", query="a")["items"][0]["url"]
    r.ok("download_file_from_url", url=url, destination_directory="/projects")
    r.assert_all_called()
