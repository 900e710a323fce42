'use strict'
// kafkajs admin: createTopics / listTopics / fetchTopicMetadata / deleteTopics and their errors.
// args: {bootstrap, prefix}
const { kafka, errorOf, main } = require('./common')

main(async a => {
  // no auto-creation from Metadata, so that unknown topics stay unknown
  const admin = kafka(a, { allowAutoTopicCreation: false }).admin()
  await admin.connect()
  const out = {}
  try {
    const t3 = `${a.prefix}-three`
    const t1 = `${a.prefix}-one`
    out.created = await admin.createTopics({
      topics: [
        { topic: t3, numPartitions: 3, configEntries: [{ name: 'retention.ms', value: '123456' }] },
        { topic: t1 },
      ],
      timeout: 10000,
    })
    // kafkajs answers `false` (not an error) when every topic already exists
    out.createdAgain = await admin.createTopics({ topics: [{ topic: t3, numPartitions: 3 }], timeout: 10000 })
    // an existing and a new topic: the new one is created, and kafkajs again answers `false`
    // because every per-topic error is TOPIC_ALREADY_EXISTS
    const t2 = `${a.prefix}-two`
    out.createMixed = await admin.createTopics({
      topics: [{ topic: t3 }, { topic: t2, numPartitions: 2 }],
      timeout: 10000,
    })
    // an existing and an invalid topic: kafkajs throws the aggregate of both per-topic errors
    out.createExistingAndInvalid = await errorOf(
      admin.createTopics({ topics: [{ topic: t3 }, { topic: `${a.prefix}-bad*name` }], timeout: 10000 })
    )
    out.createInvalidName = await errorOf(
      admin.createTopics({ topics: [{ topic: `${a.prefix}/bad name` }], timeout: 10000 })
    )
    out.createBadRf = await errorOf(
      admin.createTopics({ topics: [{ topic: `${a.prefix}-rf`, replicationFactor: 3 }], timeout: 10000 })
    )
    out.createBadPartitions = await errorOf(
      admin.createTopics({ topics: [{ topic: `${a.prefix}-p0`, numPartitions: 0 }], timeout: 10000 })
    )
    out.createBadConfig = await errorOf(
      admin.createTopics({
        topics: [{ topic: `${a.prefix}-cfg`, configEntries: [{ name: 'cleanup.policy', value: 'sideways' }] }],
        timeout: 10000,
      })
    )
    out.validateOnly = await admin.createTopics({
      topics: [{ topic: `${a.prefix}-validate`, numPartitions: 2 }],
      validateOnly: true,
      // kafkajs would otherwise wait for leaders of the topic it just did not create (Metadata
      // answers UNKNOWN_TOPIC_OR_PARTITION, which it does not retry) -- with Kafka as well
      waitForLeaders: false,
      timeout: 10000,
    })

    out.listed = (await admin.listTopics()).filter(t => t.startsWith(a.prefix)).sort()

    const md = await admin.fetchTopicMetadata({ topics: [t3, t1] })
    out.metadata = md.topics
      .map(t => ({
        name: t.name,
        partitions: t.partitions
          .map(p => ({
            partitionId: p.partitionId,
            partitionErrorCode: p.partitionErrorCode,
            leader: p.leader,
            replicas: p.replicas,
            isr: p.isr,
          }))
          .sort((x, y) => x.partitionId - y.partitionId),
      }))
      .sort((x, y) => (x.name < y.name ? -1 : 1))
    out.metadataUnknown = await errorOf(admin.fetchTopicMetadata({ topics: [`${a.prefix}-missing`] }))

    const cfg = await admin.describeConfigs({
      resources: [{ type: 2, name: t3, configNames: ['retention.ms'] }],
      includeSynonyms: false,
    })
    out.retentionMs = cfg.resources[0].configEntries.map(e => [e.configName, e.configValue])

    // createPartitions: grow 3 -> 5; shrinking or keeping the count is INVALID_PARTITIONS
    await admin.createPartitions({ topicPartitions: [{ topic: t3, count: 5 }], timeout: 10000 })
    out.partitionsAfterGrow = (await admin.fetchTopicMetadata({ topics: [t3] })).topics[0].partitions
      .map(p => p.partitionId)
      .sort((x, y) => x - y)
    out.shrink = await errorOf(
      admin.createPartitions({ topicPartitions: [{ topic: t3, count: 2 }], timeout: 10000 })
    )
    out.growUnknown = await errorOf(
      admin.createPartitions({ topicPartitions: [{ topic: `${a.prefix}-missing`, count: 2 }], timeout: 10000 })
    )
    const cluster = await admin.describeCluster()
    out.cluster = {
      brokers: cluster.brokers.map(b => ({ nodeId: b.nodeId, host: b.host, port: b.port })),
      controller: cluster.controller,
      clusterIdIsString: typeof cluster.clusterId === 'string' && cluster.clusterId.length > 0,
    }

    await admin.deleteTopics({ topics: [t1, t2], timeout: 10000 })
    out.listedAfterDelete = (await admin.listTopics()).filter(t => t.startsWith(a.prefix)).sort()
    // kafkajs retries UNKNOWN_TOPIC_OR_PARTITION: a client with a single retry keeps this short
    const impatient = kafka(a, { retry: { retries: 1, initialRetryTime: 100 } }).admin()
    await impatient.connect()
    try {
      out.deleteUnknown = await errorOf(
        impatient.deleteTopics({ topics: [`${a.prefix}-missing`], timeout: 5000 })
      )
    } finally {
      await impatient.disconnect()
    }
    return out
  } finally {
    await admin.disconnect()
  }
})
