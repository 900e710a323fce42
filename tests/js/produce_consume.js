'use strict'
// kafkajs producer (keys, headers, explicit timestamps, null values, gzip, sendBatch) and a consumer
// reading the topic from the beginning.
// args: {bootstrap, topic (2 partitions, created by the caller), group}
const { CompressionTypes } = require('kafkajs')
const { kafka, waitFor, errorOf, main } = require('./common')

const str = b => (b === null || b === undefined ? null : b.toString('utf8'))

main(async a => {
  const k = kafka(a)
  const out = {}
  const producer = k.producer({ allowAutoTopicCreation: false })
  await producer.connect()
  try {
    // partition 0: five keyed records with headers (one repeated header key) and explicit timestamps
    const ts0 = 1700000000000
    const r0 = await producer.send({
      topic: a.topic,
      acks: -1,
      messages: [0, 1, 2, 3, 4].map(i => ({
        partition: 0,
        key: `k${i}`,
        value: `v${i}`,
        timestamp: String(ts0 + i),
        headers: { h: `hv${i}`, multi: ['x', 'y'] },
      })),
    })
    // partition 1: a gzip batch of five records, then a null-key and a null-value record
    const r1 = await producer.send({
      topic: a.topic,
      compression: CompressionTypes.GZIP,
      messages: [0, 1, 2, 3, 4].map(i => ({ partition: 1, key: `g${i}`, value: `gzip-${i}-`.repeat(20) })),
    })
    const r2 = await producer.sendBatch({
      topicMessages: [
        { topic: a.topic, messages: [{ partition: 1, key: null, value: 'no-key' }] },
        { topic: a.topic, messages: [{ partition: 1, key: 'tomb', value: null }] },
      ],
    })
    const meta = rs => rs.map(r => ({ partition: r.partition, errorCode: r.errorCode, baseOffset: r.baseOffset }))
    out.sendResults = [meta(r0), meta(r1), meta(r2)]
  } finally {
    await producer.disconnect()
  }

  const consumer = k.consumer({ groupId: a.group, sessionTimeout: 10000, heartbeatInterval: 500, maxWaitTimeInMs: 200 })
  await consumer.connect()
  const got = []
  try {
    await consumer.subscribe({ topics: [a.topic], fromBeginning: true })
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        const headers = {}
        for (const [hk, hv] of Object.entries(message.headers || {})) {
          headers[hk] = Array.isArray(hv) ? hv.map(str) : str(hv)
        }
        got.push({
          partition,
          offset: message.offset,
          key: str(message.key),
          value: str(message.value),
          timestamp: message.timestamp,
          headers,
        })
      },
    })
    await waitFor(() => got.length >= 12, '12 records consumed', 30000)
    // nothing more arrives
    await new Promise(resolve => setTimeout(resolve, 300))
  } finally {
    await consumer.disconnect()
  }
  got.sort((x, y) => x.partition - y.partition || Number(x.offset) - Number(y.offset))
  out.consumed = got

  // ListOffsets through the admin: earliest/latest, by timestamp, and after DeleteRecords
  const admin = k.admin()
  await admin.connect()
  try {
    const norm = l => l.map(p => ({ ...p })).sort((x, y) => x.partition - y.partition)
    out.topicOffsets = norm(await admin.fetchTopicOffsets(a.topic))
    // partition 0 has timestamps ts0..ts0+4: the first offset with timestamp >= ts0+2 is 2;
    // partition 1 has only newer records, so its first one (0) answers
    out.offsetsByTimestamp = norm(await admin.fetchTopicOffsetsByTimestamp(a.topic, 1700000000002))
    await admin.deleteTopicRecords({ topic: a.topic, partitions: [{ partition: 0, offset: '3' }] })
    out.topicOffsetsAfterDelete = norm(await admin.fetchTopicOffsets(a.topic))
    out.deleteBeyondEnd = await errorOf(
      admin.deleteTopicRecords({ topic: a.topic, partitions: [{ partition: 1, offset: '100' }] })
    )
  } finally {
    await admin.disconnect()
  }
  return out
})
