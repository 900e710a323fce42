//! Broker metrics under the names Kafka's JMX exporter gives them, so existing dashboards and
//! alerts keep working (e.g. `kafka_server_brokertopicmetrics_messagesinpersec`).

use crate::Broker;

/// Records an append of `records` records and `bytes` bytes to `topic`.
pub fn produced(topic: &str, records: u64, bytes: usize) {
    let topic = topic.to_owned();
    metrics::counter!("kafka_server_brokertopicmetrics_messagesinpersec", "topic" => topic.clone())
        .increment(records);
    metrics::counter!("kafka_server_brokertopicmetrics_bytesinpersec", "topic" => topic)
        .increment(bytes as u64);
    metrics::counter!("kafka_server_brokertopicmetrics_messagesinpersec").increment(records);
    metrics::counter!("kafka_server_brokertopicmetrics_bytesinpersec").increment(bytes as u64);
}

/// Records `bytes` fetched from `topic`.
pub fn fetched(topic: &str, bytes: usize) {
    metrics::counter!("kafka_server_brokertopicmetrics_bytesoutpersec", "topic" => topic.to_owned())
        .increment(bytes as u64);
    metrics::counter!("kafka_server_brokertopicmetrics_bytesoutpersec").increment(bytes as u64);
}

/// Records one request of `api` and its total time.
pub fn request(api: &'static str, total_time_ms: f64) {
    metrics::counter!("kafka_network_requestmetrics_requestspersec", "request" => api).increment(1);
    metrics::histogram!("kafka_network_requestmetrics_totaltimems", "request" => api)
        .record(total_time_ms);
}

/// Gauges that describe the whole broker: partition counts and log sizes.
pub fn record_log_sizes(broker: &Broker) {
    let partitions = broker.partitions().all();
    metrics::gauge!("kafka_server_replicamanager_partitioncount").set(partitions.len() as f64);
    metrics::gauge!("kafka_server_replicamanager_leadercount").set(partitions.len() as f64);
    metrics::gauge!("kafka_server_replicamanager_underreplicatedpartitions").set(0.0);
    metrics::gauge!("kafka_controller_kafkacontroller_activecontrollercount").set(1.0);
    metrics::gauge!("kafka_controller_kafkacontroller_offlinepartitionscount").set(0.0);
    for p in partitions {
        if let Ok(size) = p.size_bytes() {
            metrics::gauge!("kafka_log_log_size", "topic" => p.topic.clone(), "partition" => p.index.to_string())
                .set(size as f64);
        }
    }
}
