//! The alarm manager: keeps alarm definitions, states and history in a JSON file written
//! atomically, evaluates every alarm each second ([`AlarmManager::run`]), broadcasts state
//! changes and runs their actions.

use super::actions::{self, Action};
use super::evaluate::{evaluate, evaluation_range, PeriodValue};
use super::rule::{self, Rule};
use super::*;
use crate::store::MetricStore;
use crate::types::{MetricQuery, Statistic};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch, Semaphore};

/// History items kept per alarm.
const HISTORY_PER_ALARM: usize = 500;
/// History older than this is dropped (CloudWatch keeps 30 days).
const HISTORY_SECONDS: f64 = 30.0 * 86_400.0;
/// Actions running at once.
const ACTION_CONCURRENCY: usize = 16;

/// A state change, as subscribers and actions see it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmStateChange {
    /// The alarm's name.
    pub alarm_name: String,
    /// The alarm's ARN.
    pub alarm_arn: String,
    /// The alarm's description.
    pub alarm_description: Option<String>,
    /// `MetricAlarm` or `CompositeAlarm`.
    pub alarm_type: String,
    /// The state before.
    pub old_state: StateValue,
    /// The state now.
    pub new_state: StateValue,
    /// Why.
    pub reason: String,
    /// When, seconds since the epoch.
    pub timestamp: f64,
    /// When the alarm's configuration last changed.
    pub configuration_updated: f64,
    /// Region in the ARN.
    pub region: String,
    /// Account in the ARN.
    pub account: String,
}

/// Why an alarm operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AlarmError {
    /// Input failed validation; every problem is listed.
    #[error("{}", .0.join("; "))]
    Validation(Vec<String>),
    /// The named alarm does not exist.
    #[error("alarm {0} does not exist")]
    NotFound(String),
    /// The change could not be saved.
    #[error(transparent)]
    Persist(#[from] PersistError),
}

/// Why the alarm file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// Reading or writing the file failed.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        error: std::io::Error,
    },
    /// The file holds something other than berth's alarm JSON.
    #[error("{path}: not berth alarm JSON: {error}")]
    Parse {
        /// The file.
        path: String,
        /// The cause.
        error: serde_json::Error,
    },
}

/// Action entries queued for a state change.
type QueuedActions = (Vec<String>, AlarmStateChange);

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Book {
    alarms: BTreeMap<String, Alarm>,
    history: BTreeMap<String, VecDeque<HistoryItem>>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    metrics: MetricStore,
    book: Mutex<Book>,
    /// One writer of the file at a time, so a later state is never overwritten by an earlier one.
    persisting: Mutex<()>,
    events: broadcast::Sender<AlarmStateChange>,
    actions_tx: mpsc::UnboundedSender<QueuedActions>,
    actions_rx: Mutex<Option<mpsc::UnboundedReceiver<QueuedActions>>>,
    region: String,
    account: String,
}

/// Alarm definitions, states and history; cheap to clone (an `Arc` inside).
#[derive(Debug, Clone)]
pub struct AlarmManager {
    inner: Arc<Inner>,
}

/// A DescribeAlarms filter.
#[derive(Debug, Clone, Default)]
pub struct AlarmFilter {
    /// Exactly these names (empty: any).
    pub names: Vec<String>,
    /// Names starting with this.
    pub name_prefix: Option<String>,
    /// Only this state.
    pub state: Option<StateValue>,
    /// Only alarms with this action.
    pub action_prefix: Option<String>,
    /// Include metric alarms.
    pub metric_alarms: bool,
    /// Include composite alarms.
    pub composite_alarms: bool,
}

fn lock(book: &Mutex<Book>) -> MutexGuard<'_, Book> {
    // The data stays consistent between statements; keep serving after a panic elsewhere.
    book.lock().unwrap_or_else(|e| e.into_inner())
}

impl AlarmManager {
    /// Opens (or starts empty) the alarm file at `path`, evaluating against `metrics`.
    pub fn open(
        path: impl AsRef<Path>,
        metrics: MetricStore,
    ) -> Result<AlarmManager, PersistError> {
        let path = path.as_ref().to_path_buf();
        let book = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| PersistError::Parse {
                path: path.display().to_string(),
                error,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Book::default(),
            Err(error) => {
                return Err(PersistError::Io {
                    path: path.display().to_string(),
                    error,
                })
            }
        };
        let (events, _) = broadcast::channel(1024);
        let (actions_tx, actions_rx) = mpsc::unbounded_channel();
        Ok(AlarmManager {
            inner: Arc::new(Inner {
                path,
                metrics,
                book: Mutex::new(book),
                persisting: Mutex::new(()),
                events,
                actions_tx,
                actions_rx: Mutex::new(Some(actions_rx)),
                region: "us-east-1".into(),
                account: "000000000000".into(),
            }),
        })
    }

    /// State changes as they happen (auto scaling and canary analysis listen here).
    pub fn subscribe(&self) -> broadcast::Receiver<AlarmStateChange> {
        self.inner.events.subscribe()
    }

    /// The ARN of an alarm name.
    pub fn arn(&self, name: &str) -> String {
        format!(
            "arn:aws:cloudwatch:{}:{}:alarm:{name}",
            self.inner.region, self.inner.account
        )
    }

    fn persist(&self) -> Result<(), PersistError> {
        let _one = self
            .inner
            .persisting
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let json = {
            let book = lock(&self.inner.book);
            serde_json::to_vec_pretty(&*book).map_err(|error| PersistError::Parse {
                path: self.inner.path.display().to_string(),
                error,
            })?
        };
        write_atomically(&self.inner.path, &json).map_err(|error| PersistError::Io {
            path: self.inner.path.display().to_string(),
            error,
        })
    }

    fn history_push(book: &mut Book, item: HistoryItem) {
        let items = book.history.entry(item.alarm_name.clone()).or_default();
        let cutoff = item.timestamp - HISTORY_SECONDS;
        items.push_back(item);
        while items.len() > HISTORY_PER_ALARM || items.front().is_some_and(|i| i.timestamp < cutoff)
        {
            items.pop_front();
        }
    }

    fn put(&self, definition: AlarmDefinition, now: f64) -> Result<(), AlarmError> {
        let name = definition.name().to_string();
        let alarm_type = match definition {
            AlarmDefinition::Metric(_) => "MetricAlarm",
            AlarmDefinition::Composite(_) => "CompositeAlarm",
        };
        {
            let mut book = lock(&self.inner.book);
            let created = !book.alarms.contains_key(&name);
            if let Some(existing) = book.alarms.get(&name) {
                if existing.alarm_type() != alarm_type {
                    return Err(AlarmError::Validation(vec![format!(
                        "AlarmName: {name} is already a {}; a {alarm_type} needs another name",
                        existing.alarm_type()
                    )]));
                }
            }
            let data = serde_json::json!({
                "version": "1.0",
                "type": if created { "Create" } else { "Update" },
                "updatedAlarm": definition_json(&definition),
            });
            let arn = self.arn(&name);
            let alarm = book.alarms.entry(name.clone()).or_insert_with(|| Alarm {
                definition: definition.clone(),
                arn,
                state: AlarmState {
                    value: StateValue::INSUFFICIENT_DATA,
                    reason: "Unchecked: Initial alarm creation".into(),
                    reason_data: None,
                    updated: now,
                    transitioned: now,
                },
                configuration_updated: now,
                manual_until: None,
            });
            alarm.definition = definition;
            alarm.configuration_updated = now;
            alarm.manual_until = None;
            Self::history_push(
                &mut book,
                HistoryItem {
                    alarm_name: name.clone(),
                    alarm_type: alarm_type.into(),
                    timestamp: now,
                    history_item_type: "ConfigurationUpdate".into(),
                    history_summary: format!(
                        "Alarm \"{name}\" {}",
                        if created { "created" } else { "updated" }
                    ),
                    history_data: data.to_string(),
                },
            );
        }
        self.persist()?;
        Ok(())
    }

    /// Creates or replaces a metric alarm (PutMetricAlarm); a new alarm starts INSUFFICIENT_DATA.
    pub fn put_metric_alarm(&self, alarm: MetricAlarm, now: f64) -> Result<(), AlarmError> {
        alarm.validate().map_err(AlarmError::Validation)?;
        self.put(AlarmDefinition::Metric(alarm), now)
    }

    /// Creates or replaces a composite alarm (PutCompositeAlarm); the rule must parse and name
    /// existing alarms, and may not refer back to this alarm.
    pub fn put_composite_alarm(&self, alarm: CompositeAlarm, now: f64) -> Result<(), AlarmError> {
        let mut errors = Vec::new();
        if alarm.alarm_name.is_empty() || alarm.alarm_name.len() > 255 {
            errors.push(format!(
                "AlarmName: 1 to 255 characters were expected, found {}",
                alarm.alarm_name.len()
            ));
        }
        let mut actions_errors = Vec::new();
        super::validate_actions(&alarm.actions, &mut actions_errors);
        errors.extend(actions_errors);
        match rule::parse(&alarm.alarm_rule) {
            Err(e) => errors.push(e.to_string()),
            Ok(parsed) => {
                let book = lock(&self.inner.book);
                for name in parsed.alarm_names() {
                    if name == alarm.alarm_name {
                        errors.push(format!("AlarmRule: a rule that does not name its own alarm was expected, found {name}"));
                    } else if !book.alarms.contains_key(&name) {
                        errors.push(format!(
                            "AlarmRule: an existing alarm was expected, found {name}"
                        ));
                    } else if depends_on(&book, &name, &alarm.alarm_name) {
                        errors.push(format!(
                            "AlarmRule: {name} depends on {} already; cycles are not allowed",
                            alarm.alarm_name
                        ));
                    }
                }
            }
        }
        if !errors.is_empty() {
            return Err(AlarmError::Validation(errors));
        }
        self.put(AlarmDefinition::Composite(alarm), now)
    }

    /// Deletes alarms (DeleteAlarms): all or none; an alarm named in a composite rule can only
    /// go together with that composite.
    pub fn delete_alarms(&self, names: &[String]) -> Result<(), AlarmError> {
        {
            let mut book = lock(&self.inner.book);
            if let Some(missing) = names.iter().find(|n| !book.alarms.contains_key(*n)) {
                return Err(AlarmError::NotFound(missing.clone()));
            }
            let mut errors = Vec::new();
            for alarm in book.alarms.values() {
                if names.iter().any(|n| n == alarm.definition.name()) {
                    continue;
                }
                if let AlarmDefinition::Composite(c) = &alarm.definition {
                    if let Ok(r) = rule::parse(&c.alarm_rule) {
                        for n in r.alarm_names().iter().filter(|n| names.contains(n)) {
                            errors.push(format!("AlarmNames: {n} is used by composite alarm {}; delete or change it first", c.alarm_name));
                        }
                    }
                }
            }
            if !errors.is_empty() {
                return Err(AlarmError::Validation(errors));
            }
            for n in names {
                book.alarms.remove(n);
            }
        }
        self.persist()?;
        Ok(())
    }

    /// The alarms matching `filter`, by name.
    pub fn describe(&self, filter: &AlarmFilter) -> Vec<Alarm> {
        let book = lock(&self.inner.book);
        book.alarms
            .values()
            .filter(|a| {
                filter.names.is_empty() || filter.names.iter().any(|n| n == a.definition.name())
            })
            .filter(|a| {
                filter
                    .name_prefix
                    .as_ref()
                    .is_none_or(|p| a.definition.name().starts_with(p.as_str()))
            })
            .filter(|a| filter.state.is_none_or(|s| a.state.value == s))
            .filter(|a| match a.definition {
                AlarmDefinition::Metric(_) => filter.metric_alarms,
                AlarmDefinition::Composite(_) => filter.composite_alarms,
            })
            .filter(|a| {
                filter.action_prefix.as_ref().is_none_or(|p| {
                    let acts = a.definition.actions();
                    acts.ok_actions
                        .iter()
                        .chain(&acts.alarm_actions)
                        .chain(&acts.insufficient_data_actions)
                        .any(|x| x.starts_with(p.as_str()))
                })
            })
            .cloned()
            .collect()
    }

    /// One alarm by name.
    pub fn get(&self, name: &str) -> Option<Alarm> {
        lock(&self.inner.book).alarms.get(name).cloned()
    }

    /// History items, newest first (DescribeAlarmHistory); `item_type` filters
    /// StateUpdate/ConfigurationUpdate/Action, times are inclusive bounds.
    pub fn history(
        &self,
        name: Option<&str>,
        item_type: Option<&str>,
        start: Option<f64>,
        end: Option<f64>,
    ) -> Vec<HistoryItem> {
        let book = lock(&self.inner.book);
        let mut out: Vec<HistoryItem> = book
            .history
            .iter()
            .filter(|(n, _)| name.is_none_or(|x| x == n.as_str()))
            .flat_map(|(_, items)| items.iter())
            .filter(|i| item_type.is_none_or(|t| t == i.history_item_type))
            .filter(|i| {
                start.is_none_or(|s| i.timestamp >= s) && end.is_none_or(|e| i.timestamp <= e)
            })
            .cloned()
            .collect();
        out.sort_by(|a, b| b.timestamp.total_cmp(&a.timestamp));
        out
    }

    /// Sets an alarm's state by hand (SetAlarmState); it holds until the evaluation after one
    /// more period (60 s for composites), then evaluation takes over again.
    pub fn set_alarm_state(
        &self,
        name: &str,
        value: StateValue,
        reason: &str,
        reason_data: Option<String>,
        now: f64,
    ) -> Result<(), AlarmError> {
        let change = {
            let mut book = lock(&self.inner.book);
            let Some(alarm) = book.alarms.get_mut(name) else {
                return Err(AlarmError::NotFound(name.to_string()));
            };
            let hold = match &alarm.definition {
                AlarmDefinition::Metric(m) => m.period as f64,
                AlarmDefinition::Composite(_) => 60.0,
            };
            alarm.manual_until = Some(now + hold);
            self.transition(
                &mut book,
                name,
                value,
                reason.to_string(),
                reason_data,
                now,
                true,
            )
        };
        self.persist()?;
        if let Some(change) = change {
            self.announce(change);
        }
        Ok(())
    }

    /// Applies a new state; records history and returns the change when the value changed.
    #[allow(clippy::too_many_arguments)]
    fn transition(
        &self,
        book: &mut Book,
        name: &str,
        value: StateValue,
        reason: String,
        reason_data: Option<String>,
        now: f64,
        always_record: bool,
    ) -> Option<AlarmStateChange> {
        let alarm = book.alarms.get_mut(name)?;
        let old = alarm.state.clone();
        if old.value == value && !always_record {
            alarm.state.reason = reason;
            alarm.state.reason_data = reason_data;
            return None;
        }
        alarm.state = AlarmState {
            value,
            reason: reason.clone(),
            reason_data: reason_data.clone(),
            updated: now,
            transitioned: if old.value == value {
                old.transitioned
            } else {
                now
            },
        };
        let change = AlarmStateChange {
            alarm_name: name.to_string(),
            alarm_arn: alarm.arn.clone(),
            alarm_description: match &alarm.definition {
                AlarmDefinition::Metric(m) => m.alarm_description.clone(),
                AlarmDefinition::Composite(c) => c.alarm_description.clone(),
            },
            alarm_type: alarm.alarm_type().into(),
            old_state: old.value,
            new_state: value,
            reason: reason.clone(),
            timestamp: now,
            configuration_updated: alarm.configuration_updated,
            region: self.inner.region.clone(),
            account: self.inner.account.clone(),
        };
        let mut new_state =
            serde_json::json!({"stateValue": value.as_str(), "stateReason": reason});
        if let Some(d) = reason_data
            .as_deref()
            .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        {
            new_state["stateReasonData"] = d;
        }
        let data = serde_json::json!({
            "version": "1.0",
            "oldState": {"stateValue": old.value.as_str(), "stateReason": old.reason},
            "newState": new_state,
        });
        let item = HistoryItem {
            alarm_name: name.to_string(),
            alarm_type: change.alarm_type.clone(),
            timestamp: now,
            history_item_type: "StateUpdate".into(),
            history_summary: format!(
                "Alarm updated from {} to {}",
                old.value.as_str(),
                value.as_str()
            ),
            history_data: data.to_string(),
        };
        Self::history_push(book, item);
        (old.value != value).then_some(change)
    }

    fn announce(&self, change: AlarmStateChange) {
        tracing::info!(
            alarm = %change.alarm_name,
            old = change.old_state.as_str(),
            new = change.new_state.as_str(),
            reason = %change.reason,
            "alarm state changed"
        );
        let actions = self
            .get(&change.alarm_name)
            .map(|a| a.definition.actions().for_state(change.new_state).to_vec())
            .unwrap_or_default();
        if !actions.is_empty() {
            let _ = self.inner.actions_tx.send((actions, change.clone()));
        }
        // No subscribers is fine.
        let _ = self.inner.events.send(change);
    }

    fn metric_points(&self, m: &MetricAlarm, now: f64) -> Vec<PeriodValue> {
        let p = m.period;
        let now_s = now.floor() as i64;
        let end = now_s - now_s.rem_euclid(p);
        let range = i64::from(evaluation_range(m.evaluation_periods));
        let start = end - range * p;
        let q = MetricQuery {
            id: m.metric.clone(),
            start,
            end,
            period: p,
            statistics: vec![m.parsed_statistic(), Statistic::SampleCount],
            unit: m.unit.clone(),
        };
        let found: BTreeMap<i64, (f64, f64)> = match self.inner.metrics.query_at(&q, now_s) {
            Ok(dps) => dps
                .into_iter()
                .filter_map(|d| Some((d.timestamp, (*d.values.first()?, *d.values.get(1)?))))
                .collect(),
            Err(error) => {
                tracing::warn!(alarm = %m.alarm_name, %error, "alarm query failed; treating as missing data");
                BTreeMap::new()
            }
        };
        (0..range)
            .map(|k| {
                let ts = start + k * p;
                let hit = found.get(&ts).filter(|(v, _)| v.is_finite());
                PeriodValue {
                    timestamp: ts,
                    value: hit.map(|(v, _)| *v),
                    sample_count: hit.map_or(0.0, |(_, c)| *c),
                }
            })
            .collect()
    }

    /// Evaluates every alarm at `now` (metric alarms first, then composites until stable),
    /// records and announces the changes, and returns them.
    pub fn evaluate_all(&self, now: f64) -> Vec<AlarmStateChange> {
        let metric_alarms: Vec<MetricAlarm> = {
            let book = lock(&self.inner.book);
            book.alarms
                .values()
                .filter(|a| a.manual_until.is_none_or(|u| now >= u))
                .filter_map(|a| match &a.definition {
                    AlarmDefinition::Metric(m) => Some(m.clone()),
                    AlarmDefinition::Composite(_) => None,
                })
                .collect()
        };
        // Queries run without the alarm lock.
        let results: Vec<(String, Option<evaluate::Evaluation>)> = metric_alarms
            .iter()
            .map(|m| {
                (
                    m.alarm_name.clone(),
                    evaluate(m, &self.metric_points(m, now), now),
                )
            })
            .collect();
        let mut changes = Vec::new();
        {
            let mut book = lock(&self.inner.book);
            for (name, result) in results {
                if let Some(alarm) = book.alarms.get_mut(&name) {
                    alarm.manual_until = None;
                }
                if let Some(e) = result {
                    changes.extend(self.transition(
                        &mut book,
                        &name,
                        e.state,
                        e.reason,
                        Some(e.reason_data.to_string()),
                        now,
                        false,
                    ));
                }
            }
            let composites: Vec<(String, String)> = book
                .alarms
                .values()
                .filter(|a| a.manual_until.is_none_or(|u| now >= u))
                .filter_map(|a| match &a.definition {
                    AlarmDefinition::Composite(c) => {
                        Some((c.alarm_name.clone(), c.alarm_rule.clone()))
                    }
                    AlarmDefinition::Metric(_) => None,
                })
                .collect();
            // Composites may name composites: repeat until nothing changes (bounded by their number).
            for _ in 0..=composites.len() {
                let mut changed = false;
                for (name, text) in &composites {
                    let Ok(parsed) = rule::parse(text) else {
                        continue;
                    };
                    let (value, reason, data) = composite_state(&book, &parsed, text);
                    if let Some(alarm) = book.alarms.get_mut(name) {
                        alarm.manual_until = None;
                    }
                    if let Some(c) =
                        self.transition(&mut book, name, value, reason, Some(data), now, false)
                    {
                        changes.push(c);
                        changed = true;
                    }
                }
                if !changed {
                    break;
                }
            }
        }
        if !changes.is_empty() {
            if let Err(error) = self.persist() {
                tracing::warn!(%error, "alarm states could not be saved; will retry on the next change");
            }
            for c in &changes {
                self.announce(c.clone());
            }
        }
        changes
    }

    /// Evaluates every second and runs actions until `shutdown` turns true (or its sender goes).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let taken = self
            .inner
            .actions_rx
            .lock()
            .ok()
            .and_then(|mut rx| rx.take());
        let Some(mut actions_rx) = taken else {
            tracing::warn!("AlarmManager::run called twice; the second call returns at once");
            return;
        };
        let client = reqwest::Client::new();
        let limit = Arc::new(Semaphore::new(ACTION_CONCURRENCY));
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let me = self.clone();
                    let now = crate::store::now_seconds_f64();
                    // Evaluation reads the store; keep it off the async workers.
                    if let Err(error) = tokio::task::spawn_blocking(move || me.evaluate_all(now)).await {
                        tracing::warn!(%error, "alarm evaluation panicked; continuing");
                    }
                }
                Some((entries, change)) = actions_rx.recv() => {
                    for entry in entries {
                        let Some(action) = Action::parse(&entry) else { continue };
                        let (client, change, limit, me) = (client.clone(), change.clone(), limit.clone(), self.clone());
                        tokio::spawn(async move {
                            let Ok(_permit) = limit.acquire_owned().await else { return };
                            let result = actions::run(&action, &change, &client).await;
                            me.record_action(&change, &entry, result);
                        });
                    }
                }
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        return;
                    }
                }
            }
        }
    }

    fn record_action(
        &self,
        change: &AlarmStateChange,
        entry: &str,
        result: Result<String, actions::ActionError>,
    ) {
        let (summary, ok) = match &result {
            Ok(s) => (format!("Successfully executed action {entry}"), s.clone()),
            Err(e) => {
                tracing::warn!(alarm = %change.alarm_name, action = entry, error = %e, "alarm action failed");
                (format!("Failed to execute action {entry}"), e.to_string())
            }
        };
        {
            let mut book = lock(&self.inner.book);
            Self::history_push(
                &mut book,
                HistoryItem {
                    alarm_name: change.alarm_name.clone(),
                    alarm_type: change.alarm_type.clone(),
                    timestamp: crate::store::now_seconds_f64(),
                    history_item_type: "Action".into(),
                    history_summary: summary,
                    history_data: serde_json::json!({"actionState": if result.is_ok() {"Succeeded"} else {"Failed"}, "notificationResource": entry, "stateUpdateTimestamp": change.timestamp, "details": ok}).to_string(),
                },
            );
        }
        if let Err(error) = self.persist() {
            tracing::warn!(%error, "alarm history could not be saved");
        }
    }
}

fn depends_on(book: &Book, from: &str, target: &str) -> bool {
    let mut stack = vec![from.to_string()];
    let mut seen = Vec::new();
    while let Some(n) = stack.pop() {
        if n == target {
            return true;
        }
        if seen.contains(&n) {
            continue;
        }
        seen.push(n.clone());
        if let Some(Alarm {
            definition: AlarmDefinition::Composite(c),
            ..
        }) = book.alarms.get(&n)
        {
            if let Ok(r) = rule::parse(&c.alarm_rule) {
                stack.extend(r.alarm_names());
            }
        }
    }
    false
}

fn composite_state(book: &Book, parsed: &Rule, text: &str) -> (StateValue, String, String) {
    let state_of = |n: &str| book.alarms.get(n).map(|a| a.state.value);
    let truth = parsed.eval(&state_of);
    let children: Vec<String> = parsed
        .alarm_names()
        .iter()
        .map(|n| format!("{n}={}", state_of(n).map_or("missing", |s| s.as_str())))
        .collect();
    let value = if truth {
        StateValue::ALARM
    } else {
        StateValue::OK
    };
    let reason = format!(
        "Alarm rule {text} evaluated to {} ({})",
        if truth { "TRUE" } else { "FALSE" },
        children.join(", ")
    );
    let triggering: Vec<serde_json::Value> = parsed
        .alarm_names()
        .iter()
        .filter_map(|n| book.alarms.get(n))
        .map(|a| serde_json::json!({"arn": a.arn, "state": {"value": a.state.value.as_str(), "timestamp": super::time::iso_offset(a.state.transitioned)}}))
        .collect();
    (
        value,
        reason,
        serde_json::json!({"triggeringAlarms": triggering}).to_string(),
    )
}

fn definition_json(d: &AlarmDefinition) -> serde_json::Value {
    serde_json::to_value(d).unwrap_or(serde_json::Value::Null)
}

/// Writes `bytes` to a temporary sibling, syncs it and renames it over `path`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}
