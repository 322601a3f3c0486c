//! The versioned internal interfaces between components: control plane ↔ agent (`/agent/v1`) and
//! control plane ↔ proxy (`/proxy/v1`). JSON over HTTP; the agent and proxy always pull, so they can
//! run on other hosts and keep working while the control plane is away.

/// Control plane ↔ node agent.
pub mod agent {
    use crate::ecs::{IngressRule, NetworkBinding, TaskDefinition};
    use crate::Timestamp;
    use serde::{Deserialize, Serialize};

    /// Path prefix of this protocol version.
    pub const PREFIX: &str = "/agent/v1";

    /// What the control plane wants one node to run. `GET /agent/v1/assignments?node=ID&after=V&wait_ms=MS`
    /// answers at once when the version is newer than `after`, otherwise when it changes or the wait ends.
    /// A task the agent runs that is not listed (or is listed with desired STOPPED) must be stopped.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
    pub struct Assignments {
        pub version: u64,
        pub tasks: Vec<TaskAssignment>,
    }

    /// One task the node should run (or stop).
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct TaskAssignment {
        pub task_arn: String,
        pub task_id: String,
        pub cluster: String,
        pub task_definition: TaskDefinition,
        /// `RUNNING` or `STOPPED`.
        pub desired_status: String,
        /// Extra environment per container name (overrides, injected values).
        #[serde(default)]
        pub environment_overrides: Vec<(String, String, String)>,
        /// The CloudWatch-style log group the task's streams belong to.
        #[serde(default)]
        pub log_group: String,
        /// Resolved `secrets` per container: (container, environment name, value). Travels only in
        /// memory and over this protocol; the agent never writes it to disk.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub secrets: Vec<(String, String, String)>,
        /// The service the task belongs to; `None` for a standalone task (RunTask).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub service_name: Option<String>,
        /// The service's ingress rules (by service name): which other services' tasks may reach
        /// this task on which ports. The agent enforces them between awsvpc tasks.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub ingress: Vec<IngressRule>,
    }

    /// The state of one container as the agent sees it.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
    pub struct ContainerReport {
        pub name: String,
        pub last_status: String,
        pub exit_code: Option<i32>,
        pub reason: Option<String>,
        /// `HEALTHY`, `UNHEALTHY` or `UNKNOWN`.
        pub health_status: Option<String>,
        pub network_bindings: Vec<NetworkBinding>,
        pub runtime_id: Option<String>,
        /// CPU time the container used so far, in seconds (cgroup cpuacct or /proc).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub cpu_seconds_total: Option<f64>,
        /// Memory the container uses now, in bytes (cgroup usage or the process tree's RSS).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub memory_bytes: Option<u64>,
        /// The CPU units the container is limited to (container or task `cpu`), if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub cpu_limit_units: Option<u32>,
        /// The memory limit in MiB (container or task `memory`), if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub memory_limit_mib: Option<u32>,
    }

    /// The state of one task on the node.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
    pub struct TaskReport {
        pub task_arn: String,
        pub last_status: String,
        pub health_status: Option<String>,
        pub containers: Vec<ContainerReport>,
        pub stopped_reason: Option<String>,
        pub stop_code: Option<String>,
        pub pull_started_at: Option<Timestamp>,
        pub pull_stopped_at: Option<Timestamp>,
        pub started_at: Option<Timestamp>,
        pub execution_stopped_at: Option<Timestamp>,
        /// When the containers' `cpu_seconds_total` and `memory_bytes` were sampled, on the agent's
        /// clock: the control plane turns CPU time into a rate over these instants.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub usage_sampled_at: Option<Timestamp>,
    }

    /// `POST /agent/v1/report`: a node's tasks; `full` means every task it knows is listed.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
    pub struct Report {
        pub node_id: String,
        pub full: bool,
        pub tasks: Vec<TaskReport>,
        /// Address other components use to reach tasks on this node (e.g. `127.0.0.1`).
        #[serde(default)]
        pub host_ip: String,
    }

    /// One log line of a task container, as CloudWatch Logs stores it.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
    pub struct LogEvent {
        /// Milliseconds since the epoch.
        pub timestamp: i64,
        pub message: String,
    }

    /// A batch of lines for one stream.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
    pub struct LogBatch {
        pub log_group: String,
        /// `ecs/<container>/<task-id>` as ECS's awslogs driver names streams.
        pub log_stream: String,
        pub events: Vec<LogEvent>,
    }

    /// `POST /agent/v1/logs`: lines shipped from the node; the agent keeps its read offsets so a
    /// line is shipped again rather than lost when a request fails.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
    pub struct LogShipment {
        pub node_id: String,
        pub batches: Vec<LogBatch>,
    }
}

/// Control plane ↔ proxy (the data plane).
pub mod proxy {
    use serde::{Deserialize, Serialize};

    /// Path prefix of this protocol version.
    pub const PREFIX: &str = "/proxy/v1";

    /// A complete routing snapshot. `GET /proxy/v1/config?after=V&wait_ms=MS` long-polls for one newer
    /// than `after`. The proxy keeps serving its last good snapshot while the control plane is away.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
    pub struct ProxyConfig {
        pub version: u64,
        pub listeners: Vec<Listener>,
        pub target_groups: Vec<TargetGroup>,
    }

    /// A listener: a port and its ordered rules.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
    pub struct Listener {
        pub arn: String,
        pub load_balancer_arn: String,
        /// Address to bind, e.g. `127.0.0.1:8080`.
        pub bind: String,
        /// `HTTP` or `HTTPS`.
        pub protocol: String,
        /// Rules, evaluated in ascending priority.
        pub rules: Vec<Rule>,
        pub default_actions: Vec<Action>,
        /// Idle timeout of client connections in seconds (ALB default 60).
        #[serde(default = "default_idle")]
        pub idle_timeout_seconds: u64,
        /// Certificates of an HTTPS listener: the first marked `default` (else the first) is
        /// presented when no other matches the client's SNI name.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub certificates: Vec<ListenerCertificate>,
    }

    /// A certificate of an HTTPS listener, as PEM files on the proxy's machine (berth's ACM
    /// stand-in: the certificate ARN `file://<cert.pem>|<key.pem>` or
    /// `arn:berth:acm:file:<cert.pem>:<key.pem>`).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
    pub struct ListenerCertificate {
        /// PEM file with the certificate (and optionally its chain).
        pub cert_pem_path: String,
        /// PEM file with the private key.
        pub key_pem_path: String,
        /// Presented when no certificate matches the SNI name.
        #[serde(default)]
        pub default: bool,
    }

    fn default_idle() -> u64 {
        60
    }

    /// A listener rule.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
    pub struct Rule {
        pub arn: String,
        pub priority: u32,
        pub conditions: Vec<Condition>,
        pub actions: Vec<Action>,
    }

    /// A rule condition (all must match; values within one condition are ORed).
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "field", rename_all = "kebab-case")]
    pub enum Condition {
        PathPattern { values: Vec<String> },
        HostHeader { values: Vec<String> },
        HttpHeader { name: String, values: Vec<String> },
        HttpRequestMethod { values: Vec<String> },
        QueryString { values: Vec<QueryPair> },
        SourceIp { values: Vec<String> },
    }

    /// A query-string condition pair; a missing key matches any key.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
    pub struct QueryPair {
        pub key: Option<String>,
        pub value: String,
    }

    /// What a rule does.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "type", rename_all = "kebab-case")]
    pub enum Action {
        Forward {
            target_groups: Vec<WeightedTargetGroup>,
            #[serde(default)]
            stickiness_seconds: Option<u64>,
        },
        FixedResponse {
            status_code: u16,
            content_type: Option<String>,
            message_body: Option<String>,
        },
        Redirect {
            protocol: Option<String>,
            host: Option<String>,
            port: Option<String>,
            path: Option<String>,
            query: Option<String>,
            /// `HTTP_301` or `HTTP_302`.
            status_code: String,
        },
    }

    /// A target group in a forward action, with its weight (0-999).
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
    pub struct WeightedTargetGroup {
        pub arn: String,
        pub weight: u32,
    }

    /// A target group with its health check, attributes and targets.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
    pub struct TargetGroup {
        pub arn: String,
        pub name: String,
        pub health_check: HealthCheck,
        pub deregistration_delay_seconds: f64,
        /// `Some(duration)` when lb_cookie stickiness is on.
        pub stickiness_seconds: Option<u64>,
        /// `round_robin` or `least_outstanding_requests`.
        pub algorithm: String,
        pub slow_start_seconds: f64,
        pub targets: Vec<Target>,
    }

    /// Health check settings of a target group.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct HealthCheck {
        pub enabled: bool,
        pub path: String,
        /// `traffic-port` or a port number.
        pub port: String,
        pub interval_seconds: f64,
        pub timeout_seconds: f64,
        pub healthy_threshold: u32,
        pub unhealthy_threshold: u32,
        /// e.g. `200`, `200-299`, `200,302`.
        pub matcher: String,
    }

    impl Default for HealthCheck {
        fn default() -> Self {
            HealthCheck {
                enabled: true,
                path: "/".into(),
                port: "traffic-port".into(),
                interval_seconds: 30.0,
                timeout_seconds: 5.0,
                healthy_threshold: 5,
                unhealthy_threshold: 2,
                matcher: "200".into(),
            }
        }
    }

    /// A registered target.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
    pub struct Target {
        pub id: String,
        pub port: u16,
        /// True once deregistered: no new requests; in-flight ones finish.
        pub draining: bool,
    }

    /// Health of one target as the proxy sees it (ALB states and reason codes).
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
    pub struct TargetHealth {
        pub target_group_arn: String,
        pub id: String,
        pub port: u16,
        /// `initial`, `healthy`, `unhealthy`, `draining`, `unused`, `unavailable`.
        pub state: String,
        pub reason: Option<String>,
        pub description: Option<String>,
        /// Requests in flight to this target.
        pub in_flight: u64,
    }

    /// One-second metric sample the proxy hands to the control plane.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
    pub struct MetricSample {
        pub namespace: String,
        pub name: String,
        pub dimensions: Vec<(String, String)>,
        pub timestamp: f64,
        pub unit: String,
        /// Values observed in this second (e.g. per-request latencies) or one value for counters.
        pub values: Vec<f64>,
        pub counts: Vec<f64>,
    }

    /// `POST /proxy/v1/report`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
    pub struct Report {
        pub proxy_id: String,
        pub config_version: u64,
        pub target_health: Vec<TargetHealth>,
        pub metrics: Vec<MetricSample>,
    }
}
