/* A standalone librdkafka mock cluster on loopback, for benches/partitions_bench.py.
 *
 * librdkafka's mock broker (rdkafka_mock.c) is an in-memory Kafka broker that speaks the wire
 * protocol on real TCP sockets. rdkafka_performance can start one in-process
 * (-X test.mock.num.brokers=1), but then its topics get the mock's default 4 partitions and its
 * CPU is mixed with the client's. This program runs it as its own process instead: it creates
 * the topics named on the command line with the given partition counts, prints the bootstrap
 * address on stdout, and serves until stdin closes. The bench then measures it exactly like an
 * Oxka process (same client, same -b, broker CPU from /proc/PID/stat).
 *
 * Usage: mock_broker TOPIC:PARTITIONS [TOPIC:PARTITIONS ...]
 * Build: benches/build-librdkafka.sh, then see partitions_bench.py (cc ... librdkafka.a).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rdkafka.h"
#include "rdkafka_mock.h"

int main(int argc, char **argv) {
        char errstr[512];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_t *rk;
        rd_kafka_mock_cluster_t *mcluster;
        char buf[64];
        int i;

        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk) {
                fprintf(stderr, "rd_kafka_new: %s\n", errstr);
                return 1;
        }
        mcluster = rd_kafka_mock_cluster_new(rk, 1);
        if (!mcluster) {
                fprintf(stderr, "rd_kafka_mock_cluster_new failed\n");
                return 1;
        }
        for (i = 1; i < argc; i++) {
                char *colon = strrchr(argv[i], ':');
                rd_kafka_resp_err_t err;
                if (!colon) {
                        fprintf(stderr, "want TOPIC:PARTITIONS, got %s\n", argv[i]);
                        return 2;
                }
                *colon = '\0';
                err = rd_kafka_mock_topic_create(mcluster, argv[i], atoi(colon + 1), 1);
                if (err) {
                        fprintf(stderr, "topic %s: %s\n", argv[i], rd_kafka_err2str(err));
                        return 1;
                }
        }
        printf("%s\n", rd_kafka_mock_cluster_bootstraps(mcluster));
        fflush(stdout);
        /* Serve until the parent closes our stdin. */
        while (read(0, buf, sizeof(buf)) > 0)
                ;
        rd_kafka_mock_cluster_destroy(mcluster);
        rd_kafka_destroy(rk);
        return 0;
}
