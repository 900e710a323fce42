"""Unit tests of the history checker (tests/history.py) on hand-made histories: a valid one
passes, and each anomaly is caught on its own. No broker is started."""
import pytest

from history import ABORTED, COMMITTED, UNKNOWN, History, assert_valid, check, summarize


def types(anomalies):
    return sorted({a["type"] for a in anomalies})


def plain_history():
    """Three acknowledged sends to t[0] at offsets 0..2, all read back."""
    h = History()
    for i, v in enumerate([b"a", b"b", b"c"]):
        h.send(v, "t", 0)
        h.ack(v, i)
    for i, v in enumerate([b"a", b"b", b"c"]):
        h.poll("t", 0, i, v)
    return h


def test_a_valid_history_has_no_anomalies():
    h = plain_history()
    # An unknown send that was never read, and one that was, are both fine.
    h.send(b"u1", "t", 0)
    h.send(b"u2", "t", 0)
    h.poll("t", 0, 3, b"u2")
    assert check(h, check_order=True) == []
    assert_valid(h, check_order=True)


def test_lost_write_is_an_acknowledged_record_skipped_by_a_later_read():
    h = History()
    for i, v in enumerate([b"a", b"b", b"c"]):
        h.send(v, "t", 0)
        h.ack(v, i)
    h.poll("t", 0, 0, b"a")
    h.poll("t", 0, 2, b"c")  # b at offset 1 is gone while offset 2 is read
    a = check(h, final=False)
    assert types(a) == ["lost-write"]
    assert a[0]["value"] == b"b" and a[0]["offset"] == 1
    with pytest.raises(AssertionError, match="lost-write"):
        assert_valid(h, final=False)


def test_unseen_is_an_acknowledged_record_never_read_at_the_end():
    h = History()
    h.send(b"a", "t", 0)
    h.ack(b"a", 0)
    h.send(b"b", "t", 0)
    h.ack(b"b", 1)
    h.poll("t", 0, 0, b"a")
    assert check(h, final=False) == []  # the reader may just not have got there yet
    assert types(check(h, final=True)) == ["unseen"]


def test_duplicate_is_a_value_at_two_offsets():
    h = plain_history()
    h.poll("t", 0, 3, b"b", consumer="c2")
    a = check(h)
    assert types(a) == ["duplicate"]
    assert a[0]["value"] == b"b"
    # Read at an offset other than the acknowledged one is a duplicate too.
    h2 = History()
    h2.send(b"x", "t", 0)
    h2.ack(b"x", 5)
    h2.poll("t", 0, 6, b"x")
    assert "duplicate" in types(check(h2, final=False))
    # The same value in two partitions.
    h3 = History()
    h3.send(b"y", "t", 0)
    h3.poll("t", 0, 0, b"y")
    h3.poll("t", 1, 0, b"y")
    assert types(check(h3)) == ["duplicate"]


def test_inconsistent_offset_is_two_values_at_one_offset():
    h = plain_history()
    h.send(b"d", "t", 0)
    h.poll("t", 0, 1, b"d", consumer="c2")  # b was read at offset 1 by another consumer
    a = check(h, final=False)
    assert "inconsistent-offset" in types(a)
    assert any(a_["type"] == "inconsistent-offset" and a_["offset"] == 1 for a_ in a)
    # An acknowledgement disagreeing with what is read at that offset.
    h2 = History()
    h2.send(b"p", "t", 0)
    h2.ack(b"p", 0)
    h2.send(b"q", "t", 0)
    h2.poll("t", 0, 0, b"q")
    assert "inconsistent-offset" in types(check(h2, final=False))


def test_aborted_read_under_read_committed():
    h = History()
    h.send(b"c1", "t", 0, txn=1)
    h.ack(b"c1", 0)
    h.txn_outcome(1, COMMITTED)
    h.send(b"a1", "t", 0, txn=2)
    h.ack(b"a1", 2)
    h.txn_outcome(2, ABORTED)
    h.poll("t", 0, 0, b"c1")
    assert check(h) == []  # the aborted record is rightly unread
    h.poll("t", 0, 2, b"a1")
    a = check(h)
    assert types(a) == ["aborted-read"] and a[0]["value"] == b"a1"
    # read_uncommitted may see it.
    assert check(h, read_committed=False) == []


def test_a_definitely_failed_send_must_never_be_read():
    h = History()
    h.send(b"f", "t", 0)
    h.fail(b"f", definite=True)
    h.poll("t", 0, 0, b"f")
    assert types(check(h, read_committed=False)) == ["aborted-read"]


def test_unknown_transactions_are_decided_by_reads_and_must_be_atomic():
    h = History()
    for i, v in enumerate([b"x0", b"x1", b"x2"]):
        h.send(v, "t", i % 2, txn="T")
    h.ack(b"x0", 0)
    h.ack(b"x1", 0)
    h.ack(b"x2", 1)
    assert h.txns["T"] == UNKNOWN
    assert check(h) == []  # nothing read: it may have aborted
    h.poll("t", 0, 0, b"x0")
    h.poll("t", 0, 1, b"x2")
    assert types(check(h)) == ["unseen"]  # read, so committed: x1 in t[1] must be read too
    h.poll("t", 1, 0, b"x1")
    assert check(h) == []
    # A committed transaction read only in part, past the missing record: not atomic.
    h2 = History()
    for v, p, o in [(b"y0", 0, 0), (b"y1", 0, 1), (b"z", 0, 2)]:
        h2.send(v, "t", p, txn="Y" if v != b"z" else None)
        h2.ack(v, o)
    h2.txn_outcome("Y", COMMITTED)
    h2.poll("t", 0, 0, b"y0")
    h2.poll("t", 0, 2, b"z")
    assert types(check(h2)) == ["lost-write", "partial-transaction"]


def test_order_and_unexpected_values():
    h = History()
    for v in [b"1", b"2", b"3"]:
        h.send(v, "t", 0)
    h.poll("t", 0, 0, b"1")
    h.poll("t", 0, 1, b"3")
    h.poll("t", 0, 2, b"2")
    assert check(h) == []
    assert types(check(h, check_order=True)) == ["order"]
    h.poll("t", 0, 3, b"never-sent")
    assert "unexpected" in types(check(h))


def test_a_consumer_going_backwards_is_reported():
    h = plain_history()
    h.poll("t", 0, 1, b"b")  # consumer "c" read offset 1 again after 2
    assert types(check(h)) == ["offset-order"]


def test_final_reads_can_be_restricted_to_some_readers():
    h = plain_history()
    h.polls = [x for x in h.polls if x[4] != b"c"]
    h.poll("t", 0, 2, b"c", consumer="live")
    assert check(h) == []
    assert types(check(h, readers={"c"})) == ["unseen"]


def test_values_must_be_unique_and_summaries_name_the_anomalies():
    h = History()
    h.send(b"v", "t", 0)
    with pytest.raises(ValueError):
        h.send(b"v", "t", 1)
    h.ack(b"v", 0)
    text = summarize(check(h))
    assert "unseen: 1" in text and "b'v'" in text
    assert summarize([]) == "no anomalies"
