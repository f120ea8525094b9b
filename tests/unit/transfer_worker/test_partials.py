"""The index of partial files that makes resuming possible."""

from transfer_worker.partials import INDEX, Offer, find, forget, remember

OFFER = Offer("alice@localhost", "big.bin", 1000, "2026-11-24T10:00:00Z")


def test_same_offer_finds_its_partial(tmp_path):
    partial = tmp_path / "big.bin.part"
    partial.write_bytes(b"x" * 400)
    remember(tmp_path, partial, OFFER)
    assert find(tmp_path, OFFER) == (partial, 400)


def test_other_sender_size_date_or_empty_partial_do_not_match(tmp_path):
    partial = tmp_path / "big.bin.part"
    partial.write_bytes(b"x" * 400)
    remember(tmp_path, partial, OFFER)
    for other in (Offer("mallory@localhost", "big.bin", 1000, OFFER.date),
                  Offer(OFFER.peer, "big.bin", 1001, OFFER.date),
                  Offer(OFFER.peer, "big.bin", 1000, "2026-11-25T10:00:00Z")):
        assert find(tmp_path, other) is None
    partial.write_bytes(b"")
    assert find(tmp_path, OFFER) is None


def test_forget_removes_the_entry_and_the_index(tmp_path):
    partial = tmp_path / "big.bin.part"
    partial.write_bytes(b"x")
    remember(tmp_path, partial, OFFER)
    forget(tmp_path, partial)
    assert find(tmp_path, OFFER) is None and not (tmp_path / INDEX).exists()


def test_corrupt_index_is_ignored(tmp_path):
    (tmp_path / INDEX).write_text("{not json")
    assert find(tmp_path, OFFER) is None
