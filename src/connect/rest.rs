//! Kafka Connect's REST API on the worker's listeners (tiny_http), with
//! Kafka's paths, JSON shapes and status codes.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{json, Value as Json};
use tiny_http::{Header, Method, Request, Response, Server};

use super::config::connector_from_json;
use super::connector::PLUGINS;
use super::worker::{ConnectorInfo, ConnectorStatus, State, Worker, WorkerError};

/// Bound on a request body (connector configurations are small).
const MAX_BODY_BYTES: u64 = 1 << 20;

/// The REST servers, one thread per listener.
pub struct Rest {
    threads: Vec<JoinHandle<()>>,
}

impl Rest {
    pub fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Binds every listener, failing start-up if one cannot be bound.
pub fn start(
    worker: Arc<Worker>,
    listeners: &[SocketAddr],
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Rest> {
    let mut servers = Vec::new();
    for addr in listeners {
        let server = Server::http(addr)
            .map_err(|e| anyhow::anyhow!("cannot listen for REST on {addr}: {e}"))?;
        servers.push(server);
    }
    let addrs: Vec<SocketAddr> = servers
        .iter()
        .filter_map(|s| s.server_addr().to_ip())
        .collect();
    let worker_id = worker_id(addrs.first().copied());
    let mut threads = Vec::new();
    for server in servers {
        let api = Api {
            worker: worker.clone(),
            worker_id: worker_id.clone(),
        };
        let stop = stop.clone();
        threads.push(
            std::thread::Builder::new()
                .name("connect-rest".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match server.recv_timeout(Duration::from_millis(200)) {
                            Ok(Some(req)) => api.serve(req),
                            Ok(None) => {}
                            Err(e) => tracing::warn!("REST: {e}"),
                        }
                    }
                })?,
        );
    }
    for a in &addrs {
        tracing::info!("REST server listening at http://{a}/");
    }
    Ok(Rest { threads })
}

/// `host:port` as Kafka names a worker (its advertised REST address).
fn worker_id(addr: Option<SocketAddr>) -> String {
    match addr {
        Some(a) if a.ip().is_unspecified() => {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "localhost".into());
            format!("{host}:{}", a.port())
        }
        Some(a) => a.to_string(),
        None => "unknown".into(),
    }
}

struct Api {
    worker: Arc<Worker>,
    worker_id: String,
}

/// An HTTP answer: status and optional JSON body.
struct Reply(u16, Option<Json>);

fn error(status: u16, message: impl Into<String>) -> Reply {
    Reply(
        status,
        Some(json!({"error_code": status, "message": message.into()})),
    )
}

impl From<WorkerError> for Reply {
    fn from(e: WorkerError) -> Reply {
        let status = match e {
            WorkerError::NotFound(_) => 404,
            WorkerError::Exists(_) => 409,
            WorkerError::Config(_) => 400,
        };
        error(status, e.to_string())
    }
}

impl Api {
    fn serve(&self, mut req: Request) {
        let method = req.method().clone();
        let url = req.url().to_string();
        let (path, query) = url.split_once('?').unwrap_or((&url, ""));
        let query: Vec<(String, String)> = query
            .split('&')
            .filter(|q| !q.is_empty())
            .map(|q| {
                let (k, v) = q.split_once('=').unwrap_or((q, ""));
                (k.to_string(), v.to_string())
            })
            .collect();
        let mut body = Vec::new();
        let read = req
            .as_reader()
            .take(MAX_BODY_BYTES + 1)
            .read_to_end(&mut body);
        let reply = if read.is_err() || body.len() as u64 > MAX_BODY_BYTES {
            error(413, format!("request body over {MAX_BODY_BYTES} bytes"))
        } else {
            let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
            self.route(&method, &segments, &query, &body)
        };
        tracing::debug!("REST {method} {url} -> {}", reply.0);
        let Reply(status, json) = reply;
        let response = match json {
            Some(j) => Response::from_string(j.to_string())
                .with_status_code(status)
                .with_header(
                    Header::from_bytes("Content-Type", "application/json").expect("a valid header"),
                )
                .boxed(),
            None => Response::empty(status).boxed(),
        };
        if let Err(e) = req.respond(response) {
            tracing::debug!("REST: cannot answer {url}: {e}");
        }
    }

    fn route(
        &self,
        method: &Method,
        segments: &[&str],
        query: &[(String, String)],
        body: &[u8],
    ) -> Reply {
        let flag = |k: &str| {
            query
                .iter()
                .any(|(q, v)| q == k && v.eq_ignore_ascii_case("true"))
        };
        let result: Result<Reply, WorkerError> = match (method, segments) {
            (Method::Get, []) => Ok(Reply(
                200,
                Some(json!({
                    "version": env!("CARGO_PKG_VERSION"),
                    "commit": option_env!("SLUICE_GIT_COMMIT").unwrap_or("unknown"),
                    "kafka_cluster_id": self.worker.cluster_id(),
                })),
            )),
            (Method::Get, ["connectors"]) => Ok(self.list(query)),
            (Method::Post, ["connectors"]) => self.create(body),
            (Method::Get, ["connector-plugins"]) => Ok(plugins(query)),
            (Method::Get, ["connectors", name]) => self
                .worker
                .info(name)
                .map(|i| Reply(200, Some(info_json(&i)))),
            (Method::Delete, ["connectors", name]) => {
                self.worker.delete(name).map(|()| Reply(204, None))
            }
            (Method::Get, ["connectors", name, "config"]) => self
                .worker
                .info(name)
                .map(|i| Reply(200, Some(json!(i.config)))),
            (Method::Put, ["connectors", name, "config"]) => self.put_config(name, body),
            (Method::Get, ["connectors", name, "status"]) => self
                .worker
                .status(name)
                .map(|s| Reply(200, Some(self.status_json(&s)))),
            (Method::Get, ["connectors", name, "tasks"]) => self.worker.info(name).map(|i| {
                let tasks: Vec<Json> = i
                    .task_configs
                    .iter()
                    .enumerate()
                    .map(|(id, c)| json!({"id": {"connector": i.name, "task": id}, "config": c}))
                    .collect();
                Reply(200, Some(json!(tasks)))
            }),
            (Method::Get, ["connectors", name, "tasks", id, "status"]) => {
                self.worker.status(name).map(|s| {
                    match id
                        .parse::<usize>()
                        .ok()
                        .and_then(|id| s.tasks.iter().find(|(i, _)| *i == id))
                    {
                        Some((id, state)) => Reply(200, Some(self.task_json(*id, state))),
                        None => error(404, format!("Task {name}-{id} not found")),
                    }
                })
            }
            (Method::Post, ["connectors", name, "tasks", id, "restart"]) => {
                match id.parse::<usize>() {
                    Ok(id) => self.worker.restart_task(name, id).map(|found| {
                        if found {
                            Reply(204, None)
                        } else {
                            error(404, format!("Task {name}-{id} not found"))
                        }
                    }),
                    Err(_) => Ok(error(404, format!("Task {name}-{id} not found"))),
                }
            }
            (Method::Put, ["connectors", name, "pause"]) => {
                self.worker.pause(name).map(|()| Reply(202, None))
            }
            (Method::Put, ["connectors", name, "resume"]) => {
                self.worker.resume(name).map(|()| Reply(202, None))
            }
            (Method::Put, ["connectors", name, "stop"]) => {
                self.worker.stop(name).map(|()| Reply(202, None))
            }
            (Method::Post, ["connectors", name, "restart"]) => {
                let include_tasks = flag("includeTasks");
                let only_failed = flag("onlyFailed");
                if include_tasks || only_failed {
                    // KIP-745: the tasks restart; the answer is the status.
                    self.worker
                        .restart(name, only_failed)
                        .and_then(|()| self.worker.status(name))
                        .map(|s| Reply(202, Some(self.status_json(&s))))
                } else {
                    // The connector instance alone: it holds no state of its
                    // own here, so there is nothing to redo.
                    self.worker.status(name).map(|_| Reply(204, None))
                }
            }
            (_, ["connectors", ..]) | (_, []) | (_, ["connector-plugins"]) => {
                Ok(error(405, "HTTP 405 Method Not Allowed"))
            }
            _ => Ok(error(404, "HTTP 404 Not Found")),
        };
        result.unwrap_or_else(Reply::from)
    }

    fn list(&self, query: &[(String, String)]) -> Reply {
        let names = self.worker.names();
        let expand: Vec<&str> = query
            .iter()
            .filter(|(k, _)| k == "expand")
            .map(|(_, v)| v.as_str())
            .collect();
        if expand.is_empty() {
            return Reply(200, Some(json!(names)));
        }
        let mut out = serde_json::Map::new();
        for name in names {
            let mut entry = serde_json::Map::new();
            if expand.contains(&"status") {
                if let Ok(s) = self.worker.status(&name) {
                    entry.insert("status".into(), self.status_json(&s));
                }
            }
            if expand.contains(&"info") {
                if let Ok(i) = self.worker.info(&name) {
                    entry.insert("info".into(), info_json(&i));
                }
            }
            out.insert(name, Json::Object(entry));
        }
        Reply(200, Some(Json::Object(out)))
    }

    fn create(&self, body: &[u8]) -> Result<Reply, WorkerError> {
        let json: Json = match serde_json::from_slice(body) {
            Ok(j) => j,
            Err(e) => return Ok(error(400, format!("Request body is not valid JSON: {e}"))),
        };
        if json.get("config").is_none() {
            return Ok(error(
                400,
                "Connector config must be given under \"config\"",
            ));
        }
        let props = connector_from_json(&json)?;
        let info = self.worker.add(props)?;
        Ok(Reply(201, Some(info_json(&info))))
    }

    fn put_config(&self, name: &str, body: &[u8]) -> Result<Reply, WorkerError> {
        let json: Json = match serde_json::from_slice(body) {
            Ok(j) => j,
            Err(e) => return Ok(error(400, format!("Request body is not valid JSON: {e}"))),
        };
        let mut props = connector_from_json(&json)?;
        match props.get("name") {
            Some(n) if n != name => {
                return Ok(error(
                    400,
                    format!("Connector name configuration ({n}) doesn't match connector name in the URL ({name})"),
                ))
            }
            _ => {
                props.insert("name".into(), name.to_string());
            }
        }
        // Check the new configuration before replacing the running one.
        let check = super::config::ConnectorConfig::from_props(props.clone())?;
        let plugin = super::connector::find(&check.class);
        if let Some(p) = plugin {
            p.validate(&check)?;
        }
        let existed = self.worker.delete(name).is_ok();
        let info = self.worker.add(props)?;
        Ok(Reply(
            if existed { 200 } else { 201 },
            Some(info_json(&info)),
        ))
    }

    fn task_json(&self, id: usize, state: &State) -> Json {
        let mut t = json!({"id": id, "state": state.name(), "worker_id": self.worker_id});
        if let Some(trace) = state.trace() {
            t["trace"] = json!(trace);
        }
        t
    }

    fn status_json(&self, s: &ConnectorStatus) -> Json {
        let tasks: Vec<Json> = s
            .tasks
            .iter()
            .map(|(id, state)| self.task_json(*id, state))
            .collect();
        json!({
            "name": s.name,
            "connector": {"state": s.state.name(), "worker_id": self.worker_id},
            "tasks": tasks,
            "type": s.kind.name(),
        })
    }
}

fn info_json(i: &ConnectorInfo) -> Json {
    let tasks: Vec<Json> = (0..i.task_configs.len())
        .map(|t| json!({"connector": i.name, "task": t}))
        .collect();
    json!({"name": i.name, "config": i.config, "tasks": tasks, "type": i.kind.name()})
}

/// `GET /connector-plugins[?connectorsOnly=false]`.
fn plugins(query: &[(String, String)]) -> Reply {
    let version = env!("CARGO_PKG_VERSION");
    let mut out: BTreeMap<&str, Json> = PLUGINS
        .iter()
        .map(|p| {
            (
                p.class(),
                json!({"class": p.class(), "type": p.kind().name(), "version": version}),
            )
        })
        .collect();
    let connectors_only = !query
        .iter()
        .any(|(k, v)| k == "connectorsOnly" && v.eq_ignore_ascii_case("false"));
    if !connectors_only {
        for class in [
            "org.apache.kafka.connect.converters.ByteArrayConverter",
            "org.apache.kafka.connect.json.JsonConverter",
            "org.apache.kafka.connect.storage.StringConverter",
        ] {
            out.insert(
                class,
                json!({"class": class, "type": "converter", "version": version}),
            );
        }
    }
    Reply(200, Some(json!(out.into_values().collect::<Vec<_>>())))
}
