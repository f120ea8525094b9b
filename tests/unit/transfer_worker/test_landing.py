"""Where a received file lands when someone planted links in the download folder:
names are claimed with O_EXCL/O_NOFOLLOW and committed with link(), so nothing that
stands at a name is replaced or followed."""

import os

import pytest

from transfer_worker.names import claim_partial, commit_name, open_partial


@pytest.fixture
def victim(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "victim.txt"
    target.write_text("precious")
    folder = tmp_path / "downloads"
    folder.mkdir()
    return folder, target


@pytest.mark.parametrize("planted", ["a.txt", "a.txt.part"])
@pytest.mark.parametrize("dangling", [True, False])
def test_a_planted_link_at_either_name_is_left_alone(victim, planted, dangling):
    folder, target = victim
    link_target = folder.parent / "nothing-here" if dangling else target
    (folder / planted).symlink_to(link_target)
    final, partial = claim_partial(folder, "a.txt")
    assert final == folder / "a (2).txt" and partial == folder / "a (2).txt.part"
    assert partial.is_file() and not partial.is_symlink()
    with open_partial(partial) as fh:
        fh.write(b"received")
    done = commit_name(partial, final)
    assert done.read_bytes() == b"received" and not done.is_symlink()
    assert os.readlink(folder / planted) == str(link_target)  # still the same link
    assert target.read_text() == "precious"
    assert not (folder.parent / "nothing-here").exists()


@pytest.mark.parametrize("dangling", [True, False])
def test_a_link_planted_at_the_final_name_after_the_claim_is_not_replaced(victim, dangling):
    folder, target = victim
    final, partial = claim_partial(folder, "b.bin")
    partial.write_bytes(b"data")
    final.symlink_to(folder.parent / "gone" if dangling else target)
    done = commit_name(partial, final)
    assert done == folder / "b (2).bin" and done.read_bytes() == b"data"
    assert final.is_symlink() and not partial.exists()
    assert target.read_text() == "precious"


def test_a_partial_replaced_by_a_link_is_not_opened(victim):
    folder, target = victim
    _, partial = claim_partial(folder, "c.bin")
    partial.unlink()
    partial.symlink_to(target)
    with pytest.raises(OSError):
        open_partial(partial)
    assert target.read_text() == "precious"


def test_two_claims_of_one_name_get_two_files(tmp_path):
    first = claim_partial(tmp_path, "same.txt")
    second = claim_partial(tmp_path, "same.txt")
    assert first != second and all(p.exists() for p in (first[1], second[1]))


def test_without_hard_links_the_commit_renames_where_nothing_stands(tmp_path, monkeypatch):
    """FAT and some FUSE mounts refuse link(): the commit falls back to rename, still
    never onto an existing entry."""
    import errno

    def no_link(*_args, **_kwargs):
        raise OSError(errno.EPERM, "Operation not permitted")

    final, partial = claim_partial(tmp_path, "d.bin")
    partial.write_bytes(b"data")
    final.write_text("already here")
    monkeypatch.setattr(os, "link", no_link)
    done = commit_name(partial, final)
    assert done == tmp_path / "d (2).bin" and done.read_bytes() == b"data"
    assert final.read_text() == "already here" and not partial.exists()
