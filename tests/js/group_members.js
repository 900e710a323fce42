'use strict'
// A kafkajs consumer group on one topic: 3 members, then a 4th joins, then one disconnects
// (LeaveGroup).  After each stage converges it records every member's assignment as the member
// sees it (GROUP_JOIN) and as the broker describes it (DescribeGroups), then produces one marker
// record per partition and records which member consumed it.
// args: {bootstrap, topic (created by the caller), group, partitions}
const { AssignerProtocol } = require('kafkajs')
const { kafka, waitFor, sleep, main } = require('./common')

main(async a => {
  const k = kafka(a)
  const admin = k.admin()
  const producer = k.producer({ allowAutoTopicCreation: false })
  await admin.connect()
  await producer.connect()

  const members = [] // {name, consumer, assignment, memberId, consumed: [{partition, value}]}
  const addMember = async name => {
    const m = { name, assignment: null, memberId: null, joins: 0, consumed: [] }
    m.consumer = k.consumer({
      groupId: a.group,
      sessionTimeout: 10000,
      rebalanceTimeout: 20000,
      heartbeatInterval: 300,
      maxWaitTimeInMs: 200,
    })
    m.consumer.on(m.consumer.events.GROUP_JOIN, e => {
      m.joins += 1
      m.memberId = e.payload.memberId
      m.assignment = (e.payload.memberAssignment[a.topic] || []).slice().sort((x, y) => x - y)
    })
    await m.consumer.connect()
    await m.consumer.subscribe({ topics: [a.topic], fromBeginning: false })
    await m.consumer.run({
      eachMessage: async ({ partition, message }) => {
        m.consumed.push({ partition, value: message.value.toString() })
      },
    })
    members.push(m)
    return m
  }

  const all = [...Array(a.partitions).keys()]
  // converged: every member's own view has `sizes` partitions, no partition twice, all covered,
  // and the broker describes the same assignment for a Stable group of exactly these members
  const converged = async sizes => {
    const views = members.map(m => m.assignment)
    if (views.some(v => v === null)) return false
    if (!views.every(v => sizes.includes(v.length))) return false
    const flat = [].concat(...views).sort((x, y) => x - y)
    if (JSON.stringify(flat) !== JSON.stringify(all)) return false
    const { groups } = await admin.describeGroups([a.group])
    const g = groups[0]
    if (g.state !== 'Stable' || g.members.length !== members.length) return false
    const described = {}
    for (const dm of g.members) {
      const dec = AssignerProtocol.MemberAssignment.decode(dm.memberAssignment)
      described[dm.memberId] = ((dec && dec.assignment[a.topic]) || []).slice().sort((x, y) => x - y)
    }
    return members.every(m => JSON.stringify(described[m.memberId]) === JSON.stringify(m.assignment))
      ? g
      : false
  }

  const stages = []
  const record = async (label, sizes) => {
    const t0 = Date.now()
    const g = await waitFor(() => converged(sizes), `${label}: assignment sizes ${sizes}`, 40000, 100)
    const convergeMs = Date.now() - t0
    // one marker per partition; the member owning the partition must be the one consuming it
    for (const m of members) m.consumed = []
    await producer.send({
      topic: a.topic,
      messages: all.map(p => ({ partition: p, value: `${label}-${p}` })),
    })
    const mine = m => m.consumed.filter(c => c.value.startsWith(`${label}-`))
    await waitFor(
      () => members.reduce((n, m) => n + mine(m).length, 0) >= all.length,
      `${label}: markers consumed`,
      20000
    )
    await sleep(300) // a duplicate delivery would show up here
    stages.push({
      label,
      convergeMs,
      state: g.state,
      protocol: g.protocol,
      protocolType: g.protocolType,
      members: members.map(m => ({
        name: m.name,
        memberId: m.memberId,
        assignment: m.assignment,
        markers: mine(m)
          .map(c => c.partition)
          .sort((x, y) => x - y),
      })),
    })
  }

  try {
    await Promise.all(['m1', 'm2', 'm3'].map(addMember))
    await record('three', [2])
    await addMember('m4')
    await record('four', [1, 2])
    // the member that owns partition 0 leaves (LeaveGroup): the other three take its partitions
    const leaving = members.find(m => m.assignment.includes(0))
    const leftPartitions = leaving.assignment
    members.splice(members.indexOf(leaving), 1)
    await leaving.consumer.disconnect()
    await record('left', [2])
    return { stages, left: { name: leaving.name, partitions: leftPartitions } }
  } finally {
    await Promise.all(members.map(m => m.consumer.disconnect()))
    await producer.disconnect()
    await admin.disconnect()
  }
})
