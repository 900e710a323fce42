//! Broker metrics under the names existing Kafka dashboards and alert rules query: the JMX
//! exporter's (`kafka_server_replicamanager_underreplicatedpartitions`), Strimzi's rule set
//! (`kafka_server_brokertopicmetrics_bytesin_total{topic}`) and kafka_exporter's
//! (`kafka_consumergroup_lag{consumergroup,topic,partition}`).
//!
//! Invariant: a family is either per topic (every series has a `topic` label) or broker-wide
//! (no labels), never both, so `sum()` over a family never counts a byte twice. Per-topic
//! throughput is in Strimzi's `*_total{topic}` families, broker-wide throughput in the JMX
//! exporter's `*persec` families. Counters are recorded where the work happens; the gauges that
//! describe broker state are computed at scrape time by [`record_broker_state`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::Broker;

/// Per-topic throughput (Strimzi's names).
const MESSAGES_IN_TOPIC: &str = "kafka_server_brokertopicmetrics_messagesin_total";
const BYTES_IN_TOPIC: &str = "kafka_server_brokertopicmetrics_bytesin_total";
const BYTES_OUT_TOPIC: &str = "kafka_server_brokertopicmetrics_bytesout_total";
/// Broker-wide throughput (the JMX exporter's names for the topic-less MBeans).
const MESSAGES_IN: &str = "kafka_server_brokertopicmetrics_messagesinpersec";
const BYTES_IN: &str = "kafka_server_brokertopicmetrics_bytesinpersec";
const BYTES_OUT: &str = "kafka_server_brokertopicmetrics_bytesoutpersec";

/// Registers the HELP text of every family (call once, after installing the recorder).
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        MESSAGES_IN_TOPIC,
        "Records appended to the topic (BrokerTopicMetrics MessagesInPerSec, per topic)."
    );
    describe_counter!(BYTES_IN_TOPIC, "Bytes of record batches appended to the topic (BrokerTopicMetrics BytesInPerSec, per topic).");
    describe_counter!(BYTES_OUT_TOPIC, "Bytes of record batches sent to consumers of the topic (BrokerTopicMetrics BytesOutPerSec, per topic).");
    describe_counter!(
        MESSAGES_IN,
        "Records appended to all topics (BrokerTopicMetrics MessagesInPerSec, broker-wide)."
    );
    describe_counter!(BYTES_IN, "Bytes of record batches appended to all topics (BrokerTopicMetrics BytesInPerSec, broker-wide).");
    describe_counter!(BYTES_OUT, "Bytes of record batches sent to consumers of all topics (BrokerTopicMetrics BytesOutPerSec, broker-wide).");
    describe_counter!(
        "kafka_network_requestmetrics_requestspersec",
        "Requests handled, by API (RequestMetrics RequestsPerSec)."
    );
    describe_counter!(
        "kafka_network_requestmetrics_requests_total",
        "Requests handled, by API (Strimzi's name for RequestMetrics RequestsPerSec)."
    );
    describe_histogram!("kafka_network_requestmetrics_totaltimems", "Time from reading a request to writing its response, in milliseconds, by API (RequestMetrics TotalTimeMs).");
    describe_gauge!(
        "kafka_server_replicamanager_partitioncount",
        "Partitions hosted by this broker."
    );
    describe_gauge!(
        "kafka_server_replicamanager_leadercount",
        "Partitions this broker leads."
    );
    describe_gauge!(
        "kafka_server_replicamanager_underreplicatedpartitions",
        "Led partitions whose ISR is smaller than their replica set ."
    );
    describe_gauge!("kafka_server_replicamanager_underminisrpartitioncount", "Led partitions whose ISR is below min.insync.replicas: acks=all produce to them fails with NOT_ENOUGH_REPLICAS.");
    describe_gauge!(
        "kafka_server_replicamanager_atminisrpartitioncount",
        "Led partitions whose ISR size equals min.insync.replicas."
    );
    describe_gauge!(
        "kafka_controller_kafkacontroller_activecontrollercount",
        "1 on the active controller."
    );
    describe_gauge!(
        "kafka_controller_kafkacontroller_offlinepartitionscount",
        "Partitions without a leader (reported by the active controller)."
    );
    describe_gauge!(
        "kafka_log_logmanager_offlinelogdirectorycount",
        "Configured log dirs that are not a readable directory right now."
    );
    describe_gauge!(
        "kafka_log_log_size",
        "Bytes of the partition's log segments on disk."
    );
    describe_gauge!("kafka_log_log_size_limit", "The most bytes the partition's log may hold: retention.bytes when the topic sets a size limit with cleanup.policy=delete, else the capacity of the filesystem holding it.");
    describe_gauge!(
        "kafka_log_log_logendoffset",
        "The partition's log end offset."
    );
    describe_gauge!(
        "kafka_log_log_logstartoffset",
        "The partition's log start offset."
    );
    describe_gauge!(
        "kafka_topic_partition_current_offset",
        "The partition's high watermark (kafka_exporter's name)."
    );
    describe_gauge!(
        "kafka_topic_partition_oldest_offset",
        "The partition's log start offset (kafka_exporter's name)."
    );
    describe_gauge!(
        "kafka_consumergroup_current_offset",
        "The group's committed offset for the partition (kafka_exporter's name)."
    );
    describe_gauge!(
        "kafka_consumergroup_lag",
        "High watermark minus the group's committed offset, in records (kafka_exporter's name)."
    );
    describe_gauge!(
        "kafka_consumergroup_lag_sum",
        "The group's lag summed over the topic's partitions (kafka_exporter's name)."
    );
    describe_gauge!(
        "oxka_log_dir_capacity_bytes",
        "Size of the filesystem holding the log dir."
    );
    describe_gauge!(
        "oxka_log_dir_usable_bytes",
        "Bytes still available to the broker on the filesystem holding the log dir."
    );
}

/// Records an append of `records` records and `bytes` bytes to `topic`.
pub fn produced(topic: &str, records: u64, bytes: usize) {
    let topic = topic.to_owned();
    metrics::counter!(MESSAGES_IN_TOPIC, "topic" => topic.clone()).increment(records);
    metrics::counter!(BYTES_IN_TOPIC, "topic" => topic).increment(bytes as u64);
    metrics::counter!(MESSAGES_IN).increment(records);
    metrics::counter!(BYTES_IN).increment(bytes as u64);
}

/// Records `bytes` fetched from `topic` (its name, also when the request named it by id).
pub fn fetched(topic: &str, bytes: usize) {
    metrics::counter!(BYTES_OUT_TOPIC, "topic" => topic.to_owned()).increment(bytes as u64);
    metrics::counter!(BYTES_OUT).increment(bytes as u64);
}

/// Records one request of `api` and its total time.
pub fn request(api: &'static str, total_time_ms: f64) {
    metrics::counter!("kafka_network_requestmetrics_requestspersec", "request" => api).increment(1);
    metrics::counter!("kafka_network_requestmetrics_requests_total", "request" => api).increment(1);
    metrics::histogram!("kafka_network_requestmetrics_totaltimems", "request" => api)
        .record(total_time_ms);
}

/// Sets the gauges that describe the broker's state: partition and ISR counts, log sizes and
/// limits, offsets, consumer-group lag, log dir health. Blocking (reads every partition).
pub fn record_broker_state(broker: &Broker) {
    let partitions = broker.partitions().all();
    let image = broker.image();
    let log_dirs = &broker.config.log_dirs;
    let capacity: HashMap<&Path, (u64, u64)> = log_dirs
        .iter()
        .filter_map(|d| filesystem_bytes(d).map(|c| (d.as_path(), c)))
        .collect();
    let offline_dirs = log_dirs
        .iter()
        .filter(|d| std::fs::read_dir(d).is_err())
        .count();
    for (dir, (total, usable)) in &capacity {
        let dir = dir.display().to_string();
        metrics::gauge!("oxka_log_dir_capacity_bytes", "log_dir" => dir.clone()).set(*total as f64);
        metrics::gauge!("oxka_log_dir_usable_bytes", "log_dir" => dir).set(*usable as f64);
    }
    let mut under_min_isr = 0usize;
    let mut at_min_isr = 0usize;
    let mut led = 0usize;
    let mut under_replicated = 0usize;
    let mut high_watermarks: HashMap<(&str, i32), i64> = HashMap::new();
    for p in &partitions {
        let overrides = image.topic_overrides(&p.topic);
        let number = |name: &str| {
            broker
                .config
                .topic_config_value(overrides, name)
                .trim()
                .parse::<i64>()
                .ok()
        };
        if let Some((isr, replicas)) = p.isr_len() {
            led += 1;
            under_replicated += usize::from(isr < replicas);
            let min = number("min.insync.replicas").unwrap_or(1).max(1) as usize;
            under_min_isr += usize::from(isr < min);
            at_min_isr += usize::from(isr == min);
        }
        let labels = [
            ("topic", p.topic.clone()),
            ("partition", p.index.to_string()),
        ];
        let Ok(size) = p.size_bytes() else { continue };
        metrics::gauge!("kafka_log_log_size", &labels).set(size as f64);
        let deletes = broker
            .config
            .topic_config_value(overrides, "cleanup.policy")
            .split(',')
            .any(|v| v.trim() == "delete");
        let retention_bytes = number("retention.bytes").filter(|b| *b > 0 && deletes);
        let disk = p
            .with_log(|log| Ok(log.dir().parent().map(Path::to_path_buf)))
            .ok()
            .flatten()
            .and_then(|parent: PathBuf| {
                capacity
                    .iter()
                    .find(|(d, _)| **d == parent.as_path())
                    .map(|(_, (total, _))| *total)
            });
        if let Some(limit) = retention_bytes.map(|b| b as u64).or(disk) {
            metrics::gauge!("kafka_log_log_size_limit", &labels).set(limit as f64);
        }
        if let (Ok(offsets), Ok(end)) = (p.offsets(), p.with_log(|log| Ok(log.log_end_offset()))) {
            metrics::gauge!("kafka_log_log_logendoffset", &labels).set(end as f64);
            metrics::gauge!("kafka_log_log_logstartoffset", &labels)
                .set(offsets.log_start_offset as f64);
            metrics::gauge!("kafka_topic_partition_current_offset", &labels)
                .set(offsets.high_watermark as f64);
            metrics::gauge!("kafka_topic_partition_oldest_offset", &labels)
                .set(offsets.log_start_offset as f64);
            high_watermarks.insert((p.topic.as_str(), p.index), offsets.high_watermark);
        }
    }
    let count = partitions.len() as f64;
    metrics::gauge!("kafka_server_replicamanager_partitioncount").set(count);
    metrics::gauge!("kafka_server_replicamanager_leadercount").set(led as f64);
    metrics::gauge!("kafka_server_replicamanager_underreplicatedpartitions")
        .set(under_replicated as f64);
    metrics::gauge!("kafka_server_replicamanager_underminisrpartitioncount")
        .set(under_min_isr as f64);
    metrics::gauge!("kafka_server_replicamanager_atminisrpartitioncount").set(at_min_isr as f64);
    let active = broker.controller_id() == broker.config.node_id;
    let offline = if active {
        image
            .topics
            .values()
            .flat_map(|t| &t.partitions)
            .filter(|p| p.leader < 0)
            .count()
    } else {
        0
    };
    metrics::gauge!("kafka_controller_kafkacontroller_activecontrollercount")
        .set(f64::from(u8::from(active)));
    metrics::gauge!("kafka_controller_kafkacontroller_offlinepartitionscount").set(offline as f64);
    metrics::gauge!("kafka_log_logmanager_offlinelogdirectorycount").set(offline_dirs as f64);

    let mut lag_sums: HashMap<(String, String), i64> = HashMap::new();
    for (group, topic, partition, offset) in broker.groups.committed_offsets() {
        let labels = [
            ("consumergroup", group.clone()),
            ("topic", topic.clone()),
            ("partition", partition.to_string()),
        ];
        metrics::gauge!("kafka_consumergroup_current_offset", &labels).set(offset as f64);
        let Some(hw) = high_watermarks.get(&(topic.as_str(), partition)) else {
            continue;
        };
        let lag = (hw - offset).max(0);
        metrics::gauge!("kafka_consumergroup_lag", &labels).set(lag as f64);
        *lag_sums.entry((group, topic)).or_default() += lag;
    }
    for ((group, topic), lag) in lag_sums {
        metrics::gauge!("kafka_consumergroup_lag_sum", "consumergroup" => group, "topic" => topic)
            .set(lag as f64);
    }
}

/// The filesystem holding `dir`: (total bytes, bytes available to unprivileged users).
fn filesystem_bytes(dir: &Path) -> Option<(u64, u64)> {
    let s = nix::sys::statvfs::statvfs(dir).ok()?;
    let fragment = s.fragment_size() as u64;
    Some((
        (s.blocks() as u64).saturating_mul(fragment),
        (s.blocks_available() as u64).saturating_mul(fragment),
    ))
}
