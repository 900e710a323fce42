'use strict'
// kafkajs admin for groups: fetchOffsets, setOffsets/resetOffsets, describeGroups, listGroups,
// deleteGroups, with a live member and after it left.
// args: {bootstrap, topic (3 partitions, 5 records each, created and filled by the caller), group}
const { AssignerProtocol } = require('kafkajs')
const { kafka, waitFor, errorOf, main } = require('./common')

main(async a => {
  const k = kafka(a, { clientId: 'oxka-group-admin' })
  const admin = k.admin()
  await admin.connect()
  const out = {}
  const offsets = async (opts = {}) => {
    const res = await admin.fetchOffsets({ groupId: a.group, topics: [a.topic], ...opts })
    return res.map(t => ({
      topic: t.topic,
      partitions: t.partitions
        .map(p => [p.partition, p.offset, p.metadata])
        .sort((x, y) => x[0] - y[0]),
    }))
  }
  const describe = async () => {
    const { groups } = await admin.describeGroups([a.group])
    return groups.map(g => ({
      groupId: g.groupId,
      errorCode: g.errorCode,
      state: g.state,
      protocolType: g.protocolType,
      protocol: g.protocol,
      members: g.members.map(m => {
        const asg = AssignerProtocol.MemberAssignment.decode(m.memberAssignment)
        const meta = AssignerProtocol.MemberMetadata.decode(m.memberMetadata)
        return {
          clientId: m.clientId,
          clientHost: m.clientHost,
          assignment: asg ? asg.assignment : null,
          subscription: meta ? meta.topics : null,
        }
      }),
    }))[0]
  }

  try {
    out.beforeAnyCommit = await offsets()
    out.unknownGroupDescribed = (await admin.describeGroups([`${a.group}-never`])).groups.map(g => ({
      groupId: g.groupId,
      errorCode: g.errorCode,
      state: g.state,
      members: g.members.length,
    }))

    const consumer = k.consumer({ groupId: a.group, sessionTimeout: 10000, heartbeatInterval: 500, maxWaitTimeInMs: 200 })
    let n = 0
    await consumer.connect()
    try {
      await consumer.subscribe({ topics: [a.topic], fromBeginning: true })
      await consumer.run({ autoCommit: false, eachMessage: async () => { n += 1 } })
      await waitFor(() => n >= 15, '15 records', 30000)
      await consumer.commitOffsets([0, 1, 2].map(p => ({ topic: a.topic, partition: p, offset: String(5 - p) })))
      out.committed = await offsets()
      out.describedLive = await waitFor(async () => {
        const d = await describe()
        return d.state === 'Stable' && d
      }, 'Stable group', 10000)
      out.listedLive = (await admin.listGroups()).groups.filter(g => g.groupId === a.group)
      out.deleteLive = await errorOf(admin.deleteGroups([a.group]))
      out.resetLive = await errorOf(admin.resetOffsets({ groupId: a.group, topic: a.topic, earliest: true }))
    } finally {
      await consumer.disconnect()
    }
    out.describedEmpty = await describe()

    // setOffsets: kafkajs joins the group with a throw-away member whose partitions are all
    // paused, seeks and commits.  Each call takes ~5 s: that member's fetch loop sleeps its
    // maxWaitTime (5 s, not configurable here) before the FETCH event that stops it.
    await admin.setOffsets({
      groupId: a.group,
      topic: a.topic,
      partitions: [
        { partition: 0, offset: '1' },
        { partition: 1, offset: '2' },
      ],
    })
    out.afterSetOffsets = await offsets()
    // resetOffsets commits the logical offset -2 (earliest) or -1 (latest) for every partition;
    // fetchOffsets(resolveOffsets) turns them into real offsets and commits those
    await admin.resetOffsets({ groupId: a.group, topic: a.topic, earliest: true })
    out.afterResetEarliest = await offsets()
    out.resolvedEarliest = await offsets({ resolveOffsets: true })
    out.afterResolve = await offsets()

    out.listedEmpty = (await admin.listGroups()).groups.filter(g => g.groupId === a.group)
    out.deleted = await admin.deleteGroups([a.group])
    out.listedAfterDelete = (await admin.listGroups()).groups.filter(g => g.groupId === a.group)
    out.afterDelete = await offsets()
    out.deleteAgain = await errorOf(admin.deleteGroups([a.group]))
    return out
  } finally {
    await admin.disconnect()
  }
})
