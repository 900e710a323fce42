'use strict'
// Committed offsets with a kafkajs group consumer, in two runs (the caller restarts the broker
// in between).
//   mode "commit": consume everything, commit chosen offsets (commitOffsets, autoCommit off),
//                  report what OffsetFetch answers, leave the group.
//   mode "resume": a new member of the same group starts at the committed offsets (fromBeginning
//                  is ignored for partitions with a commit), consumes the rest with autoCommit on,
//                  and reports the records it got and the offsets committed at the end.
// args: {bootstrap, topic (created and filled by the caller), group, mode, total (records in the
//        topic), commits: {partition: offset}}
const { kafka, waitFor, sleep, main } = require('./common')

main(async a => {
  const k = kafka(a)
  const admin = k.admin()
  await admin.connect()
  const autoCommit = a.mode === 'resume'
  const consumer = k.consumer({
    groupId: a.group,
    sessionTimeout: 10000,
    heartbeatInterval: 500,
    maxWaitTimeInMs: 200,
  })
  const got = []
  const fetched = async () => {
    const res = await admin.fetchOffsets({ groupId: a.group, topics: [a.topic] })
    return res[0].partitions
      .map(p => ({ partition: p.partition, offset: p.offset, metadata: p.metadata }))
      .sort((x, y) => x.partition - y.partition)
  }
  try {
    await consumer.connect()
    await consumer.subscribe({ topics: [a.topic], fromBeginning: true })
    await consumer.run({
      autoCommit,
      autoCommitInterval: 200,
      eachMessage: async ({ partition, message }) => {
        got.push({ partition, offset: Number(message.offset), value: message.value.toString() })
      },
    })
    const expected = a.mode === 'commit' ? a.total : a.total - Object.values(a.commits).reduce((s, o) => s + o, 0)
    await waitFor(() => got.length >= expected, `${expected} records`, 30000)
    await sleep(300) // nothing beyond them
    const out = { mode: a.mode }
    if (a.mode === 'commit') {
      await consumer.commitOffsets(
        Object.entries(a.commits).map(([partition, offset]) => ({
          topic: a.topic,
          partition: Number(partition),
          offset: String(offset),
        }))
      )
      out.committed = await fetched()
    } else {
      // autoCommit commits each processed batch: the committed offsets reach the end of the log
      out.committed = await waitFor(async () => {
        const c = await fetched()
        return c.every(p => Number(p.offset) === a.perPartition) && c
      }, 'auto-commit to the end', 15000, 100)
    }
    got.sort((x, y) => x.partition - y.partition || x.offset - y.offset)
    out.records = got
    return out
  } finally {
    await consumer.disconnect()
    await admin.disconnect()
  }
})
