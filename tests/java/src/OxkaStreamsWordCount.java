// The Kafka Streams application of tests/test_streams.py: a word count with
// processing.guarantee=exactly_once_v2. Lines → words → groupBy(word) (a repartition topic) →
// count() (a state store with its changelog topic) → the output topic.
//
// `java OxkaStreamsWordCount <bootstrap> <application.id> <input> <output> <expected words>
// <state dir>`: runs the app until a read_committed consumer of the output has seen
// <expected words> distinct words, then prints one JSON object: the last count per word, the
// number of output records, the internal topics and the app's final state. Bounded: 100 s.

import java.time.Duration;
import java.util.*;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.LongDeserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;

public class OxkaStreamsWordCount {
    public static void main(String[] a) throws Exception {
        String bootstrap = a[0], appId = a[1], input = a[2], output = a[3];
        int expectWords = Integer.parseInt(a[4]);
        String stateDir = a[5];

        StreamsBuilder b = new StreamsBuilder();
        b.<String, String>stream(input)
                .flatMapValues(line -> Arrays.asList(line.toLowerCase(Locale.ROOT).split("\\W+")))
                .filter((k, w) -> !w.isEmpty())
                .groupBy((k, w) -> w, Grouped.with("by-word", Serdes.String(), Serdes.String()))
                .count(Materialized.as("word-counts"))
                .toStream()
                .to(output, Produced.with(Serdes.String(), Serdes.Long()));

        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        p.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class.getName());
        p.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class.getName());
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, "200");
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, "1");
        p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, "1");
        p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, "0");
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG), "10000");
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG), "1000");

        KafkaStreams streams = new KafkaStreams(b.build(), p);
        List<String> errors = Collections.synchronizedList(new ArrayList<>());
        streams.setUncaughtExceptionHandler(e -> {
            errors.add(e.toString());
            return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler
                    .StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.start();

        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        cp.put(ConsumerConfig.GROUP_ID_CONFIG, appId + "-reader");
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        cp.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, LongDeserializer.class.getName());
        Map<String, Long> counts = new TreeMap<>();
        int outputRecords = 0;
        String stateWhenDone;
        long deadline = System.currentTimeMillis() + 100_000;
        try (KafkaConsumer<String, Long> c = new KafkaConsumer<>(cp)) {
            c.subscribe(List.of(output));
            // Each word's count only grows; stop once every word is there and nothing new
            // arrived for 3 s (the last commit interval has passed).
            long quietSince = System.currentTimeMillis();
            while (System.currentTimeMillis() < deadline && errors.isEmpty()) {
                boolean any = false;
                for (ConsumerRecord<String, Long> r : c.poll(Duration.ofMillis(300))) {
                    counts.put(r.key(), r.value());
                    outputRecords++;
                    any = true;
                }
                if (any) quietSince = System.currentTimeMillis();
                if (counts.size() >= expectWords && System.currentTimeMillis() - quietSince > 3000) break;
            }
        }
        stateWhenDone = streams.state().toString();
        Map<String, Object> internal = new TreeMap<>();
        try (Admin ad = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap))) {
            for (String t : ad.listTopics().names().get()) {
                if (t.startsWith(appId + "-")) {
                    ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, t);
                    internal.put(t.substring(appId.length() + 1),
                            ad.describeConfigs(List.of(r)).all().get().get(r).get("cleanup.policy").value());
                }
            }
        }
        streams.close(Duration.ofSeconds(20));
        Map<String, Object> o = new LinkedHashMap<>();
        o.put("counts", counts);
        o.put("output_records", outputRecords);
        o.put("internal_topics", internal);
        o.put("state", stateWhenDone);
        o.put("errors", errors);
        System.out.println(OxkaJavaClient.Json.write(o));
        System.out.flush();
        System.exit(0);
    }
}
