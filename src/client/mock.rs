//! A tiny in-memory Kafka broker for offline tests. It decodes requests and
//! encodes responses with `kafka_protocol`, independently of the client code.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{decode_request_header_from_buffer, Decodable, Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use uuid::Uuid;

use super::mock_group::{self, Groups, MockGroup};

/// Records per batch in fetch responses (small, to exercise multi-batch decoding).
const RECORDS_PER_BATCH: usize = 3;

/// Knobs to make the mock look like an older or different broker.
#[derive(Debug, Clone, Default)]
pub struct MockOptions {
    /// Advertised (min, max) per API key, overriding the library's range.
    pub ranges: HashMap<ApiKey, (i16, i16)>,
    /// Host advertised in Metadata (default 127.0.0.1).
    pub advertised_host: Option<String>,
}

#[derive(Debug, Clone)]
struct Stored {
    key: Option<Bytes>,
    value: Option<Bytes>,
    timestamp: i64,
}

#[derive(Debug, Clone)]
struct MockTopic {
    id: Uuid,
    partitions: Vec<Vec<Stored>>,
    configs: BTreeMap<String, String>,
}

struct State {
    opts: MockOptions,
    port: u16,
    topics: BTreeMap<String, MockTopic>,
    groups: BTreeMap<String, MockGroup>,
}

/// A running mock broker; lives until the test process exits.
pub struct MockBroker {
    pub addr: String,
    state: Arc<Mutex<State>>,
}

impl MockBroker {
    pub fn start() -> MockBroker {
        MockBroker::start_with(MockOptions::default())
    }

    pub fn start_with(opts: MockOptions) -> MockBroker {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind mock broker");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            opts,
            port,
            topics: BTreeMap::new(),
            groups: BTreeMap::new(),
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let st = shared.clone();
                std::thread::spawn(move || serve(stream, st));
            }
        });
        MockBroker {
            addr: format!("127.0.0.1:{port}"),
            state,
        }
    }

    /// Creates a topic directly (bypassing the protocol).
    pub fn add_topic(&self, name: &str, partitions: usize) {
        let mut st = self.state.lock().unwrap();
        st.topics.insert(name.to_string(), new_topic(partitions));
    }

    /// Number of records stored in a partition.
    pub fn len(&self, topic: &str, partition: usize) -> usize {
        let st = self.state.lock().unwrap();
        st.topics[topic].partitions[partition].len()
    }

    /// Makes the next heartbeat of `group` answer REBALANCE_IN_PROGRESS.
    pub fn force_rebalance(&self, group: &str) {
        let mut st = self.state.lock().unwrap();
        st.groups
            .entry(group.to_string())
            .or_default()
            .force_rebalance = true;
    }

    /// Values stored in a partition, as strings.
    pub fn values(&self, topic: &str, partition: usize) -> Vec<String> {
        let st = self.state.lock().unwrap();
        st.topics[topic].partitions[partition]
            .iter()
            .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or(b"null")).into_owned())
            .collect()
    }
}

fn new_topic(partitions: usize) -> MockTopic {
    MockTopic {
        id: Uuid::new_v4(),
        partitions: vec![Vec::new(); partitions],
        configs: BTreeMap::new(),
    }
}

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

fn serve(mut stream: TcpStream, state: Arc<Mutex<State>>) {
    loop {
        let mut size = [0u8; 4];
        if stream.read_exact(&mut size).is_err() {
            return;
        }
        let mut frame = vec![0u8; i32::from_be_bytes(size) as usize];
        if stream.read_exact(&mut frame).is_err() {
            return;
        }
        let mut buf = Bytes::from(frame);
        let header = decode_request_header_from_buffer(&mut buf).expect("request header");
        let api = ApiKey::try_from(header.request_api_key).expect("api key");
        let version = header.request_api_version;
        let client_id = header.client_id.as_deref().unwrap_or("").to_string();
        let Some(body) = handle(api, version, &mut buf, &state, client_id) else {
            continue;
        };
        let mut out = BytesMut::new();
        out.put_i32(0);
        ResponseHeader::default()
            .with_correlation_id(header.correlation_id)
            .encode(&mut out, api.response_header_version(version))
            .unwrap();
        out.extend_from_slice(&body);
        let len = (out.len() - 4) as i32;
        out[..4].copy_from_slice(&len.to_be_bytes());
        if stream.write_all(&out).is_err() {
            return;
        }
    }
}

pub(super) fn encode<R: Encodable>(resp: R, version: i16) -> Option<BytesMut> {
    let mut out = BytesMut::new();
    resp.encode(&mut out, version)
        .expect("encode mock response");
    Some(out)
}

fn range(st: &State, api: ApiKey) -> (i16, i16) {
    st.opts.ranges.get(&api).copied().unwrap_or_else(|| {
        let r = api.valid_versions();
        (r.min, r.max)
    })
}

fn handle(
    api: ApiKey,
    v: i16,
    buf: &mut Bytes,
    state: &Mutex<State>,
    client_id: String,
) -> Option<BytesMut> {
    let mut st = state.lock().unwrap();
    {
        let State {
            groups,
            port,
            topics,
            ..
        } = &mut *st;
        let groups = Groups {
            groups,
            port: *port,
            topics: topics
                .iter()
                .map(|(n, t)| (n.clone(), t.partitions.len()))
                .collect(),
            client_id,
        };
        if let Some(resp) = mock_group::handle(api, v, buf, groups) {
            return resp;
        }
    }
    match api {
        ApiKey::ApiVersions => api_versions(&st, v),
        ApiKey::Metadata => metadata(&st, MetadataRequest::decode(buf, v).unwrap(), v),
        ApiKey::CreateTopics => {
            create_topics(&mut st, CreateTopicsRequest::decode(buf, v).unwrap(), v)
        }
        ApiKey::DeleteTopics => {
            delete_topics(&mut st, DeleteTopicsRequest::decode(buf, v).unwrap(), v)
        }
        ApiKey::CreatePartitions => {
            create_partitions(&mut st, CreatePartitionsRequest::decode(buf, v).unwrap(), v)
        }
        ApiKey::DescribeConfigs => {
            describe_configs(&st, DescribeConfigsRequest::decode(buf, v).unwrap(), v)
        }
        ApiKey::IncrementalAlterConfigs => alter_configs(
            &mut st,
            IncrementalAlterConfigsRequest::decode(buf, v).unwrap(),
            v,
        ),
        ApiKey::Produce => produce(&mut st, ProduceRequest::decode(buf, v).unwrap(), v),
        ApiKey::Fetch => {
            let req = FetchRequest::decode(buf, v).unwrap();
            let (resp, empty) = fetch(&st, &req, v);
            drop(st);
            if empty {
                std::thread::sleep(Duration::from_millis(req.max_wait_ms.clamp(0, 50) as u64));
            }
            encode(resp, v)
        }
        ApiKey::ListOffsets => list_offsets(&st, ListOffsetsRequest::decode(buf, v).unwrap(), v),
        other => panic!("mock broker does not handle {other:?}"),
    }
}

fn api_versions(st: &State, v: i16) -> Option<BytesMut> {
    let (_, max_av) = range(st, ApiKey::ApiVersions);
    if v > max_av {
        let resp = ApiVersionsResponse::default()
            .with_error_code(35)
            .with_api_keys(vec![ApiVersion::default()
                .with_api_key(ApiKey::ApiVersions as i16)
                .with_min_version(0)
                .with_max_version(max_av)]);
        return encode(resp, 0);
    }
    let keys = [
        ApiKey::Produce,
        ApiKey::Fetch,
        ApiKey::ListOffsets,
        ApiKey::Metadata,
        ApiKey::ApiVersions,
        ApiKey::CreateTopics,
        ApiKey::DeleteTopics,
        ApiKey::CreatePartitions,
        ApiKey::DescribeConfigs,
        ApiKey::IncrementalAlterConfigs,
    ];
    let api_keys = keys
        .iter()
        .chain(mock_group::APIS.iter())
        .map(|k| {
            let (min, max) = range(st, *k);
            ApiVersion::default()
                .with_api_key(*k as i16)
                .with_min_version(min)
                .with_max_version(max)
        })
        .collect();
    encode(ApiVersionsResponse::default().with_api_keys(api_keys), v)
}

fn metadata(st: &State, req: MetadataRequest, v: i16) -> Option<BytesMut> {
    let names: Vec<String> = match req.topics {
        Some(list) if !list.is_empty() => list
            .iter()
            .map(|t| t.name.as_ref().unwrap().0.to_string())
            .collect(),
        Some(_) if v > 0 => Vec::new(),
        _ => st.topics.keys().cloned().collect(),
    };
    let topics = names
        .into_iter()
        .map(|name| match st.topics.get(&name) {
            None => MetadataResponseTopic::default()
                .with_name(Some(TopicName(s(name))))
                .with_error_code(3),
            Some(t) => MetadataResponseTopic::default()
                .with_name(Some(TopicName(s(name.clone()))))
                .with_topic_id(if v >= 10 { t.id } else { Uuid::nil() })
                .with_is_internal(name.starts_with("__"))
                .with_partitions(
                    (0..t.partitions.len())
                        .map(|p| {
                            MetadataResponsePartition::default()
                                .with_partition_index(p as i32)
                                .with_leader_id(BrokerId(1))
                                .with_replica_nodes(vec![BrokerId(1)])
                                .with_isr_nodes(vec![BrokerId(1)])
                        })
                        .collect(),
                ),
        })
        .collect();
    let host = st
        .opts
        .advertised_host
        .clone()
        .unwrap_or("127.0.0.1".into());
    let resp = MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(1))
            .with_host(s(host))
            .with_port(i32::from(st.port))])
        .with_cluster_id(if v >= 2 { Some(s("mock")) } else { None })
        .with_controller_id(BrokerId(1))
        .with_topics(topics);
    encode(resp, v)
}

fn create_topics(st: &mut State, req: CreateTopicsRequest, v: i16) -> Option<BytesMut> {
    let mut results = Vec::new();
    for t in req.topics {
        let name = t.name.0.to_string();
        let mut r = CreatableTopicResult::default().with_name(t.name.clone());
        let exists = st.topics.contains_key(&name);
        if exists {
            r = r
                .with_error_code(36)
                .with_error_message(Some(s(format!("Topic '{name}' already exists."))));
        } else if t.num_partitions == 0 || t.num_partitions < -1 {
            r = r.with_error_code(37);
        } else {
            let count = if t.num_partitions == -1 {
                1
            } else {
                t.num_partitions as usize
            };
            let topic = st.topics.entry(name).or_insert_with(|| new_topic(count));
            for c in t.configs {
                topic.configs.insert(
                    c.name.to_string(),
                    c.value.map(|v| v.to_string()).unwrap_or_default(),
                );
            }
            if v >= 7 {
                r = r.with_topic_id(topic.id);
            }
        }
        results.push(r);
    }
    encode(CreateTopicsResponse::default().with_topics(results), v)
}

fn delete_topics(st: &mut State, req: DeleteTopicsRequest, v: i16) -> Option<BytesMut> {
    let names: Vec<TopicName> = if v >= 6 {
        req.topics.into_iter().filter_map(|t| t.name).collect()
    } else {
        req.topic_names
    };
    let responses = names
        .into_iter()
        .map(|n| {
            let code = if st.topics.remove(n.0.as_str()).is_some() {
                0
            } else {
                3
            };
            DeletableTopicResult::default()
                .with_name(Some(n))
                .with_error_code(code)
        })
        .collect();
    encode(DeleteTopicsResponse::default().with_responses(responses), v)
}

fn create_partitions(st: &mut State, req: CreatePartitionsRequest, v: i16) -> Option<BytesMut> {
    let mut results = Vec::new();
    for t in req.topics {
        let mut r = CreatePartitionsTopicResult::default().with_name(t.name.clone());
        match st.topics.get_mut(t.name.0.as_str()) {
            None => r = r.with_error_code(3),
            Some(topic) if t.count as usize <= topic.partitions.len() => {
                r = r.with_error_code(37).with_error_message(Some(s(format!(
                    "Topic currently has {} partitions, which is higher than the requested {}.",
                    topic.partitions.len(),
                    t.count
                ))))
            }
            Some(topic) => topic.partitions.resize(t.count as usize, Vec::new()),
        }
        results.push(r);
    }
    encode(CreatePartitionsResponse::default().with_results(results), v)
}

fn describe_configs(st: &State, req: DescribeConfigsRequest, v: i16) -> Option<BytesMut> {
    let results = req
        .resources
        .into_iter()
        .map(|r| {
            let name = r.resource_name.to_string();
            let mut out = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name);
            match st.topics.get(&name) {
                None => out = out.with_error_code(3),
                Some(t) => {
                    let mut configs: Vec<_> = t
                        .configs
                        .iter()
                        .map(|(k, v)| {
                            DescribeConfigsResourceResult::default()
                                .with_name(s(k.clone()))
                                .with_value(Some(s(v.clone())))
                                .with_config_source(1)
                        })
                        .collect();
                    configs.push(
                        DescribeConfigsResourceResult::default()
                            .with_name(s("retention.ms"))
                            .with_value(Some(s("604800000")))
                            .with_config_source(5),
                    );
                    out = out.with_configs(configs);
                }
            }
            out
        })
        .collect();
    encode(DescribeConfigsResponse::default().with_results(results), v)
}

fn alter_configs(st: &mut State, req: IncrementalAlterConfigsRequest, v: i16) -> Option<BytesMut> {
    let responses = req
        .resources
        .into_iter()
        .map(|r| {
            let resp = AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            let Some(topic) = st.topics.get_mut(r.resource_name.as_str()) else {
                return resp.with_error_code(3);
            };
            for c in r.configs {
                if c.config_operation == 0 {
                    topic.configs.insert(
                        c.name.to_string(),
                        c.value.map(|v| v.to_string()).unwrap_or_default(),
                    );
                } else {
                    topic.configs.remove(c.name.as_str());
                }
            }
            resp
        })
        .collect();
    encode(
        IncrementalAlterConfigsResponse::default().with_responses(responses),
        v,
    )
}

fn find_topic<'a>(
    st: &'a mut State,
    name: &str,
    id: Uuid,
    v13: bool,
) -> Option<(String, &'a mut MockTopic)> {
    st.topics
        .iter_mut()
        .find(|(n, t)| if v13 { t.id == id } else { n.as_str() == name })
        .map(|(n, t)| (n.clone(), t))
}

fn produce(st: &mut State, req: ProduceRequest, v: i16) -> Option<BytesMut> {
    let mut responses = Vec::new();
    for td in req.topic_data {
        let mut parts = Vec::new();
        let found = find_topic(st, td.name.0.as_str(), td.topic_id, v >= 13);
        let mut topic = found.map(|(_, t)| t);
        for pd in td.partition_data {
            let mut pr = PartitionProduceResponse::default().with_index(pd.index);
            match topic
                .as_mut()
                .and_then(|t| t.partitions.get_mut(pd.index as usize))
            {
                None => pr = pr.with_error_code(3),
                Some(log) => {
                    let mut data = pd.records.unwrap_or_default();
                    let sets = RecordBatchDecoder::decode_all(&mut data).unwrap();
                    if sets.len() != 1 {
                        pr = pr.with_error_code(87); // Kafka insists on exactly one batch
                    } else {
                        pr = pr.with_base_offset(log.len() as i64);
                        for r in &sets[0].records {
                            log.push(Stored {
                                key: r.key.clone(),
                                value: r.value.clone(),
                                timestamp: r.timestamp,
                            });
                        }
                    }
                }
            }
            parts.push(pr);
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(td.name)
                .with_topic_id(td.topic_id)
                .with_partition_responses(parts),
        );
    }
    if req.acks == 0 {
        return None;
    }
    encode(ProduceResponse::default().with_responses(responses), v)
}

fn encode_records(log: &[Stored], from: usize) -> Bytes {
    let mut out = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    let records: Vec<Record> = log
        .iter()
        .enumerate()
        .skip(from)
        .map(|(i, r)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32 - 1,
            timestamp: r.timestamp,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: Default::default(),
        })
        .collect();
    for chunk in records.chunks(RECORDS_PER_BATCH) {
        RecordBatchEncoder::encode(&mut out, chunk, &options).unwrap();
    }
    out.freeze()
}

fn fetch(st: &State, req: &FetchRequest, v: i16) -> (FetchResponse, bool) {
    let mut empty = true;
    let mut responses = Vec::new();
    for ft in &req.topics {
        let found = st.topics.iter().find(|(n, t)| {
            if v >= 13 {
                t.id == ft.topic_id
            } else {
                n.as_str() == ft.topic.0.as_str()
            }
        });
        let partitions = ft
            .partitions
            .iter()
            .map(|fp| {
                let pd = PartitionData::default().with_partition_index(fp.partition);
                let Some(log) = found.and_then(|(_, t)| t.partitions.get(fp.partition as usize))
                else {
                    return pd.with_error_code(if v >= 13 { 100 } else { 3 });
                };
                let hw = log.len() as i64;
                if fp.fetch_offset > hw || fp.fetch_offset < 0 {
                    return pd.with_error_code(1).with_high_watermark(hw);
                }
                let records = encode_records(log, fp.fetch_offset as usize);
                empty &= records.is_empty();
                pd.with_high_watermark(hw)
                    .with_last_stable_offset(hw)
                    .with_records(Some(records))
            })
            .collect();
        responses.push(
            FetchableTopicResponse::default()
                .with_topic(ft.topic.clone())
                .with_topic_id(ft.topic_id)
                .with_partitions(partitions),
        );
    }
    (FetchResponse::default().with_responses(responses), empty)
}

fn list_offsets(st: &State, req: ListOffsetsRequest, v: i16) -> Option<BytesMut> {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let log = st.topics.get(t.name.0.as_str());
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let r = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index);
                    let Some(log) = log.and_then(|l| l.partitions.get(p.partition_index as usize))
                    else {
                        return r.with_error_code(3);
                    };
                    let offset = match p.timestamp {
                        -2 => 0,
                        -1 => log.len() as i64,
                        ts => log
                            .iter()
                            .position(|r| r.timestamp >= ts)
                            .map_or(-1, |i| i as i64),
                    };
                    r.with_offset(offset).with_timestamp(-1)
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    encode(ListOffsetsResponse::default().with_topics(topics), v)
}
