'use strict'
// One long-running kafkajs group member for tests that kill it: prints a JSON line
// {"event": "join", "memberId", "assignment": [partitions]} on every GROUP_JOIN and
// {"event": "crash", ...} if the consumer crashes; runs until killed or `lifetimeMs` passes.
// args: {bootstrap, topic, group, sessionTimeout, lifetimeMs}
const { kafka } = require('./common')

const a = JSON.parse(process.argv[2])
const say = o => process.stdout.write(JSON.stringify(o) + '\n')
setTimeout(() => process.exit(3), a.lifetimeMs || 60000)

const consumer = kafka(a).consumer({
  groupId: a.group,
  sessionTimeout: a.sessionTimeout || 6000,
  rebalanceTimeout: 20000,
  heartbeatInterval: 300,
  maxWaitTimeInMs: 200,
})
consumer.on(consumer.events.GROUP_JOIN, e =>
  say({
    event: 'join',
    memberId: e.payload.memberId,
    assignment: (e.payload.memberAssignment[a.topic] || []).slice().sort((x, y) => x - y),
  })
)
consumer.on(consumer.events.CRASH, e => say({ event: 'crash', error: String(e.payload.error) }))

consumer
  .connect()
  .then(() => consumer.subscribe({ topics: [a.topic] }))
  .then(() => consumer.run({ eachMessage: async () => {} }))
  .catch(e => {
    process.stderr.write(`FAILED: ${e.stack}\n`)
    process.exit(1)
  })
