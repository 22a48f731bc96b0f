//! Several brokers under one metadata quorum (raft-rs over the controller
//! listener), on one host: topics created on any broker are placed over all,
//! every broker's Metadata agrees, clients (librdkafka, kcat, sluice's CLI)
//! are routed to leaders, the quorum survives the death of its leader, a
//! broker that stops heartbeating is fenced (its partitions go offline) and
//! comes back, and misconfigured nodes are refused with a clear message.

mod common;

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::cluster::*;
use common::{call, rdk, Broker};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

#[test]
fn three_brokers_place_topics_agree_on_metadata_and_route_clients() {
    let c = Cluster::start(3, &[]);
    // Created on broker 1 and on broker 3.
    rdk::create_topic(&c.broker(1).bootstrap(), "spread", 6);
    let (ok, out) = cli(&[
        "topics",
        "--bootstrap-server",
        &c.broker(3).bootstrap(),
        "--create",
        "--topic",
        "triple",
        "--partitions",
        "3",
        "--replication-factor",
        "3",
    ]);
    assert!(ok && out.contains("Created topic triple."), "{out}");
    let (ok, out) = cli(&[
        "topics",
        "--bootstrap-server",
        &c.broker(2).bootstrap(),
        "--create",
        "--topic",
        "toomany",
        "--partitions",
        "1",
        "--replication-factor",
        "4",
    ]);
    assert!(
        !ok && out.contains("only 3 broker(s) are registered"),
        "{out}"
    );

    // Every broker says the same, lists all three, and spreads the leaders.
    let want_brokers: Vec<(i32, u16)> = (1..=3).map(|i| (i, c.broker(i).port())).collect();
    let first = layout(&metadata(c.broker(1)));
    for id in 1..=3 {
        let m = metadata(c.broker(id));
        assert_eq!(brokers_of(&m), want_brokers);
        assert_eq!(layout(&m), first, "broker {id} disagrees");
    }
    let mut leaders = BTreeMap::new();
    for (leader, replicas, isr, err) in first["spread"].values() {
        assert_eq!(
            (replicas.as_slice(), isr.as_slice(), *err),
            (&[*leader][..], &[*leader][..], 0)
        );
        *leaders.entry(*leader).or_insert(0) += 1;
    }
    assert_eq!(
        leaders.values().copied().collect::<Vec<_>>(),
        vec![2, 2, 2],
        "{leaders:?}"
    );
    for (leader, replicas, _, _) in first["triple"].values() {
        let mut r = replicas.clone();
        r.sort();
        assert_eq!(r, vec![1, 2, 3]);
        assert_eq!(*leader, replicas[0], "the first replica leads");
    }

    // Kafka's describe format, line by line.
    let (ok, out) = cli(&[
        "topics",
        "--bootstrap-server",
        &c.broker(2).bootstrap(),
        "--describe",
        "--topic",
        "triple",
    ]);
    assert!(ok, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("Topic: triple\tTopicId: ")
            && lines[0].ends_with("\tPartitionCount: 3\tReplicationFactor: 3\tConfigs: "),
        "{out}"
    );
    for p in 0..3 {
        let (leader, replicas, isr, _) = &first["triple"][&p];
        let join = |v: &[i32]| v.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
        assert_eq!(
            lines[1 + p as usize],
            format!(
                "\tTopic: triple\tPartition: {p}\tLeader: {leader}\tReplicas: {}\tIsr: {}",
                join(replicas),
                join(isr)
            )
        );
    }

    // librdkafka bootstrapped on one broker writes to every leader; read
    // back through another.
    produce(&c.broker(2).bootstrap(), "spread", 6, 300);
    assert_eq!(consumed(&c.broker(3).bootstrap(), "spread", 6), 300);
    produce(&c.bootstrap_all(), "triple", 3, 90);
    assert_eq!(consumed(&c.broker(1).bootstrap(), "triple", 3), 90);

    // A broker asked for a partition it does not lead says so.
    let (p, (leader, ..)) = first["spread"].iter().find(|(_, (l, ..))| *l != 1).unwrap();
    let mut s = TcpStream::connect(c.broker(1).addr()).unwrap();
    let req = ListOffsetsRequest::default().with_topics(vec![ListOffsetsTopic::default()
        .with_name(TopicName(StrBytes::from_static_str("spread")))
        .with_partitions(vec![ListOffsetsPartition::default()
            .with_partition_index(*p)
            .with_timestamp(-1)])]);
    let r = call(&mut s, 5, &req);
    assert_eq!(
        r.topics[0].partitions[0].error_code, 6,
        "NOT_LEADER_OR_FOLLOWER from broker 1 for a partition broker {leader} leads"
    );

    // The quorum as kafka-metadata-quorum.sh shows it, asked of any broker.
    let leader = c.quorum_leader();
    for id in 1..=3 {
        let (ok, out) = cli(&[
            "metadata-quorum",
            "--bootstrap-server",
            &c.broker(id).bootstrap(),
            "describe",
            "--status",
        ]);
        assert!(ok, "{out}");
        assert!(
            out.contains(&format!("LeaderId:               {leader}\n")),
            "{out}"
        );
        assert!(out.contains("MaxFollowerLag:         "), "{out}");
        for v in 1..=3 {
            assert!(
                out.contains(&format!(
                    "{{\"id\": {v}, \"endpoints\": [\"CONTROLLER://127.0.0.1:{}\"]}}",
                    c.controller_ports[v - 1]
                )),
                "{out}"
            );
        }
    }
    let (ok, out) = cli(&[
        "metadata-quorum",
        "--bootstrap-server",
        &c.broker(2).bootstrap(),
        "describe",
        "--replication",
    ]);
    assert!(ok, "{out}");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split('\t').map(str::trim).collect())
        .collect();
    assert_eq!(
        rows[0][..7],
        [
            "NodeId",
            "DirectoryId",
            "LogEndOffset",
            "Lag",
            "LastFetchTimestamp",
            "LastCaughtUpTimestamp",
            "Status"
        ]
    );
    assert_eq!(
        (rows[1][0], rows[1][6]),
        (leader.to_string().as_str(), "Leader"),
        "{out}"
    );
    assert_eq!(
        rows.iter()
            .filter(|r| r.get(6) == Some(&"Follower"))
            .count(),
        2,
        "{out}"
    );

    // A Produce to a broker that does not lead the partition names the
    // leader (KIP-951, Produce v10+); sent to the leader, it is taken.
    let (part_id, part_leader) = first["spread"]
        .iter()
        .find(|(_, (l, ..))| *l != 1)
        .map(|(p, (l, ..))| (*p, *l))
        .unwrap();
    let mut s = TcpStream::connect(c.broker(1).addr()).unwrap();
    let r = call(&mut s, 10, &one_record_produce("spread", part_id));
    let part = &r.responses[0].partition_responses[0];
    assert_eq!(part.error_code, 6, "{part:?}");
    assert_eq!(part.current_leader.leader_id.0, part_leader);
    let ep = r
        .node_endpoints
        .iter()
        .find(|e| e.node_id.0 == part_leader)
        .expect("the leader's endpoint");
    assert_eq!(ep.port, c.broker(part_leader).port() as i32);
    let mut at_leader = TcpStream::connect(c.broker(part_leader).addr()).unwrap();
    let r = call(&mut at_leader, 10, &one_record_produce("spread", part_id));
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    // The same for Fetch (v16+).
    {
        use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
        use kafka_protocol::messages::FetchRequest;
        let id = metadata(c.broker(1))
            .topics
            .iter()
            .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == "spread"))
            .unwrap()
            .topic_id;
        let fetch = FetchRequest::default()
            .with_max_wait_ms(0)
            .with_max_bytes(1 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic_id(id)
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(part_id)
                    .with_partition_max_bytes(1 << 20)])]);
        let r = call(&mut s, 16, &fetch);
        let part = &r.responses[0].partitions[0];
        assert_eq!(part.error_code, 6, "{part:?}");
        assert_eq!(part.current_leader.leader_id.0, part_leader);
        assert!(
            r.node_endpoints.iter().any(
                |e| e.node_id.0 == part_leader && e.port == c.broker(part_leader).port() as i32
            ),
            "{:?}",
            r.node_endpoints
        );
    }

    // A consumer group over the cluster (its coordinator is the leader of
    // its __consumer_offsets partition, wherever that is).
    let out = common::run_with_timeout(
        Command::new(common::require_tool("kcat")).args([
            "-b",
            &c.broker(1).bootstrap(),
            "-G",
            "cluster-group",
            "-o",
            "beginning",
            "-e",
            "-q",
            "spread",
        ]),
        None,
        Duration::from_secs(60),
    );
    let got = String::from_utf8_lossy(&out.stdout).lines().count();
    assert_eq!(
        got,
        301,
        "the 300 and the KIP-951 one: {}",
        common::show_output(&out)
    );
}

#[test]
fn the_quorum_survives_its_leader_and_a_dead_broker_is_fenced_then_rejoins() {
    let mut c = Cluster::start(3, FAST_SESSIONS);
    rdk::create_topic(&c.broker(1).bootstrap(), "spread", 6);
    produce(&c.bootstrap_all(), "spread", 6, 120);
    let dead = c.quorum_leader();
    let alive: Vec<i32> = (1..=3).filter(|i| *i != dead).collect();
    let led_by_dead: Vec<i32> = layout(&metadata(c.broker(alive[0])))["spread"]
        .iter()
        .filter(|(_, (l, ..))| *l == dead)
        .map(|(p, _)| *p)
        .collect();
    assert_eq!(led_by_dead.len(), 2);

    c.brokers[dead as usize - 1].kill9();
    let killed = Instant::now();
    // Admin requests work again once another leader is elected.
    let survivor = c.broker(alive[0]).bootstrap();
    until("a CreateTopics after the controller died", || {
        cli(&[
            "topics",
            "--bootstrap-server",
            &survivor,
            "--create",
            "--topic",
            "after",
            "--partitions",
            "1",
            "--replication-factor",
            "1",
        ])
        .0
    });
    eprintln!(
        "admin requests answered again {} ms after kill -9 of the quorum leader",
        killed.elapsed().as_millis()
    );
    assert_ne!(c.quorum_leader(), dead);
    let (ok, out) = cli(&[
        "metadata-quorum",
        "--bootstrap-server",
        &survivor,
        "describe",
        "--status",
    ]);
    assert!(
        ok && out.contains(&format!("LeaderId:               {}\n", c.quorum_leader())),
        "{out}"
    );
    // After its session the dead broker is fenced: gone from Metadata, its
    // partitions offline (no other replica has their data).
    until("the dead broker fenced", || {
        let m = metadata(c.broker(alive[1]));
        let l = layout(&m);
        brokers_of(&m).len() == 2
            && led_by_dead
                .iter()
                .all(|p| l["spread"][p].0 == -1 && l["spread"][p].3 == 5)
    });
    eprintln!(
        "broker {dead} fenced {} ms after kill -9",
        killed.elapsed().as_millis()
    );
    // The others' partitions still take writes.
    let p = rdk::producer(&survivor, &[]);
    let (live_p, _) = layout(&metadata(c.broker(alive[0])))["spread"]
        .iter()
        .find(|(_, (l, ..))| *l != -1)
        .map(|(p, v)| (*p, v.clone()))
        .unwrap();
    rdk::wait_delivery(rdk::send(&p, "spread", live_p, None, b"while one is down"));

    // It comes back, catches up the metadata log, leads its partitions again.
    let b = &mut c.brokers[dead as usize - 1];
    b.relaunch();
    b.wait_until_ready();
    until("the restarted broker leads its partitions again", || {
        let l = layout(&metadata(c.broker(dead)));
        l.contains_key("after") && led_by_dead.iter().all(|p| l["spread"][p].0 == dead)
    });
    assert_eq!(consumed(&c.broker(dead).bootstrap(), "spread", 6), 121);
}

#[test]
fn a_paused_broker_is_fenced_and_unfenced_when_it_continues() {
    let c = Cluster::start(3, FAST_SESSIONS);
    rdk::create_topic(&c.broker(1).bootstrap(), "spread", 3);
    let leader = c.quorum_leader();
    let paused = (1..=3).find(|i| *i != leader).unwrap();
    let watcher = c.broker(leader);
    let led: Vec<i32> = layout(&metadata(watcher))["spread"]
        .iter()
        .filter(|(_, (l, ..))| *l == paused)
        .map(|(p, _)| *p)
        .collect();
    assert!(!led.is_empty());
    c.broker(paused).pause(true);
    until("the paused broker fenced, its partitions offline", || {
        let l = layout(&metadata(watcher));
        led.iter().all(|p| l["spread"][p].0 == -1)
    });
    c.broker(paused).pause(false);
    until("the continued broker leads again", || {
        let l = layout(&metadata(watcher));
        led.iter().all(|p| l["spread"][p].0 == paused)
    });
}

#[test]
fn nodes_with_other_voters_or_a_taken_node_id_are_refused_clearly() {
    // Voter lists that differ: node 1 lists {1, 2}, node 2 lists {1, 2, 3}.
    let (c1, c2, c3) = (
        common::free_port(),
        common::free_port(),
        common::free_port(),
    );
    let a = Broker::launch(
        common::DEFAULT_CORES,
        common::free_port(),
        &[
            "node.id=1".into(),
            format!("controller.quorum.voters=1@127.0.0.1:{c1},2@127.0.0.1:{c2}"),
        ],
    );
    let b = Broker::launch(
        common::DEFAULT_CORES,
        common::free_port(),
        &[
            "node.id=2".into(),
            format!("controller.quorum.voters=1@127.0.0.1:{c1},2@127.0.0.1:{c2},3@127.0.0.1:{c3}"),
        ],
    );
    until("the voter mismatch reported", || {
        a.logs().contains("every node must list the same voters")
            && b.logs().contains("every node must list the same voters")
    });
    drop((a, b));

    // A second process claiming node 1 (with its own controller port) is
    // refused by the others; one taking node 1's controller port cannot start.
    let c = Cluster::start(3, &[]);
    // (Its own voter list puts node 1 at its own port; the ids agree.)
    let own = c.voters.replacen(
        &format!("1@127.0.0.1:{}", c.controller_ports[0]),
        &format!("1@127.0.0.1:{}", common::free_port()),
        1,
    );
    let impostor = Broker::launch(
        common::DEFAULT_CORES,
        common::free_port(),
        &[
            "node.id=1".into(),
            format!("controller.quorum.voters={own}"),
        ],
    );
    until("the impostor refused", || {
        c.broker(2).logs().contains("claims node.id 1")
    });
    drop(impostor);
    let mut squatter = Broker::launch(
        common::DEFAULT_CORES,
        common::free_port(),
        &[
            "node.id=1".into(),
            format!("controller.quorum.voters={}", c.voters),
        ],
    );
    until("the squatter exits", || !squatter.is_running());
    let taken = format!("127.0.0.1:{}", c.controller_ports[0]);
    assert!(
        squatter.logs().contains("controller listener") && squatter.logs().contains(&taken),
        "{}",
        squatter.logs()
    );
    // The cluster is unharmed.
    rdk::create_topic(&c.broker(1).bootstrap(), "still-fine", 1);
}

/// Admin requests to every broker at once: those on brokers that do not
/// lead the quorum are forwarded; edits made against metadata that moved on
/// are made again, so nothing is lost and one topic name is created once.
#[test]
fn concurrent_admin_requests_on_every_broker_are_all_applied_once() {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let c = Cluster::start(3, &[]);
    let outcomes: Vec<Vec<Result<String, String>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (1..=3)
            .map(|id| {
                let bootstrap = c.broker(id).bootstrap();
                s.spawn(move || {
                    let admin: AdminClient<DefaultClientContext> =
                        rdk::config(&bootstrap, &[]).create().unwrap();
                    let opts = AdminOptions::new().request_timeout(Some(rdk::TIMEOUT));
                    let mut names: Vec<String> = (0..8).map(|k| format!("b{id}-t{k}")).collect();
                    names.push("contended".into());
                    let topics: Vec<NewTopic> = names
                        .iter()
                        .map(|n| NewTopic::new(n, 2, TopicReplication::Fixed(1)))
                        .collect();
                    let mut all = Vec::new();
                    // One request per topic, so requests from the three interleave.
                    for t in &topics {
                        let r = futures::executor::block_on(admin.create_topics([t], &opts))
                            .expect("CreateTopics");
                        all.extend(
                            r.into_iter()
                                .map(|x| x.map_err(|(n, e)| format!("{n}: {e:?}"))),
                        );
                    }
                    all
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let flat: Vec<&Result<String, String>> = outcomes.iter().flatten().collect();
    let contended_ok = flat
        .iter()
        .filter(|r| matches!(r, Ok(n) if n == "contended"))
        .count();
    assert_eq!(contended_ok, 1, "{flat:?}");
    for r in &flat {
        match r {
            Ok(_) => {}
            Err(e) => assert!(
                e.starts_with("contended: ") && e.contains("TopicAlreadyExists"),
                "{e}"
            ),
        }
    }
    // Producer ids from different brokers never collide (blocks come from
    // the metadata log).
    let ids: Vec<i64> = (1..=3)
        .flat_map(|id| {
            let bs = c.broker(id).bootstrap();
            (0..3).map(move |_| init_producer_id(&bs))
        })
        .collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");
    let l = layout(&metadata(c.broker(2)));
    assert_eq!(l.len(), 3 * 8 + 1, "{:?}", l.keys().collect::<Vec<_>>());
    for id in [1, 3] {
        assert_eq!(layout(&metadata(c.broker(id))), l);
    }
}

/// Third-party clients (their own checks in tests/clients/) against the
/// cluster, bootstrapped from one broker or from all three: topics created,
/// produced (idempotent, acks=all), read back and deleted across brokers.
#[test]
fn real_clients_work_through_the_cluster() {
    let c = Cluster::start(3, &[]);
    let clients = common::repo_root().join("tests/clients");
    let python = clients.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} missing: run tests/run",
        python.display()
    );
    let node = common::require_tool("node");
    for (interpreter, script, bootstrap) in [
        (&python, "kafka_python_check.py", c.broker(2).bootstrap()),
        (&python, "confluent_check.py", c.bootstrap_all()),
        (&node, "kafkajs_check.js", c.bootstrap_all()),
    ] {
        let out = common::run_with_timeout(
            Command::new(interpreter)
                .arg(clients.join(script))
                .arg(&bootstrap)
                .current_dir(&clients),
            None,
            Duration::from_secs(180),
        );
        assert!(
            out.status.success(),
            "{script} with bootstrap {bootstrap} failed\n{}",
            common::show_output(&out)
        );
    }
}
