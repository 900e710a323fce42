"""Transactions (exactly-once): the transaction coordinator, markers, the last stable offset.

Real clients: confluent-kafka's transactional producer (init/begin/produce/commit/abort) and
read_committed / read_uncommitted consumers; kafka-python's protocol classes for the error
codes and the admin APIs (DescribeProducers, DescribeTransactions, ListTransactions) at every
served version. Every loop is bounded in count and time.
"""
import time

import kwire
from kutil import consumer, create_topic, producer, unique, wait_until

from confluent_kafka import KafkaException, TopicPartition

NONE = 0
INVALID_RECORD = 87
INVALID_PRODUCER_EPOCH = 47
INVALID_TXN_STATE = 48
INVALID_PRODUCER_ID_MAPPING = 49
INVALID_TRANSACTION_TIMEOUT = 50
PRODUCER_FENCED = 90
OPERATION_NOT_ATTEMPTED = 55
UNKNOWN_TOPIC_OR_PARTITION = 3
TRANSACTIONAL_ID_NOT_FOUND = 105

# Timed-out transactions are looked for every 200 ms instead of Kafka's 10 s.
OVERRIDES = {"transaction.abort.timed.out.transaction.cleanup.interval.ms": "200"}


def txn_producer(b, txn_id, **conf):
    c = {"transactional.id": txn_id, "transaction.timeout.ms": 60000, "linger.ms": 5}
    c.update(conf)
    # librdkafka requires message.timeout.ms <= transaction.timeout.ms.
    c["message.timeout.ms"] = min(20000, int(c["transaction.timeout.ms"]))
    p = producer(b, **c)
    p.init_transactions(20)
    return p


def read_all(b, topics_partitions, isolation, expect=None, timeout=15, idle=2.0):
    """Reads [(topic, partition)] from offset 0 with the given isolation level until `expect`
    records arrived (or, with expect=None, until `idle` seconds pass without a record).
    Returns {(topic, partition): [(offset, value)]}."""
    c = consumer(b, **{"isolation.level": isolation})
    out = {tp: [] for tp in topics_partitions}
    try:
        c.assign([TopicPartition(t, p, 0) for t, p in topics_partitions])
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        n = 0
        while time.monotonic() < deadline:
            if expect is not None and n >= expect:
                break
            if expect is None and time.monotonic() - last > idle:
                break
            for m in c.consume(num_messages=500, timeout=0.3):
                if m.error():
                    raise KafkaException(m.error())
                out[(m.topic(), m.partition())].append((m.offset(), m.value()))
                n += 1
                last = time.monotonic()
    finally:
        c.close()
    return out


def watermarks(b, topic, partition=0):
    """(low, high) as a read_uncommitted consumer sees them (librdkafka's default,
    read_committed, reports the last stable offset as the high watermark)."""
    c = consumer(b, **{"isolation.level": "read_uncommitted"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10, cached=False)
    finally:
        c.close()


def values(by_tp):
    return {tp: [v for _, v in recs] for tp, recs in by_tp.items()}


def list_offsets(b, topic, partition, isolation):
    """ListOffsets v2 latest with the isolation level: the LSO for read_committed (1)."""
    from kafka.protocol.consumer import ListOffsetsRequest
    LT = ListOffsetsRequest.ListOffsetsTopic
    s = kwire.connect(b)
    try:
        r = kwire.request(s, ListOffsetsRequest, 2, replica_id=-1, isolation_level=isolation, topics=[
            LT(name=topic, partitions=[LT.ListOffsetsPartition(partition_index=partition, timestamp=-1)])])
        p = r.topics[0].partitions[0]
        assert p.error_code == NONE, p
        return p.offset
    finally:
        s.close()


def test_commit_and_abort_over_several_partitions_and_topics(make_broker):
    b = make_broker(overrides=OVERRIDES)
    t1 = create_topic(b, unique("tx1"), partitions=3)
    t2 = create_topic(b, unique("tx2"), partitions=1)
    p = txn_producer(b, unique("txid"))
    tps = [(t1, 0), (t1, 1), (t1, 2), (t2, 0)]

    def send(tag, n):
        for i in range(n):
            t, part = tps[i % len(tps)]
            p.produce(t, b"%s-%02d" % (tag, i), partition=part)
        assert p.flush(20) == 0

    p.begin_transaction()
    send(b"c1", 8)
    p.commit_transaction(20)
    p.begin_transaction()
    send(b"ab", 8)
    p.abort_transaction(20)
    p.begin_transaction()
    send(b"c2", 8)
    p.commit_transaction(20)

    committed = values(read_all(b, tps, "read_committed", expect=16))
    for k, (t, part) in enumerate(tps):
        want = [b"c1-%02d" % i for i in range(k, 8, 4)] + [b"c2-%02d" % i for i in range(k, 8, 4)]
        assert committed[(t, part)] == want, (t, part, committed[(t, part)])
    # No aborted record shows up, even after waiting a little longer.
    again = values(read_all(b, tps, "read_committed", idle=1.5))
    assert again == committed
    uncommitted = values(read_all(b, tps, "read_uncommitted", expect=24))
    for k, tp in enumerate(tps):
        want = ([b"c1-%02d" % i for i in range(k, 8, 4)] + [b"ab-%02d" % i for i in range(k, 8, 4)]
                + [b"c2-%02d" % i for i in range(k, 8, 4)])
        assert uncommitted[tp] == want
    # Each partition holds 6 records and 3 markers; the LSO is the high watermark again.
    for t, part in tps:
        assert watermarks(b, t, part) == (0, 9)
        assert list_offsets(b, t, part, 1) == 9
        assert list_offsets(b, t, part, 0) == 9


def test_last_stable_offset_holds_committed_readers_while_a_transaction_is_open(make_broker):
    b = make_broker(overrides=OVERRIDES)
    t = create_topic(b, unique("lso"), partitions=1)
    plain = producer(b)
    for i in range(3):
        plain.produce(t, b"before-%d" % i, partition=0)
    assert plain.flush(10) == 0
    p = txn_producer(b, unique("txid"))
    p.begin_transaction()
    for i in range(4):
        p.produce(t, b"txn-%d" % i, partition=0)
    assert p.flush(10) == 0
    # A non-transactional write after the open transaction is held back too.
    plain.produce(t, b"after", partition=0)
    assert plain.flush(10) == 0
    assert watermarks(b, t) == (0, 8)
    assert list_offsets(b, t, 0, 1) == 3  # read_committed latest = LSO = first offset of the txn
    assert list_offsets(b, t, 0, 0) == 8

    c = consumer(b, **{"isolation.level": "read_committed"})
    try:
        c.assign([TopicPartition(t, 0, 0)])
        got = []
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            got += [(m.offset(), m.value()) for m in c.consume(50, 0.3) if not m.error()]
        assert got == [(i, b"before-%d" % i) for i in range(3)]
        p.commit_transaction(20)
        deadline = time.monotonic() + 10
        while len(got) < 8 and time.monotonic() < deadline:
            got += [(m.offset(), m.value()) for m in c.consume(50, 0.3) if not m.error()]
        assert got == ([(i, b"before-%d" % i) for i in range(3)]
                       + [(3 + i, b"txn-%d" % i) for i in range(4)] + [(7, b"after")])
    finally:
        c.close()
    assert list_offsets(b, t, 0, 1) == 9


def test_second_producer_with_the_same_transactional_id_fences_the_first(make_broker):
    b = make_broker(overrides=OVERRIDES)
    t = create_topic(b, unique("fence"), partitions=2)
    txid = unique("txid")
    p1 = txn_producer(b, txid)
    p1.begin_transaction()
    p1.produce(t, b"zombie-0", partition=0)
    p1.produce(t, b"zombie-1", partition=1)
    assert p1.flush(10) == 0
    p2 = txn_producer(b, txid)  # aborts p1's open transaction under a bumped epoch
    try:
        p1.commit_transaction(10)
        raise AssertionError("the fenced producer committed")
    except KafkaException as e:
        err = e.args[0]
        assert err.fatal() or err.code() in (PRODUCER_FENCED, INVALID_PRODUCER_EPOCH), err
    p2.begin_transaction()
    p2.produce(t, b"live-0", partition=0)
    p2.produce(t, b"live-1", partition=1)
    p2.commit_transaction(20)
    got = values(read_all(b, [(t, 0), (t, 1)], "read_committed", expect=2))
    assert got == {(t, 0): [b"live-0"], (t, 1): [b"live-1"]}
    # The zombie's records are in the log but aborted.
    everything = values(read_all(b, [(t, 0), (t, 1)], "read_uncommitted", expect=4))
    assert everything == {(t, 0): [b"zombie-0", b"live-0"], (t, 1): [b"zombie-1", b"live-1"]}


def test_transaction_left_open_past_its_timeout_is_aborted_by_the_broker(make_broker):
    b = make_broker(overrides=OVERRIDES)
    t = create_topic(b, unique("timeout"), partitions=1)
    p = txn_producer(b, unique("txid"), **{"transaction.timeout.ms": 2000})
    p.begin_transaction()
    for i in range(3):
        p.produce(t, b"open-%d" % i, partition=0)
    assert p.flush(10) == 0
    assert list_offsets(b, t, 0, 1) == 0
    # Bounded wait for the coordinator to abort it (timeout 2 s, checked every 200 ms).
    wait_until(lambda: list_offsets(b, t, 0, 1) == 4, timeout=10, msg="LSO after timeout abort")
    assert watermarks(b, t) == (0, 4)  # 3 records + the abort marker
    try:
        p.commit_transaction(10)
        raise AssertionError("commit of a timed-out transaction succeeded")
    except KafkaException as e:
        assert e.args[0].code() in (PRODUCER_FENCED, INVALID_PRODUCER_EPOCH) or e.args[0].fatal() \
            or e.args[0].txn_requires_abort(), e
    plain = producer(b)
    plain.produce(t, b"later", partition=0)
    assert plain.flush(10) == 0
    got = values(read_all(b, [(t, 0)], "read_committed", expect=1))
    assert got == {(t, 0): [b"later"]}


def test_sigkill_mid_transaction_keeps_committed_data_and_aborts_the_open_one(make_broker):
    b = make_broker(overrides=OVERRIDES)
    t = create_topic(b, unique("crash"), partitions=2)
    txid = unique("txid")
    p = txn_producer(b, txid, **{"transaction.timeout.ms": 3000})
    p.begin_transaction()
    for i in range(10):
        p.produce(t, b"committed-%d" % i, partition=i % 2)
    p.commit_transaction(20)
    p.begin_transaction()
    for i in range(10):
        p.produce(t, b"open-%d" % i, partition=i % 2)
    assert p.flush(10) == 0
    assert list_offsets(b, t, 0, 1) == 6  # 5 committed + marker; the open txn starts at 6
    b.restart(kill=True)
    # After the restart the open transaction still holds the LSO until the coordinator, which
    # reloaded it from __transaction_state, aborts it past its timeout.
    wait_until(lambda: all(list_offsets(b, t, q, 1) == 12 for q in (0, 1)), timeout=20,
               msg="open transaction aborted after restart")
    got = values(read_all(b, [(t, 0), (t, 1)], "read_committed", expect=10))
    assert got == {(t, q): [b"committed-%d" % i for i in range(q, 10, 2)] for q in (0, 1)}
    # The same transactional id resumes with a new producer and commits.
    p2 = txn_producer(b, txid)
    p2.begin_transaction()
    p2.produce(t, b"resumed", partition=0)
    p2.commit_transaction(20)
    got = values(read_all(b, [(t, 0), (t, 1)], "read_committed", expect=11))
    assert got[(t, 0)] == [b"committed-%d" % i for i in range(0, 10, 2)] + [b"resumed"]
    assert got[(t, 1)] == [b"committed-%d" % i for i in range(1, 10, 2)]


def test_sigkill_after_commit_keeps_the_transaction_committed(make_broker):
    b = make_broker(overrides=OVERRIDES)
    t = create_topic(b, unique("crash2"), partitions=1)
    p = txn_producer(b, unique("txid"))
    for round_ in range(3):
        p.begin_transaction()
        for i in range(5):
            p.produce(t, b"r%d-%d" % (round_, i), partition=0)
        # Written before the abort (librdkafka purges unsent records on abort).
        assert p.flush(10) == 0
        if round_ == 1:
            p.abort_transaction(20)
        else:
            p.commit_transaction(20)
    b.restart(kill=True)
    got = values(read_all(b, [(t, 0)], "read_committed", expect=10))
    assert got[(t, 0)] == [b"r0-%d" % i for i in range(5)] + [b"r2-%d" % i for i in range(5)]
    again = values(read_all(b, [(t, 0)], "read_committed", idle=1.5))
    assert again == got
    assert list_offsets(b, t, 0, 1) == 18


# ---------------------------------------------------------------- wire-level error codes
COORDINATOR_LOAD_IN_PROGRESS = 14


def init_pid(s, txid, version=3, timeout_ms=60000, pid=-1, epoch=-1):
    """InitProducerId; retried (bounded) while the coordinator loads right after start-up."""
    from kafka.protocol.producer.transaction import InitProducerIdRequest
    fields = dict(transactional_id=txid, transaction_timeout_ms=timeout_ms)
    if version >= 3:
        fields.update(producer_id=pid, producer_epoch=epoch)
    for _ in range(100):
        r = kwire.request(s, InitProducerIdRequest, version, **fields)
        if r.error_code != COORDINATOR_LOAD_IN_PROGRESS:
            break
        time.sleep(0.05)
    return r.error_code, r.producer_id, r.producer_epoch


def add_partitions(s, version, txid, pid, epoch, topic, partitions):
    """AddPartitionsToTxn v0-3; the sorted set of partition error codes."""
    from kafka.protocol.producer.transaction import AddPartitionsToTxnRequest as A
    r = kwire.request(s, A, version, v3_and_below_transactional_id=txid,
                      v3_and_below_producer_id=pid, v3_and_below_producer_epoch=epoch,
                      v3_and_below_topics=[A.AddPartitionsToTxnTopic(name=topic, partitions=list(partitions))])
    return sorted({p.partition_error_code for t in r.results_by_topic_v3_and_below
                   for p in t.results_by_partition})


def test_error_codes_at_every_served_version(make_broker):
    from kafka.protocol.producer.transaction import AddOffsetsToTxnRequest, EndTxnRequest
    b = make_broker(overrides=OVERRIDES)
    t = create_topic(b, unique("wire"), partitions=2)
    s = kwire.connect(b)
    try:
        # INVALID_TRANSACTION_TIMEOUT above transaction.max.timeout.ms (900000).
        for v in range(0, 5):
            assert init_pid(s, unique("x"), version=v, timeout_ms=900001)[0] == INVALID_TRANSACTION_TIMEOUT
        for v in range(0, 5):
            txid = unique("w%d" % v)
            code, pid, epoch = init_pid(s, txid, version=v)
            assert (code, epoch) == (NONE, 0) and pid >= 0
            assert init_pid(s, txid, version=v) == (NONE, pid, 1)
        for v in range(0, 4):
            txid = unique("a%d" % v)
            _, pid, epoch = init_pid(s, txid)

            def add(p, e, topic=t, parts=(0, 1)):
                return add_partitions(s, v, txid, p, e, topic, parts)

            def end(p, e, commit):
                return kwire.request(s, EndTxnRequest, v, transactional_id=txid, producer_id=p,
                                     producer_epoch=e, committed=commit).error_code

            assert end(pid, epoch, True) == INVALID_TXN_STATE  # nothing open
            assert add(pid + 12345, epoch) == [INVALID_PRODUCER_ID_MAPPING]
            assert add(pid, epoch, topic="no-such-topic", parts=(0,)) == [UNKNOWN_TOPIC_OR_PARTITION]
            assert add(pid, epoch) == [NONE]
            assert add(pid, epoch) == [NONE]  # again: nothing new
            r = kwire.request(s, AddOffsetsToTxnRequest, v, transactional_id=txid, producer_id=pid,
                              producer_epoch=epoch, group_id="g-" + txid)
            assert r.error_code == NONE
            assert end(pid, epoch, True) == NONE
            assert end(pid, epoch, True) == NONE  # a retried commit succeeds
            assert end(pid, epoch, False) == INVALID_TXN_STATE
            # A newer producer fences this one (PRODUCER_FENCED from v2, KIP-588).
            assert init_pid(s, txid)[2] == epoch + 1
            fenced = PRODUCER_FENCED if v >= 2 else INVALID_PRODUCER_EPOCH
            assert add(pid, epoch) == [fenced]
            assert end(pid, epoch, False) == fenced
        # KIP-360: InitProducerId v3+ naming an epoch that is neither current nor previous.
        txid = unique("k")
        _, pid, epoch = init_pid(s, txid)
        assert init_pid(s, txid, version=3, pid=pid, epoch=epoch + 5)[0] == INVALID_PRODUCER_EPOCH
        assert init_pid(s, txid, version=4, pid=pid, epoch=epoch + 5)[0] == PRODUCER_FENCED
        assert init_pid(s, txid, version=4, pid=pid, epoch=epoch) == (NONE, pid, epoch + 1)
    finally:
        s.close()


def test_transactional_produce_needs_the_partition_in_the_transaction(make_broker):
    """KIP-890 part 1: a transactional batch for a partition not added to the open
    transaction is refused, and clients may not write control batches; nor may the producer
    write outside its open transaction."""
    import struct
    from kafka.protocol.producer import ProduceRequest
    b = make_broker(overrides=OVERRIDES)
    t = create_topic(b, unique("kip890"), partitions=2)
    txid = unique("txid")
    s = kwire.connect(b)
    try:
        _, pid, epoch = init_pid(s, txid)
        assert add_partitions(s, 3, txid, pid, epoch, t, [0]) == [NONE]

        def produce(partition, attributes, p_epoch=epoch, seq=0):
            ts = int(time.time() * 1000)
            after = struct.pack(">hiqqqhii", attributes, 0, ts, ts, pid, p_epoch, seq, 1) + kwire.records_of([b"v"])
            batch = struct.pack(">qiibI", 0, 9 + len(after), -1, 2, kwire.crc32c(after)) + after
            TPD = ProduceRequest.TopicProduceData
            resp = kwire.request(s, ProduceRequest, 7, transactional_id=txid, acks=-1, timeout_ms=5000,
                                 topic_data=[TPD(name=t, partition_data=[
                                     TPD.PartitionProduceData(index=partition, records=batch)])])
            return resp.responses[0].partition_responses[0].error_code

        assert produce(1, 0x10) == INVALID_TXN_STATE  # not added to the transaction
        assert produce(0, 0x10, p_epoch=epoch + 1) == INVALID_PRODUCER_EPOCH
        assert produce(0, 0x30) == INVALID_RECORD  # a control batch written by a client
        assert produce(0, 0x10) == NONE
        # A non-transactional batch of a producer with a transaction open (Kafka's
        # ProducerAppendInfo): INVALID_TXN_STATE, nothing written.
        assert produce(0, 0x00, seq=1) == INVALID_TXN_STATE
    finally:
        s.close()
    assert watermarks(b, t, 0) == (0, 1)
    assert watermarks(b, t, 1) == (0, 0)


def test_find_coordinator_for_transactions(make_broker):
    from kafka.protocol.metadata import FindCoordinatorRequest
    b = make_broker(overrides=OVERRIDES)
    s = kwire.connect(b)
    try:
        for v in range(1, 4):
            r = kwire.request(s, FindCoordinatorRequest, v, key="my-txn", key_type=1)
            assert (r.error_code, r.node_id, r.port) == (NONE, 1, b.port)
        for v in range(4, 7):
            r = kwire.request(s, FindCoordinatorRequest, v, key_type=1, coordinator_keys=["a", "b"])
            assert [(c.key, c.node_id, c.port, c.error_code) for c in r.coordinators] == [
                ("a", 1, b.port, NONE), ("b", 1, b.port, NONE)]
    finally:
        s.close()


def test_describe_and_list_transactions_and_producers(make_broker):
    from kafka.protocol.admin import (DescribeProducersRequest, DescribeTransactionsRequest,
                                      ListTransactionsRequest)
    b = make_broker(overrides=OVERRIDES)
    t = create_topic(b, unique("adm"), partitions=1)
    txid = unique("txid")
    p = txn_producer(b, txid)
    p.begin_transaction()
    p.produce(t, b"x", partition=0)
    p.produce(t, b"y", partition=0)
    assert p.flush(10) == 0
    TR = DescribeProducersRequest.TopicRequest
    s = kwire.connect(b)
    try:
        r = kwire.request(s, DescribeTransactionsRequest, 0, transactional_ids=[txid, "nope"])
        st = r.transaction_states
        assert (st[0].error_code, st[0].transactional_id, st[0].transaction_state) == (NONE, txid, "Ongoing")
        assert st[0].transaction_timeout_ms == 60000 and st[0].transaction_start_time_ms > 0
        assert st[0].producer_epoch == 0
        assert [(x.topic, x.partitions) for x in st[0].topics] == [(t, [0])]
        assert st[1].error_code == TRANSACTIONAL_ID_NOT_FOUND
        pid = st[0].producer_id
        for v in (0, 1):
            fields = dict(state_filters=["Ongoing"], producer_id_filters=[])
            if v >= 1:
                fields["duration_filter"] = -1
            r = kwire.request(s, ListTransactionsRequest, v, **fields)
            assert r.error_code == NONE
            assert [(x.transactional_id, x.producer_id, x.transaction_state)
                    for x in r.transaction_states] == [(txid, pid, "Ongoing")]
        r = kwire.request(s, ListTransactionsRequest, 0, state_filters=["Bogus"], producer_id_filters=[])
        assert r.unknown_state_filters == ["Bogus"] and r.transaction_states == []
        r = kwire.request(s, DescribeProducersRequest, 0, topics=[TR(name=t, partition_indexes=[0, 7])])
        parts = r.topics[0].partitions
        assert (parts[0].partition_index, parts[0].error_code) == (0, NONE)
        prod = parts[0].active_producers
        assert [(x.producer_id, x.producer_epoch, x.last_sequence, x.current_txn_start_offset)
                for x in prod] == [(pid, 0, 1, 0)]
        assert parts[1].error_code == UNKNOWN_TOPIC_OR_PARTITION
        p.commit_transaction(20)
        r = kwire.request(s, DescribeTransactionsRequest, 0, transactional_ids=[txid])
        assert r.transaction_states[0].transaction_state == "CompleteCommit"
        r = kwire.request(s, DescribeProducersRequest, 0, topics=[TR(name=t, partition_indexes=[0])])
        assert r.topics[0].partitions[0].active_producers[0].current_txn_start_offset == -1
    finally:
        s.close()


def test_transactions_stay_atomic_across_broker_sigkills(make_broker):
    """Eight transactions, committed or aborted, with the broker SIGKILLed twice: once with a
    transaction open (the producer is abandoned; its successor with the same transactional.id
    fences it and the open transaction is aborted) and once right after a commit returned.
    read_committed sees exactly the committed transactions, whole and in order; the LSO
    catches up with the high watermark."""
    b = make_broker(overrides=OVERRIDES)
    t = create_topic(b, unique("atomic"), partitions=2)
    txid = unique("txid")
    p = txn_producer(b, txid)
    outcome = {}
    produced = {0: [], 1: []}
    for r in range(8):
        p.begin_transaction()
        for i in range(20):
            v = b"r%d-%02d" % (r, i)
            p.produce(t, v, partition=i % 2)
            produced[i % 2].append(v)
        assert p.flush(10) == 0
        if r == 2:
            b.restart(kill=True)  # open transaction, producer abandoned
            del p
            p = txn_producer(b, txid)
            outcome[r] = "aborted"
            continue
        if r % 3 == 1:
            p.abort_transaction(20)
            outcome[r] = "aborted"
        else:
            p.commit_transaction(20)
            outcome[r] = "committed"
        if r == 5:
            b.restart(kill=True)
            del p
            p = txn_producer(b, txid)
    committed = {q: [v for v in produced[q] if outcome[int(v[1:2])] == "committed"] for q in (0, 1)}
    assert sum(1 for o in outcome.values() if o == "committed") == 4
    got = values(read_all(b, [(t, 0), (t, 1)], "read_committed", expect=80))
    assert got == {(t, q): committed[q] for q in (0, 1)}
    everything = values(read_all(b, [(t, 0), (t, 1)], "read_uncommitted", expect=160))
    assert everything == {(t, q): produced[q] for q in (0, 1)}
    for q in (0, 1):
        lo, hi = watermarks(b, t, q)
        assert list_offsets(b, t, q, 1) == hi == 80 + 8  # 80 records + one marker per round


def _transform_batches(b, src, dst, txid, group, max_batches, crash_before_commit=False,
                       timeout=60):
    """A consume-transform-produce loop: each transaction copies up to 50 records of `src`
    (both partitions) to `dst` as b"out-" + value and commits the consumer's positions with
    send_offsets_to_transaction. Stops after `max_batches` transactions or when nothing is left;
    with crash_before_commit the last transaction is left open for the caller to kill the
    broker under. Returns the number of records copied in committed transactions."""
    p = txn_producer(b, txid)
    c = consumer(b, **{"group.id": group, "isolation.level": "read_committed"})
    c.assign([TopicPartition(src, 0), TopicPartition(src, 1)])  # from the committed offsets
    copied = 0
    deadline = time.monotonic() + timeout
    try:
        for batch in range(max_batches):
            msgs = []
            for attempt in range(20):
                got = [m for m in c.consume(50 - len(msgs), 0.5) if not m.error()]
                msgs += got
                # A full batch, or the input is drained (nothing new after some records, or
                # nothing at all for a few polls).
                # The first batch waits longer: a new group's first FindCoordinator creates
                # __consumer_offsets, which a loaded machine can take seconds to serve.
                if len(msgs) >= 50 or (msgs and not got) or (not msgs and attempt >= (6 if batch else 19)):
                    break
                assert time.monotonic() < deadline, "transform loop timed out"
            if not msgs:
                return copied, p, c
            p.begin_transaction()
            for m in msgs:
                p.produce(dst, b"out-" + m.value(), partition=0)
            p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 20)
            if crash_before_commit and batch == max_batches - 1:
                assert p.flush(10) == 0
                return copied, p, c
            p.commit_transaction(20)
            copied += len(msgs)
        return copied, p, c
    except BaseException:
        c.close()
        raise


def test_consume_transform_produce_exactly_once_across_a_broker_sigkill(make_broker):
    b = make_broker(overrides=dict(OVERRIDES, **{"group.initial.rebalance.delay.ms": "0"}))
    src = create_topic(b, unique("src"), partitions=2)
    dst = create_topic(b, unique("dst"), partitions=1)
    n = 400
    plain = producer(b, **{"enable.idempotence": True})
    for i in range(n):
        plain.produce(src, b"in-%04d" % i, partition=i % 2)
    assert plain.flush(20) == 0
    txid, group = unique("txid"), unique("g")

    # First run: three committed transactions, a fourth open when the broker is killed.
    copied, p1, c1 = _transform_batches(b, src, dst, txid, group, 4, crash_before_commit=True)
    assert copied == 150
    b.restart(kill=True)
    del p1, c1  # abandoned with the broker gone (a crashed processor)

    # Second run: fences the first producer (its open transaction and its offsets abort), then
    # resumes from the committed offsets until the input is exhausted.
    copied2, p2, c2 = _transform_batches(b, src, dst, txid, group, 40)
    c2.close()
    assert copied + copied2 == n
    out = values(read_all(b, [(dst, 0)], "read_committed", expect=n))[(dst, 0)]
    assert len(out) == n and len(set(out)) == n
    assert sorted(out) == sorted(b"out-in-%04d" % i for i in range(n))
    # The aborted copy of the fourth batch is in the log, but not visible to read_committed.
    everything = values(read_all(b, [(dst, 0)], "read_uncommitted", expect=n + 50))[(dst, 0)]
    assert len(everything) == n + 50


def test_txn_offset_commit_at_every_served_version(make_broker):
    """TxnOffsetCommit v0-3 (kafka-python's codec): refused before AddOffsetsToTxn, pending
    until the commit (OffsetFetch v7/v8 with require_stable answers UNSTABLE_OFFSET_COMMIT,
    without it the previous offset), visible after the commit marker, gone after an abort."""
    from kafka.protocol.consumer import OffsetFetchRequest
    from kafka.protocol.producer.transaction import (AddOffsetsToTxnRequest, EndTxnRequest,
                                                     TxnOffsetCommitRequest)
    UNSTABLE_OFFSET_COMMIT = 88
    TT = TxnOffsetCommitRequest.TxnOffsetCommitRequestTopic
    b = make_broker(overrides=OVERRIDES)
    t = create_topic(b, unique("toc"), partitions=1)
    s = kwire.connect(b)

    def fetch(group, v, stable):
        if v >= 8:
            G = OffsetFetchRequest.OffsetFetchRequestGroup
            r = kwire.request(s, OffsetFetchRequest, v, groups=[G(group_id=group, topics=[
                G.OffsetFetchRequestTopics(name=t, partition_indexes=[0])])], require_stable=stable)
            p = r.groups[0].topics[0].partitions[0]
        else:
            r = kwire.request(s, OffsetFetchRequest, v, group_id=group, require_stable=stable,
                              topics=[OffsetFetchRequest.OffsetFetchRequestTopic(name=t, partition_indexes=[0])])
            p = r.topics[0].partitions[0]
        return p.error_code, p.committed_offset

    try:
        for v in range(0, 4):
            txid, group = unique("toc%d" % v), unique("g%d" % v)
            _, pid, epoch = init_pid(s, txid)

            def commit_offset(offset, p_epoch=epoch):
                fields = dict(transactional_id=txid, group_id=group, producer_id=pid,
                              producer_epoch=p_epoch,
                              topics=[TT(name=t, partitions=[TT.TxnOffsetCommitRequestPartition(
                                  partition_index=0, committed_offset=offset, committed_metadata="m")])])
                if v >= 3:
                    fields.update(generation_id=-1, member_id="", group_instance_id=None)
                r = kwire.request(s, TxnOffsetCommitRequest, v, **fields)
                return r.topics[0].partitions[0].error_code

            def end(commit):
                return kwire.request(s, EndTxnRequest, 1, transactional_id=txid, producer_id=pid,
                                     producer_epoch=epoch, committed=commit).error_code

            assert commit_offset(5) == INVALID_TXN_STATE  # the group's partition is not added
            r = kwire.request(s, AddOffsetsToTxnRequest, 1, transactional_id=txid, producer_id=pid,
                              producer_epoch=epoch, group_id=group)
            assert r.error_code == NONE
            fenced = PRODUCER_FENCED if v >= 3 else INVALID_PRODUCER_EPOCH
            assert commit_offset(5, p_epoch=epoch + 1) == fenced
            assert commit_offset(5) == NONE
            for fv in (7, 8):
                assert fetch(group, fv, True) == (UNSTABLE_OFFSET_COMMIT, -1)
                assert fetch(group, fv, False) == (NONE, -1)
            assert end(True) == NONE
            assert fetch(group, 8, True) == (NONE, 5)
            # The next transaction's offset is aborted: the committed one stays.
            r = kwire.request(s, AddOffsetsToTxnRequest, 1, transactional_id=txid, producer_id=pid,
                              producer_epoch=epoch, group_id=group)
            assert r.error_code == NONE
            assert commit_offset(9) == NONE
            assert end(False) == NONE
            assert fetch(group, 7, True) == (NONE, 5)
    finally:
        s.close()


def test_idle_transactional_id_expires_and_starts_afresh(make_broker):
    """transactional.id.expiration.ms: an id with nothing in progress and no use for that long
    is forgotten (a tombstone in __transaction_state, so it stays forgotten after a restart);
    its next producer starts with a new producer id. An open transaction never expires."""
    from kafka.protocol.admin import DescribeTransactionsRequest
    overrides = dict(OVERRIDES, **{"transactional.id.expiration.ms": "1500",
                                   "transaction.remove.expired.transaction.cleanup.interval.ms": "200"})
    b = make_broker(overrides=overrides)
    t = create_topic(b, unique("exp"), partitions=1)
    idle_id, busy_id = unique("idle"), unique("busy")
    idle = txn_producer(b, idle_id)
    idle.begin_transaction()
    idle.produce(t, b"a", partition=0)
    idle.commit_transaction(20)
    busy = txn_producer(b, busy_id, **{"transaction.timeout.ms": 60000})
    busy.begin_transaction()
    busy.produce(t, b"b", partition=0)
    assert busy.flush(10) == 0

    def describe(s, txid):
        st = kwire.request(s, DescribeTransactionsRequest, 0, transactional_ids=[txid]).transaction_states[0]
        return st.error_code, st.producer_id, st.transaction_state

    s = kwire.connect(b)
    try:
        code, first_pid, state = describe(s, idle_id)
        assert (code, state) == (NONE, "CompleteCommit")
        wait_until(lambda: describe(s, idle_id)[0] == TRANSACTIONAL_ID_NOT_FOUND, 15,
                   msg="the idle transactional id expires")
        assert describe(s, busy_id)[2] == "Ongoing", "an open transaction does not expire"
    finally:
        s.close()
    busy.commit_transaction(20)
    b.restart(kill=True)
    s = kwire.connect(b)
    try:
        for _ in range(100):
            code = describe(s, idle_id)[0]
            if code != COORDINATOR_LOAD_IN_PROGRESS:
                break
            time.sleep(0.05)
        assert code == TRANSACTIONAL_ID_NOT_FOUND, "the expiry survives a restart"
        code, pid, epoch = init_pid(s, idle_id)
        assert code == NONE and pid != first_pid and epoch == 0
    finally:
        s.close()
    assert read_all(b, [(t, 0)], "read_committed", expect=2)[(t, 0)][0][1] == b"a"
