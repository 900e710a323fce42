"""Kafka Connect 4.1.1 standalone against the broker: FileStreamSource (a file → a topic) and
FileStreamSink (the topic → a file) in one worker (org.apache.kafka.connect.cli.ConnectStandalone,
REST on a free loopback port).  The topic's records and the sink file are asserted exactly.
About 20-40 s.
"""
import os
import subprocess
import time

import pytest

import kafkaref
import kutil

pytestmark = pytest.mark.skipif(kafkaref.java_skip_reason() is not None,
                                reason=kafkaref.java_skip_reason() or "")


def write_props(path, props):
    with open(path, "w") as f:
        for k, v in props.items():
            f.write("%s=%s\n" % (k, v))
    return str(path)


@pytest.mark.timeout(300)  # JVM start-ups on a loaded 2-core machine
def test_file_source_to_topic_to_file_sink(broker, tmp_path):
    t = kutil.create_topic(broker, kutil.unique("connect"))
    lines = ["line %d: %s" % (i, "x" * (i % 7)) for i in range(200)]
    src_file = tmp_path / "in.txt"
    sink_file = tmp_path / "out.txt"
    src_file.write_text("".join(l + "\n" for l in lines))
    worker = write_props(tmp_path / "worker.properties", {
        "bootstrap.servers": broker.bootstrap,
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.storage.StringConverter",
        "offset.storage.file.filename": tmp_path / "offsets",
        "offset.flush.interval.ms": "1000",
        "listeners": "http://127.0.0.1:%d" % kafkaref.free_port(),
        "plugin.discovery": "only_scan",
    })
    source = write_props(tmp_path / "source.properties", {
        "name": "file-source", "tasks.max": "1",
        "connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
        "file": src_file, "topic": t,
    })
    sink = write_props(tmp_path / "sink.properties", {
        "name": "file-sink", "tasks.max": "1",
        "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
        "file": sink_file, "topics": t,
    })
    cmd = kafkaref.java_cmd("org.apache.kafka.connect.cli.ConnectStandalone", [worker, source, sink],
                            heap="384m")
    log = open(tmp_path / "connect.log", "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            cwd=str(tmp_path), start_new_session=True)
    try:
        def sunk():
            if proc.poll() is not None:
                raise AssertionError("Connect exited rc=%s:\n%s" % (
                    proc.returncode, (tmp_path / "connect.log").read_text()[-4000:]))
            return sink_file.exists() and sink_file.read_text().count("\n") >= len(lines)
        kutil.wait_until(sunk, 100, 0.5, "the sink file to hold every line")
        assert sink_file.read_text().splitlines() == lines
        got = kutil.consume(broker, t, len(lines))
        assert [m.value().decode() for m in got] == lines
        assert [m.offset() for m in got] == list(range(len(lines)))
        # the sink's consumer group committed its position
        c = kutil.consumer(broker, **{"group.id": "connect-file-sink"})
        try:
            from confluent_kafka import TopicPartition
            kutil.wait_until(lambda: c.committed([TopicPartition(t, 0)], timeout=10)[0].offset == len(lines),
                             30, 0.5, "connect-file-sink's committed offset")
        finally:
            c.close()
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()
