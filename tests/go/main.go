// The Go client scenarios of tests/test_go_clients.py: franz-go (kgo, kadm) and IBM sarama.
//
// One scenario per run: `oxka-go-client <scenario> <bootstrap> args...`; it prints one JSON
// object on stdout that the Python test asserts on, or exits non-zero with the error. Every
// wait is bounded by a context deadline.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

type record struct {
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Key       string `json:"key"`
	Value     string `json:"value"`
}

func main() {
	if len(os.Args) < 3 {
		fail(fmt.Errorf("usage: oxka-go-client <scenario> <bootstrap> args..."))
	}
	scenario, bootstrap, args := os.Args[1], strings.Split(os.Args[2], ","), os.Args[3:]
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out any
	var err error
	switch scenario {
	case "franz-roundtrip":
		out, err = franzRoundtrip(ctx, bootstrap, args[0], atoi(args[1]))
	case "franz-group":
		out, err = franzGroup(ctx, bootstrap, args[0], args[1], atoi(args[2]))
	case "sarama-roundtrip":
		out, err = saramaRoundtrip(bootstrap, args[0], atoi(args[1]))
	case "sarama-group":
		out, err = saramaGroup(ctx, bootstrap, args[0], args[1], atoi(args[2]))
	default:
		err = fmt.Errorf("unknown scenario %q", scenario)
	}
	if err != nil {
		fail(err)
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "error:", err)
	os.Exit(1)
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		fail(err)
	}
	return n
}

// ---------------------------------------------------------------- franz-go
// franzRoundtrip: kadm creates the topic (2 partitions), an idempotent producer writes n keyed
// records to partition 0 and n to partition 1, a direct consumer reads them back from the start.
func franzRoundtrip(ctx context.Context, bootstrap []string, topic string, n int) (any, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	cr, err := adm.CreateTopic(ctx, 2, 1, map[string]*string{"retention.ms": kadm.StringPtr("3600000")}, topic)
	if err != nil {
		return nil, err
	}
	if cr.Err != nil {
		return nil, cr.Err
	}
	again, _ := adm.CreateTopic(ctx, 2, 1, nil, topic)
	var produced []record
	for p := int32(0); p < 2; p++ {
		for i := 0; i < n; i++ {
			r := &kgo.Record{Topic: topic, Partition: p, Key: []byte(fmt.Sprintf("k%d", i)),
				Value: []byte(fmt.Sprintf("p%d-v%d", p, i))}
			res := cl.ProduceSync(ctx, r)
			if err := res.FirstErr(); err != nil {
				return nil, err
			}
			got := res[0].Record
			produced = append(produced, record{got.Partition, got.Offset, string(got.Key), string(got.Value)})
		}
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(bootstrap...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, err
	}
	defer cons.Close()
	var consumed []record
	for len(consumed) < 2*n {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("consumed %d of %d: %w", len(consumed), 2*n, ctx.Err())
		}
		if errs := fs.Errors(); len(errs) > 0 {
			return nil, errs[0].Err
		}
		fs.EachRecord(func(r *kgo.Record) {
			consumed = append(consumed, record{r.Partition, r.Offset, string(r.Key), string(r.Value)})
		})
	}
	sortRecords(consumed)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	endOffsets := map[string]int64{}
	ends.Each(func(o kadm.ListedOffset) { endOffsets[strconv.Itoa(int(o.Partition))] = o.Offset })
	return map[string]any{"produced": produced, "consumed": consumed, "end_offsets": endOffsets,
		"create_again": errName(again.Err)}, nil
}

// franzGroup: two group members (cooperative-sticky, franz-go's default) consume n records
// produced to each partition after both joined; they commit; kadm reads the group back.
func franzGroup(ctx context.Context, bootstrap []string, topic, group string, n int) (any, error) {
	type member struct {
		cl      *kgo.Client
		records []record
		mu      sync.Mutex
		parts   map[int32]bool
	}
	members := make([]*member, 2)
	for i := range members {
		m := &member{parts: map[int32]bool{}}
		cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(),
			kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
				m.mu.Lock()
				for _, p := range a[topic] {
					m.parts[p] = true
				}
				m.mu.Unlock()
			}),
			kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
				m.mu.Lock()
				for _, p := range r[topic] {
					delete(m.parts, p)
				}
				m.mu.Unlock()
			}))
		if err != nil {
			return nil, err
		}
		m.cl = cl
		members[i] = m
	}
	assigned := func() int {
		total := 0
		for _, m := range members {
			m.mu.Lock()
			if len(m.parts) == 0 {
				m.mu.Unlock()
				return 0
			}
			total += len(m.parts)
			m.mu.Unlock()
		}
		return total
	}
	adm := kadm.NewClient(members[0].cl)
	tds, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return nil, err
	}
	partitions := len(tds[topic].Partitions)
	// poll both until the group is stable with every partition owned
	for assigned() != partitions {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("group never stable: %w", ctx.Err())
		}
		for _, m := range members {
			pctx, c := context.WithTimeout(ctx, 200*time.Millisecond)
			m.cl.PollFetches(pctx)
			c()
		}
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(bootstrap...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return nil, err
	}
	for p := 0; p < partitions; p++ {
		for i := 0; i < n; i++ {
			r := &kgo.Record{Topic: topic, Partition: int32(p), Value: []byte(fmt.Sprintf("p%d-%d", p, i))}
			if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
				return nil, err
			}
		}
	}
	prod.Close()
	total := 0
	for total < n*partitions {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("group consumed %d of %d: %w", total, n*partitions, ctx.Err())
		}
		for _, m := range members {
			pctx, c := context.WithTimeout(ctx, 200*time.Millisecond)
			fs := m.cl.PollFetches(pctx)
			c()
			fs.EachRecord(func(r *kgo.Record) {
				m.records = append(m.records, record{r.Partition, r.Offset, string(r.Key), string(r.Value)})
				total++
			})
			if err := m.cl.CommitUncommittedOffsets(ctx); err != nil {
				return nil, err
			}
		}
	}
	var ms []any
	for _, m := range members {
		var parts []int
		m.mu.Lock()
		for p := range m.parts {
			parts = append(parts, int(p))
		}
		m.mu.Unlock()
		sort.Ints(parts)
		sortRecords(m.records)
		ms = append(ms, map[string]any{"assignment": parts, "records": m.records})
	}
	dg, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return nil, err
	}
	state := dg[group].State
	for _, m := range members {
		m.cl.LeaveGroup()
		m.cl.Close()
	}
	admCl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap...))
	if err != nil {
		return nil, err
	}
	defer admCl.Close()
	adm = kadm.NewClient(admCl)
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return nil, err
	}
	committed := map[string]int64{}
	offs.Each(func(o kadm.OffsetResponse) { committed[strconv.Itoa(int(o.Partition))] = o.At })
	lag, err := adm.Lag(ctx, group)
	if err != nil {
		return nil, err
	}
	totalLag := lag[group].Lag.Total()
	return map[string]any{"members": ms, "state_while_consuming": state, "committed": committed,
		"total_lag": totalLag}, nil
}

// ---------------------------------------------------------------- sarama
func saramaConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V3_6_0_0
	c.Producer.Return.Successes = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Partitioner = sarama.NewManualPartitioner
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	c.Metadata.AllowAutoTopicCreation = false
	return c
}

// saramaRoundtrip: ClusterAdmin creates a 2-partition topic, a SyncProducer writes n records to
// each partition (with a header), a partition consumer reads partition 1 from the oldest offset.
func saramaRoundtrip(bootstrap []string, topic string, n int) (any, error) {
	cfg := saramaConfig()
	adm, err := sarama.NewClusterAdmin(bootstrap, cfg)
	if err != nil {
		return nil, err
	}
	defer adm.Close()
	if err := adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1}, false); err != nil {
		return nil, err
	}
	again := adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1}, false)
	// Apache Kafka's metadata cache learns of the topic a moment after CreateTopics returns.
	var md []*sarama.TopicMetadata
	for i := 0; ; i++ {
		md, err = adm.DescribeTopics([]string{topic})
		if err == nil && len(md) == 1 && md[0].Err == sarama.ErrNoError {
			break
		}
		if i == 100 {
			return nil, fmt.Errorf("describe %s: %v %v", topic, err, md)
		}
		time.Sleep(100 * time.Millisecond)
	}
	client, err := sarama.NewClient(bootstrap, cfg)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	prod, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		return nil, err
	}
	var produced []record
	for p := int32(0); p < 2; p++ {
		for i := 0; i < n; i++ {
			msg := &sarama.ProducerMessage{Topic: topic, Partition: p, Key: sarama.StringEncoder(fmt.Sprintf("k%d", i)),
				Value:   sarama.StringEncoder(fmt.Sprintf("p%d-v%d", p, i)),
				Headers: []sarama.RecordHeader{{Key: []byte("h"), Value: []byte(strconv.Itoa(i))}}}
			part, off, err := prod.SendMessage(msg)
			if err != nil {
				return nil, err
			}
			produced = append(produced, record{part, off, fmt.Sprintf("k%d", i), fmt.Sprintf("p%d-v%d", p, i)})
		}
	}
	prod.Close()
	cons, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return nil, err
	}
	defer cons.Close()
	pc, err := cons.ConsumePartition(topic, 1, sarama.OffsetOldest)
	if err != nil {
		return nil, err
	}
	defer pc.Close()
	var consumed []record
	var headers []string
	timeout := time.After(60 * time.Second)
	for len(consumed) < n {
		select {
		case m := <-pc.Messages():
			consumed = append(consumed, record{m.Partition, m.Offset, string(m.Key), string(m.Value)})
			for _, h := range m.Headers {
				headers = append(headers, string(h.Key)+"="+string(h.Value))
			}
		case e := <-pc.Errors():
			return nil, e
		case <-timeout:
			return nil, fmt.Errorf("consumed %d of %d", len(consumed), n)
		}
	}
	newest, err := client.GetOffset(topic, 0, sarama.OffsetNewest)
	if err != nil {
		return nil, err
	}
	oldest, err := client.GetOffset(topic, 0, sarama.OffsetOldest)
	if err != nil {
		return nil, err
	}
	return map[string]any{"produced": produced, "consumed_p1": consumed, "headers": headers,
		"partitions": len(md[0].Partitions), "create_again": errName(again),
		"p0_oldest": oldest, "p0_newest": newest}, nil
}

type saramaHandler struct {
	mu      sync.Mutex
	records []record
	claims  []int
	total   *int
	need    int
	done    chan struct{}
	once    *sync.Once
}

func (h *saramaHandler) Setup(s sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	h.claims = nil
	for _, p := range s.Claims()[""] {
		h.claims = append(h.claims, int(p))
	}
	for _, ps := range s.Claims() {
		for _, p := range ps {
			h.claims = append(h.claims, int(p))
		}
	}
	sort.Ints(h.claims)
	h.mu.Unlock()
	return nil
}
func (h *saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *saramaHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		h.mu.Lock()
		h.records = append(h.records, record{m.Partition, m.Offset, string(m.Key), string(m.Value)})
		h.mu.Unlock()
		s.MarkMessage(m, "")
		s.Commit()
		countMu.Lock()
		*h.total++
		if *h.total >= h.need {
			h.once.Do(func() { close(h.done) })
		}
		countMu.Unlock()
	}
	return nil
}

var countMu sync.Mutex

// saramaGroup: two ConsumerGroup members (range) on one topic; records are produced once both
// hold partitions; each marks and commits what it read; ClusterAdmin reads the offsets back.
func saramaGroup(ctx context.Context, bootstrap []string, topic, group string, n int) (any, error) {
	cfg := saramaConfig()
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	client, err := sarama.NewClient(bootstrap, cfg)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		return nil, err
	}
	total := 0
	done := make(chan struct{})
	once := &sync.Once{}
	need := n * len(parts)
	gctx, stop := context.WithCancel(ctx)
	defer stop()
	var handlers []*saramaHandler
	var groups []sarama.ConsumerGroup
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		g, err := sarama.NewConsumerGroup(bootstrap, group, cfg)
		if err != nil {
			return nil, err
		}
		h := &saramaHandler{total: &total, need: need, done: done, once: once}
		handlers = append(handlers, h)
		groups = append(groups, g)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for gctx.Err() == nil {
				if err := g.Consume(gctx, []string{topic}, h); err != nil && gctx.Err() == nil {
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	// both members hold partitions before anything is produced
	for {
		ok := 0
		covered := 0
		for _, h := range handlers {
			h.mu.Lock()
			if len(h.claims) > 0 {
				ok++
				covered += len(h.claims)
			}
			h.mu.Unlock()
		}
		if ok == 2 && covered == len(parts) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("sarama group never stable")
		case <-time.After(100 * time.Millisecond):
		}
	}
	prod, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		return nil, err
	}
	for _, p := range parts {
		for i := 0; i < n; i++ {
			if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: p,
				Value: sarama.StringEncoder(fmt.Sprintf("p%d-%d", p, i))}); err != nil {
				return nil, err
			}
		}
	}
	prod.Close()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, fmt.Errorf("sarama group consumed %d of %d", total, need)
	}
	var ms []any
	for _, h := range handlers {
		h.mu.Lock()
		sortRecords(h.records)
		ms = append(ms, map[string]any{"assignment": h.claims, "records": h.records})
		h.mu.Unlock()
	}
	stop()
	for _, g := range groups {
		g.Close()
	}
	wg.Wait()
	adm, err := sarama.NewClusterAdmin(bootstrap, cfg)
	if err != nil {
		return nil, err
	}
	defer adm.Close()
	offs, err := adm.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
	if err != nil {
		return nil, err
	}
	committed := map[string]int64{}
	for p, b := range offs.Blocks[topic] {
		committed[strconv.Itoa(int(p))] = b.Offset
	}
	desc, err := adm.DescribeConsumerGroups([]string{group})
	if err != nil {
		return nil, err
	}
	return map[string]any{"members": ms, "committed": committed, "state_after_close": desc[0].State}, nil
}

// ---------------------------------------------------------------- helpers
func sortRecords(rs []record) {
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].Partition != rs[j].Partition {
			return rs[i].Partition < rs[j].Partition
		}
		return rs[i].Offset < rs[j].Offset
	})
}

func errName(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
