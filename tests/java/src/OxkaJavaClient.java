// The Java client (org.apache.kafka:kafka-clients) scenarios of tests/test_java_client.py.
//
// One scenario per run: `java OxkaJavaClient <scenario> <bootstrap> args...`. Each prints one
// JSON object on stdout (the last line) that the Python test asserts on; a failure is an
// exception (non-zero exit, stack trace on stderr). Every loop is bounded by a deadline.

import java.time.Duration;
import java.util.*;
import java.util.concurrent.ExecutionException;

import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.*;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class OxkaJavaClient {
    static final Duration POLL = Duration.ofMillis(200);

    public static void main(String[] a) throws Exception {
        String scenario = a[0];
        String bootstrap = a[1];
        Object out;
        switch (scenario) {
            case "idempotent": out = idempotent(bootstrap, a[2], Integer.parseInt(a[3])); break;
            case "transactional": out = transactional(bootstrap, a[2], a[3]); break;
            case "group": out = group(bootstrap, a[2], a[3], a[4], Integer.parseInt(a[5])); break;
            case "admin": out = admin(bootstrap, a[2]); break;
            default: throw new IllegalArgumentException("unknown scenario " + scenario);
        }
        System.out.println(Json.write(out));
        System.out.flush();
        System.exit(0);
    }

    // ------------------------------------------------------------------ configs
    static Properties producerProps(String bootstrap) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "30000");
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        return p;
    }

    static Properties consumerProps(String bootstrap, String group) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        if (group != null) p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        return p;
    }

    /** Reads one partition from offset 0 up to its end offset (for this isolation level). */
    static List<Map<String, Object>> readAll(String bootstrap, String topic, int partition,
                                             String isolation) {
        Properties p = consumerProps(bootstrap, null);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        List<Map<String, Object>> out = new ArrayList<>();
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(p)) {
            TopicPartition tp = new TopicPartition(topic, partition);
            c.assign(List.of(tp));
            c.seek(tp, 0);
            long end = c.endOffsets(List.of(tp), Duration.ofSeconds(15)).get(tp);
            long deadline = System.currentTimeMillis() + 30000;
            while (c.position(tp, Duration.ofSeconds(15)) < end && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(POLL)) {
                    Map<String, Object> m = new LinkedHashMap<>();
                    m.put("offset", r.offset());
                    m.put("key", r.key());
                    m.put("value", r.value());
                    out.add(m);
                }
            }
        }
        return out;
    }

    // ------------------------------------------------------------------ scenarios
    /** enable.idempotence=true, acks=all: n keyed records to partition 0, their offsets, read back. */
    static Object idempotent(String bootstrap, String topic, int n) throws Exception {
        Properties p = producerProps(bootstrap);
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, "5");
        List<Long> offsets = new ArrayList<>();
        try (KafkaProducer<String, String> pr = new KafkaProducer<>(p)) {
            List<java.util.concurrent.Future<RecordMetadata>> fs = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                fs.add(pr.send(new ProducerRecord<>(topic, 0, "k-" + i, "v-" + i)));
            }
            pr.flush();
            for (var f : fs) offsets.add(f.get().offset());
        }
        Map<String, Object> o = new LinkedHashMap<>();
        o.put("offsets", offsets);
        o.put("records", readAll(bootstrap, topic, 0, "read_uncommitted"));
        return o;
    }

    /** Commit 3, abort 2, commit 1 in one transactional.id; what each isolation level reads. */
    static Object transactional(String bootstrap, String topic, String txid) throws Exception {
        Properties p = producerProps(bootstrap);
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txid);
        p.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, "30000");
        try (KafkaProducer<String, String> pr = new KafkaProducer<>(p)) {
            pr.initTransactions();
            pr.beginTransaction();
            for (int i = 0; i < 3; i++) pr.send(new ProducerRecord<>(topic, 0, "c", "committed-" + i));
            pr.commitTransaction();
            pr.beginTransaction();
            for (int i = 0; i < 2; i++) pr.send(new ProducerRecord<>(topic, 0, "a", "aborted-" + i));
            pr.flush();
            pr.abortTransaction();
            pr.beginTransaction();
            pr.send(new ProducerRecord<>(topic, 0, "c", "committed-3"));
            pr.commitTransaction();
        }
        Map<String, Object> o = new LinkedHashMap<>();
        o.put("read_committed", readAll(bootstrap, topic, 0, "read_committed"));
        o.put("read_uncommitted", readAll(bootstrap, topic, 0, "read_uncommitted"));
        try (Admin ad = Admin.create(adminProps(bootstrap))) {
            TopicPartition tp = new TopicPartition(topic, 0);
            o.put("latest_committed", ad.listOffsets(Map.of(tp, OffsetSpec.latest()),
                    new ListOffsetsOptions(IsolationLevel.READ_COMMITTED)).partitionResult(tp).get().offset());
            o.put("latest_uncommitted", ad.listOffsets(Map.of(tp, OffsetSpec.latest()),
                    new ListOffsetsOptions(IsolationLevel.READ_UNCOMMITTED)).partitionResult(tp).get().offset());
        }
        return o;
    }

    /**
     * Two members of one group (group.protocol classic or consumer) polled in turn until they
     * have read `expect` records between them; each commits what it read; then both close.
     */
    static Object group(String bootstrap, String topic, String group, String protocol, int expect)
            throws Exception {
        List<KafkaConsumer<String, String>> members = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            Properties p = consumerProps(bootstrap, group);
            p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol);
            p.put(ConsumerConfig.CLIENT_ID_CONFIG, "member-" + i);
            if (protocol.equals("classic")) {
                p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "10000");
                p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "500");
                p.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG,
                        "org.apache.kafka.clients.consumer.RangeAssignor");
            }
            KafkaConsumer<String, String> c = new KafkaConsumer<>(p);
            c.subscribe(List.of(topic));
            members.add(c);
        }
        List<List<String>> values = List.of(new ArrayList<>(), new ArrayList<>());
        long deadline = System.currentTimeMillis() + 60000;
        int total = 0;
        // Both members join and hold partitions (the topic is empty), then the records are
        // produced: expect/partitions records to each partition of the topic.
        while (System.currentTimeMillis() < deadline
                && (members.get(0).assignment().isEmpty() || members.get(1).assignment().isEmpty())) {
            for (var c : members) c.poll(POLL);
        }
        int partitions;
        try (KafkaProducer<String, String> pr = new KafkaProducer<>(producerProps(bootstrap))) {
            partitions = pr.partitionsFor(topic).size();
            for (int p = 0; p < partitions; p++) {
                for (int i = 0; i < expect / partitions; i++) {
                    pr.send(new ProducerRecord<>(topic, p, null, "p" + p + "-" + i));
                }
            }
            pr.flush();
        }
        while (System.currentTimeMillis() < deadline && total < expect) {
            for (int i = 0; i < 2; i++) {
                ConsumerRecords<String, String> rs = members.get(i).poll(POLL);
                for (ConsumerRecord<String, String> r : rs) {
                    values.get(i).add(r.partition() + ":" + r.offset() + ":" + r.value());
                    total++;
                }
                if (!rs.isEmpty()) members.get(i).commitSync(Duration.ofSeconds(15));
            }
        }
        Map<String, Object> o = new LinkedHashMap<>();
        List<Object> ms = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            Map<String, Object> m = new LinkedHashMap<>();
            List<Integer> parts = new ArrayList<>();
            for (TopicPartition tp : members.get(i).assignment()) parts.add(tp.partition());
            Collections.sort(parts);
            m.put("assignment", parts);
            m.put("records", values.get(i));
            ms.add(m);
        }
        o.put("members", ms);
        for (var c : members) c.commitSync(Duration.ofSeconds(15));
        for (var c : members) c.close(CloseOptions.timeout(Duration.ofSeconds(15)));
        try (Admin ad = Admin.create(adminProps(bootstrap))) {
            Map<String, Object> committed = new TreeMap<>();
            for (var e : ad.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get().entrySet()) {
                committed.put(String.valueOf(e.getKey().partition()), e.getValue().offset());
            }
            o.put("committed", committed);
            ConsumerGroupDescription d = ad.describeConsumerGroups(List.of(group)).all().get().get(group);
            o.put("group_type", d.type().toString());
            o.put("group_state", d.groupState().toString());
        }
        return o;
    }

    static Properties adminProps(String bootstrap) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        return p;
    }

    static String errorName(Throwable t) {
        Throwable c = t instanceof ExecutionException ? t.getCause() : t;
        return c.getClass().getSimpleName();
    }

    /** Topic and config admin, list offsets, a committed group; the errors Kafka's admin raises. */
    static Object admin(String bootstrap, String prefix) throws Exception {
        Map<String, Object> o = new LinkedHashMap<>();
        String topic = prefix + "-admin";
        String group = prefix + "-group";
        try (Admin ad = Admin.create(adminProps(bootstrap))) {
            NewTopic nt = new NewTopic(topic, 3, (short) 1).configs(Map.of("retention.ms", "3600000"));
            ad.createTopics(List.of(nt)).all().get();
            try {
                ad.createTopics(List.of(new NewTopic(topic, 3, (short) 1))).all().get();
                o.put("create_again", "ok");
            } catch (ExecutionException e) {
                o.put("create_again", errorName(e));
            }
            try {
                ad.createTopics(List.of(new NewTopic(prefix + "-bad", 0, (short) 1))).all().get();
                o.put("create_zero_partitions", "ok");
            } catch (ExecutionException e) {
                o.put("create_zero_partitions", errorName(e));
            }
            // Apache Kafka's metadata cache learns of a new topic a moment after CreateTopics
            // returns (KRaft); oxka at once. Wait (bounded) until the topic is described.
            TopicDescription td = null;
            for (int i = 0; i < 100 && td == null; i++) {
                try {
                    td = ad.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
                } catch (ExecutionException e) {
                    Thread.sleep(100);
                }
            }
            o.put("listed", ad.listTopics().names().get().contains(topic));
            o.put("partitions", td.partitions().size());
            o.put("leader_ids", td.partitions().stream().map(x -> x.leader().id()).toList());
            ad.createPartitions(Map.of(topic, NewPartitions.increaseTo(4))).all().get();
            o.put("partitions_after_increase",
                    ad.describeTopics(List.of(topic)).allTopicNames().get().get(topic).partitions().size());

            ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            ConfigEntry ret = ad.describeConfigs(List.of(res)).all().get().get(res).get("retention.ms");
            o.put("retention_ms", ret.value());
            o.put("retention_ms_source", ret.source().toString());
            ConfigEntry seg = ad.describeConfigs(List.of(res)).all().get().get(res).get("segment.bytes");
            o.put("segment_bytes_source", seg.source().toString());
            ad.incrementalAlterConfigs(Map.of(res, List.of(
                    new AlterConfigOp(new ConfigEntry("retention.ms", "7200000"), AlterConfigOp.OpType.SET),
                    new AlterConfigOp(new ConfigEntry("cleanup.policy", "compact"), AlterConfigOp.OpType.SET))))
                    .all().get();
            Config after = ad.describeConfigs(List.of(res)).all().get().get(res);
            for (int i = 0; i < 100 && !after.get("cleanup.policy").value().equals("compact"); i++) {
                Thread.sleep(100);  // Apache Kafka's metadata cache is a moment behind its controller
                after = ad.describeConfigs(List.of(res)).all().get().get(res);
            }
            o.put("retention_ms_after", after.get("retention.ms").value());
            o.put("cleanup_policy_after", after.get("cleanup.policy").value());
            try {
                ad.incrementalAlterConfigs(Map.of(res, List.of(new AlterConfigOp(
                        new ConfigEntry("retention.ms", "not-a-number"), AlterConfigOp.OpType.SET)))).all().get();
                o.put("alter_bad_value", "ok");
            } catch (ExecutionException e) {
                o.put("alter_bad_value", errorName(e));
            }

            Properties pp = producerProps(bootstrap);
            try (KafkaProducer<String, String> pr = new KafkaProducer<>(pp)) {
                // explicit timestamps: the third record (offset 2) carries the largest
                long base = System.currentTimeMillis() - 60000;
                long[] ts = {base, base + 1, base + 9, base + 2, base + 3};
                for (int i = 0; i < 5; i++) pr.send(new ProducerRecord<>(topic, 1, ts[i], "k", "v" + i));
                pr.flush();
            }
            TopicPartition tp1 = new TopicPartition(topic, 1);
            o.put("earliest", ad.listOffsets(Map.of(tp1, OffsetSpec.earliest())).partitionResult(tp1).get().offset());
            o.put("latest", ad.listOffsets(Map.of(tp1, OffsetSpec.latest())).partitionResult(tp1).get().offset());
            o.put("max_timestamp_offset",
                    ad.listOffsets(Map.of(tp1, OffsetSpec.maxTimestamp())).partitionResult(tp1).get().offset());

            ad.alterConsumerGroupOffsets(group, Map.of(tp1, new OffsetAndMetadata(3, "meta"))).all().get();
            Map<TopicPartition, OffsetAndMetadata> co =
                    ad.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
            o.put("group_offset", co.get(tp1).offset());
            o.put("group_metadata", co.get(tp1).metadata());
            o.put("group_listed", ad.listConsumerGroups().all().get().stream()
                    .anyMatch(g -> g.groupId().equals(group)));
            ConsumerGroupDescription gd = ad.describeConsumerGroups(List.of(group)).all().get().get(group);
            o.put("group_state", gd.groupState().toString());
            o.put("group_members", gd.members().size());
            ad.deleteConsumerGroups(List.of(group)).all().get();
            o.put("group_offsets_after_delete",
                    ad.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get().size());

            // cleanup.policy=compact (set above) refuses DeleteRecords; compact,delete allows it
            try {
                ad.deleteRecords(Map.of(tp1, RecordsToDelete.beforeOffset(2))).all().get();
                o.put("delete_records_compacted", "ok");
            } catch (ExecutionException e) {
                o.put("delete_records_compacted", errorName(e));
            }
            ad.incrementalAlterConfigs(Map.of(res, List.of(new AlterConfigOp(
                    new ConfigEntry("cleanup.policy", "compact,delete"), AlterConfigOp.OpType.SET))))
                    .all().get();
            long waitUntil = System.currentTimeMillis() + 10000;
            while (System.currentTimeMillis() < waitUntil && !ad.describeConfigs(List.of(res)).all().get()
                    .get(res).get("cleanup.policy").value().equals("compact,delete")) {
                Thread.sleep(100);
            }
            ad.deleteRecords(Map.of(tp1, RecordsToDelete.beforeOffset(2))).all().get();
            o.put("earliest_after_delete_records",
                    ad.listOffsets(Map.of(tp1, OffsetSpec.earliest())).partitionResult(tp1).get().offset());

            Collection<Node> nodes = ad.describeCluster().nodes().get();
            o.put("cluster_nodes", nodes.size());

            ad.deleteTopics(List.of(topic)).all().get();
            String afterDelete = "ok";
            long deadline = System.currentTimeMillis() + 20000;
            while (System.currentTimeMillis() < deadline) {
                try {
                    ad.describeTopics(List.of(topic)).allTopicNames().get();
                    Thread.sleep(200);
                } catch (ExecutionException e) {
                    afterDelete = errorName(e);
                    break;
                }
            }
            o.put("describe_after_delete", afterDelete);
            try {
                ad.deleteTopics(List.of(prefix + "-never-created")).all().get();
                o.put("delete_unknown", "ok");
            } catch (ExecutionException e) {
                o.put("delete_unknown", errorName(e));
            }
        }
        return o;
    }

    // ------------------------------------------------------------------ a minimal JSON writer
    public static final class Json {
        public static String write(Object v) {
            StringBuilder sb = new StringBuilder();
            write(sb, v);
            return sb.toString();
        }

        static void write(StringBuilder sb, Object v) {
            if (v == null) {
                sb.append("null");
            } else if (v instanceof String s) {
                sb.append('"');
                for (char ch : s.toCharArray()) {
                    if (ch == '"' || ch == '\\') sb.append('\\').append(ch);
                    else if (ch < 0x20) sb.append(String.format("\\u%04x", (int) ch));
                    else sb.append(ch);
                }
                sb.append('"');
            } else if (v instanceof Number || v instanceof Boolean) {
                sb.append(v);
            } else if (v instanceof Map<?, ?> m) {
                sb.append('{');
                boolean first = true;
                for (var e : m.entrySet()) {
                    if (!first) sb.append(',');
                    first = false;
                    write(sb, String.valueOf(e.getKey()));
                    sb.append(':');
                    write(sb, e.getValue());
                }
                sb.append('}');
            } else if (v instanceof Collection<?> c) {
                sb.append('[');
                boolean first = true;
                for (Object x : c) {
                    if (!first) sb.append(',');
                    first = false;
                    write(sb, x);
                }
                sb.append(']');
            } else {
                write(sb, v.toString());
            }
        }
    }
}
