//! oxka-client against a real `oxka` process: version negotiation, metadata, admin, produce,
//! fetch, list offsets, group coordinator, and its errors. The broker binary is `OXKA_BIN` or
//! `target/release/oxka`; without it the tests say so and pass without running (build it with
//! `cargo build --release -p oxka`).

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use oxka_client::kafka_protocol::messages::create_topics_request::{
    CreatableTopic, CreateTopicsRequest,
};
use oxka_client::kafka_protocol::messages::{ApiKey, SaslHandshakeRequest, TopicName};
use oxka_client::kafka_protocol::protocol::StrBytes;
use oxka_client::ops::{EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use oxka_client::records::{decode_records, encode_batch, ProducerRecord};
use oxka_client::{Client, ClientConfig, ClientError, Connection, CoordinatorType};

struct Broker {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn oxka_bin() -> Option<PathBuf> {
    let bin = std::env::var_os("OXKA_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/release/oxka")
        });
    bin.exists().then_some(bin)
}

fn start() -> Option<Broker> {
    let Some(bin) = oxka_bin() else {
        eprintln!("skipped: no oxka binary (set OXKA_BIN or cargo build --release -p oxka)");
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let (port, mport) = (free_port(), free_port());
    let child = Command::new(bin)
        .arg("serve")
        .args([
            "--override",
            &format!("listeners=PLAINTEXT://127.0.0.1:{port}"),
        ])
        .args([
            "--override",
            &format!("advertised.listeners=PLAINTEXT://127.0.0.1:{port}"),
        ])
        .args(["--override", &format!("log.dirs={}", dir.path().display())])
        .args([
            "--override",
            &format!("oxka.metrics.listen=127.0.0.1:{mport}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let broker = Broker {
        child,
        port,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "oxka did not listen within 20 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(broker)
}

fn config(port: u16) -> ClientConfig {
    // The first address refuses connections: the client moves on to the next.
    let mut c = ClientConfig::new(&format!("127.0.0.1:{},127.0.0.1:{port}", free_port()));
    c.request_timeout = Duration::from_secs(15);
    c
}

async fn create_topic(client: &mut Client, name: &str, partitions: i32) {
    let r = client
        .send(|_| {
            CreateTopicsRequest::default()
                .with_timeout_ms(10_000)
                .with_topics(vec![CreatableTopic::default()
                    .with_name(TopicName(StrBytes::from_string(name.to_owned())))
                    .with_num_partitions(partitions)
                    .with_replication_factor(-1)])
        })
        .await
        .unwrap();
    assert_eq!(r.topics[0].error_code, 0);
}

#[tokio::test]
async fn negotiates_versions_and_moves_records_through_a_real_broker() {
    let Some(broker) = start() else { return };
    let mut client = Client::connect(config(broker.port)).await.unwrap();
    assert_eq!(client.broker_ids(), vec![1]);
    // Fetch: broker serves up to 16, the client builds name-based requests up to 12.
    assert_eq!(client.any().version_for(ApiKey::Fetch), Some(12));

    create_topic(&mut client, "t", 2).await;
    let records: Vec<ProducerRecord> = (0..5)
        .map(|i| ProducerRecord {
            key: Some(format!("k{i}").into_bytes()),
            value: Some(format!("v{i}").into_bytes()),
            headers: vec![("h".into(), Some(b"x".to_vec()))],
            timestamp_ms: 1_000 + i,
        })
        .collect();
    let batch = Bytes::from(encode_batch(&records, "lz4").unwrap());
    assert_eq!(
        client
            .produce("t", 1, batch.clone(), -1, 10_000)
            .await
            .unwrap(),
        0
    );
    assert_eq!(client.produce("t", 1, batch, -1, 10_000).await.unwrap(), 5);

    let ends = client
        .list_offsets("t", &[0, 1], LATEST_TIMESTAMP)
        .await
        .unwrap();
    assert_eq!(ends, BTreeMap::from([(0, 0), (1, 10)]));
    let starts = client
        .list_offsets("t", &[1], EARLIEST_TIMESTAMP)
        .await
        .unwrap();
    assert_eq!(starts[&1], 0);
    assert_eq!(client.list_offsets("t", &[1], 1_003).await.unwrap()[&1], 3);

    let fetched = client
        .fetch("t", &BTreeMap::from([(1, 7)]), 100, 1 << 20)
        .await
        .unwrap();
    assert_eq!(fetched[0].high_watermark, 10);
    let (got, next) = decode_records(fetched[0].records.as_ref().unwrap(), 7).unwrap();
    assert_eq!(next, Some(10));
    let got: Vec<_> = got
        .iter()
        .map(|r| (r.offset, r.key.clone().unwrap(), r.headers.len()))
        .collect();
    assert_eq!(
        got,
        vec![
            (7, b"k2".to_vec(), 1),
            (8, b"k3".to_vec(), 1),
            (9, b"k4".to_vec(), 1)
        ]
    );

    assert_eq!(
        client
            .coordinator(CoordinatorType::Group, "g")
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn errors_carry_kafkas_names() {
    let Some(broker) = start() else { return };
    let mut client = Client::connect(config(broker.port)).await.unwrap();
    let e = client.leader("missing", 0).await.unwrap_err();
    assert_eq!(e.kafka_code(), Some(3));
    assert!(
        e.to_string().starts_with("UNKNOWN_TOPIC_OR_PARTITION"),
        "{e}"
    );
    let e = client
        .fetch("missing", &BTreeMap::from([(0, 0)]), 10, 1024)
        .await
        .unwrap_err();
    assert_eq!(e.kafka_code(), Some(3));

    create_topic(&mut client, "one", 1).await;
    let e = client
        .fetch("one", &BTreeMap::from([(0, 99)]), 10, 1024)
        .await
        .unwrap_err();
    assert!(e.to_string().starts_with("OFFSET_OUT_OF_RANGE"), "{e}");

    // An API the client does not build is refused locally, before anything is sent.
    let conn = client.any();
    let e = conn
        .send(|_| SaslHandshakeRequest::default())
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::UnsupportedVersion { .. }), "{e}");

    let e = Connection::connect(
        &format!("127.0.0.1:{}", free_port()),
        "t",
        Duration::from_secs(2),
        1 << 20,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ClientError::Io { .. }), "{e}");
    let e = Client::connect(ClientConfig::new(&format!("127.0.0.1:{}", free_port())))
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::NoBrokerReachable { .. }), "{e}");
}
