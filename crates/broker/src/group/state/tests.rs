//! The state machine driven by hand: no runtime, time is a number.

use super::*;

const SESSION: i32 = 10_000;
const REBALANCE: i32 = 30_000;

fn config() -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay_ms: 0,
        ..GroupConfig::default()
    }
}

fn req(member_id: &str, new_id: &str) -> JoinRequest {
    JoinRequest {
        member_id: member_id.into(),
        group_instance_id: None,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from_static(b"meta"))],
        session_timeout_ms: SESSION,
        rebalance_timeout_ms: REBALANCE,
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        require_known_member_id: false,
        new_member_id: new_id.into(),
    }
}

fn static_req(member_id: &str, new_id: &str, instance: &str) -> JoinRequest {
    JoinRequest {
        group_instance_id: Some(instance.into()),
        ..req(member_id, new_id)
    }
}

fn joins(actions: &[Action]) -> BTreeMap<String, JoinResult> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Join { member_id, result } => Some((member_id.clone(), result.clone())),
            _ => None,
        })
        .collect()
}

fn syncs(actions: &[Action]) -> BTreeMap<String, SyncResult> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Sync { member_id, result } => Some((member_id.clone(), result.clone())),
            _ => None,
        })
        .collect()
}

/// A group with members `ids` that went through one rebalance and is Stable at generation 1,
/// each member assigned its own id as bytes.
fn stable_group(ids: &[&str]) -> Group {
    let mut g = Group::new("g", config(), 0);
    g.config.initial_rebalance_delay_ms = 1_000;
    for id in ids {
        let (out, _) = g.join(0, req("", id));
        assert_eq!(
            out,
            Outcome::Parked {
                member_id: id.to_string()
            }
        );
    }
    let actions = g.tick(1_000);
    let answered = joins(&actions);
    assert_eq!(answered.len(), ids.len());
    assert_eq!(g.state(), GroupState::CompletingRebalance);
    let leader = g.leader().unwrap().to_owned();
    let assignments = ids
        .iter()
        .map(|id| (id.to_string(), Bytes::from(id.to_string())))
        .collect();
    let (_, actions) = g.sync(1_000, &leader, None, 1, None, None, assignments);
    assert!(actions.contains(&Action::Persist));
    for id in ids.iter().filter(|id| **id != leader) {
        let (out, _) = g.sync(1_000, id, None, 1, None, None, vec![]);
        assert!(matches!(out, Outcome::Now(SyncResult { error: 0, .. })));
    }
    assert_eq!(g.state(), GroupState::Stable);
    g
}

#[test]
fn first_member_completes_the_join_at_once_without_initial_delay() {
    let mut g = Group::new("g", config(), 0);
    let (out, actions) = g.join(0, req("", "m1"));
    assert_eq!(
        out,
        Outcome::Parked {
            member_id: "m1".into()
        }
    );
    let j = &joins(&actions)["m1"];
    assert_eq!(j.error, code::NONE);
    assert_eq!(j.generation, 1);
    assert_eq!(j.leader, "m1");
    assert_eq!(j.protocol_name.as_deref(), Some("range"));
    assert_eq!(j.members.len(), 1);
    let (out, actions) = g.sync(
        0,
        "m1",
        None,
        1,
        None,
        None,
        vec![("m1".into(), "a".into())],
    );
    assert!(matches!(out, Outcome::Parked { .. }));
    assert_eq!(syncs(&actions)["m1"].assignment, Bytes::from_static(b"a"));
    assert_eq!(g.state(), GroupState::Stable);
}

#[test]
fn initial_delay_holds_the_first_join_and_extends_for_new_members() {
    let mut g = Group::new("g", GroupConfig::default(), 0);
    assert!(g.join(0, req("", "m1")).1.is_empty());
    assert!(g.join(2_000, req("", "m2")).1.is_empty());
    assert!(g.tick(3_000).is_empty(), "extended by the second member");
    let actions = g.tick(5_000);
    assert_eq!(joins(&actions).len(), 2);
    assert_eq!(g.generation(), 1);
}

#[test]
fn member_id_required_for_new_dynamic_members_from_v4() {
    let mut g = Group::new("g", config(), 0);
    let mut r = req("", "m1");
    r.require_known_member_id = true;
    let (out, actions) = g.join(0, r.clone());
    assert!(actions.is_empty());
    let Outcome::Now(j) = out else { panic!() };
    assert_eq!(j.error, code::MEMBER_ID_REQUIRED);
    assert_eq!(j.member_id, "m1");
    assert_eq!(g.state(), GroupState::Empty);
    r.member_id = "m1".into();
    let (_, actions) = g.join(10, r);
    assert_eq!(joins(&actions)["m1"].error, code::NONE);
}

#[test]
fn pending_member_that_never_rejoins_is_forgotten() {
    let mut g = stable_group(&["a"]);
    let mut r = req("", "b");
    r.require_known_member_id = true;
    g.join(1_000, r.clone());
    g.tick(1_000 + i64::from(SESSION));
    r.member_id = "b".into();
    let (out, _) = g.join(1_000 + i64::from(SESSION) + 1, r);
    assert_eq!(
        out,
        Outcome::Now(JoinResult::error("b", code::UNKNOWN_MEMBER_ID))
    );
}

#[test]
fn join_during_rebalance_waits_for_every_known_member() {
    let mut g = stable_group(&["a", "b"]);
    // A third member arrives: rebalance, a and b must rejoin.
    let (out, actions) = g.join(2_000, req("", "c"));
    assert!(matches!(out, Outcome::Parked { .. }));
    assert!(actions.is_empty());
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert_eq!(
        g.heartbeat(2_001, "a", None, 1),
        code::REBALANCE_IN_PROGRESS
    );
    assert!(g.join(2_002, req("a", "")).1.is_empty());
    let actions = g.join(2_003, req("b", "")).1;
    let answered = joins(&actions);
    assert_eq!(answered.len(), 3);
    assert!(answered.values().all(|j| j.generation == 2 && j.error == 0));
    let leader = &answered[g.leader().unwrap()];
    assert_eq!(leader.members.len(), 3);
    assert_eq!(
        answered.values().filter(|j| !j.members.is_empty()).count(),
        1,
        "only the leader gets the members"
    );
}

#[test]
fn rebalance_timeout_removes_members_that_did_not_rejoin() {
    let mut g = stable_group(&["a", "b"]);
    g.join(2_000, req("", "c"));
    g.join(2_000, req("a", ""));
    // b keeps heartbeating but never rejoins.
    for t in [10_000, 20_000, 30_000] {
        assert_eq!(g.heartbeat(t, "b", None, 1), code::REBALANCE_IN_PROGRESS);
    }
    assert!(g.tick(2_000 + i64::from(REBALANCE) - 1).is_empty());
    let actions = g.tick(2_000 + i64::from(REBALANCE));
    let answered = joins(&actions);
    assert_eq!(answered.keys().collect::<Vec<_>>(), vec!["a", "c"]);
    assert!(!g.has_member("b"));
    assert_eq!(g.generation(), 2);
    assert_eq!(g.heartbeat(40_000, "b", None, 2), code::UNKNOWN_MEMBER_ID);
}

#[test]
fn member_that_never_syncs_is_removed_after_the_rebalance_timeout() {
    let mut g = Group::new("g", config(), 0);
    g.join(0, req("", "a"));
    g.join(0, req("", "b"));
    // b joined while a's join was already complete (a is alone at first): settle both.
    g.join(0, req("a", ""));
    assert_eq!(g.state(), GroupState::CompletingRebalance);
    let leader = g.leader().unwrap().to_owned();
    let follower = if leader == "a" { "b" } else { "a" };
    let gen = g.generation();
    g.sync(0, &leader, None, gen, None, None, vec![]);
    assert_eq!(g.state(), GroupState::Stable);
    // The follower heartbeats but never syncs.
    assert_eq!(g.heartbeat(25_000, follower, None, gen), code::NONE);
    assert_eq!(g.heartbeat(25_000, &leader, None, gen), code::NONE);
    let actions = g.tick(i64::from(REBALANCE));
    assert!(!g.has_member(follower));
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert!(joins(&actions).is_empty());
}

#[test]
fn session_expiry_removes_the_member_and_rebalances() {
    let mut g = stable_group(&["a", "b"]);
    assert_eq!(g.heartbeat(5_000, "a", None, 1), code::NONE);
    g.tick(1_000 + i64::from(SESSION));
    assert!(!g.has_member("b"), "b's session ran out");
    assert!(g.has_member("a"));
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    let (_, actions) = g.join(11_500, req("a", ""));
    assert_eq!(joins(&actions)["a"].generation, 2);
    // The last member expiring leaves the group Empty.
    g.sync(11_500, "a", None, 2, None, None, vec![]);
    let actions = g.tick(11_500 + i64::from(SESSION));
    assert_eq!(g.state(), GroupState::Empty);
    assert!(actions.contains(&Action::Persist));
}

#[test]
fn generation_fencing() {
    let mut g = stable_group(&["a", "b"]);
    assert_eq!(g.heartbeat(1_000, "a", None, 0), code::ILLEGAL_GENERATION);
    let (out, _) = g.sync(1_000, "a", None, 7, None, None, vec![]);
    assert_eq!(
        out,
        Outcome::Now(SyncResult::error(code::ILLEGAL_GENERATION))
    );
    assert_eq!(
        g.validate_offset_commit("a", None, 0, 1_000),
        Err(code::ILLEGAL_GENERATION)
    );
    assert_eq!(g.validate_offset_commit("a", None, 1, 1_000), Ok(()));
    assert_eq!(
        g.validate_offset_commit("zz", None, 1, 1_000),
        Err(code::UNKNOWN_MEMBER_ID)
    );
    // An admin commit (generation -1) is only allowed while the group is Empty.
    assert_eq!(
        g.validate_offset_commit("", None, -1, 1_000),
        Err(code::UNKNOWN_MEMBER_ID)
    );
    assert_eq!(
        Group::new("x", config(), 0).validate_offset_commit("", None, -1, 0),
        Ok(())
    );
}

#[test]
fn unknown_member_errors() {
    let mut g = stable_group(&["a"]);
    assert_eq!(g.heartbeat(1_000, "nope", None, 1), code::UNKNOWN_MEMBER_ID);
    let (out, _) = g.join(1_000, req("nope", ""));
    assert_eq!(
        out,
        Outcome::Now(JoinResult::error("nope", code::UNKNOWN_MEMBER_ID))
    );
    let (codes, _) = g.leave(1_000, &[("nope".into(), None), ("a".into(), None)]);
    assert_eq!(codes, vec![code::UNKNOWN_MEMBER_ID, code::NONE]);
    assert_eq!(g.state(), GroupState::Empty);
}

#[test]
fn commit_and_sync_during_rebalance() {
    let mut g = stable_group(&["a", "b"]);
    g.join(2_000, req("a", ""));
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    let (out, _) = g.sync(2_000, "b", None, 1, None, None, vec![]);
    assert_eq!(
        out,
        Outcome::Now(SyncResult::error(code::REBALANCE_IN_PROGRESS))
    );
    // Commits of the previous generation are still accepted while preparing.
    assert_eq!(g.validate_offset_commit("b", None, 1, 2_000), Ok(()));
    g.join(2_000, req("b", ""));
    assert_eq!(g.state(), GroupState::CompletingRebalance);
    assert_eq!(
        g.validate_offset_commit("b", None, 2, 2_000),
        Err(code::REBALANCE_IN_PROGRESS)
    );
}

#[test]
fn a_new_join_while_completing_answers_parked_syncs_with_rebalance_in_progress() {
    let mut g = Group::new("g", config(), 0);
    g.join(0, req("", "a"));
    let leader = g.leader().unwrap().to_owned();
    assert_eq!(leader, "a");
    g.join(0, req("", "b"));
    g.join(0, req("a", ""));
    assert_eq!(g.state(), GroupState::CompletingRebalance);
    let follower = if g.leader() == Some("a") { "b" } else { "a" };
    let (out, _) = g.sync(0, follower, None, g.generation(), None, None, vec![]);
    assert!(matches!(out, Outcome::Parked { .. }));
    let (_, actions) = g.join(0, req("", "c"));
    assert_eq!(syncs(&actions)[follower].error, code::REBALANCE_IN_PROGRESS);
}

#[test]
fn static_member_rejoining_a_stable_group_does_not_rebalance() {
    let mut g = Group::new("g", config(), 0);
    g.join(0, static_req("", "a1", "ia"));
    g.sync(
        0,
        "a1",
        None,
        1,
        None,
        None,
        vec![("a1".into(), "A".into())],
    );
    g.join(0, static_req("", "b1", "ib"));
    g.join(0, static_req("a1", "", "ia"));
    let gen = g.generation();
    let leader = g.leader().unwrap().to_owned();
    let assignments = vec![("a1".into(), "A".into()), ("b1".into(), "B".into())];
    g.sync(0, &leader, None, gen, None, None, assignments);
    let other = if leader == "a1" { "b1" } else { "a1" };
    g.sync(0, other, None, gen, None, None, vec![]);
    assert_eq!(g.state(), GroupState::Stable);

    // b restarts with a new member id within its session timeout.
    let (out, actions) = g.join(5_000, static_req("", "b2", "ib"));
    let Outcome::Now(j) = out else {
        panic!("answered at once")
    };
    assert_eq!(j.error, code::NONE);
    assert_eq!(j.member_id, "b2");
    assert_eq!(j.generation, gen, "no new generation");
    assert!(actions.contains(&Action::Persist));
    assert_eq!(g.state(), GroupState::Stable);
    let (out, _) = g.sync(5_000, "b2", Some("ib"), gen, None, None, vec![]);
    let Outcome::Now(s) = out else { panic!() };
    assert_eq!(
        s.assignment,
        Bytes::from_static(b"B"),
        "keeps its assignment"
    );
    // The old id is fenced.
    assert_eq!(
        g.heartbeat(5_000, "b1", Some("ib"), gen),
        code::FENCED_INSTANCE_ID
    );
    let (codes, _) = g.leave(5_000, &[("b1".into(), Some("ib".into()))]);
    assert_eq!(codes, vec![code::FENCED_INSTANCE_ID]);
    // The old session does not expire the new member.
    g.tick(5_000 + i64::from(SESSION) - 1);
    assert!(g.has_member("b2"));
}

#[test]
fn static_member_replacement_fences_a_parked_join() {
    let mut g = stable_group(&["x"]);
    g.join(2_000, static_req("", "s1", "is"));
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    let (out, actions) = g.join(2_001, static_req("", "s2", "is"));
    assert!(matches!(out, Outcome::Parked { .. }));
    assert_eq!(joins(&actions)["s1"].error, code::FENCED_INSTANCE_ID);
    assert!(g.has_member("s2") && !g.has_member("s1"));
}

#[test]
fn group_max_size() {
    let mut g = Group::new(
        "g",
        GroupConfig {
            max_size: 2,
            ..config()
        },
        0,
    );
    g.config.initial_rebalance_delay_ms = 100;
    g.join(0, req("", "a"));
    g.join(0, req("", "b"));
    let (out, _) = g.join(0, req("", "c"));
    assert_eq!(
        out,
        Outcome::Now(JoinResult::error("", code::GROUP_MAX_SIZE_REACHED))
    );
    g.tick(100);
    assert_eq!(g.generation(), 1);
    let (out, _) = g.join(200, req("", "d"));
    assert_eq!(
        out,
        Outcome::Now(JoinResult::error("", code::GROUP_MAX_SIZE_REACHED))
    );
}

#[test]
fn session_timeout_bounds() {
    let mut g = Group::new("g", config(), 0);
    for timeout in [5_999, 1_800_001] {
        let mut r = req("", "a");
        r.session_timeout_ms = timeout;
        let (out, _) = g.join(0, r);
        assert_eq!(
            out,
            Outcome::Now(JoinResult::error("", code::INVALID_SESSION_TIMEOUT))
        );
    }
    let mut r = req("", "a");
    r.session_timeout_ms = 6_000;
    assert!(matches!(g.join(0, r).0, Outcome::Parked { .. }));
}

#[test]
fn inconsistent_protocols_are_refused() {
    let mut g = stable_group(&["a"]);
    let mut r = req("", "b");
    r.protocols = vec![("roundrobin".into(), Bytes::new())];
    let (out, _) = g.join(1_000, r);
    assert_eq!(
        out,
        Outcome::Now(JoinResult::error("", code::INCONSISTENT_GROUP_PROTOCOL))
    );
    let mut r = req("", "b");
    r.protocol_type = "connect".into();
    assert!(matches!(
        g.join(1_000, r).0,
        Outcome::Now(JoinResult {
            error: code::INCONSISTENT_GROUP_PROTOCOL,
            ..
        })
    ));
}

#[test]
fn protocol_selection_by_vote() {
    let mut g = Group::new("g", config(), 0);
    g.config.initial_rebalance_delay_ms = 10;
    for (id, protos) in [
        ("a", vec!["cooperative-sticky", "range"]),
        ("b", vec!["range", "cooperative-sticky"]),
        ("c", vec!["range", "roundrobin", "cooperative-sticky"]),
    ] {
        let mut r = req("", id);
        r.protocols = protos
            .into_iter()
            .map(|p| (p.to_owned(), Bytes::new()))
            .collect();
        g.join(0, r);
    }
    g.tick(10);
    assert_eq!(g.protocol_name(), Some("range"));
}

#[test]
fn snapshot_round_trip_restores_a_stable_group() {
    let g = stable_group(&["a", "b"]);
    let snap = g.snapshot();
    assert_eq!(snap.members.len(), 2);
    let mut r = Group::restore("g", config(), snap.clone(), 50_000);
    assert_eq!(r.state(), GroupState::Stable);
    assert_eq!(r.generation(), 1);
    assert_eq!(r.snapshot().members, snap.members);
    assert_eq!(r.heartbeat(50_001, "a", None, 1), code::NONE);
    let (out, _) = r.sync(50_001, "b", None, 1, None, None, vec![]);
    let Outcome::Now(s) = out else { panic!() };
    assert_eq!(s.assignment, Bytes::from_static(b"b"));
}

#[test]
fn consumer_subscription_topics_are_parsed() {
    let mut m = vec![0, 1, 0, 0, 0, 2];
    for t in ["t1", "topic-2"] {
        m.extend((t.len() as i16).to_be_bytes());
        m.extend(t.as_bytes());
    }
    m.extend([0, 0, 0, 0]);
    assert_eq!(consumer_subscription_topics(&m), vec!["t1", "topic-2"]);
    assert!(consumer_subscription_topics(&[0, 1, 0x7f, 0xff, 0xff, 0xff]).is_empty());
}
