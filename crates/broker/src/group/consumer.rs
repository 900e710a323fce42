//! The next-generation consumer group protocol (KIP-848), as a pure core: no I/O, no clock,
//! no runtime. The broker computes the assignment; members reconcile towards it one
//! ConsumerGroupHeartbeat at a time.
//!
//! Kafka's model, kept here:
//! - The **group epoch** is bumped whenever membership, a member's subscription or the
//!   subscribed topics' partition counts change. When it is ahead of the **assignment epoch**,
//!   the next heartbeat computes a new **target assignment** with a server-side assignor
//!   (`uniform`, sticky and balanced, or `range`).
//! - Each member reconciles from its current assignment towards its target: partitions it
//!   must give up are revoked first (the member stays at its epoch in `UnrevokedPartitions`
//!   until its heartbeat no longer reports them); partitions still owned by another member
//!   are held back (`UnreleasedPartitions`) until released; then the member is `Stable` at
//!   the assignment epoch. A partition is never owned by two members at once.
//! - Members are fenced (removed, group epoch bumped) when their session times out
//!   (`group.consumer.session.timeout.ms`) or when they do not revoke within their rebalance
//!   timeout. Static members (`group.instance.id`) that leave with epoch -2 keep their
//!   assignment until a new incarnation with the same instance id takes it over.
//!
//! Topics are named, not identified, in here: the shell turns topic ids into names and back.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Kafka error codes of this protocol.
pub mod code {
    pub const NONE: i16 = 0;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const INVALID_REQUEST: i16 = 42;
    pub const GROUP_ID_NOT_FOUND: i16 = 69;
    pub const GROUP_MAX_SIZE_REACHED: i16 = 81;
    pub const FENCED_INSTANCE_ID: i16 = 82;
    pub const FENCED_MEMBER_EPOCH: i16 = 110;
    pub const UNRELEASED_INSTANCE_ID: i16 = 111;
    pub const UNSUPPORTED_ASSIGNOR: i16 = 112;
    pub const STALE_MEMBER_EPOCH: i16 = 113;
    pub const INVALID_REGULAR_EXPRESSION: i16 = 130;
}

/// A member leaves for good with this epoch.
pub const LEAVE_EPOCH: i32 = -1;
/// A static member leaves temporarily (keeps its assignment) with this epoch.
pub const LEAVE_STATIC_EPOCH: i32 = -2;

/// Partitions by topic name.
pub type Assignment = BTreeMap<String, BTreeSet<i32>>;

/// Topic name → partition count, for every topic a subscription may name.
pub type TopicCounts = BTreeMap<String, i32>;

/// Broker settings the protocol obeys (`group.consumer.*`).
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub session_timeout_ms: i64,
    pub heartbeat_interval_ms: i32,
    pub max_size: usize,
    /// Server-side assignors by name; the first is the default.
    pub assignors: Vec<String>,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 5_000,
            max_size: i32::MAX as usize,
            assignors: vec!["uniform".to_owned(), "range".to_owned()],
        }
    }
}

/// The group's state, as ListGroups and ConsumerGroupDescribe name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerGroupState {
    Empty,
    Assigning,
    Reconciling,
    Stable,
}

impl ConsumerGroupState {
    pub fn name(self) -> &'static str {
        match self {
            ConsumerGroupState::Empty => "Empty",
            ConsumerGroupState::Assigning => "Assigning",
            ConsumerGroupState::Reconciling => "Reconciling",
            ConsumerGroupState::Stable => "Stable",
        }
    }
}

/// Where a member is in reconciling towards its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    Stable,
    UnrevokedPartitions,
    UnreleasedPartitions,
}

/// One ConsumerGroupHeartbeat, as the core needs it. `None` fields are "unchanged".
#[derive(Debug, Clone, Default)]
pub struct Heartbeat {
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    /// -1 = unchanged.
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: Option<Vec<String>>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    /// The partitions the member owns, if it reported them.
    pub owned: Option<Assignment>,
    pub client_id: String,
    pub client_host: String,
    /// ConsumerGroupHeartbeat v1+: the client generates its member id (KIP-1082).
    pub member_id_required: bool,
    /// The id a joining member gets when it sent none (v0).
    pub new_member_id: String,
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeartbeatResult {
    pub error: i16,
    pub message: Option<String>,
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// The member's current assignment, when the member needs it.
    pub assignment: Option<Assignment>,
}

impl HeartbeatResult {
    fn error(error: i16, message: impl Into<String>) -> HeartbeatResult {
        HeartbeatResult {
            error,
            message: Some(message.into()),
            ..HeartbeatResult::default()
        }
    }
}

/// A member of the group.
#[derive(Debug, Clone)]
pub struct Member {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub state: MemberState,
    pub assigned: Assignment,
    pub pending_revocation: Assignment,
    session_deadline_ms: i64,
    revocation_deadline_ms: Option<i64>,
}

impl Member {
    /// A member that has just joined: epoch 0, nothing assigned.
    pub fn new(member_id: &str) -> Member {
        Member {
            member_id: member_id.to_owned(),
            instance_id: None,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            subscribed_topic_names: Vec::new(),
            subscribed_topic_regex: None,
            server_assignor: None,
            rebalance_timeout_ms: 0,
            member_epoch: 0,
            previous_member_epoch: -1,
            state: MemberState::Stable,
            assigned: Assignment::new(),
            pending_revocation: Assignment::new(),
            session_deadline_ms: 0,
            revocation_deadline_ms: None,
        }
    }

    /// Whether what ConsumerGroupMemberMetadata records (5) differs.
    fn metadata_differs(&self, other: &Member) -> bool {
        (
            &self.instance_id,
            &self.rack_id,
            &self.client_id,
            &self.client_host,
            &self.subscribed_topic_names,
            &self.subscribed_topic_regex,
            &self.server_assignor,
            self.rebalance_timeout_ms,
        ) != (
            &other.instance_id,
            &other.rack_id,
            &other.client_id,
            &other.client_host,
            &other.subscribed_topic_names,
            &other.subscribed_topic_regex,
            &other.server_assignor,
            other.rebalance_timeout_ms,
        )
    }

    /// Whether what ConsumerGroupCurrentMemberAssignment records (8) differs.
    fn assignment_differs(&self, other: &Member) -> bool {
        (
            self.member_epoch,
            self.previous_member_epoch,
            self.state,
            &self.assigned,
            &self.pending_revocation,
        ) != (
            other.member_epoch,
            other.previous_member_epoch,
            other.state,
            &other.assigned,
            &other.pending_revocation,
        )
    }
}

/// What changed in a group, in the order Kafka writes its records for it; the shell turns
/// each into a `__consumer_offsets` record (its type in brackets) with the group's current
/// values. See [`changes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The member is gone: tombstones for its current assignment (8), target assignment (7)
    /// and metadata (5), in that order.
    MemberRemoved(String),
    /// The member was created or its metadata changed (5).
    MemberMetadata(String),
    /// The subscribed topics' partition counts (4).
    SubscriptionMetadata,
    /// The group epoch (3).
    GroupEpoch,
    /// The member's target assignment (7).
    TargetMember(String),
    /// The assignment epoch (6).
    TargetEpoch,
    /// The member's epoch, state or current assignment (8).
    CurrentAssignment(String),
}

/// The changes from `before` to `after` (the same group before and after an event), in the
/// order Kafka writes them: removed members, member metadata, subscription metadata, group
/// epoch, target members, assignment epoch, current assignments.
pub fn changes(before: &ConsumerGroup, after: &ConsumerGroup) -> Vec<Change> {
    let mut out: Vec<Change> = before
        .members
        .keys()
        .filter(|id| !after.members.contains_key(*id))
        .map(|id| Change::MemberRemoved(id.clone()))
        .collect();
    for (id, m) in &after.members {
        if before.members.get(id).is_none_or(|b| b.metadata_differs(m)) {
            out.push(Change::MemberMetadata(id.clone()));
        }
    }
    if before.subscription_metadata != after.subscription_metadata {
        out.push(Change::SubscriptionMetadata);
    }
    if before.group_epoch != after.group_epoch {
        out.push(Change::GroupEpoch);
    }
    for (id, t) in &after.target {
        if after.members.contains_key(id) && before.target.get(id) != Some(t) {
            out.push(Change::TargetMember(id.clone()));
        }
    }
    if before.assignment_epoch != after.assignment_epoch {
        out.push(Change::TargetEpoch);
    }
    for (id, m) in &after.members {
        if before
            .members
            .get(id)
            .is_none_or(|b| b.assignment_differs(m))
        {
            out.push(Change::CurrentAssignment(id.clone()));
        }
    }
    out
}

/// A KIP-848 consumer group. Not thread-safe: the shell holds one lock per group.
#[derive(Debug, Clone)]
pub struct ConsumerGroup {
    id: String,
    config: ConsumerConfig,
    group_epoch: i32,
    assignment_epoch: i32,
    members: BTreeMap<String, Member>,
    target: BTreeMap<String, Assignment>,
    /// Topic → partition count of every topic some member subscribes to.
    subscription_metadata: TopicCounts,
    /// Who owns each partition (assigned or pending revocation), at which epoch.
    owners: HashMap<(String, i32), (String, i32)>,
}

impl ConsumerGroup {
    pub fn new(id: &str, config: ConsumerConfig) -> ConsumerGroup {
        ConsumerGroup {
            id: id.to_owned(),
            config,
            group_epoch: 0,
            assignment_epoch: 0,
            members: BTreeMap::new(),
            target: BTreeMap::new(),
            subscription_metadata: TopicCounts::new(),
            owners: HashMap::new(),
        }
    }

    /// A group as its records left it (at a coordinator's load): members keep their epochs,
    /// states and assignments; their session (and, while revoking, rebalance) deadlines start
    /// over at `now_ms`. Targets of members that are not in `members` are dropped.
    #[allow(clippy::too_many_arguments)]
    pub fn restore(
        id: &str,
        config: ConsumerConfig,
        group_epoch: i32,
        assignment_epoch: i32,
        subscription_metadata: TopicCounts,
        members: Vec<Member>,
        mut target: BTreeMap<String, Assignment>,
        now_ms: i64,
    ) -> ConsumerGroup {
        let mut owners = HashMap::new();
        let members: BTreeMap<String, Member> = members
            .into_iter()
            .map(|mut m| {
                m.session_deadline_ms = now_ms.saturating_add(config.session_timeout_ms);
                m.revocation_deadline_ms = (m.state == MemberState::UnrevokedPartitions)
                    .then(|| now_ms.saturating_add(i64::from(m.rebalance_timeout_ms.max(0))));
                for (t, ps) in m.assigned.iter().chain(m.pending_revocation.iter()) {
                    for p in ps {
                        owners.insert((t.clone(), *p), (m.member_id.clone(), m.member_epoch));
                    }
                }
                (m.member_id.clone(), m)
            })
            .collect();
        target.retain(|m, _| members.contains_key(m));
        ConsumerGroup {
            id: id.to_owned(),
            config,
            group_epoch,
            assignment_epoch,
            members,
            target,
            subscription_metadata,
            owners,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Topic → partition count of the subscribed topics, as of the last group epoch.
    pub fn subscription_metadata(&self) -> &TopicCounts {
        &self.subscription_metadata
    }

    pub fn member(&self, member_id: &str) -> Option<&Member> {
        self.members.get(member_id)
    }

    pub fn group_epoch(&self) -> i32 {
        self.group_epoch
    }

    pub fn assignment_epoch(&self) -> i32 {
        self.assignment_epoch
    }

    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    pub fn target_of(&self, member_id: &str) -> Assignment {
        self.target.get(member_id).cloned().unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The assignor the members prefer most (ties: by name), else the default.
    pub fn assignor(&self) -> String {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(a) = &m.server_assignor {
                *votes.entry(a.as_str()).or_default() += 1;
            }
        }
        let best = votes.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)));
        match best {
            Some((name, _)) => (*name).to_owned(),
            None => self.config.assignors.first().cloned().unwrap_or_default(),
        }
    }

    pub fn state(&self) -> ConsumerGroupState {
        if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.group_epoch > self.assignment_epoch {
            ConsumerGroupState::Assigning
        } else if self.members.values().any(|m| {
            m.member_epoch >= 0
                && (m.state != MemberState::Stable || m.member_epoch != self.assignment_epoch)
        }) {
            ConsumerGroupState::Reconciling
        } else {
            ConsumerGroupState::Stable
        }
    }

    /// The topics the members subscribe to (by name or regex), as they resolve now.
    pub fn subscribed_topics(&self, topics: &TopicCounts) -> BTreeSet<String> {
        self.members
            .values()
            .flat_map(|m| member_topics(m, topics))
            .collect()
    }

    /// OffsetCommit (and OffsetFetch with a member) from a member of this group: the member
    /// must exist and commit at its current epoch. Without a member (epoch < 0, e.g. an admin
    /// client) only an empty group accepts commits.
    pub fn validate_offset_commit(&self, member_id: &str, member_epoch: i32) -> Result<(), i16> {
        if member_epoch < 0 && self.members.is_empty() {
            return Ok(());
        }
        let member = self.members.get(member_id).ok_or(code::UNKNOWN_MEMBER_ID)?;
        if member_epoch != member.member_epoch {
            return Err(code::STALE_MEMBER_EPOCH);
        }
        Ok(())
    }

    /// Handles one ConsumerGroupHeartbeat.
    pub fn heartbeat(
        &mut self,
        now_ms: i64,
        req: Heartbeat,
        topics: &TopicCounts,
    ) -> HeartbeatResult {
        if let Err(e) = self.validate(&req) {
            return e;
        }
        let mut result =
            if req.member_epoch == LEAVE_EPOCH || req.member_epoch == LEAVE_STATIC_EPOCH {
                self.leave(&req, topics)
            } else {
                self.join_or_heartbeat(now_ms, req, topics)
            };
        if result.error == code::NONE {
            result.heartbeat_interval_ms = self.config.heartbeat_interval_ms;
        }
        result
    }

    fn validate(&self, req: &Heartbeat) -> Result<(), HeartbeatResult> {
        let invalid = |m: &str| Err(HeartbeatResult::error(code::INVALID_REQUEST, m));
        if (req.member_id_required || req.member_epoch != 0) && req.member_id.is_empty() {
            return invalid("MemberId can't be empty.");
        }
        if req.member_epoch == 0 {
            if req.rebalance_timeout_ms == -1 {
                return invalid("RebalanceTimeoutMs must be provided in first request.");
            }
            if req
                .owned
                .as_ref()
                .is_some_and(|o| o.values().any(|p| !p.is_empty()))
            {
                return invalid("TopicPartitions must be empty when (re-)joining.");
            }
            if req.subscribed_topic_names.is_none() && req.subscribed_topic_regex.is_none() {
                return invalid(
                    "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.",
                );
            }
        } else if req.member_epoch == LEAVE_STATIC_EPOCH && req.instance_id.is_none() {
            return invalid("InstanceId can't be null.");
        } else if req.member_epoch < LEAVE_STATIC_EPOCH {
            return invalid(&format!("MemberEpoch {} is invalid.", req.member_epoch));
        }
        if let Some(a) = &req.server_assignor {
            if !self.config.assignors.iter().any(|x| x == a) {
                return Err(HeartbeatResult::error(
                    code::UNSUPPORTED_ASSIGNOR,
                    format!(
                        "ServerAssignor {a} is not supported. Supported assignors: {}.",
                        self.config.assignors.join(", ")
                    ),
                ));
            }
        }
        if let Some(re) = &req.subscribed_topic_regex {
            if regex::Regex::new(re).is_err() {
                return Err(HeartbeatResult::error(
                    code::INVALID_REGULAR_EXPRESSION,
                    format!("SubscribedTopicRegex `{re}` is not a valid regular expression."),
                ));
            }
        }
        Ok(())
    }

    fn static_member(&self, instance_id: &str) -> Option<&Member> {
        self.members
            .values()
            .find(|m| m.instance_id.as_deref() == Some(instance_id))
    }

    fn leave(&mut self, req: &Heartbeat, topics: &TopicCounts) -> HeartbeatResult {
        let member_id = match &req.instance_id {
            Some(instance) => match self.static_member(instance) {
                None => {
                    return HeartbeatResult::error(
                        code::UNKNOWN_MEMBER_ID,
                        format!("Instance id {instance} is unknown."),
                    )
                }
                Some(m) if m.member_id != req.member_id => {
                    return HeartbeatResult::error(
                        code::FENCED_INSTANCE_ID,
                        format!(
                            "Static member {} with instance id {instance} was fenced by member {}.",
                            req.member_id, m.member_id
                        ),
                    )
                }
                Some(m) => m.member_id.clone(),
            },
            None => {
                if !self.members.contains_key(&req.member_id) {
                    return HeartbeatResult::error(
                        code::UNKNOWN_MEMBER_ID,
                        format!(
                            "Member {} is not a member of group {}.",
                            req.member_id, self.id
                        ),
                    );
                }
                req.member_id.clone()
            }
        };
        if req.member_epoch == LEAVE_STATIC_EPOCH {
            // Keeps its assignment for a new incarnation with the same instance id.
            if let Some(m) = self.members.get_mut(&member_id) {
                m.member_epoch = LEAVE_STATIC_EPOCH;
                m.revocation_deadline_ms = None;
            }
        } else {
            self.fence(&member_id, topics);
        }
        HeartbeatResult {
            member_id,
            member_epoch: req.member_epoch,
            ..HeartbeatResult::default()
        }
    }

    /// Removes a member: its partitions are released and the group epoch is bumped.
    fn fence(&mut self, member_id: &str, topics: &TopicCounts) {
        if self.members.remove(member_id).is_none() {
            return;
        }
        self.target.remove(member_id);
        self.owners.retain(|_, (owner, _)| owner != member_id);
        self.subscription_metadata = self.compute_subscription_metadata(topics);
        self.group_epoch += 1;
    }

    fn compute_subscription_metadata(&self, topics: &TopicCounts) -> TopicCounts {
        self.subscribed_topics(topics)
            .into_iter()
            .filter_map(|t| topics.get(&t).map(|n| (t, *n)))
            .collect()
    }

    fn join_or_heartbeat(
        &mut self,
        now_ms: i64,
        req: Heartbeat,
        topics: &TopicCounts,
    ) -> HeartbeatResult {
        let joining = req.member_epoch == 0;
        let known = !req.member_id.is_empty() && self.members.contains_key(&req.member_id);
        if self.members.len() >= self.config.max_size && !known {
            return HeartbeatResult::error(
                code::GROUP_MAX_SIZE_REACHED,
                format!(
                    "The consumer group has reached its maximum capacity of {} members.",
                    self.config.max_size
                ),
            );
        }
        let member_id = if req.member_id.is_empty() {
            req.new_member_id.clone()
        } else {
            req.member_id.clone()
        };
        // The member as it was before this heartbeat (None: new), and whether a static
        // member's earlier incarnation hands over its assignment.
        let mut inherited: Option<Member> = None;
        match (&req.instance_id, joining) {
            (Some(instance), true) => {
                if let Some(old) = self.static_member(instance).cloned() {
                    if old.member_id == member_id {
                        // The same incarnation rejoins: start over.
                        self.fence(&member_id, topics);
                    } else if old.member_epoch != LEAVE_STATIC_EPOCH {
                        return HeartbeatResult::error(
                            code::UNRELEASED_INSTANCE_ID,
                            format!("Static member {member_id} with instance id {instance} cannot join the group because the instance id is owned by {} member.", old.member_id),
                        );
                    } else {
                        inherited = Some(old);
                    }
                }
            }
            (Some(instance), false) => match self.static_member(instance) {
                None => {
                    return HeartbeatResult::error(
                        code::UNKNOWN_MEMBER_ID,
                        format!("Instance id {instance} is unknown."),
                    )
                }
                Some(m) if m.member_id != member_id => {
                    return HeartbeatResult::error(
                        code::FENCED_INSTANCE_ID,
                        format!("Static member {member_id} with instance id {instance} was fenced by member {}.", m.member_id),
                    )
                }
                Some(_) => {}
            },
            (None, true) => {
                if known {
                    // A member that lost its epoch (fenced on its side) rejoins with the
                    // same id: its old incarnation is removed first.
                    self.fence(&member_id, topics);
                }
            }
            (None, false) => {}
        }
        let before = if joining {
            None
        } else {
            match self.members.get(&member_id) {
                None => {
                    return HeartbeatResult::error(
                        code::UNKNOWN_MEMBER_ID,
                        format!("Member {member_id} is not a member of group {}.", self.id),
                    )
                }
                Some(m) => {
                    if let Err(e) = check_epoch(m, req.member_epoch, req.owned.as_ref()) {
                        return e;
                    }
                    Some(m.clone())
                }
            }
        };

        // 1. Create or update the member; a changed subscription bumps the group epoch.
        let mut member = before.clone().unwrap_or_else(|| Member {
            assigned: inherited
                .as_ref()
                .map(|m| m.assigned.clone())
                .unwrap_or_default(),
            ..Member::new(&member_id)
        });
        if let Some(i) = &req.instance_id {
            member.instance_id = Some(i.clone());
        }
        if let Some(r) = &req.rack_id {
            member.rack_id = Some(r.clone());
        }
        if req.rebalance_timeout_ms != -1 {
            member.rebalance_timeout_ms = req.rebalance_timeout_ms;
        }
        if let Some(a) = &req.server_assignor {
            member.server_assignor = Some(a.clone());
        }
        if let Some(names) = &req.subscribed_topic_names {
            let mut names = names.clone();
            names.sort();
            names.dedup();
            member.subscribed_topic_names = names;
        }
        if let Some(re) = &req.subscribed_topic_regex {
            member.subscribed_topic_regex = (!re.is_empty()).then(|| re.clone());
        }
        member.client_id = req.client_id.clone();
        member.client_host = req.client_host.clone();
        // A new member, or a changed subscription (a static member's new incarnation is
        // compared with the incarnation it replaces), bumps the group epoch.
        let mut bump = before
            .as_ref()
            .or(inherited.as_ref())
            .is_none_or(|previous| !same_subscription(previous, &member));
        if let Some(old) = &inherited {
            // A static member's new incarnation takes over the old one's place and target.
            let target = self.target.remove(&old.member_id);
            self.members.remove(&old.member_id);
            self.owners.retain(|_, (owner, _)| *owner != old.member_id);
            if let Some(t) = target {
                self.target.insert(member_id.clone(), t);
            }
        }
        member.session_deadline_ms = now_ms.saturating_add(self.config.session_timeout_ms);
        self.members.insert(member_id.clone(), member);

        let metadata = self.compute_subscription_metadata(topics);
        if metadata != self.subscription_metadata {
            self.subscription_metadata = metadata;
            bump = true;
        }
        if bump {
            self.group_epoch += 1;
        }

        // 2. A new target assignment when the group epoch moved past it.
        if self.group_epoch > self.assignment_epoch {
            self.compute_target(topics);
        }

        // 3. Reconcile this member towards its target.
        let previous_assigned = before.as_ref().map(|m| m.assigned.clone());
        self.reconcile(&member_id, req.owned.as_ref(), now_ms);
        let member = &self.members[&member_id];
        let changed = previous_assigned.as_ref() != Some(&member.assigned);
        HeartbeatResult {
            error: code::NONE,
            message: None,
            member_id: member_id.clone(),
            member_epoch: member.member_epoch,
            heartbeat_interval_ms: 0,
            assignment: (req.owned.is_some() || joining || changed)
                .then(|| member.assigned.clone()),
        }
    }

    /// Recomputes every member's target with the preferred assignor.
    fn compute_target(&mut self, topics: &TopicCounts) {
        let subscriptions: BTreeMap<String, BTreeSet<String>> = self
            .members
            .values()
            .map(|m| {
                let subscribed = member_topics(m, topics)
                    .into_iter()
                    .filter(|t| self.subscription_metadata.contains_key(t))
                    .collect();
                (m.member_id.clone(), subscribed)
            })
            .collect();
        self.target = match self.assignor().as_str() {
            "range" => assign_range(&subscriptions, &self.subscription_metadata),
            _ => assign_uniform(&subscriptions, &self.subscription_metadata, &self.target),
        };
        self.assignment_epoch = self.group_epoch;
    }

    fn partition_owner_epoch(&self, member_id: &str, topic: &str, p: i32) -> Option<i32> {
        self.owners
            .get(&(topic.to_owned(), p))
            .filter(|(owner, _)| owner != member_id)
            .map(|(_, epoch)| *epoch)
    }

    /// Kafka's CurrentAssignmentBuilder for one member.
    fn reconcile(&mut self, member_id: &str, owned: Option<&Assignment>, now_ms: i64) {
        let Some(member) = self.members.get(member_id).cloned() else {
            return;
        };
        let target = self.target_of(member_id);
        let target_epoch = self.assignment_epoch;
        let next = match member.state {
            MemberState::Stable if member.member_epoch == target_epoch => return,
            MemberState::Stable => {
                self.next_assignment(&member, member.member_epoch, &target, target_epoch, owned)
            }
            MemberState::UnrevokedPartitions => {
                if owns_any(owned, &member.pending_revocation) {
                    // Not yet: [`ConsumerGroup::tick`] fences it at its revocation deadline.
                    return;
                }
                self.next_assignment(
                    &member,
                    member.member_epoch + 1,
                    &target,
                    target_epoch,
                    owned,
                )
            }
            MemberState::UnreleasedPartitions => {
                self.next_assignment(&member, member.member_epoch, &target, target_epoch, owned)
            }
        };
        let mut next = next;
        next.revocation_deadline_ms = if next.state == MemberState::UnrevokedPartitions {
            member
                .revocation_deadline_ms
                .filter(|_| member.state == MemberState::UnrevokedPartitions)
                .or(Some(now_ms.saturating_add(i64::from(
                    member.rebalance_timeout_ms.max(0),
                ))))
        } else {
            None
        };
        if next.member_epoch != member.member_epoch {
            next.previous_member_epoch = member.member_epoch;
        }
        self.owners.retain(|_, (owner, _)| owner != member_id);
        for (t, ps) in next.assigned.iter().chain(next.pending_revocation.iter()) {
            for p in ps {
                self.owners
                    .insert((t.clone(), *p), (member_id.to_owned(), next.member_epoch));
            }
        }
        self.members.insert(member_id.to_owned(), next);
    }

    fn next_assignment(
        &self,
        member: &Member,
        epoch: i32,
        target: &Assignment,
        target_epoch: i32,
        owned: Option<&Assignment>,
    ) -> Member {
        let mut kept = Assignment::new();
        let mut revoking = Assignment::new();
        let mut adding = Assignment::new();
        let mut unreleased = false;
        let topics: BTreeSet<&String> = target.keys().chain(member.assigned.keys()).collect();
        let empty = BTreeSet::new();
        for t in topics {
            let want = target.get(t).unwrap_or(&empty);
            let have = member.assigned.get(t).unwrap_or(&empty);
            let k: BTreeSet<i32> = have.intersection(want).copied().collect();
            let r: BTreeSet<i32> = have.difference(want).copied().collect();
            let mut a = BTreeSet::new();
            for p in want.difference(have) {
                if self
                    .partition_owner_epoch(&member.member_id, t, *p)
                    .is_some()
                {
                    unreleased = true;
                } else {
                    a.insert(*p);
                }
            }
            if !k.is_empty() {
                kept.insert(t.clone(), k);
            }
            if !r.is_empty() {
                revoking.insert(t.clone(), r);
            }
            if !a.is_empty() {
                adding.insert(t.clone(), a);
            }
        }
        let mut next = member.clone();
        if !revoking.is_empty() && owns_any(owned, &revoking) {
            next.state = MemberState::UnrevokedPartitions;
            next.member_epoch = epoch;
            next.assigned = kept;
            next.pending_revocation = revoking;
            return next;
        }
        for (t, ps) in adding {
            kept.entry(t).or_default().extend(ps);
        }
        next.state = if unreleased {
            MemberState::UnreleasedPartitions
        } else {
            MemberState::Stable
        };
        next.member_epoch = target_epoch;
        next.assigned = kept;
        next.pending_revocation = Assignment::new();
        next
    }

    /// Whether [`ConsumerGroup::tick`] has anything to do at `now_ms` (cheap: no copy of the
    /// group), so the shell only snapshots groups that will change.
    pub fn tick_due(&self, now_ms: i64, topics: &TopicCounts) -> bool {
        self.members.values().any(|m| {
            m.session_deadline_ms <= now_ms || m.revocation_deadline_ms.is_some_and(|d| d <= now_ms)
        }) || (!self.members.is_empty()
            && self.compute_subscription_metadata(topics) != self.subscription_metadata)
    }

    /// Fences members whose session or revocation deadline has passed. Returns whether
    /// anything changed.
    pub fn tick(&mut self, now_ms: i64, topics: &TopicCounts) -> bool {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.session_deadline_ms <= now_ms
                    || m.revocation_deadline_ms.is_some_and(|d| d <= now_ms)
            })
            .map(|m| m.member_id.clone())
            .collect();
        for id in &expired {
            self.fence(id, topics);
        }
        // A subscribed topic that was created, deleted or grew: a new target.
        if !self.members.is_empty() {
            let metadata = self.compute_subscription_metadata(topics);
            if metadata != self.subscription_metadata {
                self.subscription_metadata = metadata;
                self.group_epoch += 1;
                return true;
            }
        }
        !expired.is_empty()
    }
}

fn same_subscription(a: &Member, b: &Member) -> bool {
    a.subscribed_topic_names == b.subscribed_topic_names
        && a.subscribed_topic_regex == b.subscribed_topic_regex
}

/// Kafka's epoch check: a member may come back with its previous epoch if it owns no more
/// than its current assignment (the answer with the new epoch was lost).
fn check_epoch(
    m: &Member,
    received: i32,
    owned: Option<&Assignment>,
) -> Result<(), HeartbeatResult> {
    let fenced = |what: &str| {
        Err(HeartbeatResult::error(
            code::FENCED_MEMBER_EPOCH,
            format!("The consumer group member has a {what} member epoch ({received}) than the one known by the group coordinator ({}). The member must abandon all its partitions and rejoin.", m.member_epoch),
        ))
    };
    if received > m.member_epoch {
        return fenced("greater");
    }
    if received < m.member_epoch {
        let subset = owned.is_some_and(|o| {
            o.iter()
                .all(|(t, ps)| ps.is_empty() || m.assigned.get(t).is_some_and(|a| ps.is_subset(a)))
        });
        if received != m.previous_member_epoch || !subset {
            return fenced("smaller");
        }
    }
    Ok(())
}

/// Whether the member (still) owns any of `partitions`; a member that did not report its
/// partitions is assumed to.
fn owns_any(owned: Option<&Assignment>, partitions: &Assignment) -> bool {
    match owned {
        None => true,
        Some(o) => partitions.iter().any(|(t, ps)| {
            o.get(t)
                .is_some_and(|have| ps.iter().any(|p| have.contains(p)))
        }),
    }
}

fn is_internal(topic: &str) -> bool {
    matches!(
        topic,
        "__consumer_offsets" | "__transaction_state" | "__share_group_state"
    )
}

/// A subscription regex compiled to match whole topic names (`None` if it is invalid).
/// The same few patterns are evaluated at every heartbeat and tick, so compiled patterns are
/// memoised (a cheap clone: the compiled program is shared); past 256 patterns the memo
/// starts over.
fn anchored_regex(pattern: &str) -> Option<regex::Regex> {
    static MEMO: std::sync::OnceLock<parking_lot::Mutex<HashMap<String, Option<regex::Regex>>>> =
        std::sync::OnceLock::new();
    let mut memo = MEMO.get_or_init(Default::default).lock();
    if let Some(hit) = memo.get(pattern) {
        return hit.clone();
    }
    if memo.len() >= 256 {
        memo.clear();
    }
    let compiled = regex::Regex::new(&format!("^(?:{pattern})$")).ok();
    memo.insert(pattern.to_owned(), compiled.clone());
    compiled
}

/// The topics a member subscribes to: its names, plus the existing topics its regex matches
/// as a whole (internal topics never match).
fn member_topics(m: &Member, topics: &TopicCounts) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = m.subscribed_topic_names.iter().cloned().collect();
    if let Some(re) = &m.subscribed_topic_regex {
        if let Some(re) = anchored_regex(re) {
            out.extend(
                topics
                    .keys()
                    .filter(|t| !is_internal(t) && re.is_match(t))
                    .cloned(),
            );
        }
    }
    out
}

/// The `range` assignor: per topic, the subscribed members (by id) get contiguous ranges,
/// the first `partitions % members` one partition more.
pub fn assign_range(
    subscriptions: &BTreeMap<String, BTreeSet<String>>,
    metadata: &TopicCounts,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = subscriptions
        .keys()
        .map(|m| (m.clone(), Assignment::new()))
        .collect();
    for (topic, count) in metadata {
        let members: Vec<&String> = subscriptions
            .iter()
            .filter(|(_, s)| s.contains(topic))
            .map(|(m, _)| m)
            .collect();
        if members.is_empty() {
            continue;
        }
        let n = members.len() as i32;
        let (quota, extra) = (count / n, count % n);
        let mut next = 0;
        for (i, m) in members.into_iter().enumerate() {
            let take = quota + i32::from((i as i32) < extra);
            if take > 0 {
                out.get_mut(m)
                    .expect("every member has an entry")
                    .insert(topic.clone(), (next..next + take).collect());
            }
            next += take;
        }
    }
    out
}

/// The `uniform` assignor: balanced (member counts differ by at most one where
/// subscriptions allow) and sticky (a partition stays with its previous target owner when
/// balance allows).
pub fn assign_uniform(
    subscriptions: &BTreeMap<String, BTreeSet<String>>,
    metadata: &TopicCounts,
    previous: &BTreeMap<String, Assignment>,
) -> BTreeMap<String, Assignment> {
    let mut owned: BTreeMap<&String, BTreeSet<(String, i32)>> =
        subscriptions.keys().map(|m| (m, BTreeSet::new())).collect();
    let mut all: Vec<(String, i32)> = Vec::new();
    for (topic, count) in metadata {
        if subscriptions.values().any(|s| s.contains(topic)) {
            all.extend((0..*count).map(|p| (topic.clone(), p)));
        }
    }
    let eligible = |m: &String, t: &str| subscriptions.get(m).is_some_and(|s| s.contains(t));
    // Keep what is still valid, up to a fair share for members with the same subscription.
    let total = all.len();
    let members = subscriptions.len().max(1);
    let ceiling = total.div_ceil(members);
    let valid: BTreeSet<&(String, i32)> = all.iter().collect();
    let mut taken: BTreeSet<(String, i32)> = BTreeSet::new();
    for (m, set) in owned.iter_mut() {
        if let Some(prev) = previous.get(*m) {
            for (t, ps) in prev {
                for p in ps {
                    let tp = (t.clone(), *p);
                    if set.len() < ceiling
                        && valid.contains(&tp)
                        && eligible(m, t)
                        && !taken.contains(&tp)
                    {
                        taken.insert(tp.clone());
                        set.insert(tp);
                    }
                }
            }
        }
    }
    // Each free partition to the eligible member with the fewest.
    for tp in &all {
        if taken.contains(tp) {
            continue;
        }
        if let Some((_, set)) = owned
            .iter_mut()
            .filter(|(m, _)| eligible(m, &tp.0))
            .min_by_key(|(m, set)| (set.len(), *m))
        {
            set.insert(tp.clone());
        }
    }
    // Move partitions from the most to the least loaded eligible member until balanced.
    for _ in 0..total.saturating_mul(members).max(1) {
        let mut moved = false;
        let ids: Vec<&String> = owned.keys().copied().collect();
        'outer: for from in &ids {
            for to in &ids {
                if owned[from].len() <= owned[to].len() + 1 {
                    continue;
                }
                let candidate = owned[from]
                    .iter()
                    .rev()
                    .find(|(t, _)| eligible(to, t))
                    .cloned();
                if let Some(tp) = candidate {
                    owned.get_mut(from).expect("present").remove(&tp);
                    owned.get_mut(to).expect("present").insert(tp);
                    moved = true;
                    break 'outer;
                }
            }
        }
        if !moved {
            break;
        }
    }
    owned
        .into_iter()
        .map(|(m, set)| {
            let mut a = Assignment::new();
            for (t, p) in set {
                a.entry(t).or_default().insert(p);
            }
            (m.clone(), a)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics(list: &[(&str, i32)]) -> TopicCounts {
        list.iter().map(|(t, n)| ((*t).to_owned(), *n)).collect()
    }

    fn join(id: &str, subscribed: &[&str]) -> Heartbeat {
        Heartbeat {
            member_id: id.to_owned(),
            member_epoch: 0,
            rebalance_timeout_ms: 30_000,
            subscribed_topic_names: Some(subscribed.iter().map(|s| (*s).to_owned()).collect()),
            owned: Some(Assignment::new()),
            member_id_required: true,
            ..Heartbeat::default()
        }
    }

    fn beat(id: &str, epoch: i32, owned: &Assignment) -> Heartbeat {
        Heartbeat {
            member_id: id.to_owned(),
            member_epoch: epoch,
            rebalance_timeout_ms: -1,
            owned: Some(owned.clone()),
            member_id_required: true,
            ..Heartbeat::default()
        }
    }

    fn count(a: &Assignment) -> usize {
        a.values().map(|p| p.len()).sum()
    }

    /// Heartbeats every member (reporting what it was last told it owns) until nothing
    /// changes; returns each member's (epoch, assignment).
    fn settle(
        g: &mut ConsumerGroup,
        now: i64,
        t: &TopicCounts,
        owned: &mut BTreeMap<String, (i32, Assignment)>,
    ) {
        for _ in 0..20 {
            let mut changed = false;
            let ids: Vec<String> = owned.keys().cloned().collect();
            for id in ids {
                let (epoch, have) = owned[&id].clone();
                let r = g.heartbeat(now, beat(&id, epoch, &have), t);
                assert_eq!(r.error, code::NONE, "{r:?}");
                let now_have = r.assignment.unwrap_or(have.clone());
                if r.member_epoch != epoch || now_have != have {
                    changed = true;
                }
                owned.insert(id, (r.member_epoch, now_have));
            }
            if !changed {
                return;
            }
        }
        panic!("did not settle");
    }

    fn assert_disjoint_and_complete(owned: &BTreeMap<String, (i32, Assignment)>, total: usize) {
        let mut seen = BTreeSet::new();
        for (_, a) in owned.values() {
            for (t, ps) in a {
                for p in ps {
                    assert!(seen.insert((t.clone(), *p)), "{t}-{p} owned twice");
                }
            }
        }
        assert_eq!(seen.len(), total);
    }

    #[test]
    fn first_member_gets_everything_at_epoch_one() {
        let t = topics(&[("a", 6)]);
        let mut g = ConsumerGroup::new("g", ConsumerConfig::default());
        let r = g.heartbeat(0, join("m1", &["a"]), &t);
        assert_eq!(r.error, code::NONE);
        assert_eq!(r.member_epoch, 1);
        assert_eq!(count(r.assignment.as_ref().unwrap()), 6);
        assert_eq!(g.state(), ConsumerGroupState::Stable);
        assert_eq!(r.heartbeat_interval_ms, 5_000);
    }

    #[test]
    fn a_second_member_waits_for_the_revocation_then_gets_half() {
        let t = topics(&[("a", 6)]);
        let mut g = ConsumerGroup::new("g", ConsumerConfig::default());
        let r1 = g.heartbeat(0, join("m1", &["a"]), &t);
        let all = r1.assignment.unwrap();
        let r2 = g.heartbeat(1, join("m2", &["a"]), &t);
        // m1 still owns everything: m2 is at the new epoch with nothing yet.
        assert_eq!(r2.member_epoch, 2);
        assert_eq!(count(r2.assignment.as_ref().unwrap()), 0);
        assert_eq!(g.state(), ConsumerGroupState::Reconciling);
        // m1 is asked to give up three, at its old epoch.
        let r1 = g.heartbeat(2, beat("m1", 1, &all), &t);
        assert_eq!(r1.member_epoch, 1);
        let kept = r1.assignment.unwrap();
        assert_eq!(count(&kept), 3);
        // m2 cannot have them until m1 acknowledges.
        let r2b = g.heartbeat(3, beat("m2", 2, &Assignment::new()), &t);
        assert_eq!(count(&r2b.assignment.unwrap_or_default()), 0);
        let r1 = g.heartbeat(4, beat("m1", 1, &kept), &t);
        assert_eq!(r1.member_epoch, 2);
        let r2c = g.heartbeat(5, beat("m2", 2, &Assignment::new()), &t);
        let got = r2c.assignment.unwrap();
        assert_eq!(count(&got), 3);
        assert!(got["a"].is_disjoint(&kept["a"]));
        assert_eq!(g.state(), ConsumerGroupState::Stable);
    }

    #[test]
    fn three_members_split_six_partitions_and_survivors_take_over_after_a_leave() {
        let t = topics(&[("a", 6)]);
        let mut g = ConsumerGroup::new("g", ConsumerConfig::default());
        let mut owned = BTreeMap::new();
        for id in ["m1", "m2", "m3"] {
            let r = g.heartbeat(0, join(id, &["a"]), &t);
            owned.insert(id.to_owned(), (r.member_epoch, r.assignment.unwrap()));
        }
        settle(&mut g, 1, &t, &mut owned);
        assert!(owned.values().all(|(_, a)| count(a) == 2), "{owned:?}");
        assert_disjoint_and_complete(&owned, 6);
        assert_eq!(g.state(), ConsumerGroupState::Stable);
        let before = owned["m1"].1.clone();
        let r = g.heartbeat(
            2,
            Heartbeat {
                member_epoch: LEAVE_EPOCH,
                ..beat("m3", 0, &Assignment::new())
            },
            &t,
        );
        assert_eq!((r.error, r.member_epoch), (code::NONE, LEAVE_EPOCH));
        owned.remove("m3");
        settle(&mut g, 3, &t, &mut owned);
        assert!(owned.values().all(|(_, a)| count(a) == 3));
        assert_disjoint_and_complete(&owned, 6);
        // Sticky: m1 kept what it had.
        assert!(before["a"].is_subset(&owned["m1"].1["a"]));
    }

    /// Members m1 and m2 sharing topic `a` (4 partitions), settled at 10 ms, with 1 s
    /// sessions.
    #[allow(clippy::type_complexity)]
    fn two_settled_members_with_1s_sessions() -> (
        TopicCounts,
        ConsumerGroup,
        BTreeMap<String, (i32, Assignment)>,
    ) {
        let t = topics(&[("a", 4)]);
        let mut g = ConsumerGroup::new(
            "g",
            ConsumerConfig {
                session_timeout_ms: 1_000,
                ..ConsumerConfig::default()
            },
        );
        let mut owned = BTreeMap::new();
        for id in ["m1", "m2"] {
            let r = g.heartbeat(0, join(id, &["a"]), &t);
            owned.insert(id.to_owned(), (r.member_epoch, r.assignment.unwrap()));
        }
        settle(&mut g, 10, &t, &mut owned);
        (t, g, owned)
    }

    #[test]
    fn session_expiry_fences_the_member_and_frees_its_partitions() {
        let (t, mut g, mut owned) = two_settled_members_with_1s_sessions();
        let epoch = g.group_epoch();
        // m1 keeps heartbeating; m2 goes silent.
        let (e1, a1) = owned["m1"].clone();
        g.heartbeat(900, beat("m1", e1, &a1), &t);
        assert!(!g.tick_due(500, &t));
        assert!(!g.tick(500, &t));
        assert!(g.tick_due(1_011, &t));
        assert!(g.tick(1_011, &t));
        assert_eq!(g.group_epoch(), epoch + 1);
        owned.remove("m2");
        settle(&mut g, 1_012, &t, &mut owned);
        assert_eq!(count(&owned["m1"].1), 4);
        let r = g.heartbeat(1_013, beat("m2", 2, &Assignment::new()), &t);
        assert_eq!(r.error, code::UNKNOWN_MEMBER_ID);
    }

    #[test]
    fn a_member_that_does_not_revoke_is_fenced_after_its_rebalance_timeout() {
        let t = topics(&[("a", 2)]);
        let mut g = ConsumerGroup::new("g", ConsumerConfig::default());
        let mut j = join("m1", &["a"]);
        j.rebalance_timeout_ms = 100;
        let all = g.heartbeat(0, j, &t).assignment.unwrap();
        g.heartbeat(1, join("m2", &["a"]), &t);
        let r = g.heartbeat(2, beat("m1", 1, &all), &t);
        assert_eq!(count(&r.assignment.unwrap()), 1);
        // m1 keeps reporting the revoked partition; at 102 it is fenced.
        g.heartbeat(50, beat("m1", 1, &all), &t);
        assert!(!g.tick(101, &t));
        assert!(g.tick(103, &t));
        let r = g.heartbeat(104, beat("m1", 1, &all), &t);
        assert_eq!(r.error, code::UNKNOWN_MEMBER_ID);
    }

    #[test]
    fn epochs_are_checked() {
        let t = topics(&[("a", 1)]);
        let mut g = ConsumerGroup::new("g", ConsumerConfig::default());
        g.heartbeat(0, join("m1", &["a"]), &t);
        assert_eq!(
            g.heartbeat(1, beat("m1", 5, &Assignment::new()), &t).error,
            code::FENCED_MEMBER_EPOCH
        );
        assert_eq!(
            g.heartbeat(1, beat("nobody", 1, &Assignment::new()), &t)
                .error,
            code::UNKNOWN_MEMBER_ID
        );
        assert_eq!(g.validate_offset_commit("m1", 1), Ok(()));
        assert_eq!(
            g.validate_offset_commit("m1", 0),
            Err(code::STALE_MEMBER_EPOCH)
        );
        assert_eq!(
            g.validate_offset_commit("x", 1),
            Err(code::UNKNOWN_MEMBER_ID)
        );
        assert_eq!(
            g.validate_offset_commit("", -1),
            Err(code::UNKNOWN_MEMBER_ID)
        );
    }

    #[test]
    fn invalid_requests_are_refused() {
        let t = topics(&[("a", 1)]);
        let mut g = ConsumerGroup::new("g", ConsumerConfig::default());
        let mut h = join("", &["a"]);
        assert_eq!(g.heartbeat(0, h.clone(), &t).error, code::INVALID_REQUEST);
        h.member_id_required = false;
        h.new_member_id = "generated".to_owned();
        let r = g.heartbeat(0, h, &t);
        assert_eq!((r.error, r.member_id.as_str()), (code::NONE, "generated"));
        let mut h = join("m2", &["a"]);
        h.rebalance_timeout_ms = -1;
        assert_eq!(g.heartbeat(0, h, &t).error, code::INVALID_REQUEST);
        let mut h = join("m2", &["a"]);
        h.subscribed_topic_names = None;
        assert_eq!(g.heartbeat(0, h, &t).error, code::INVALID_REQUEST);
        let mut h = join("m2", &["a"]);
        h.server_assignor = Some("sticky".to_owned());
        assert_eq!(g.heartbeat(0, h, &t).error, code::UNSUPPORTED_ASSIGNOR);
        let mut h = join("m2", &["a"]);
        h.subscribed_topic_regex = Some("(".to_owned());
        assert_eq!(
            g.heartbeat(0, h, &t).error,
            code::INVALID_REGULAR_EXPRESSION
        );
        let mut g = ConsumerGroup::new(
            "g",
            ConsumerConfig {
                max_size: 1,
                ..ConsumerConfig::default()
            },
        );
        g.heartbeat(0, join("m1", &["a"]), &t);
        assert_eq!(
            g.heartbeat(0, join("m2", &["a"]), &t).error,
            code::GROUP_MAX_SIZE_REACHED
        );
    }

    #[test]
    fn a_static_member_rejoining_after_a_temporary_leave_keeps_its_partitions() {
        let t = topics(&[("a", 4)]);
        let mut g = ConsumerGroup::new("g", ConsumerConfig::default());
        let mut owned = BTreeMap::new();
        for (id, inst) in [("m1", "i1"), ("m2", "i2")] {
            let mut j = join(id, &["a"]);
            j.instance_id = Some(inst.to_owned());
            let r = g.heartbeat(0, j, &t);
            owned.insert(id.to_owned(), (r.member_epoch, r.assignment.unwrap()));
        }
        // settle() sends no instance id, which a static member must; do it by hand.
        for _ in 0..5 {
            for (id, inst) in [("m1", "i1"), ("m2", "i2")] {
                let (e, a) = owned[id].clone();
                let mut b = beat(id, e, &a);
                b.instance_id = Some(inst.to_owned());
                let r = g.heartbeat(1, b, &t);
                assert_eq!(r.error, code::NONE);
                owned.insert(id.to_owned(), (r.member_epoch, r.assignment.unwrap_or(a)));
            }
        }
        let had = owned["m2"].1.clone();
        assert_eq!(count(&had), 2);
        let epoch = g.group_epoch();
        let mut leave = beat("m2", owned["m2"].0, &had);
        leave.member_epoch = LEAVE_STATIC_EPOCH;
        leave.instance_id = Some("i2".to_owned());
        assert_eq!(g.heartbeat(2, leave, &t).member_epoch, LEAVE_STATIC_EPOCH);
        assert_eq!(g.group_epoch(), epoch, "a temporary leave is no rebalance");
        // Another member may not take the instance id while it is held...
        let mut j = join("m3", &["a"]);
        j.instance_id = Some("i1".to_owned());
        assert_eq!(g.heartbeat(3, j, &t).error, code::UNRELEASED_INSTANCE_ID);
        // ...but the new incarnation of i2 gets the same partitions.
        let mut j = join("m2b", &["a"]);
        j.instance_id = Some("i2".to_owned());
        let r = g.heartbeat(4, j, &t);
        assert_eq!(r.error, code::NONE);
        assert_eq!(r.assignment.unwrap(), had);
        assert_eq!(g.group_epoch(), epoch);
    }

    #[test]
    fn assignors_balance_and_range_is_contiguous() {
        let subs: BTreeMap<String, BTreeSet<String>> = ["m1", "m2", "m3"]
            .iter()
            .map(|m| ((*m).to_owned(), ["a".to_owned(), "b".to_owned()].into()))
            .collect();
        let meta = topics(&[("a", 4), ("b", 3)]);
        let r = assign_range(&subs, &meta);
        assert_eq!(r["m1"]["a"], [0, 1].into());
        assert_eq!(r["m3"]["a"], [3].into());
        assert_eq!(r["m1"]["b"], [0].into());
        let u = assign_uniform(&subs, &meta, &BTreeMap::new());
        let counts: Vec<usize> = u.values().map(count).collect();
        assert!(
            counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1,
            "{u:?}"
        );
        assert_eq!(counts.iter().sum::<usize>(), 7);
        // Heterogeneous: m3 subscribes only to b.
        let mut subs = subs;
        subs.insert("m3".to_owned(), ["b".to_owned()].into());
        let u = assign_uniform(&subs, &meta, &u);
        assert!(!u["m3"].contains_key("a"));
        assert_eq!(u.values().map(count).sum::<usize>(), 7);
    }

    #[test]
    fn regex_subscriptions_follow_new_topics() {
        let mut t = topics(&[("orders-1", 2), ("other", 2), ("__consumer_offsets", 50)]);
        let mut g = ConsumerGroup::new("g", ConsumerConfig::default());
        let mut j = join("m1", &[]);
        j.subscribed_topic_names = None;
        j.subscribed_topic_regex = Some("orders-.*".to_owned());
        let r = g.heartbeat(0, j, &t);
        assert_eq!(
            r.assignment.unwrap().keys().collect::<Vec<_>>(),
            ["orders-1"]
        );
        t.insert("orders-2".to_owned(), 1);
        assert!(g.tick(1, &t));
        let r = g.heartbeat(
            2,
            beat("m1", 1, &[("orders-1".to_owned(), [0, 1].into())].into()),
            &t,
        );
        assert_eq!(count(&r.assignment.unwrap()), 3);
    }

    /// Rebuilds `g` from what its records carry (as the coordinator's load does).
    fn restored(g: &ConsumerGroup, now: i64) -> ConsumerGroup {
        let members = g
            .members()
            .map(|m| {
                let mut r = Member::new(&m.member_id);
                r.instance_id = m.instance_id.clone();
                r.rack_id = m.rack_id.clone();
                r.client_id = m.client_id.clone();
                r.client_host = m.client_host.clone();
                r.subscribed_topic_names = m.subscribed_topic_names.clone();
                r.subscribed_topic_regex = m.subscribed_topic_regex.clone();
                r.server_assignor = m.server_assignor.clone();
                r.rebalance_timeout_ms = m.rebalance_timeout_ms;
                r.member_epoch = m.member_epoch;
                r.previous_member_epoch = m.previous_member_epoch;
                r.state = m.state;
                r.assigned = m.assigned.clone();
                r.pending_revocation = m.pending_revocation.clone();
                r
            })
            .collect();
        let target = g
            .members()
            .map(|m| (m.member_id.clone(), g.target_of(&m.member_id)))
            .collect();
        ConsumerGroup::restore(
            g.id(),
            ConsumerConfig {
                session_timeout_ms: 1_000,
                ..ConsumerConfig::default()
            },
            g.group_epoch(),
            g.assignment_epoch(),
            g.subscription_metadata().clone(),
            members,
            target,
            now,
        )
    }

    #[test]
    fn a_restored_group_keeps_epochs_and_assignments_and_sessions_start_over() {
        let (t, g, owned) = two_settled_members_with_1s_sessions();
        assert_eq!(g.state(), ConsumerGroupState::Stable);
        // Long after every session would have ended in the old incarnation.
        let mut r = restored(&g, 100_000);
        assert_eq!(
            changes(&g, &r),
            vec![],
            "the restored group is the same group"
        );
        assert_eq!(
            (r.group_epoch(), r.assignment_epoch(), r.state()),
            (
                g.group_epoch(),
                g.assignment_epoch(),
                ConsumerGroupState::Stable
            )
        );
        assert!(!r.tick(100_999, &t), "sessions start over at the load");
        // Members go on at their epochs with their partitions: no rebalance.
        for (id, (epoch, have)) in &owned {
            let hb = r.heartbeat(100_001, beat(id, *epoch, have), &t);
            assert_eq!((hb.error, hb.member_epoch), (code::NONE, *epoch));
            assert_eq!(hb.assignment.as_ref(), Some(have));
        }
        assert_eq!(r.group_epoch(), g.group_epoch());
        // Ownership was rebuilt: a third member gets nothing until someone revokes.
        let j = r.heartbeat(100_002, join("m3", &["a"]), &t);
        assert_eq!(count(&j.assignment.unwrap()), 0);
        // A member in the middle of a revocation is restored with its rebalance deadline
        // starting over.
        let (e1, a1) = owned["m1"].clone();
        let hb = r.heartbeat(100_003, beat("m1", e1, &a1), &t);
        assert_eq!(
            r.member("m1").unwrap().state,
            MemberState::UnrevokedPartitions
        );
        let mut r2 = restored(&r, 200_000);
        assert_eq!(changes(&r, &r2), vec![]);
        assert_eq!(
            r2.member("m1").unwrap().state,
            MemberState::UnrevokedPartitions
        );
        let kept = hb.assignment.unwrap();
        let hb = r2.heartbeat(200_001, beat("m1", e1, &kept), &t);
        assert_eq!(hb.member_epoch, r2.assignment_epoch());
    }

    #[test]
    fn changes_are_reported_in_kafkas_record_order() {
        let t = topics(&[("a", 2)]);
        let mut g = ConsumerGroup::new("g", ConsumerConfig::default());
        let before = g.clone();
        g.heartbeat(0, join("m1", &["a"]), &t);
        let m1 = || "m1".to_owned();
        assert_eq!(
            changes(&before, &g),
            vec![
                Change::MemberMetadata(m1()),
                Change::SubscriptionMetadata,
                Change::GroupEpoch,
                Change::TargetMember(m1()),
                Change::TargetEpoch,
                Change::CurrentAssignment(m1()),
            ]
        );
        // A plain heartbeat changes nothing.
        let before = g.clone();
        let all = g.target_of("m1");
        g.heartbeat(1, beat("m1", 1, &all), &t);
        assert_eq!(changes(&before, &g), vec![]);
        // A second member: m1's target shrinks, m1 is asked to revoke.
        let before = g.clone();
        g.heartbeat(2, join("m2", &["a"]), &t);
        g.heartbeat(3, beat("m1", 1, &all), &t);
        assert_eq!(
            changes(&before, &g),
            vec![
                Change::MemberMetadata("m2".into()),
                Change::GroupEpoch,
                Change::TargetMember(m1()),
                Change::TargetMember("m2".into()),
                Change::TargetEpoch,
                Change::CurrentAssignment(m1()),
                Change::CurrentAssignment("m2".into()),
            ]
        );
        // Leaving: the member's tombstones, then the group epoch.
        let before = g.clone();
        let mut leave = beat("m2", 2, &Assignment::new());
        leave.member_epoch = LEAVE_EPOCH;
        g.heartbeat(4, leave, &t);
        assert_eq!(
            changes(&before, &g),
            vec![Change::MemberRemoved("m2".into()), Change::GroupEpoch]
        );
    }
}
