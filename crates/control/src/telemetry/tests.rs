//! Tests of usage folding and utilization metrics: agent reports in, AWS/ECS datapoints out.

use super::*;
use crate::{ControlConfig, ControlPlane};
use berth_metrics::{MetricQuery, Retention, Statistic};
use berth_model::protocol::agent::{ContainerReport, Report, TaskReport};
use serde_json::json;

struct Rig {
    _dir: tempfile::TempDir,
    cp: ControlPlane,
    store: MetricStore,
}

/// A control plane with service `web` of `tasks` tasks of a task definition reserving `cpu` units.
fn rig(tasks: u32, cpu: &str) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let config = ControlConfig {
        state_dir: dir.path().join("control"),
        arns: Default::default(),
        listen_host: "127.0.0.1".into(),
    };
    let cp =
        ControlPlane::with_store(config, Box::new(berth_store::MemoryStore::default())).unwrap();
    crate::ecs::call(
        &cp,
        "RegisterTaskDefinition",
        json!({"family": "app", "cpu": cpu, "memory": "512",
               "containerDefinitions": [{"name": "app", "image": "process://berth", "command": ["demo-app"]}]}),
    )
    .unwrap();
    crate::ecs::call(
        &cp,
        "CreateService",
        json!({"serviceName": "web", "taskDefinition": "app", "desiredCount": tasks}),
    )
    .unwrap();
    cp.reconcile_once().unwrap();
    let store = MetricStore::open(dir.path().join("metrics"), Retention::default()).unwrap();
    cp.attach_metrics(store.clone());
    Rig {
        _dir: dir,
        cp,
        store,
    }
}

impl Rig {
    fn task_arns(&self) -> Vec<String> {
        self.cp
            .read(|st| st.tasks.values().map(|r| r.task.task_arn.clone()).collect())
    }

    /// Reports `arn` RUNNING with `cpu_seconds` used and 64 MiB in use, sampled at `at`.
    fn report(&self, arn: &str, cpu_seconds: f64, at: f64) {
        let node = self.cp.read(|st| {
            st.tasks
                .values()
                .find(|r| r.task.task_arn == arn)
                .unwrap()
                .node
                .clone()
        });
        self.cp
            .apply_report(Report {
                node_id: node,
                full: false,
                host_ip: "127.0.0.1".into(),
                tasks: vec![TaskReport {
                    task_arn: arn.into(),
                    last_status: "RUNNING".into(),
                    containers: vec![ContainerReport {
                        name: "app".into(),
                        last_status: "RUNNING".into(),
                        cpu_seconds_total: Some(cpu_seconds),
                        memory_bytes: Some(64 << 20),
                        ..Default::default()
                    }],
                    usage_sampled_at: Some(at),
                    ..Default::default()
                }],
            })
            .unwrap();
    }

    /// (Average, SampleCount) of `name` over the last minute, for the service or one task.
    fn stat(&self, name: &str, task_id: Option<&str>) -> Option<(f64, f64)> {
        let mut dims = vec![
            Dimension::new("ClusterName", "default"),
            Dimension::new("ServiceName", "web"),
        ];
        if let Some(id) = task_id {
            dims.push(Dimension::new("TaskId", id));
        }
        let now = berth_model::now().floor() as i64;
        let points = self
            .store
            .query(&MetricQuery {
                id: MetricId::new("AWS/ECS", name, dims),
                start: now - 60,
                end: now + 1,
                period: 61,
                statistics: vec![Statistic::Average, Statistic::SampleCount],
                unit: None,
            })
            .unwrap();
        let p = points.first()?;
        Some((p.values[0], p.values[1]))
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

#[test]
fn cpu_is_the_rate_between_agent_samples_over_the_reservation() {
    let rig = rig(1, "256");
    let arn = rig.task_arns().pop().unwrap();
    let id = berth_model::arn::name_of(&arn).to_string();
    // The first sample gives memory only: a rate needs two.
    rig.report(&arn, 10.0, 1000.0);
    assert_eq!(rig.stat("CPUUtilization", None), None);
    let (mem, _) = rig.stat("MemoryUtilization", None).unwrap();
    assert!(close(mem, 12.5), "64 of 512 MiB: {mem}");
    // A quarter of a core for half a second (the agent's clock, whenever it arrives) is 100% of
    // cpu 256.
    rig.report(&arn, 10.125, 1000.5);
    let (cpu, n) = rig.stat("CPUUtilization", None).unwrap();
    assert!(close(cpu, 100.0) && n == 1.0, "{cpu} over {n} samples");
    let (task_cpu, _) = rig.stat("CPUUtilization", Some(&id)).unwrap();
    assert!(close(task_cpu, 100.0), "{task_cpu}");
    // The same sample again (a full report) adds nothing; a whole core is 400%.
    rig.report(&arn, 10.125, 1000.5);
    assert_eq!(rig.stat("CPUUtilization", None).unwrap().1, 1.0);
    rig.report(&arn, 10.625, 1001.0);
    let (cpu, n) = rig.stat("CPUUtilization", None).unwrap();
    assert!(close(cpu, 250.0) && n == 2.0, "mean of 100 and 400: {cpu}");
    // A stopped task's usage is forgotten.
    rig.cp
        .apply_report(Report {
            node_id: rig.cp.read(|st| st.tasks[&id].node.clone()),
            full: false,
            host_ip: "127.0.0.1".into(),
            tasks: vec![TaskReport {
                task_arn: arn.clone(),
                last_status: "STOPPED".into(),
                ..Default::default()
            }],
        })
        .unwrap();
    assert!(rig.cp.read(|st| !st.usage.contains_key(&id)));
}

#[test]
fn a_service_averages_its_tasks_weighted_by_reservation() {
    let rig = rig(2, "512");
    let arns = rig.task_arns();
    for arn in &arns {
        rig.report(arn, 0.0, 2000.0);
    }
    // Half a core for one task (100% of 512 units), nothing for the other: 50%.
    rig.report(&arns[0], 0.5, 2001.0);
    rig.report(&arns[1], 0.0, 2001.0);
    let (cpu, n) = rig.stat("CPUUtilization", None).unwrap();
    // Two datapoints: 100% (only the first task had a figure yet), then 50%.
    assert!(close(cpu, 75.0) && n == 2.0, "{cpu} over {n}");

    let u = |cpu: f64, units: f64| TaskUsage {
        cpu_percent: Some(cpu),
        memory_percent: None,
        cpu_units: units,
        memory_mib: 512.0,
        ..Default::default()
    };
    // 1024 units at 10% and 256 at 100%: (102.4 + 256) / 1280 = 28%.
    let (cpu, mem) = service_utilization(&[u(10.0, 1024.0), u(100.0, 256.0)]);
    assert!(close(cpu.unwrap(), 28.0), "{cpu:?}");
    assert_eq!(mem, None);
    assert_eq!(service_utilization(&[]), (None, None));
}
